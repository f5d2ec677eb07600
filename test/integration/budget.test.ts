/** Budgets on the real dev server: no overspend, exactly-once settlement, policies, periods. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { Context } from '@temporalio/activity';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RequestFailedError, workflowIdFor } from '../../src/client/client.js';
import { costNanos, estimateCostNanos } from '../../src/catalog/pricing.js';
import { countChatTokens } from '../../src/routing/tokens.js';
import { budgetWorkflowId, releaseUpdate, reserveUpdate, settleUpdate, statusQuery } from '../../src/workflows/budget/contract.js';
import { type RequestResult, approveSpendSignal } from '../../src/workflows/request/contract.js';
import { settingsFromConfig } from '../../src/budget/settings.js';
import { startTestStack, type TestStack, useTestStack } from '../helpers/stack.js';
import { entityTaskQueue } from '../../src/workflows/taskQueues.js';

let n = 0;
const unique = (label: string): string => `${label}-${Date.now()}-${++n}`;

const stack = useTestStack();

const PROMPT = 'Write a short product description for a steel water bottle.';
const MAX_OUT = 200;
function estimateFor(model: string): number {
  return estimateCostNanos(stack.catalog.require(model), countChatTokens([{ content: PROMPT }]), MAX_OUT);
}

/** A denial is real when, at that moment, what was left was less than what the attempt needed. */
function expectRealDenial(d: RequestFailedError): void {
  const denial = d.details?.attempts.find((a) => a.outcome === 'budget_denied');
  const m = /has \$([\d.]+) left; .* may cost up to \$([\d.]+)/.exec(denial?.message ?? '');
  expect(m).not.toBeNull();
  expect(Number(m![1])).toBeLessThan(Number(m![2]));
}

describe('no overspend under concurrency', () => {
  it('200 concurrent requests against a category budget that fits about 50', async () => {
    const scope = unique('conc');
    const est = estimateFor('gpt-4o-mini');
    // batch gets 25% of the total: make it exactly 50 estimates.
    await stack.client.setBudget(scope, { totalNanos: est * 50 * 4, policies: { critical: 'downgrade', standard: 'downgrade', batch: 'reject' } });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) =>
        stack.client.ask({
          requestId: unique(`c${i}`),
          prompt: PROMPT,
          category: 'batch',
          model: 'gpt-4o-mini',
          noFallback: true,
          maxOutputTokens: MAX_OUT,
          budgetScope: scope,
        }),
      ),
    );
    const ok = outcomes.filter((o): o is PromiseFulfilledResult<RequestResult> => o.status === 'fulfilled').map((o) => o.value);
    const denied = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as RequestFailedError);
    const st = await stack.client.budgetStatus(scope);
    const batch = st.categories.batch!;
    expect(batch.allocatedNanos).toBe(est * 50);
    expect(ok.length).toBeGreaterThanOrEqual(50);
    expect(denied.length).toBeGreaterThan(0);
    expect(ok.length + denied.length).toBe(200);
    // Every denied request ended by its category's policy (reject), naming the category.
    for (const d of denied) {
      expect(d).toBeInstanceOf(RequestFailedError);
      expect(d.failureType).toBe('BudgetExceeded');
      expect(d.message).toMatch(/category "batch"/);
      expect(d.details?.costNanos).toBe(0);
      expectRealDenial(d);
    }
    // Settled spend never exceeds the hard limit, and equals the successful results to the nanodollar.
    expect(batch.spentNanos).toBeLessThanOrEqual(batch.allocatedNanos);
    expect(batch.spentNanos).toBe(ok.reduce((s, r) => s + r.costNanos, 0));
    expect(batch.reservedNanos).toBe(0);
    expect(st.spentNanos).toBe(batch.spentNanos);
    const audit = stack.ledger.entries().filter((e) => ok.some((r) => r.workflowId === e.workflowId));
    expect(audit.reduce((s, e) => s + e.costNanos, 0)).toBe(batch.spentNanos);
  });
});

describe('exactly once', () => {
  it('a settlement retried after the worker is SIGKILLed right after it reached the entity counts once', async () => {
    const scope = unique('once');
    // A worker process whose settlement reaches the budget entity and the ledger, and which is
    // then killed before its workflow task completes (the answer is already in history).
    await stack.stopWorker();
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../dist/test/helpers/hangingWorker.js', import.meta.url))], {
      env: {
        ...process.env,
        SWITCHYARD_TEST_CONFIG: JSON.stringify(stack.config),
        TEMPORAL_ADDRESS: stack.address,
        SWITCHYARD_WORKFLOW_BUNDLE: inject('workflowBundlePath'),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout });
    const said = (word: string) =>
      new Promise<void>((resolve, reject) => {
        lines.on('line', (l) => l.trim() === word && resolve());
        child.once('exit', (code) => reject(new Error(`hanging worker exited (${code}) before it said ${word}`)));
      });
    try {
      await said('ready');
      const requestId = unique('once');
      const settled = said('settled');
      const prompt = `${PROMPT} Reference ${requestId}.`;
      const pending = stack.client.ask({ requestId, prompt, model: 'gpt-4o-mini', noFallback: true, maxOutputTokens: MAX_OUT, budgetScope: scope });
      await settled;
      child.kill('SIGKILL');
      // A healthy worker takes over: it replays the answer from history and settles again.
      await stack.restartWorker();
      const res = await pending;
      const st = await stack.client.budgetStatus(scope);
      expect(st.spentNanos).toBe(res.costNanos);
      expect(st.reservedNanos).toBe(0);
      expect(st.counters.settles).toBe(1);
      // The settlement was sent again, and the entity ignored it by its sequence number.
      expect(st.counters.duplicateSettles).toBeGreaterThanOrEqual(1);
      // One provider call: the answer was not asked for twice.
      expect(res.attempts.filter((a) => a.outcome === 'ok')).toHaveLength(1);
      expect(stack.simulator.received().filter((r) => r.turns.some((t) => t.text === prompt))).toHaveLength(1);
      expect(stack.ledger.entries().filter((e) => e.workflowId === workflowIdFor(requestId))).toHaveLength(1);
    } finally {
      child.kill('SIGKILL');
      await stack.restartWorker();
    }
  });
});

describe('a slow entity', () => {
  it('a settlement the entity does not answer within a minute as a local activity goes on in an activity; it counts once', async () => {
    const scope = unique('slow');
    let localTries = 0;
    // The settlement's local activity never hears back (as from an entity stuck in a task loop);
    // the regular activity gets through.
    await stack.restartWorker((real) => ({
      recordSpend: async (input: Parameters<typeof real.recordSpend>[0]) => {
        if (Context.current().info.isLocal) {
          localTries += 1;
          await Context.current().cancelled;
        }
        return real.recordSpend(input);
      },
    }));
    try {
      const requestId = unique('slow');
      const res = await stack.client.ask({ requestId, prompt: PROMPT, model: 'gpt-4o-mini', noFallback: true, maxOutputTokens: MAX_OUT, budgetScope: scope });
      expect(localTries).toBeGreaterThanOrEqual(1);
      const st = await stack.client.budgetStatus(scope);
      expect(st.spentNanos).toBe(res.costNanos);
      expect(st.reservedNanos).toBe(0);
      expect(st.counters.settles).toBe(1);
      const history = await stack.client.temporal.workflow.getHandle(workflowIdFor(requestId)).fetchHistory();
      const activities = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
      expect(activities).toEqual(['paidCall', 'recordSpend']);
    } finally {
      await stack.restartWorker();
    }
  }, 180_000);
});

describe('policies', () => {
  it('downgrade: a denied premium request runs on the next cheaper model that fits', async () => {
    const scope = unique('down');
    const cheap = estimateFor('gemini-2-flash');
    await stack.client.setBudget(scope, {
      totalNanos: Math.ceil((cheap * 3) / 0.35) + 10,
      policies: { critical: 'downgrade', standard: 'downgrade', batch: 'reject' },
    });
    const res = await stack.client.ask({
      requestId: unique('down'),
      prompt: PROMPT,
      model: 'gpt-4o',
      maxOutputTokens: MAX_OUT,
      category: 'standard',
      budgetScope: scope,
    });
    expect(res.attempts[0]).toMatchObject({ model: 'gpt-4o', outcome: 'budget_denied', decision: 'policy downgrade' });
    expect(res.model).not.toBe('gpt-4o');
    expect(res.attempts.at(-1)?.outcome).toBe('ok');
    expect(estimateFor(res.model)).toBeLessThanOrEqual(cheap * 3);
    expect((await stack.client.budgetStatus(scope)).categories.standard?.spentNanos).toBe(res.costNanos);
  });

  it('wait: a denied request waits durably and proceeds when an operator approves', async () => {
    const scope = unique('approve');
    await stack.client.setBudget(scope, { totalNanos: 4, policies: { critical: 'wait', standard: 'wait', batch: 'wait' } });
    const requestId = unique('wait');
    const pending = stack.client.ask({
      requestId,
      prompt: PROMPT,
      model: 'gpt-4o-mini',
      noFallback: true,
      maxOutputTokens: MAX_OUT,
      category: 'critical',
      budgetScope: scope,
    });
    const handle = stack.client.temporal.workflow.getHandle(workflowIdFor(requestId));
    // Wait for the denial to be recorded (the workflow is then blocked on the approval condition).
    for (let i = 0; i < 100; i++) {
      const st = await stack.client.temporal.workflow.getHandle(budgetWorkflowId(stack.config.taskQueue, scope)).query(statusQuery);
      if (st.counters.denials > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await handle.signal(approveSpendSignal, { by: 'test' });
    const res = await pending;
    expect(res.attempts.map((a) => a.outcome)).toEqual(['budget_denied', 'ok']);
    const st = await stack.client.budgetStatus(scope);
    expect(st.categories.critical?.spentNanos).toBe(res.costNanos);
    expect(st.categories.critical!.spentNanos).toBeGreaterThan(st.categories.critical!.allocatedNanos); // approved overrun
  });
});

describe('periods and durability', () => {
  it('rolls over on a durable timer (fixed 3 s test periods), keeping the closed period, and a waiting request resumes in the new period', async () => {
    const scope = unique('roll');
    const settings = {
      ...settingsFromConfig(stack.config.budget),
      periodicity: 'fixed' as const,
      periodMs: 3_000,
      totalNanos: estimateFor('gpt-4o-mini') * 4 * 3,
      policies: { critical: 'wait' as const, standard: 'wait' as const, batch: 'wait' as const },
    };
    await stack.client.temporal.workflow.start('budgetEntity', {
      workflowId: budgetWorkflowId(stack.config.taskQueue, scope),
      taskQueue: stack.config.taskQueue,
      args: [{ scope, settings }],
    });
    // Batch fits three estimates per period: the fourth request waits for the next period.
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        stack.client.ask({
          requestId: unique(`roll${i}`),
          prompt: PROMPT,
          model: 'gpt-4o-mini',
          noFallback: true,
          maxOutputTokens: MAX_OUT,
          category: 'batch',
          budgetScope: scope,
        }),
      ),
    );
    const waited = results.filter((r) => r.attempts.some((a) => a.outcome === 'budget_denied'));
    expect(results.every((r) => r.attempts.at(-1)?.outcome === 'ok')).toBe(true);
    // Three fit in the first period, unless the period turned while they ran.
    expect(waited.length).toBeLessThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 3_500));
    const history = await stack.client.budgetHistory(scope);
    expect(history.length).toBeGreaterThanOrEqual(1);
    const spentAllPeriods = history.reduce((s, p) => s + p.spentNanos, 0) + (await stack.client.budgetStatus(scope)).spentNanos;
    expect(spentAllPeriods).toBe(results.reduce((s, r) => s + r.costNanos, 0));
    for (const p of history) expect(p.end - p.start).toBeLessThanOrEqual(3_000);
    expect(history[0]?.closedBy).toBe('timer');
  });

  it('continues as new keeping every open reservation and all spend', async () => {
    const scope = unique('can');
    const settings = settingsFromConfig(stack.config.budget);
    const h = await stack.client.temporal.workflow.start('budgetEntity', {
      workflowId: budgetWorkflowId(stack.config.taskQueue, scope),
      taskQueue: stack.config.taskQueue,
      args: [{ scope, settings, maxHistoryEvents: 40 }],
    });
    const firstRun = h.firstExecutionRunId;
    const handle = stack.client.temporal.workflow.getHandle(budgetWorkflowId(stack.config.taskQueue, scope));
    for (let i = 0; i < 30; i++) {
      await handle.executeUpdate(reserveUpdate, { args: [{ reservationId: `r${i}`, category: 'standard', amountNanos: 1000, workflowId: 'w' }] });
    }
    for (let i = 0; i < 10; i++) await handle.executeUpdate(settleUpdate, { args: [{ reservationId: `r${i}`, category: 'standard', costNanos: 700 }] });
    await handle.executeUpdate(releaseUpdate, { args: [{ reservationId: 'r10' }] });
    const desc = await handle.describe();
    expect(desc.runId).not.toBe(firstRun);
    // Started on the request queue (as entities were before they had their own), it continued on
    // the entities' queue.
    expect(desc.taskQueue).toBe(entityTaskQueue(stack.config.taskQueue));
    const st = await handle.query(statusQuery);
    expect(st.openReservations).toBe(19);
    expect(st.categories.standard?.reservedNanos).toBe(19_000);
    expect(st.categories.standard?.spentNanos).toBe(7_000);
    // A settle retried across the continue-as-new still counts once.
    await handle.executeUpdate(settleUpdate, { args: [{ reservationId: 'r0', category: 'standard', costNanos: 700 }] });
    expect((await handle.query(statusQuery)).categories.standard?.spentNanos).toBe(7_000);
    // And requests keep settling in it there.
    const r = await stack.client.ask({ requestId: unique('can'), prompt: PROMPT, model: 'gpt-4o-mini', maxOutputTokens: MAX_OUT, budgetScope: scope });
    expect((await handle.query(statusQuery)).categories.standard?.spentNanos).toBe(7_000 + r.costNanos);
  });

  it('keeps its state when the worker is killed and restarted mid-period', async () => {
    const scope = unique('restart');
    const first = await stack.client.ask({ requestId: unique('r1'), prompt: PROMPT, model: 'gpt-4o-mini', maxOutputTokens: MAX_OUT, budgetScope: scope });
    const before = await stack.client.budgetStatus(scope);
    await stack.restartWorker();
    const after = await stack.client.budgetStatus(scope);
    expect(after).toEqual(before);
    const second = await stack.client.ask({ requestId: unique('r2'), prompt: PROMPT, model: 'gpt-4o-mini', maxOutputTokens: MAX_OUT, budgetScope: scope });
    expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(first.costNanos + second.costNanos);
    expect(first.costNanos).toBe(costNanos(stack.catalog.require('gpt-4o-mini'), first.usage));
  });
});

describe('soft-limit alerts', () => {
  it('log and call the webhook once per threshold per period', async () => {
    const received: Array<{ category: string; threshold: number }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as { category: string; threshold: number });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const scope = unique('alert');
      const cost = costNanos(
        stack.catalog.require('gpt-4o-mini'),
        (
          await stack.client.ask({
            requestId: unique('probe'),
            prompt: PROMPT,
            model: 'gpt-4o-mini',
            maxOutputTokens: MAX_OUT,
            budgetScope: unique('probe-scope'),
          })
        ).usage,
      );
      // critical gets 40%: ten requests of `cost` use 100% of it; limits are soft, so all run.
      await stack.client.setBudget(scope, {
        totalNanos: Math.round((cost * 10) / 0.4),
        limits: { critical: 'soft', standard: 'soft', batch: 'soft' },
        webhookUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
      });
      for (let i = 0; i < 12; i++) {
        await stack.client.ask({
          requestId: unique(`a${i}`),
          prompt: PROMPT,
          model: 'gpt-4o-mini',
          maxOutputTokens: MAX_OUT,
          category: 'critical',
          budgetScope: scope,
        });
      }
      for (let i = 0; i < 50 && received.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
      expect(received.map((a) => [a.category, a.threshold])).toEqual([
        ['critical', 0.5],
        ['critical', 0.8],
        ['critical', 1],
      ]);
      expect((await stack.client.budgetStatus(scope)).categories.critical!.utilization).toBeGreaterThan(1);
    } finally {
      server.close();
    }
  });
});

describe('sharded budget (4 entities per scope)', () => {
  let sharded: TestStack;
  beforeAll(async () => {
    sharded = await startTestStack({ config: { budget: { ...stack.config.budget, shards: 4 } } });
  });
  afterAll(async () => {
    await sharded?.stop();
  });

  it('never overspends across shards, spills over before denying, and reports one status', async () => {
    const scope = unique('shard');
    const est = estimateFor('gpt-4o-mini');
    await sharded.client.setBudget(scope, { totalNanos: est * 40 * 4, policies: { critical: 'downgrade', standard: 'downgrade', batch: 'reject' } });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 120 }, (_, i) =>
        sharded.client.ask({
          requestId: unique(`s${i}`),
          prompt: PROMPT,
          category: 'batch',
          model: 'gpt-4o-mini',
          noFallback: true,
          maxOutputTokens: MAX_OUT,
          budgetScope: scope,
        }),
      ),
    );
    const ok = outcomes.filter((o): o is PromiseFulfilledResult<RequestResult> => o.status === 'fulfilled').map((o) => o.value);
    const denied = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as RequestFailedError);
    const st = await sharded.client.budgetStatus(scope);
    const batch = st.categories.batch!;
    expect(st.totalNanos).toBe(est * 160);
    expect(batch.allocatedNanos).toBe(est * 40);
    expect(ok.length).toBeGreaterThanOrEqual(40);
    expect(denied.length).toBeGreaterThan(0);
    expect(batch.spentNanos).toBeLessThanOrEqual(batch.allocatedNanos);
    expect(batch.spentNanos).toBe(ok.reduce((sum, r) => sum + r.costNanos, 0));
    expect(batch.reservedNanos).toBe(0);
    // Spill-over: a request is denied only when no shard had room for it at that moment.
    for (const d of denied) expectRealDenial(d);
    const shardStatuses = await Promise.all(
      [0, 1, 2, 3].map((k) => sharded.client.temporal.workflow.getHandle(`budget:${sharded.config.taskQueue}:${scope}#${k}`).query(statusQuery)),
    );
    for (const sh of shardStatuses) expect(sh.categories.batch!.spentNanos).toBeLessThanOrEqual(sh.categories.batch!.allocatedNanos);
    expect(shardStatuses.filter((sh) => sh.categories.batch!.spentNanos > 0).length).toBeGreaterThan(1);
  });
});
