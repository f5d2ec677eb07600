/** The request workflow end to end on the real dev server, the simulator over HTTP, real SDKs. */
import { describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { RequestFailedError, workflowIdFor } from '../../src/client/client.js';
import { ValidationError } from '../../src/util/validation.js';
import { type RequestResult, LlmCategory, LlmComplexity, LlmCostNanos, LlmModel, LlmOutcome, LlmTier } from '../../src/workflows/request/contract.js';
import { useTestStack } from '../helpers/stack.js';

let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

const stack = useTestStack();

function fault(model: string, spec: Record<string, unknown>): void {
  stack.simulator.setFaults({ [model]: { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: [], ...spec } });
}

describe('one request per tier', () => {
  const prompts: Array<[string, string]> = [
    ['economy', 'Classify the sentiment of this review as positive or negative: "The battery died after two days."'],
    ['standard', 'Explain why the sky appears blue during the day and red at sunset, for a curious teenager.'],
    [
      'premium',
      'Analyze the trade-offs of event sourcing versus a relational design for a payments ledger, evaluate consistency and scalability, and design a migration strategy. Justify each step.',
    ],
  ];
  it.each(prompts)('routes a %s task to that tier, calls it, charges it and tags the run', async (tier, prompt) => {
    const res = await stack.client.ask({ requestId: rid(tier), prompt, category: 'batch' });
    expect(res.tier).toBe(tier);
    expect(res.classification.preferredTier).toBe(tier);
    expect(res.text.length).toBeGreaterThan(0);
    expect(res.attempts).toHaveLength(1);
    expect(res.attempts[0]?.outcome).toBe('ok');
    expect(res.costNanos).toBeGreaterThan(0);
    expect(res.costNanos).toBe(res.attempts[0]?.costNanos);
    expect(res.usage.outputTokens).toBeGreaterThan(0);
    const entry = stack.ledger.entries().find((e) => e.workflowId === res.workflowId);
    expect(entry?.costNanos).toBe(res.costNanos);
    const desc = await stack.client.temporal.workflow.getHandle(res.workflowId).describe();
    expect(desc.typedSearchAttributes.get(LlmTier)).toBe(tier);
    expect(desc.typedSearchAttributes.get(LlmModel)).toBe(res.model);
    expect(desc.typedSearchAttributes.get(LlmCategory)).toBe('batch');
    expect(desc.typedSearchAttributes.get(LlmOutcome)).toBe('completed');
    expect(desc.typedSearchAttributes.get(LlmCostNanos)).toBe(res.costNanos);
    expect(desc.typedSearchAttributes.get(LlmComplexity)).toBeCloseTo(res.classification.complexity, 6);
    // The worker's provider key never reaches the history.
    const raw = await stack.client.temporal.workflow.getHandle(res.workflowId).fetchHistory();
    // Payload data is base64 in the fetched history: decode it so the check reads the real content.
    const decode = (k: string, v: unknown): unknown =>
      v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : k === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v;
    const history = JSON.stringify(raw, decode);
    expect(history).toContain(res.model);
    expect(history).not.toContain('sk-simulator');
  });
});

describe('provider failures', () => {
  it('retries a 500 on the same model, then succeeds, charging only the successful attempt', async () => {
    fault('gpt-4o-mini', { script: [500] });
    const res = await stack.client.ask({ requestId: rid('500'), prompt: 'Write a haiku about retries.', model: 'gpt-4o-mini' });
    stack.simulator.setFaults({});
    expect(res.attempts.map((a) => [a.model, a.outcome])).toEqual([
      ['gpt-4o-mini', 'transient'],
      ['gpt-4o-mini', 'ok'],
    ]);
    expect(res.attempts[0]?.status).toBe(500);
    expect(res.attempts[0]?.costNanos).toBe(0);
    expect(res.attempts[1]?.waitBeforeMs).toBeGreaterThan(0);
    expect(stack.ledger.entries().filter((e) => e.workflowId === res.workflowId)).toHaveLength(1);
  });

  it('waits at least Retry-After before the next attempt after a 429', async () => {
    fault('claude-3-5-haiku', { script: [429], retryAfterSeconds: 2 });
    const res = await stack.client.ask({ requestId: rid('429'), prompt: 'Name three rivers.', model: 'claude-3-5-haiku' });
    stack.simulator.setFaults({});
    expect(res.attempts.map((a) => a.outcome)).toEqual(['rate_limited', 'ok']);
    const [first, second] = res.attempts as [RequestResult['attempts'][number], RequestResult['attempts'][number]];
    expect(second.waitBeforeMs).toBeGreaterThanOrEqual(2000);
    const gap = Date.parse(second.startedAt) - Date.parse(first.startedAt);
    expect(gap).toBeGreaterThanOrEqual(2000);
    // The wait is a durable timer in the history, not a sleep inside an activity.
    const history = await stack.client.temporal.workflow.getHandle(res.workflowId).fetchHistory();
    const timers = (history.events ?? []).filter((e) => e.timerStartedEventAttributes);
    expect(timers).toHaveLength(1);
    expect(Number(timers[0]?.timerStartedEventAttributes?.startToFireTimeout?.seconds)).toBeGreaterThanOrEqual(2);
  });

  it('fails at once on a 400, non-retryable, with nothing charged', async () => {
    fault('gpt-4o-mini', { script: [400] });
    const requestId = rid('400');
    const err = await stack.client.ask({ requestId, prompt: 'Say hi.', model: 'gpt-4o-mini' }).catch((e: unknown) => e);
    stack.simulator.setFaults({});
    expect(err).toBeInstanceOf(RequestFailedError);
    const f = err as RequestFailedError;
    expect(f.failureType).toBe('NonRetryableProviderError');
    expect(f.details?.attempts).toHaveLength(1);
    expect(f.details?.attempts[0]?.status).toBe(400);
    expect(f.details?.costNanos).toBe(0);
    expect(stack.ledger.entries().filter((e) => e.workflowId === workflowIdFor(requestId))).toHaveLength(0);
    const desc = await stack.client.temporal.workflow.getHandle(workflowIdFor(requestId)).describe();
    expect(desc.status.name).toBe('FAILED');
    expect(desc.typedSearchAttributes.get(LlmOutcome)).toBe('failed');
  });

  it('falls back to the next candidate when a model keeps failing', async () => {
    fault('gpt-4o-mini', { errorRates: { '503': 1 } });
    const res = await stack.client.ask({ requestId: rid('fallback'), prompt: 'Write a limerick about a cat.', model: 'gpt-4o-mini' });
    stack.simulator.setFaults({});
    const models = res.attempts.map((a) => a.model);
    expect(models.slice(0, 3)).toEqual(['gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini']);
    expect(res.model).not.toBe('gpt-4o-mini');
    expect(res.attempts.at(-1)?.outcome).toBe('ok');
    expect(res.attempts[2]?.decision).toMatch(/^next/);
  });
});

describe('invalid input', () => {
  it('is rejected by the client before any workflow starts, naming the field', async () => {
    const requestId = rid('invalid');
    const err = await stack.client.ask({ requestId, prompt: '   ', maxLatencyMs: -5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fields.join('\n')).toMatch(/prompt: must not be empty/);
    expect((err as ValidationError).fields.join('\n')).toMatch(/maxLatencyMs: must be > 0/);
    await expect(stack.client.temporal.workflow.getHandle(workflowIdFor(requestId)).describe()).rejects.toThrow(/not found/i);
  });

  it('fails the workflow fast and non-retryably when it bypasses the client, with nothing charged', async () => {
    const workflowId = `llm-${rid('raw-invalid')}`;
    const handle = await stack.client.temporal.workflow.start('llmRequest', {
      taskQueue: stack.config.taskQueue,
      workflowId,
      args: [{ prompt: 'hello', minQuality: 7, provider: 'acme' }],
    });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const msg = String((err as WorkflowFailedError).cause?.message);
    expect(msg).toMatch(/minQuality: must be in \[0,1\]/);
    expect(msg).toMatch(/provider: must be one of/);
    expect((await handle.describe()).status.name).toBe('FAILED');
    expect(stack.ledger.entries().filter((e) => e.workflowId === workflowId)).toHaveLength(0);
  });

  it('names the constraint when no model is eligible', async () => {
    const err = await stack.client.ask({ requestId: rid('nomodel'), prompt: 'Hi there', maxLatencyMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestFailedError);
    expect((err as RequestFailedError).failureType).toBe('NoEligibleModel');
    expect((err as Error).message).toMatch(/maxLatencyMs/);
    expect((err as Error).message).toMatch(/raise maxLatencyMs to at least 200/);
  });
});

describe('ledger', () => {
  it('equals the sum of the results after a run of mixed successes and failures', async () => {
    stack.simulator.setFaults({ '*': { errorRates: { '500': 0.35, '400': 0.1 }, hangRate: 0, malformedRate: 0.05, dropRate: 0.05, script: [] } });
    const before = stack.ledger.totalNanos();
    const beforeCount = stack.ledger.entries().length;
    const prompts = Array.from(
      { length: 24 },
      (_, i) =>
        `Request ${i}: ${i % 3 === 0 ? 'classify this ticket as billing or technical' : i % 3 === 1 ? 'explain why caching helps latency' : 'analyze and design a sharding strategy for a chat service'}`,
    );
    const outcomes = await Promise.allSettled(
      prompts.map((prompt, i) => stack.client.ask({ requestId: rid(`mixed${i}`), prompt, ...(i % 2 === 0 ? { noFallback: true } : {}) })),
    );
    stack.simulator.setFaults({});
    const ok = outcomes.filter((o): o is PromiseFulfilledResult<RequestResult> => o.status === 'fulfilled').map((o) => o.value);
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as RequestFailedError);
    expect(ok.length).toBeGreaterThan(0);
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(f).toBeInstanceOf(RequestFailedError);
    const resultsSum = ok.reduce((s, r) => s + r.costNanos, 0) + failed.reduce((s, f) => s + (f.details?.costNanos ?? 0), 0);
    expect(stack.ledger.totalNanos() - before).toBe(resultsSum);
    expect(stack.ledger.entries().length - beforeCount).toBe(ok.length);
  });
});
