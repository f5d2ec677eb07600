/**
 * The learning loop and budgets on their own timers, on the real dev server with short periods: spend anomaly detection (steady traffic raises
 * nothing; a burst of expensive requests is caught within seconds of its bucket closing, pauses its
 * category until acknowledged, and the paused request is charged nothing), budget reallocation on
 * its schedule (and its dry run), the tuner acting on its own timer, and an experiment's state
 * surviving a worker restart.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileConfigSchema, type SwitchyardConfig } from '../../src/config/config.js';
import { RequestFailedError } from '../../src/client/client.js';
import { assignArm } from '../../src/learning/experiments.js';
import { useTestStack } from '../helpers/stack.js';
import { sleep, until } from '../helpers/wait.js';

let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

const BUCKET_MS = 1_000;
/** The anomaly webhook's receiver. */
const hooks: Array<{ type: string; id: string; scope: string }> = [];
const hookServer = createServer((req, res) => {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    hooks.push(JSON.parse(body) as (typeof hooks)[number]);
    res.writeHead(204).end();
  });
});

let learning: SwitchyardConfig['learning'];
beforeAll(async () => {
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  learning = fileConfigSchema.parse({
    learning: {
      reportEveryMs: 200,
      tuner: { intervalMs: 2_000, minSamples: 4, explore: 0.2 },
      anomaly: {
        bucketMs: BUCKET_MS,
        warmupBuckets: 5,
        k: 5,
        alpha: 0.3,
        minSpendUsd: 0,
        action: 'pause',
        webhookUrl: `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/anomaly`,
      },
    },
  }).learning;
});
afterAll(() => {
  hookServer.close();
});
const stack = useTestStack(() => ({ config: { learning } }));

describe('spend anomalies', () => {
  const scope = `anom-${Date.now()}`;
  const cheap = (): Promise<unknown> => stack.client.ask({ requestId: rid('steady'), budgetScope: scope, category: 'standard', prompt: 'Name a colour.' });

  it('steady traffic raises none; a burst of expensive requests is caught, pauses its category, and an ack resumes it', async () => {
    // Steady: two cheap requests a bucket for ten buckets (the baseline warms up on five).
    for (let i = 0; i < 10; i++) {
      await Promise.all([cheap(), cheap()]);
      await sleep(BUCKET_MS / 2);
    }
    await sleep(2 * BUCKET_MS);
    expect((await stack.client.learning.anomalies()).filter((a) => a.scope === scope)).toEqual([]);

    // The burst: premium calls, a hundred times the cost of the steady ones, within one bucket.
    const burstStart = Date.now();
    // The burst may pause its own category before its last requests start (a loaded machine starts
    // them late): those are refused as paused, which is the point; anything else fails the test.
    const burst = await Promise.all(
      Array.from({ length: 8 }, () =>
        stack.client
          .ask({ requestId: rid('burst'), budgetScope: scope, category: 'standard', prompt: 'Name a colour.', model: 'o1' })
          .then(() => 'answered')
          .catch((e: unknown) => {
            if (e instanceof RequestFailedError && e.failureType === 'CategoryPaused') return 'paused';
            throw e;
          }),
      ),
    );
    expect(burst).toContain('answered');
    const alert = await until('the anomaly', async () => (await stack.client.learning.anomalies()).find((a) => a.scope === scope));
    expect(alert).toMatchObject({ scope, category: 'standard', action: 'pause' });
    expect(alert.spendNanos).toBeGreaterThan(alert.baselineNanos * 10);
    // Caught within a few buckets of the burst (its bucket closes, then the next report or tick).
    expect(alert.at - burstStart).toBeLessThan(6 * BUCKET_MS);
    expect((await stack.client.learning.policy()).actions[`${scope}|standard`]).toEqual({ action: 'pause', alertId: alert.id });
    // The alert went out: the webhook, and the metric on the worker that delivered it.
    await until('the webhook', async () => (hooks.some((h) => h.id === alert.id) ? true : undefined));
    expect(hooks.find((h) => h.id === alert.id)).toMatchObject({ type: 'switchyard.spend.anomaly', scope });
    const metrics = await (await fetch(stack.metricsUrl)).text();
    expect(metrics).toMatch(new RegExp(`switchyard_spend_anomalies_total\\{scope="${scope}",category="standard",action="pause"\\} [1-9]`));

    // Paused: refused with the way out, nothing charged. Other categories still run. (No wait: the
    // pause is in force for every request started once the policy shows it.)
    const before = (await stack.client.budgetStatus(scope)).spentNanos;
    const paused = await stack.client.ask({ requestId: rid('paused'), budgetScope: scope, category: 'standard', prompt: 'Name a colour.' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(paused).toBeInstanceOf(RequestFailedError);
    expect((paused as RequestFailedError).failureType).toBe('CategoryPaused');
    expect((paused as RequestFailedError).message).toContain(`switchyard anomalies ack ${alert.id}`);
    expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(before);
    await stack.client.ask({ requestId: rid('other-cat'), budgetScope: scope, category: 'batch', prompt: 'Name a colour.' });

    const acked = await stack.client.learning.acknowledge(alert.id);
    expect(acked.acknowledgedAt).toBeGreaterThan(0);
    expect((await stack.client.learning.policy()).actions[`${scope}|standard`]).toBeUndefined();
    // Resumed for the very next request (the ack is in force when it returns).
    await cheap();
    await expect(stack.client.learning.acknowledge('anomaly-404')).rejects.toThrow(/no anomaly "anomaly-404"/);
  });
});

describe('budget reallocation', () => {
  const scope = `realloc-${Date.now()}`;

  it('moves what one category will not use to the one forecast to run out, on its schedule; critical keeps its floor', async () => {
    // $0.02 a month: batch has 25% (5,000,000 nanodollars), standard 35%, critical 40%. The reset
    // starts the period now, so a few seconds of batch spend forecast far past its allocation.
    await stack.client.setBudget(scope, {
      totalNanos: 20_000_000,
      allocations: { critical: 0.4, standard: 0.35, batch: 0.25 },
      reallocation: { everyMs: 3_000, minElapsedShare: 0, margin: 0.1, idleUntilShare: 0 },
    });
    await stack.client.resetBudget(scope);
    for (let i = 0; i < 3; i++)
      await stack.client.ask({ requestId: rid('burn'), budgetScope: scope, category: 'batch', prompt: `Write a haiku about the sea, number ${i}.` });
    const [plan] = await stack.client.reallocationPlan(scope);
    expect(plan!.forecastNanos.batch).toBeGreaterThan(5_000_000);
    expect(plan!.moves.every((m) => m.from !== 'critical')).toBe(true);
    expect(plan!.moves.map((m) => [m.from, m.to])).toEqual([['standard', 'batch']]);
    // A dry run changes nothing.
    expect((await stack.client.budgetStatus(scope)).categories.batch!.allocatedNanos).toBe(5_000_000);

    const record = await until('the scheduled reallocation', async () => (await stack.client.reallocations(scope)).find((r) => r.by === 'schedule'), 20_000);
    const st = await stack.client.budgetStatus(scope);
    const moved = record.moves.reduce((t, m) => t + m.nanos, 0);
    expect(moved).toBeGreaterThan(0);
    expect(st.categories.critical!.allocatedNanos).toBe(8_000_000);
    expect(st.categories.batch!.allocatedNanos).toBe(5_000_000 + moved);
    expect(st.categories.standard!.allocatedNanos).toBe(7_000_000 - moved);
    expect(st.categories.standard!.allocatedNanos).toBeGreaterThanOrEqual(st.categories.standard!.spentNanos);
    expect(st.categories.critical!.allocatedNanos + st.categories.standard!.allocatedNanos + st.categories.batch!.allocatedNanos).toBe(20_000_000);
  });

  it('a bad reallocation setting is refused naming the field', async () => {
    await expect(stack.client.setBudget(scope, { reallocation: { everyMs: 10 } })).rejects.toThrow(/reallocation.everyMs: must be at least 1000/);
    await expect(stack.client.setBudget(scope, { reallocation: { everyMs: 60_000, floors: { nope: 0.5 } } })).rejects.toThrow(
      /reallocation.floors.nope: not a category/,
    );
  });
});

describe('the tuner on its timer', () => {
  it("raises a category on its own, recorded as the tuner's change", async () => {
    const refuse = { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: [], refuseRate: 1, promptPattern: 'receipt' };
    stack.simulator.setFaults({ 'llama-3-70b': refuse, 'mistral-large': refuse });
    try {
      const change = await until(
        'a change by the tuner',
        async () => {
          await Promise.all(
            Array.from({ length: 4 }, (_, i) =>
              stack.client.ask({ requestId: rid('tick'), category: 'critical', prompt: `Summarize this receipt in one sentence: ${i} coffees.`, quality: {} }),
            ),
          );
          return (await stack.client.learning.routingHistory()).find((h) => h.by === 'tuner');
        },
        30_000,
      );
      expect(change.changes?.map((c) => c.category)).toEqual(['critical']);
    } finally {
      stack.simulator.setFaults({});
    }
  });
});

describe('durability', () => {
  it('an experiment keeps its counts across a worker restart, and keeps counting', async () => {
    const name = `durable-${Date.now()}`;
    const arms = [
      { name: 'gpt-4o-mini', weight: 0.5, model: 'gpt-4o-mini' },
      { name: 'gemini-2-flash', weight: 0.5, model: 'gemini-2-flash' },
    ];
    await stack.client.learning.createExperiment({ name, arms, filter: { feature: 'durable' }, minSamples: 50, confidence: 0.95 });
    await until('registered', async () => ((await stack.client.learning.policy()).experiments.some((e) => e.name === name) ? true : undefined));
    await sleep(400);
    const ask = (unit: string) => stack.client.ask({ requestId: rid('d'), unit, feature: 'durable', category: 'batch', prompt: 'Name a fruit.' });
    await Promise.all(['a', 'b', 'c', 'd'].map(ask));
    const before = await until('4 outcomes', async () => {
      const s = await stack.client.learning.experimentStatus(name);
      return Object.values(s.arms).reduce((t, a) => t + a.requests, 0) === 4 ? s : undefined;
    });
    await stack.restartWorker();
    // A worker just started may route its first requests before its first read of the policy
    // (the query waits at most 2 s for the entities' worker); those are simply not in the experiment.
    const r = await until('a request assigned after the restart', async () => {
      const x = await ask('a');
      return x.learning?.experiment ? x : undefined;
    });
    expect(r.learning?.experiment?.arm).toBe(assignArm({ name, arms }, 'a').name);
    const after = await until('5 outcomes', async () => {
      const s = await stack.client.learning.experimentStatus(name);
      return Object.values(s.arms).reduce((t, a) => t + a.requests, 0) === 5 ? s : undefined;
    });
    expect(after.state).toBe('running');
    expect(after.createdAt).toBe(before.createdAt);
    await stack.client.learning.stopExperiment(name);
    expect((await stack.client.learning.experimentStatus(name)).state).toBe('stopped');
  });
});
