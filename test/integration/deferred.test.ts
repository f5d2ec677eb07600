/**
 * The deferred lane on a real dev server, with the providers' own SDKs against the simulator's
 * batch APIs: requests with a deadline go through one provider batch per flush at the batch price,
 * spend equals what the simulator billed, and lines the provider fails go live before their deadline.
 */
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ApplicationFailure } from '@temporalio/activity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultSpecSchema } from '../../src/simulator/faults.js';
import { billableActions } from '../../src/temporal/billableActions.js';
import { budgetWorkflowId } from '../../src/workflows/budget/contract.js';
import { collectorWorkflowId, joinManySignal, type LineRef, PROVIDER_BATCH_TYPE, type ProviderBatchSummary } from '../../src/workflows/deferred/contract.js';
import type { LedgerEntry } from '../../src/ledger/entry.js';
import { killWorker, spawnWorker, useTestStack } from '../helpers/stack.js';

const validateResult = new Ajv2020({ strict: false }).compile(
  JSON.parse(readFileSync(join(process.cwd(), 'contracts', 'request-result.v1.schema.json'), 'utf8')) as Record<string, unknown>,
);
const deferredConfig = {
  maxLines: 50,
  maxAgeMs: 1_500,
  pollMinMs: 200,
  pollMaxMs: 1_000,
  leaveMarginMs: 2_000,
  upgrade: 'no_dearer' as const,
  categoryDeadlines: {},
};

const waitFor = async (what: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> => {
  const until = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
};

/**
 * The ledger lines of these requests, once there are `n`: a batch answer is settled by the activity
 * that delivered it, just after the request took it, so its line lands a moment after the result.
 */
async function ledgerOf(stack: { ledger: { entries(): LedgerEntry[] } }, results: ReadonlyArray<{ workflowId: string }>, n: number): Promise<LedgerEntry[]> {
  const mine = () => stack.ledger.entries().filter((e) => results.some((r) => r.workflowId === e.workflowId));
  await waitFor(() => mine().length >= n).catch(() => undefined);
  return mine();
}

describe('deferred requests through the providers batch APIs', () => {
  const stack = useTestStack({ config: { deferred: deferredConfig } });

  it.each(['gpt-4o-mini', 'claude-3-5-haiku', 'gemini-2-flash', 'mistral-large'])(
    '%s: a deferred batch is one provider batch, answered at the batch price, charged what the simulator billed',
    async (model) => {
      stack.simulator.resetStats();
      const before = stack.simulator.batches().length;
      const ids = Array.from({ length: 6 }, (_, i) => `defer-${model}-${i}-${randomUUID()}`);
      const results = await Promise.all(
        ids.map((requestId, i) => stack.client.ask({ prompt: `Summarise item ${i} of the inventory.`, model, deadline: '1h', requestId })),
      );
      const made = stack.simulator.batches().slice(before);
      expect(made).toHaveLength(1);
      expect(made[0]?.lines).toBe(6);
      for (const r of results) {
        expect(validateResult(r), JSON.stringify(validateResult.errors)).toBe(true);
        expect(r.deferred?.outcome, JSON.stringify(r.deferred)).toBe('answered');
        expect(r.deferred?.batchId).toBe(made[0]?.id);
        expect(r.attempts[0]?.mode).toBe('batch');
        expect(r.deferred?.savedNanos).toBeGreaterThan(0);
      }
      const billed = stack.simulator.getStats().byModel[model]?.batchBilledNanos ?? 0;
      const charged = results.reduce((n, r) => n + r.costNanos, 0);
      expect(charged).toBe(billed);
      const entries = await ledgerOf(stack, results, 6);
      expect(entries).toHaveLength(6);
      // A batch-answered request's own billed actions: its start, one local-activity task (routing and
      // the join), its wait (one activity the deliverer completes) and its closing upsert. No timer,
      // no update, no settling task: the deliverer settles it.
      for (const r of results.slice(0, 2))
        expect(billableActions(await stack.client.temporal.workflow.getHandle(r.workflowId).fetchHistory()).byKind).toEqual({
          start: 1,
          localActivityTasks: 1,
          activityAttempt: 1,
          searchAttributeUpsert: 1,
        });
      expect(entries.every((e) => e.mode === 'batch' && (e.liveNanos ?? 0) > e.costNanos)).toBe(true);
      // The worker's metrics count the spend by mode, and what the batch saved.
      const metrics = await (await fetch(stack.metricsUrl)).text();
      const batchSpend = Number(/switchyard_spend_by_mode_nanos_total\{mode="batch"\} (\d+)/.exec(metrics)?.[1] ?? -1);
      expect(batchSpend).toBeGreaterThanOrEqual(charged);
      expect(Number(/switchyard_batch_saving_nanos_total (\d+)/.exec(metrics)?.[1] ?? -1)).toBeGreaterThanOrEqual(
        entries.reduce((n, e) => n + (e.liveNanos ?? 0) - e.costNanos, 0),
      );
      // No live call was made for them.
      expect(stack.simulator.getStats().byModel[model]?.requests ?? 0).toBe(0);
    },
  );

  it.each(['failed', 'expired'] as const)(
    'a provider batch that ends %s: its requests go to another batch while the deadline allows, answered there, each charged once',
    async (outcome) => {
      stack.simulator.resetStats();
      const before = stack.simulator.batches().filter((b) => b.model === 'gpt-4o-mini').length;
      stack.simulator.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ batch: { outcome, faultBatches: 1 } }) });
      try {
        const results = await Promise.all(
          [0, 1, 2].map((i) =>
            stack.client.ask({ prompt: `Classify ticket ${i}.`, model: 'gpt-4o-mini', deadline: '1h', requestId: `${outcome}-${i}-${randomUUID()}` }),
          ),
        );
        for (const r of results) {
          expect(r.deferred).toMatchObject({ outcome: 'answered', earlier: { outcome } });
          expect(r.deferred?.batchId).not.toBe(r.deferred?.earlier?.batchId);
          expect(r.attempts.map((a) => a.mode)).toEqual(['batch']);
        }
        const mine = stack.simulator
          .batches()
          .filter((b) => b.model === 'gpt-4o-mini')
          .slice(before);
        expect(mine.filter((b) => b.status === outcome).length).toBe(1);
        expect(mine.filter((b) => b.status === 'completed').length).toBeGreaterThanOrEqual(1);
        expect(stack.simulator.getStats().byModel['gpt-4o-mini']?.requests ?? 0).toBe(0);
        const entries = await ledgerOf(stack, results, 3);
        expect(entries).toHaveLength(3);
        expect(entries.every((e) => e.mode === 'batch')).toBe(true);
        expect(entries.reduce((n, e) => n + e.costNanos, 0)).toBe(stack.simulator.getStats().byModel['gpt-4o-mini']?.batchBilledNanos);
      } finally {
        stack.simulator.setFaults({});
      }
    },
  );

  it('a provider whose batches keep failing: after a second batch, the requests go live before their deadline, each charged once, live', async () => {
    stack.simulator.resetStats();
    stack.simulator.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ batch: { outcome: 'failed' } }) });
    try {
      const results = await Promise.all(
        [0, 1].map((i) =>
          stack.client.ask({ prompt: `Classify ticket ${i}.`, model: 'gpt-4o-mini', deadline: '1h', requestId: `failing-${i}-${randomUUID()}` }),
        ),
      );
      for (const r of results) {
        expect(r.deferred).toMatchObject({ outcome: 'failed', earlier: { outcome: 'failed' } });
        expect(r.attempts.map((a) => a.mode)).toEqual([undefined]);
        expect(r.model).toBe('gpt-4o-mini');
      }
      expect(stack.simulator.getStats().byModel['gpt-4o-mini']?.requests).toBe(2);
      expect(stack.simulator.getStats().byModel['gpt-4o-mini']?.batchLines ?? 0).toBe(0);
      const entries = stack.ledger.entries().filter((e) => results.some((r) => r.workflowId === e.workflowId));
      expect(entries).toHaveLength(2);
      expect(entries.every((e) => e.mode === undefined)).toBe(true);
    } finally {
      stack.simulator.setFaults({});
    }
  });

  it.each(['gpt-4o-mini', 'mistral-large', 'claude-3-5-haiku', 'gemini-2-flash'])(
    '%s: a provider that refuses the batch (400) is not asked again: its requests go live at once, not to another batch',
    async (model) => {
      stack.simulator.resetStats();
      const before = stack.simulator.batches().length;
      stack.simulator.setFaults({ [model]: faultSpecSchema.parse({ batch: { refuseCreate: true } }) });
      try {
        const results = await Promise.all(
          [0, 1].map((i) => stack.client.ask({ prompt: `Sort ticket ${i}.`, model, deadline: '1h', requestId: `refused-${model}-${i}-${randomUUID()}` })),
        );
        for (const r of results) {
          expect(r.deferred).toMatchObject({ model, outcome: 'failed' });
          expect(r.deferred?.message).toMatch(/could not be submitted: .*(400|422)/);
          expect(r.deferred?.earlier).toBeUndefined();
          expect(r.attempts.map((a) => a.mode)).toEqual([undefined]);
        }
        expect(stack.simulator.batches().length).toBe(before);
        expect(stack.simulator.getStats().byModel[model]?.requests).toBe(2);
      } finally {
        stack.simulator.setFaults({});
      }
    },
  );

  it('lines the provider answers with errors go to another batch and are answered there; spend == what the simulator billed', async () => {
    stack.simulator.resetStats();
    stack.simulator.setFaults({ 'claude-3-5-haiku': faultSpecSchema.parse({ batch: { lineErrorRate: 1, faultBatches: 1 } }) });
    try {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          stack.client.ask({ prompt: `Extract the date from note ${i}.`, model: 'claude-3-5-haiku', deadline: '1h', requestId: `lines-${i}-${randomUUID()}` }),
        ),
      );
      expect(results.every((r) => r.deferred?.outcome === 'answered')).toBe(true);
      const again = results.filter((r) => r.deferred?.earlier?.outcome === 'errored');
      // Every line of the first batch errored (more lines may have joined a later batch, answered at once).
      expect(again.length).toBeGreaterThan(0);
      const s = stack.simulator.getStats().byModel['claude-3-5-haiku'];
      expect(s?.requests ?? 0).toBe(0);
      expect(results.reduce((n, r) => n + r.costNanos, 0)).toBe(s?.batchBilledNanos);
      expect(results.every((r) => r.attempts.length === 1 && r.attempts[0]?.mode === 'batch')).toBe(true);
      // The collector sets a timer when a join changes when its next batch is due, not on every join.
      const actions = billableActions(
        await stack.client.temporal.workflow.getHandle(collectorWorkflowId(stack.config.taskQueue, 'claude-3-5-haiku')).fetchHistory(),
      );
      // 16 lines joined (8, then each again after its first batch); joins in the same moment share one signal.
      const joined = results.length + again.length;
      expect(actions.byKind.signal ?? 0).toBeGreaterThan(0);
      expect(actions.byKind.signal ?? 0).toBeLessThan(joined);
      expect(actions.byKind.timer ?? 0).toBeLessThan(joined / 2);
    } finally {
      stack.simulator.setFaults({});
    }
  });

  it('a delivery retried after it handed the answers over and settled them settles and charges nothing twice', async () => {
    stack.simulator.resetStats();
    const scope = `redeliver-${randomUUID()}`;
    let deliveries = 0;
    // The first delivery does all its work, then fails as if its worker had died: the activity runs again.
    await stack.restartWorker((real) => ({
      deliverProviderBatch: async (input: Parameters<typeof real.deliverProviderBatch>[0]) => {
        const r = await real.deliverProviderBatch(input);
        deliveries += 1;
        if (deliveries === 1) throw new Error('worker lost after delivering');
        return r;
      },
    }));
    try {
      const results = await Promise.all(
        [0, 1, 2].map((i) =>
          stack.client.ask({
            prompt: `Sort invoice ${i}.`,
            model: 'gpt-4o-mini',
            deadline: '1h',
            budgetScope: scope,
            requestId: `redeliver-${i}-${randomUUID()}`,
          }),
        ),
      );
      expect(results.every((r) => r.deferred?.outcome === 'answered')).toBe(true);
      await waitFor(() => deliveries >= 2);
      const billed = stack.simulator.getStats().byModel['gpt-4o-mini']?.batchBilledNanos ?? -1;
      expect(results.reduce((n, r) => n + r.costNanos, 0)).toBe(billed);
      const entries = await ledgerOf(stack, results, 3);
      expect(entries).toHaveLength(3);
      expect(entries.every((e) => e.mode === 'batch')).toBe(true);
      expect(entries.reduce((n, e) => n + e.costNanos, 0)).toBe(billed);
      const st = await stack.client.budgetStatus(scope);
      expect(st.spentNanos).toBe(billed);
      expect(st.reservedNanos).toBe(0);
      // The second delivery found each answer taken (its wait already completed) and settled again: a duplicate each time.
      expect(st.counters.settles).toBe(3);
      expect(st.counters.duplicateSettles).toBe(3);
    } finally {
      await stack.restartWorker();
    }
  });

  it.each(['completes', 'fails every attempt'] as const)(
    'a budget entity gone when the delivery settles (the delivery %s): the batch ends unsettled, each line is in the ledger once, and budget restore applies them once',
    async (delivery) => {
      stack.simulator.resetStats();
      const scope = `gone-${randomUUID()}`;
      const budget = stack.client.temporal.workflow.getHandle(budgetWorkflowId(stack.config.taskQueue, scope));
      // The scope's entity is lost after the lines joined (their reservations are in it), before the delivery settles them.
      await stack.restartWorker((real) => ({
        deliverProviderBatch: async (input: Parameters<typeof real.deliverProviderBatch>[0]) => {
          if (!input.lines.some((l) => l.scope === scope)) return real.deliverProviderBatch(input);
          await budget.terminate('lost before the delivery').catch(() => undefined);
          if (delivery === 'completes') return real.deliverProviderBatch(input);
          // One more line, whose request does not exist, fails the real delivery after it handed the
          // three answers over. Made non-retryable here only to spare the test the ten attempts' backoff.
          const ghost = { ...input.lines[0]!, id: `ghost-${randomUUID()}`, workflowId: `llm-ghost-${randomUUID()}`, runId: randomUUID() };
          try {
            return await real.deliverProviderBatch({ ...input, lines: [...input.lines, ghost] });
          } catch (e) {
            const f = e as ApplicationFailure;
            throw ApplicationFailure.create({ message: f.message, type: f.type ?? 'Error', nonRetryable: true, details: f.details ?? [] });
          }
        },
      }));
      try {
        const results = await Promise.all(
          [0, 1, 2].map((i) =>
            stack.client.ask({ prompt: `Tag parcel ${i}.`, model: 'gpt-4o-mini', deadline: '1h', budgetScope: scope, requestId: `gone-${i}-${randomUUID()}` }),
          ),
        );
        // The requests took their answers: losing the budget is the operator's problem, not theirs.
        expect(results.every((r) => r.deferred?.outcome === 'answered')).toBe(true);
        const billed = stack.simulator.getStats().byModel['gpt-4o-mini']?.batchBilledNanos ?? -1;
        const entries = await ledgerOf(stack, results, 3);
        expect(entries.map((e) => e.mode)).toEqual(['batch', 'batch', 'batch']);
        expect(entries.reduce((n, e) => n + e.costNanos, 0)).toBe(billed);
        // The provider batch ends `unsettled`, its result holding the three settlements.
        const query = `WorkflowType = '${PROVIDER_BATCH_TYPE}' AND DeferredState = 'unsettled'`;
        let summary: ProviderBatchSummary | undefined;
        await waitFor(async () => {
          for await (const w of stack.client.temporal.workflow.list({ query })) {
            const r = (await stack.client.temporal.workflow.getHandle(w.workflowId, w.runId).result()) as ProviderBatchSummary;
            if (r.unsettled?.some((u) => u.scope === scope)) summary = r;
          }
          return summary !== undefined;
        });
        expect(summary?.state).toBe('unsettled');
        const owed = (summary?.unsettled ?? []).filter((u) => u.scope === scope);
        const byCost = (a: number, b: number) => a - b;
        expect(owed.map((u) => u.costNanos).sort(byCost)).toEqual(entries.map((e) => e.costNanos).sort(byCost));
        const first = await stack.client.restoreBudget(scope);
        expect(first.entities[0]).toMatchObject({ was: 'TERMINATED', restored: true });
        expect(first.unreadable).toEqual([]);
        const mine = (r: typeof first) => r.settled.filter((x) => owed.some((u) => u.reservationId === x.reservationId));
        expect(mine(first).map((x) => x.duplicate)).toEqual([false, false, false]);
        const st = await stack.client.budgetStatus(scope);
        expect(st.spentNanos).toBe(billed);
        expect(st.reservedNanos).toBe(0);
        // A second restore finds them settled already.
        expect(mine(await stack.client.restoreBudget(scope)).map((x) => x.duplicate)).toEqual([true, true, true]);
        // After a later outage, a restore no longer looks at this batch (it ended before that outage).
        await budget.terminate('lost again');
        expect((await stack.client.restoreBudget(scope)).entities[0]?.restored).toBe(true);
        // (once the new outage shows in the visibility store, which lags a moment)
        await waitFor(async () => mine(await stack.client.restoreBudget(scope)).length === 0);
        expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(billed);
      } finally {
        await stack.restartWorker();
      }
    },
  );

  it('a join signal sent by hand with malformed lines is dropped; the collector goes on, its workflow tasks never fail', async () => {
    const ask = (i: number) =>
      stack.client.ask({ prompt: `Name the colour of card ${i}.`, model: 'mistral-large', deadline: '1h', requestId: `malformed-${i}-${randomUUID()}` });
    expect((await ask(0)).deferred?.outcome).toBe('answered');
    const collector = stack.client.temporal.workflow.getHandle(collectorWorkflowId(stack.config.taskQueue, 'mistral-large'));
    const good = {
      id: 'lgood',
      workflowId: 'w',
      runId: 'r',
      attemptId: 'a',
      scope: 'default',
      category: 'standard',
      leaveAtMs: 1,
      maxOutputTokens: 1,
      shard: 0,
    };
    // Lines the collector cannot hold: fields missing, a leave time that is not a number, a join time that is not one.
    await collector.signal(joinManySignal, [
      { id: 'l1', workflowId: 'w' },
      { ...good, id: 'l2', leaveAtMs: 'soon' },
      { ...good, id: 'l3', joinedAtMs: 'then' },
    ] as unknown as LineRef[]);
    await collector.signal('joinMany', 'not a list');
    expect((await ask(1)).deferred?.outcome).toBe('answered');
    const events = (await collector.fetchHistory()).events ?? [];
    expect(events.filter((e) => e.workflowTaskFailedEventAttributes)).toHaveLength(0);
    expect((await stack.client.deferred().status('mistral-large'))[0]?.pending).toBe(0);
  });

  it('a deadline too near for a batch is called live at once, saying why', async () => {
    const r = await stack.client.ask({ prompt: 'Quick one.', model: 'gpt-4o-mini', deadline: '2s', requestId: `near-${randomUUID()}` });
    expect(r.deferred?.outcome).toBe('not_deferred');
    expect(r.deferred?.message).toMatch(/too near/);
  });

  it('a model whose provider has no batch API (self-hosted) is called live, saying why', async () => {
    const r = await stack.client.ask({ prompt: 'Local one.', model: 'llama-3-70b', deadline: '1h', requestId: `local-${randomUUID()}` });
    expect(r.deferred).toMatchObject({ model: 'llama-3-70b', outcome: 'not_deferred' });
    expect(r.deferred?.message).toMatch(/no batch price/);
    expect(r.attempts[0]?.mode).toBeUndefined();
  });

  it('refuses a deadline that is neither a duration nor a time, naming the field', async () => {
    await expect(stack.client.ask({ prompt: 'x', deadline: 'tomorrow' })).rejects.toThrow(/deadline.*duration such as 90s/s);
  });
});

describe('deferred requests: operators and deadlines', () => {
  // A collector that waits long for more lines: only an operator's flush submits them.
  const stack = useTestStack({ config: { deferred: { ...deferredConfig, maxAgeMs: 600_000, categoryDeadlines: { batch: '2h' } } } });

  it('status shows the waiting lines; flush submits them at once; a category default deadline defers without a deadline field', async () => {
    const before = stack.simulator.batches().length;
    const runs = [0, 1, 2].map((i) =>
      stack.client.ask({ prompt: `Tag record ${i}.`, model: 'gpt-4o-mini', category: 'batch', requestId: `flush-${i}-${randomUUID()}` }),
    );
    await waitFor(async () => (await stack.client.deferred().status('gpt-4o-mini'))[0]?.pending === 3);
    const [st] = await stack.client.deferred().status();
    expect(st).toMatchObject({ model: 'gpt-4o-mini', provider: 'openai', pending: 3, flights: [] });
    expect(stack.simulator.batches()).toHaveLength(before);
    expect(await stack.client.deferred().flush('gpt-4o-mini')).toBe(true);
    const results = await Promise.all(runs);
    expect(results.every((r) => r.deferred?.outcome === 'answered')).toBe(true);
    expect(stack.simulator.batches().slice(before)).toHaveLength(1);
    expect(await stack.client.deferred().flush('no-such-model')).toBe(false);
  });

  it('cancel: the waiting lines go live at once, each charged once, live', async () => {
    stack.simulator.resetStats();
    const runs = [0, 1].map((i) =>
      stack.client.ask({ prompt: `Route ticket ${i}.`, model: 'claude-3-5-haiku', deadline: '1h', requestId: `cancel-${i}-${randomUUID()}` }),
    );
    await waitFor(async () => (await stack.client.deferred().status('claude-3-5-haiku'))[0]?.pending === 2);
    expect(await stack.client.deferred().cancel('claude-3-5-haiku')).toBe(true);
    const results = await Promise.all(runs);
    for (const r of results) {
      expect(r.deferred?.outcome).toBe('cancelled');
      expect(r.attempts).toHaveLength(1);
      expect(r.attempts[0]?.mode).toBeUndefined();
    }
    expect(stack.simulator.getStats().byModel['claude-3-5-haiku']?.requests).toBe(2);
    expect(stack.simulator.getStats().byModel['claude-3-5-haiku']?.batchLines ?? 0).toBe(0);
  });

  it('a provider batch in flight shows in status as its own workflow; cancel cancels it at the provider and its requests go live', async () => {
    stack.simulator.resetStats();
    stack.simulator.setFaults({ 'mistral-large': faultSpecSchema.parse({ batch: { processingMs: 600_000 } }) });
    try {
      const runs = [0, 1].map((i) =>
        stack.client.ask({ prompt: `Tag ticket ${i}.`, model: 'mistral-large', deadline: '1h', requestId: `inflight-${i}-${randomUUID()}` }),
      );
      await waitFor(async () => (await stack.client.deferred().status('mistral-large'))[0]?.pending === 2);
      await stack.client.deferred().flush('mistral-large');
      let flight: { batchId?: string; state: string; lines: number } | undefined;
      await waitFor(async () => {
        const [st] = await stack.client.deferred().status('mistral-large');
        flight = st?.flights.find((f) => f.state === 'polling');
        return flight !== undefined && st?.pending === 0;
      });
      expect(flight).toMatchObject({ lines: 2, state: 'polling' });
      expect(stack.simulator.batches().some((b) => b.id === flight?.batchId && b.status === 'in_progress')).toBe(true);
      expect(await stack.client.deferred().cancel('mistral-large')).toBe(true);
      const results = await Promise.all(runs);
      for (const r of results) {
        expect(r.deferred).toMatchObject({ outcome: 'cancelled', batchId: flight?.batchId });
        expect(r.attempts.map((a) => a.mode)).toEqual([undefined]);
      }
      expect(stack.simulator.batches().find((b) => b.id === flight?.batchId)?.status).toBe('cancelled');
      expect(stack.simulator.getStats().byModel['mistral-large']?.requests).toBe(2);
      expect(stack.simulator.getStats().byModel['mistral-large']?.batchBilledNanos ?? 0).toBe(0);
    } finally {
      stack.simulator.setFaults({});
    }
  });

  it('a deadline that comes near leaves the batch for a live call; the provider answering the line later is charged as duplicated, once', async () => {
    stack.simulator.resetStats();
    stack.simulator.setFaults({ 'gpt-4o': faultSpecSchema.parse({ batch: { processingMs: 12_000 } }) });
    try {
      const before = stack.simulator.batches().length;
      const run = stack.client.ask({ prompt: 'Draft the release note.', model: 'gpt-4o', deadline: '9s', requestId: `near-${randomUUID()}` });
      await waitFor(async () => (await stack.client.deferred().status('gpt-4o'))[0]?.pending === 1);
      await stack.client.deferred().flush('gpt-4o');
      const r = await run;
      expect(r.deferred?.outcome).toBe('left_for_deadline');
      expect(r.deferred?.batchId).toBeUndefined();
      // Answered live before its 9 s deadline.
      expect(r.durationMs).toBeLessThan(9_000);
      expect(stack.simulator.getStats().byModel['gpt-4o']?.requests).toBe(1);
      // The provider still answers the line: charged (it billed it) as duplicated, beside the live call.
      await waitFor(async () => stack.ledger.entries().some((e) => e.workflowId === r.workflowId && e.mode === 'duplicated'), 30_000);
      const entries = stack.ledger.entries().filter((e) => e.workflowId === r.workflowId);
      expect(entries.map((e) => e.mode ?? 'live').sort()).toEqual(['duplicated', 'live']);
      expect(stack.simulator.batches().slice(before)).toHaveLength(1);
      expect(entries.find((e) => e.mode === 'duplicated')?.costNanos).toBe(stack.simulator.getStats().byModel['gpt-4o']?.batchBilledNanos);
    } finally {
      stack.simulator.setFaults({});
    }
  }, 60_000);

  it('a line answered after its request left, while the budget entity is gone: the batch ends unsettled and restore charges it once, as duplicated', async () => {
    stack.simulator.resetStats();
    stack.simulator.setFaults({ 'gpt-4o': faultSpecSchema.parse({ batch: { processingMs: 12_000 } }) });
    const scope = `gone-dup-${randomUUID()}`;
    const budget = stack.client.temporal.workflow.getHandle(budgetWorkflowId(stack.config.taskQueue, scope));
    try {
      const run = stack.client.ask({
        prompt: 'Draft the launch note.',
        model: 'gpt-4o',
        deadline: '9s',
        budgetScope: scope,
        requestId: `near-gone-${randomUUID()}`,
      });
      await waitFor(async () => (await stack.client.deferred().status('gpt-4o'))[0]?.pending === 1);
      await stack.client.deferred().flush('gpt-4o');
      const r = await run;
      expect(r.deferred?.outcome).toBe('left_for_deadline');
      const live = (await stack.client.budgetStatus(scope)).spentNanos;
      expect(live).toBe(r.costNanos);
      // The entity is lost before the provider answers the line the request left.
      await budget.terminate('lost before the late answer');
      await waitFor(async () => stack.ledger.entries().some((e) => e.workflowId === r.workflowId && e.mode === 'duplicated'), 30_000);
      const dup = stack.ledger.entries().find((e) => e.workflowId === r.workflowId && e.mode === 'duplicated');
      let summary: ProviderBatchSummary | undefined;
      await waitFor(async () => {
        for await (const w of stack.client.temporal.workflow.list({ query: `WorkflowType = '${PROVIDER_BATCH_TYPE}' AND DeferredState = 'unsettled'` })) {
          const b = (await stack.client.temporal.workflow.getHandle(w.workflowId, w.runId).result()) as ProviderBatchSummary;
          if (b.unsettled?.some((u) => u.scope === scope)) summary = b;
        }
        return summary !== undefined;
      }, 30_000);
      expect(summary?.duplicated).toBe(1);
      const owed = (summary?.unsettled ?? []).filter((u) => u.scope === scope);
      expect(owed.map((u) => [u.reservationId.startsWith('dup-'), u.costNanos])).toEqual([[true, dup?.costNanos]]);
      const first = await stack.client.restoreBudget(scope);
      expect(first.settled.filter((x) => x.reservationId === owed[0]?.reservationId).map((x) => x.duplicate)).toEqual([false]);
      expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(live + (dup?.costNanos ?? 0));
      const second = await stack.client.restoreBudget(scope);
      expect(second.settled.filter((x) => x.reservationId === owed[0]?.reservationId).map((x) => x.duplicate)).toEqual([true]);
      expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(live + (dup?.costNanos ?? 0));
    } finally {
      stack.simulator.setFaults({});
    }
  }, 90_000);
});

describe('deferred requests: a worker SIGKILLed mid-submission and mid-poll', () => {
  const stack = useTestStack({ config: { deferred: deferredConfig } });
  let worker: ChildProcess | undefined;
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-deferred-'));
  });
  afterAll(async () => {
    if (worker) await killWorker(worker);
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['while the provider batch is being created', { createDelayMs: 4_000 }],
    ['while the provider batch is being polled', { processingMs: 6_000 }],
  ] as const)(
    '%s: exactly one provider batch, every request ends, spend == results == what the simulator billed',
    async (_when, fault) => {
      const config = join(dir, `config-${randomUUID()}.json`);
      writeFileSync(config, JSON.stringify({ deferred: deferredConfig }));
      worker = await spawnWorker(stack, { SWITCHYARD_CONFIG: config });
      stack.simulator.resetStats();
      stack.simulator.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ batch: fault }) });
      try {
        const before = stack.simulator.batches().length;
        const runs = Array.from({ length: 4 }, (_, i) =>
          stack.client.ask({ prompt: `Label photo ${i}.`, model: 'gpt-4o-mini', deadline: '1h', requestId: `kill-${i}-${randomUUID()}` }),
        );
        // The batch exists at the provider: its creation (or a poll of it) is in flight. Kill the worker there.
        const until = Date.now() + 30_000;
        while (stack.simulator.batches().length === before && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        await new Promise((r) => setTimeout(r, 'processingMs' in fault ? 1_500 : 500));
        await killWorker(worker);
        await stack.restartWorker();
        const results = await Promise.all(runs);
        const made = stack.simulator.batches().slice(before);
        expect(made).toHaveLength(1);
        expect(made[0]?.lines).toBe(4);
        expect(results.every((r) => r.deferred?.outcome === 'answered' && r.deferred.batchId === made[0]?.id)).toBe(true);
        const billed = stack.simulator.getStats().byModel['gpt-4o-mini']?.batchBilledNanos;
        expect(results.reduce((n, r) => n + r.costNanos, 0)).toBe(billed);
        const entries = await ledgerOf(stack, results, results.length);
        expect(entries.reduce((n, e) => n + e.costNanos, 0)).toBe(billed);
        expect(new Set(entries.map((e) => e.key)).size).toBe(entries.length);
      } finally {
        stack.simulator.setFaults({});
        if (worker) await killWorker(worker);
      }
    },
    120_000,
  );
});

describe('deferred requests: a stronger model at its batch price (deferred.upgrade up_to_live)', () => {
  const stack = useTestStack({ config: { deferred: { ...deferredConfig, upgrade: 'up_to_live' as const } } });

  it("waits for the stronger model whose batch price is at or below the routed model's live price, saying why; a live call still starts from the routed model", async () => {
    stack.simulator.resetStats();
    // Among standard models gemini-2-flash is cheapest live ($0.10/$0.40 per MTok); gpt-4o-mini is
    // stronger (0.82 against 0.78) and its batch price ($0.075/$0.30) is below gemini's live price.
    const r = await stack.client.ask({
      prompt: 'Summarise the ticket in one line.',
      allowedTiers: ['standard'],
      deadline: '1h',
      requestId: `up-${randomUUID()}`,
    });
    expect(r.model).toBe('gpt-4o-mini');
    expect(r.deferred).toMatchObject({ model: 'gpt-4o-mini', outcome: 'answered', upgradedFrom: 'gemini-2-flash' });
    expect(r.deferred?.upgradeReason).toMatch(/stronger gpt-4o-mini .* at or below gemini-2-flash's live price/);
    expect(r.attempts.map((a) => [a.model, a.mode])).toEqual([['gpt-4o-mini', 'batch']]);
    // What it cost is the batch bill, and no more than gemini-2-flash live would have been charged for the same usage.
    expect(r.costNanos).toBe(stack.simulator.getStats().byModel['gpt-4o-mini']?.batchBilledNanos);
    const u = r.usage;
    expect(r.costNanos).toBeLessThanOrEqual(Math.ceil(u.inputTokens * 100 + u.outputTokens * 400));

    // Too near a deadline for a batch: called live on the model routed for live calls, not the stronger one.
    const near = await stack.client.ask({
      prompt: 'Summarise the other ticket.',
      allowedTiers: ['standard'],
      deadline: '2s',
      requestId: `up-near-${randomUUID()}`,
    });
    // (The stronger model's batch would not take it, so the routed model's was tried too: too near for either.)
    expect(near.deferred).toMatchObject({ model: 'gemini-2-flash', outcome: 'not_deferred' });
    expect(near.deferred?.upgradeReason).toMatch(/not taken \(the deadline is \d+ s away, too near.*gemini-2-flash's batch instead/);
    expect(near.model).toBe('gemini-2-flash');
    expect(near.attempts[0]?.mode).toBeUndefined();
  });
});
