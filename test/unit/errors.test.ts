import { describe, expect, it } from 'vitest';
import { kindForStatus, parseDuration, retryAfterMs } from '../../src/providers/errors.js';
import { backoffMs, decideAfterFailure, type RetryPolicy } from '../../src/routing/retryDecision.js';
import { drawOutcome, faultSpecSchema, seededRandom } from '../../src/simulator/faults.js';

describe('error taxonomy', () => {
  it.each([
    [429, '', 'rate_limited'],
    [529, '', 'rate_limited'],
    [500, '', 'transient'],
    [503, '', 'transient'],
    [408, '', 'transient'],
    [400, "This model's maximum context length is 8192 tokens", 'context_too_long'],
    [400, 'prompt is too long: 9000 tokens > 8192 maximum', 'context_too_long'],
    [400, 'invalid temperature', 'fatal'],
    [401, '', 'fatal'],
    [403, '', 'fatal'],
  ] as const)('%i %s -> %s', (status, msg, kind) => {
    expect(kindForStatus(status, msg)).toBe(kind);
  });

  it('reads Retry-After in seconds, as an HTTP date, in ms, and the providers reset headers', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': '30' }), now)).toBe(30_000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:45 GMT' }), now)).toBe(45_000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '1500' }), now)).toBe(1500);
    expect(retryAfterMs(new Headers({ 'x-ratelimit-reset-requests': '6m0s', 'x-ratelimit-reset-tokens': '250ms' }), now)).toBe(360_000);
    expect(retryAfterMs(new Headers({ 'anthropic-ratelimit-requests-reset': '2026-01-01T00:00:20Z' }), now)).toBe(20_000);
    expect(retryAfterMs({ 'Retry-After': '2' }, now)).toBe(2000);
    expect(retryAfterMs(new Headers({}), now)).toBeUndefined();
    expect(parseDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseDuration('soon')).toBeUndefined();
  });
});

describe('retry decisions', () => {
  const policy: RetryPolicy = {
    maximumAttempts: 3,
    initialIntervalMs: 500,
    backoffCoefficient: 2,
    maximumIntervalMs: 3000,
    maxRetryAfterMs: 60_000,
    maxRateLimitWaitMs: 600_000,
  };
  it('backs off exponentially up to the maximum', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffMs(policy, a))).toEqual([500, 1000, 2000, 3000, 3000]);
  });
  it('waits Retry-After when within the bound, else moves on', () => {
    expect(decideAfterFailure({ kind: 'rate_limited', retryAfterMs: 30_000, attempt: 1, message: '' }, policy)).toMatchObject({
      action: 'retry',
      delayMs: 30_000,
    });
    expect(decideAfterFailure({ kind: 'rate_limited', retryAfterMs: 90_000, attempt: 1, message: '' }, policy)).toMatchObject({ action: 'next' });
  });
  it('retries transient errors until attempts are spent, then moves on', () => {
    expect(decideAfterFailure({ kind: 'transient', attempt: 2, message: '' }, policy)).toMatchObject({ action: 'retry', delayMs: 1000 });
    expect(decideAfterFailure({ kind: 'timeout', attempt: 3, message: '' }, policy)).toMatchObject({ action: 'next' });
  });
  it('skips to a larger model on context-too-long; fails a bad request; tries another provider on auth or policy', () => {
    expect(decideAfterFailure({ kind: 'context_too_long', attempt: 1, message: '' }, policy)).toMatchObject({ action: 'next', needLargerContext: true });
    expect(decideAfterFailure({ kind: 'fatal', status: 400, attempt: 1, message: 'bad field' }, policy)).toMatchObject({ action: 'fail' });
    expect(decideAfterFailure({ kind: 'fatal', status: 401, attempt: 1, message: '' }, policy)).toMatchObject({ action: 'next', otherProvider: true });
    expect(decideAfterFailure({ kind: 'fatal', status: 400, attempt: 1, message: 'flagged by the content policy' }, policy)).toMatchObject({
      action: 'next',
      otherProvider: true,
    });
  });
});

describe('simulator faults', () => {
  it('draws outcomes at the configured rates, reproducibly from the seed', () => {
    const spec = faultSpecSchema.parse({ errorRates: { '500': 0.2, '429': 0.1 }, hangRate: 0.05 });
    const draw = (seed: number): string[] => {
      const r = seededRandom(seed);
      return Array.from({ length: 20_000 }, () => String(drawOutcome(spec, r)));
    };
    const a = draw(7);
    expect(draw(7)).toEqual(a);
    const share = (o: string): number => a.filter((x) => x === o).length / a.length;
    expect(share('500')).toBeCloseTo(0.2, 1);
    expect(share('429')).toBeCloseTo(0.1, 1);
    expect(share('hang')).toBeCloseTo(0.05, 1);
    expect(share('ok')).toBeCloseTo(0.65, 1);
  });
  it('rejects a bad faults spec naming the field', () => {
    const r = faultSpecSchema.safeParse({ errorRates: { abc: 2 } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/HTTP status codes/);
  });
});
