/** Rate limits and durable waits, on the real dev server with the simulator's fault injection. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflowIdFor } from '../../src/client/client.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

beforeAll(async () => {
  stack = await startTestStack({
    config: { retry: { maximumAttempts: 3, initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 1_000, maxRetryAfterMs: 10_000, maxRateLimitWaitMs: 120_000 } },
  });
});
afterAll(async () => {
  await stack?.stop();
});

function fault(model: string, spec: Record<string, unknown>): void {
  stack.simulator.setFaults({ [model]: { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: [], ...spec } });
}

describe('rate limits', () => {
  it('Retry-After 30 s with a healthy fallback: the fallback answers at once', async () => {
    fault('gpt-4o-mini', { errorRates: { '429': 1 }, retryAfterSeconds: 30 });
    const t0 = Date.now();
    const res = await stack.client.ask({ requestId: rid('rl-fallback'), prompt: 'Name a colour.', model: 'gpt-4o-mini' });
    stack.simulator.setFaults({});
    expect(res.attempts[0]).toMatchObject({ model: 'gpt-4o-mini', outcome: 'rate_limited', status: 429 });
    expect(res.attempts[0]?.decision).toMatch(/^next: rate limited for 30000 ms > bound 10000 ms/);
    expect(res.model).not.toBe('gpt-4o-mini');
    expect(res.attempts.at(-1)?.outcome).toBe('ok');
    expect(Date.now() - t0).toBeLessThan(10_000);
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
    // The restart neither reset the wait (it would end past ~33 s) nor cut it short.
    expect(elapsed).toBeGreaterThanOrEqual(29_000);
    expect(elapsed).toBeLessThan(45_000);
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
