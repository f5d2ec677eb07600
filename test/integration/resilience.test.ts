/** Rate limits and durable waits, on the real dev server with the simulator's fault injection. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { workflowIdFor } from '../../src/client/client.js';
import { startTestStack, type TestStack, useTestStack } from '../helpers/stack.js';
import { LlmOutcome, traceQuery } from '../../src/workflows/request/contract.js';

let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

const stack = useTestStack({
  config: {
    retry: {
      maximumAttempts: 3,
      initialIntervalMs: 100,
      backoffCoefficient: 2,
      maximumIntervalMs: 1_000,
      maxRetryAfterMs: 10_000,
      maxRateLimitWaitMs: 120_000,
    },
    modelRetry: { 'gpt-4o-mini': { maximumAttempts: 1 } },
  },
});

function fault(model: string, spec: Record<string, unknown>): void {
  stack.simulator.setFaults({ [model]: { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: [], ...spec } });
}

describe('rate limits', () => {
  it('Retry-After 30 s with a healthy fallback: the fallback answers at once', async () => {
    fault('gpt-4o-mini', { errorRates: { '429': 1 }, retryAfterSeconds: 30 });
    const res = await stack.client.ask({ requestId: rid('rl-fallback'), prompt: 'Name a colour.', model: 'gpt-4o-mini' });
    stack.simulator.setFaults({});
    expect(res.attempts[0]).toMatchObject({ model: 'gpt-4o-mini', outcome: 'rate_limited', status: 429 });
    expect(res.attempts[0]?.decision).toMatch(/^next: rate limited for 30000 ms > bound 10000 ms/);
    expect(res.model).not.toBe('gpt-4o-mini');
    expect(res.attempts.at(-1)?.outcome).toBe('ok');
    // No wait before the fallback: it ran as soon as the first model said "30 s".
    expect(res.attempts[1]?.waitBeforeMs).toBe(0);
  });

  it('Retry-After 30 s and no fallback: waits on a durable timer, survives a worker restart, then succeeds', async () => {
    fault('claude-3-5-haiku', { script: [429], retryAfterSeconds: 30 });
    const requestId = rid('rl-wait');
    const t0 = Date.now();
    const pending = stack.client.ask({ requestId, prompt: 'Name a river.', model: 'claude-3-5-haiku', noFallback: true });
    // Let it reach the wait, then replace the worker (a fresh cache: the workflow replays).
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await stack.client.temporal.workflow.getHandle(workflowIdFor(requestId)).describe()).status.name).toBe('RUNNING');
    await stack.restartWorker();
    const res = await pending;
    const elapsed = Date.now() - t0;
    stack.simulator.setFaults({});
    expect(res.attempts.map((a) => a.outcome)).toEqual(['rate_limited', 'ok']);
    expect(res.attempts[1]?.waitBeforeMs).toBeGreaterThanOrEqual(29_000);
    // The wait was not cut short by the restart...
    expect(elapsed).toBeGreaterThanOrEqual(29_000);
    // ...nor restarted: the replaying worker did not start a second timer (checked below), and in
    // workflow time the retry began one wait after the 429.
    expect(Date.parse(res.attempts[1]!.startedAt) - Date.parse(res.attempts[0]!.startedAt)).toBeLessThan(res.attempts[1]!.waitBeforeMs + 5_000);
    const history = await stack.client.temporal.workflow.getHandle(workflowIdFor(requestId)).fetchHistory();
    const timers = (history.events ?? []).filter((e) => e.timerStartedEventAttributes);
    expect(timers).toHaveLength(1);
  }, 90_000);

  it('fails with a clear reason when the earliest reset is beyond the wait bound', async () => {
    fault('gpt-4o', { errorRates: { '429': 1 }, retryAfterSeconds: 600 });
    const err = await stack.client.ask({ requestId: rid('rl-long'), prompt: 'Name a mountain.', model: 'gpt-4o', noFallback: true }).catch((e: unknown) => e);
    stack.simulator.setFaults({});
    expect((err as Error).message).toMatch(/every candidate is rate-limited; the earliest reset is in \d+ ms > maxRateLimitWaitMs 120000/);
  });
});

async function waitForAttempts(workflowId: string, outcome: string): Promise<void> {
  const h = stack.client.temporal.workflow.getHandle(workflowId);
  for (let i = 0; i < 100; i++) {
    // The request's trace lists each attempt as soon as the workflow has recorded its outcome.
    const trace = await h.query(traceQuery).catch(() => undefined);
    if (trace?.attempts.some((a) => a.outcome === outcome)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${outcome} attempt in ${workflowId}`);
}

describe('fallback chains', () => {
  it('uses the per-model retry policy, then the per-request fallback order', async () => {
    fault('gpt-4o-mini', { errorRates: { '500': 1 } });
    const res = await stack.client.ask({ requestId: rid('chain'), prompt: 'Name a bird.', model: 'gpt-4o-mini', fallbacks: ['claude-3-5-haiku'] });
    stack.simulator.setFaults({});
    expect(res.attempts.map((a) => [a.model, a.outcome])).toEqual([
      ['gpt-4o-mini', 'transient'],
      ['claude-3-5-haiku', 'ok'],
    ]);
    expect(res.attempts[0]?.decision).toBe('next: transient; 1 attempts spent');
    expect(res.candidates[1]).toMatchObject({ model: 'claude-3-5-haiku', reason: 'configured fallback #1' });
    // The worker applied its per-model policy and sent the verdict; the routing decision in
    // history carries no worker configuration.
    const history = await stack.client.temporal.workflow.getHandle(res.workflowId).fetchHistory();
    const results = (history.events ?? [])
      .flatMap((e) => e.activityTaskCompletedEventAttributes?.result?.payloads ?? [])
      .map((p) => JSON.parse(Buffer.from(p.data ?? new Uint8Array()).toString('utf8')) as Record<string, unknown>);
    const first = results[0] as {
      routed?: { selection: Record<string, unknown> };
      outcome: { kind: string; verdict?: { decision: { action: string; why: string } } };
    };
    expect(first.routed && Object.keys(first.routed.selection).filter((k) => ['retry', 'retryByModel', 'callTimeoutMs'].includes(k))).toEqual([]);
    expect(first.outcome).toMatchObject({ kind: 'failed', verdict: { decision: { action: 'next', why: 'transient; 1 attempts spent' } } });
  });
});

describe('latency SLO hedging', () => {
  it('starts the next tier when the first call hangs; the hedge answers, the hung call is cancelled', async () => {
    fault('gemini-2-flash', { script: ['hang'] });
    const scope = rid('hedge-scope');
    const res = await stack.client.ask({
      requestId: rid('hedge'),
      prompt: 'Explain why the sky is blue in two sentences.',
      model: 'gemini-2-flash',
      hedgeAfterMs: 500,
      budgetScope: scope,
    });
    stack.simulator.setFaults({});
    expect(res.model).not.toBe('gemini-2-flash');
    expect(res.tier).toBe('premium');
    const first = res.attempts.find((a) => a.model === 'gemini-2-flash');
    expect(first).toMatchObject({ outcome: 'hedged_out', costNanos: 0 });
    expect(first?.decision).toMatch(/^cancelled: .* answered first/);
    expect(res.escalations[0]).toMatchObject({ from: 'gemini-2-flash', to: res.model, reason: 'latency: no answer within 500 ms' });
    // The hedge started one hedge delay after the first call, not after its 10 s timeout.
    const hedge = res.attempts.find((a) => a.model === res.model)!;
    expect(Date.parse(hedge.startedAt) - Date.parse(first!.startedAt)).toBeGreaterThanOrEqual(500);
    expect(Date.parse(hedge.startedAt) - Date.parse(first!.startedAt)).toBeLessThan(10_000);
    const st = await stack.client.budgetStatus(scope);
    expect(st.spentNanos).toBe(res.costNanos);
    expect(st.reservedNanos).toBe(0);
    // The hung call was aborted (heartbeat -> cancellation -> SDK abort): the simulator holds no open hang.
    for (let i = 0; i < 50 && stack.simulator.hangingCount() > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(stack.simulator.hangingCount()).toBe(0);
  });

  it('does not hedge when the first call answers in time', async () => {
    const res = await stack.client.ask({ requestId: rid('nohedge'), prompt: 'Name a fruit.', model: 'gemini-2-flash', hedgeAfterMs: 5_000 });
    expect(res.attempts.map((a) => [a.model, a.outcome])).toEqual([['gemini-2-flash', 'ok']]);
    expect(res.escalations).toEqual([]);
  });
});

describe('operator signals', () => {
  it('escalate cuts a durable wait short and re-routes to the named model', async () => {
    fault('gpt-4o-mini', { errorRates: { '429': 1 }, retryAfterSeconds: 60 });
    const requestId = rid('esc-model');
    const pending = stack.client.ask({ requestId, prompt: 'Name a lake.', model: 'gpt-4o-mini', noFallback: true });
    await waitForAttempts(workflowIdFor(requestId), 'rate_limited');
    expect(await stack.client.escalate(workflowIdFor(requestId), { model: 'claude-3-5-sonnet', reason: 'customer waiting' })).toEqual({
      action: 'signalled',
      workflowId: workflowIdFor(requestId),
    });
    const res = await pending;
    stack.simulator.setFaults({});
    // The 60 s wait was cut short: in workflow time the escalation came well before it would end.
    expect(Date.parse(res.attempts[1]!.startedAt) - Date.parse(res.attempts[0]!.startedAt)).toBeLessThan(60_000);
    expect(res.model).toBe('claude-3-5-sonnet');
    expect(res.attempts.map((a) => a.outcome)).toEqual(['rate_limited', 'escalated', 'ok']);
    expect(res.attempts[1]).toMatchObject({ decision: 'escalate to claude-3-5-sonnet', message: 'customer waiting' });
  });

  it('escalate of a finished request re-runs it one tier up', async () => {
    const first = await stack.client.ask({
      requestId: rid('esc-done'),
      prompt: 'Classify this ticket as billing or technical: "charged twice"',
      category: 'batch',
    });
    expect(first.tier).toBe('economy');
    const r = await stack.client.escalate(first.workflowId);
    expect(r.action).toBe('restarted');
    expect(r.workflowId).toBe(`${first.workflowId}-esc1`);
    const again = await stack.client.result(r.workflowId);
    expect(again.tier).toBe('standard');
    expect(again.category).toBe('batch');
  });

  it('cancel ends a waiting request as cancelled, releasing its reservation, charging nothing', async () => {
    fault('gpt-4o-mini', { errorRates: { '429': 1 }, retryAfterSeconds: 60 });
    const scope = rid('cancel-scope');
    const requestId = rid('cancel');
    const pending = stack.client.ask({ requestId, prompt: 'Name a sea.', model: 'gpt-4o-mini', noFallback: true, budgetScope: scope });
    await waitForAttempts(workflowIdFor(requestId), 'rate_limited');
    await stack.client.cancel(workflowIdFor(requestId));
    const err = await pending.catch((e: unknown) => e);
    stack.simulator.setFaults({});
    expect((err as Error).message).toMatch(/cancel/i);
    const desc = await stack.client.temporal.workflow.getHandle(workflowIdFor(requestId)).describe();
    expect(desc.status.name).toBe('CANCELLED');
    expect(desc.typedSearchAttributes.get(LlmOutcome)).toBe('cancelled');
    const st = await stack.client.budgetStatus(scope);
    expect(st.spentNanos).toBe(0);
    expect(st.reservedNanos).toBe(0);
    expect(err).not.toBeInstanceOf(WorkflowFailedError);
  });
});

describe('provider health', () => {
  let h: TestStack;
  beforeAll(async () => {
    h = await startTestStack({
      config: {
        health: { failureThreshold: 3, cooldownMs: 3_000, enabled: true },
        retry: {
          maximumAttempts: 1,
          initialIntervalMs: 100,
          backoffCoefficient: 2,
          maximumIntervalMs: 1_000,
          maxRetryAfterMs: 10_000,
          maxRateLimitWaitMs: 60_000,
        },
      },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('consecutive failures open a circuit; the router skips it; after the cooldown a success closes it', async () => {
    h.simulator.setFaults({ 'gemini-2-flash': { errorRates: { '500': 1 }, hangRate: 0, malformedRate: 0, dropRate: 0, script: [] } });
    const prompt = 'Explain why the sky is blue to a child.';
    for (let i = 0; i < 3; i++) {
      const r = await h.client.ask({ requestId: rid(`h${i}`), prompt, category: 'standard' });
      expect(r.attempts[0]?.model).toBe('gemini-2-flash');
    }
    let health: Awaited<ReturnType<typeof h.client.health>> = [];
    for (let i = 0; i < 50; i++) {
      health = await h.client.health();
      if (health.find((m) => m.model === 'gemini-2-flash')?.state === 'open') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(health.find((m) => m.model === 'gemini-2-flash')).toMatchObject({ state: 'open', consecutiveFailures: 3, lastError: 'transient', timesOpened: 1 });
    await new Promise((r) => setTimeout(r, 1_100)); // the router's cached view refreshes every second
    const skipped = await h.client.ask({ requestId: rid('h-skip'), prompt, category: 'standard' });
    expect(skipped.attempts.map((a) => a.model)).not.toContain('gemini-2-flash');
    expect(skipped.attempts).toHaveLength(1);
    h.simulator.setFaults({});
    await new Promise((r) => setTimeout(r, 3_200));
    const trial = await h.client.ask({ requestId: rid('h-trial'), prompt, category: 'standard' });
    expect(trial.model).toBe('gemini-2-flash');
    for (let i = 0; i < 50; i++) {
      health = await h.client.health();
      if (health.find((m) => m.model === 'gemini-2-flash')?.state === 'closed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(health.find((m) => m.model === 'gemini-2-flash')?.state).toBe('closed');
  });
});
