/**
 * Chaos: 500 requests while the simulator answers 20% 5xx, 10% 429 and hangs 5%. Every request
 * must end (answered, or failed with a reason), none may be left running, and the budget's spend
 * must equal the sum of the results' costs to the nanodollar.
 */
import { describe, expect, it } from 'vitest';
import { RequestFailedError } from '../../src/client/client.js';
import type { RequestResult } from '../../src/workflows/request/contract.js';
import { useTestStack } from '../helpers/stack.js';

const stack = useTestStack({
  config: {
    callTimeoutMs: 2_000,
    retry: { maximumAttempts: 3, initialIntervalMs: 200, backoffCoefficient: 2, maximumIntervalMs: 2_000, maxRetryAfterMs: 5_000, maxRateLimitWaitMs: 60_000 },
  },
});

const PROMPTS = [
  'Classify this ticket as billing or technical: "I was charged twice."',
  'Explain why the sky is blue in two sentences.',
  'Summarize: the meeting moved the launch by one week because of an App Store review.',
  'Write a Python function that reverses a string.',
  'Analyze the trade-offs of caching at the edge versus at the origin.',
];

describe('chaos', () => {
  it('500 requests under 20% 5xx, 10% 429, 5% hangs: all end, none left running, spend == results', async () => {
    stack.simulator.setFaults({
      '*': {
        errorRates: { '500': 0.1, '502': 0.05, '503': 0.05, '429': 0.1 },
        retryAfterSeconds: 1,
        hangRate: 0.05,
        malformedRate: 0,
        dropRate: 0,
        script: [],
      },
    });
    const scope = `chaos-${Date.now()}`;
    const t0 = Date.now();
    const total = 500;
    let next = 0;
    const ok: RequestResult[] = [];
    const failed: RequestFailedError[] = [];
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        while (next < total) {
          const i = next++;
          try {
            ok.push(await stack.client.ask({ requestId: `${scope}-${i}`, prompt: PROMPTS[i % PROMPTS.length]!, budgetScope: scope, category: 'batch' }));
          } catch (e) {
            expect(e).toBeInstanceOf(RequestFailedError);
            failed.push(e as RequestFailedError);
          }
        }
      }),
    );
    const wallMs = Date.now() - t0;
    stack.simulator.setFaults({});
    expect(ok.length + failed.length).toBe(total);
    const running = await stack.client.temporal.workflow.count(
      `TaskQueue = "${stack.config.taskQueue}" AND ExecutionStatus = "Running" AND WorkflowType = "llmRequest"`,
    );
    expect(running.count).toBe(0);
    for (const f of failed) expect(f.details?.reason.length ?? 0).toBeGreaterThan(0);
    const st = await stack.client.budgetStatus(scope);
    const resultsCost = ok.reduce((s, r) => s + r.costNanos, 0) + failed.reduce((s, f) => s + (f.details?.costNanos ?? 0), 0);
    expect(st.spentNanos).toBe(resultsCost);
    expect(st.reservedNanos).toBe(0);
    const byReason: Record<string, number> = {};
    for (const f of failed) byReason[f.failureType ?? 'unknown'] = (byReason[f.failureType ?? 'unknown'] ?? 0) + 1;
    const attempts = [...ok.map((r) => r.attempts.length), ...failed.map((f) => f.details?.attempts.length ?? 0)];
    const outcomes: Record<string, number> = {};
    for (const a of [...ok.flatMap((r) => r.attempts), ...failed.flatMap((f) => f.details?.attempts ?? [])])
      outcomes[a.outcome] = (outcomes[a.outcome] ?? 0) + 1;
    // Figures for the record (BENCHMARKS.md / issue note).
    console.log(
      JSON.stringify({
        chaos: {
          requests: total,
          completed: ok.length,
          failed: failed.length,
          failedByReason: byReason,
          attemptsPerRequest: attempts.reduce((a, b) => a + b, 0) / total,
          maxAttempts: Math.max(...attempts),
          attemptOutcomes: outcomes,
          wallMs,
          spentNanos: st.spentNanos,
        },
      }),
    );
    expect(ok.length).toBeGreaterThan(total * 0.9);
  }, 600_000);
});
