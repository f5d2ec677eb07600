/**
 * The error table of docs/concepts.md, row by row, for every wire format: a pinned model answers with the
 * row's failure once (simulator script), and the workflow must react as the table says.
 */
import { describe, expect, it } from 'vitest';
import { RequestFailedError } from '../../src/client/client.js';
import type { RequestResult } from '../../src/workflows/request/contract.js';
import { useTestStack } from '../helpers/stack.js';

let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

const stack = useTestStack({ config: { health: { failureThreshold: 100, cooldownMs: 1_000, enabled: true } } });

const FORMATS: Array<[string, string]> = [
  ['openai', 'gpt-4o-mini'],
  ['anthropic', 'claude-3-5-haiku'],
  ['gemini', 'gemini-2-flash'],
  ['mistral', 'mistral-large'],
  ['openai-compatible (self-hosted)', 'llama-3-70b'],
];

type Row = [label: string, outcome: string | number, check: (r: RequestResult | RequestFailedError, model: string) => void];

const sameModelRetried =
  (kind: string) =>
  (r: RequestResult | RequestFailedError, model: string): void => {
    expect(r).not.toBeInstanceOf(Error);
    const res = r as RequestResult;
    expect(res.attempts.map((a) => [a.model, a.outcome])).toEqual([
      [model, kind],
      [model, 'ok'],
    ]);
    expect(res.attempts[1]!.waitBeforeMs).toBeGreaterThan(0);
  };

const ROWS: Row[] = [
  [
    '429 -> wait Retry-After, retry',
    429,
    (r, model) => {
      sameModelRetried('rate_limited')(r, model);
      // Gemini's SDK hides response headers: it backs off instead of reading Retry-After.
      if (model !== 'gemini-2-flash') expect((r as RequestResult).attempts[1]!.waitBeforeMs).toBeGreaterThanOrEqual(1000);
    },
  ],
  ['500 -> backoff, retry', 500, sameModelRetried('transient')],
  ['503 -> backoff, retry', 503, sameModelRetried('transient')],
  ['dropped connection -> backoff, retry', 'drop', sameModelRetried('transient')],
  ['malformed body -> backoff, retry', 'malformed', sameModelRetried('transient')],
  [
    'context too long -> a model with a larger window',
    'context',
    (r, model) => {
      const window = (m: string): number => stack.catalog.require(m).contextWindow;
      if (window(model) >= Math.max(...stack.catalog.models.map((m) => m.contextWindow))) {
        // Nothing has a larger window (gemini-2-flash, 1M): the request fails, saying why.
        expect(r).toBeInstanceOf(RequestFailedError);
        expect((r as RequestFailedError).details?.attempts[0]).toMatchObject({ model, outcome: 'context_too_long' });
        expect((r as RequestFailedError).message).toMatch(/context too long/);
        return;
      }
      const res = r as RequestResult;
      expect(res.attempts[0]).toMatchObject({ model, outcome: 'context_too_long' });
      expect(window(res.model)).toBeGreaterThan(window(model));
    },
  ],
  [
    '400 -> fails at once, nothing charged',
    400,
    (r) => {
      expect(r).toBeInstanceOf(RequestFailedError);
      const f = r as RequestFailedError;
      expect(f.failureType).toBe('NonRetryableProviderError');
      expect(f.details?.attempts).toHaveLength(1);
      expect(f.details?.costNanos).toBe(0);
    },
  ],
  [
    '401 -> another provider',
    401,
    (r, model) => {
      const res = r as RequestResult;
      expect(res.attempts[0]).toMatchObject({ model, outcome: 'fatal', status: 401 });
      expect(res.provider).not.toBe(stack.catalog.require(model).provider);
    },
  ],
  [
    'content-policy refusal -> another provider',
    'refusal',
    (r, model) => {
      const res = r as RequestResult;
      expect(res.attempts[0]).toMatchObject({ model, outcome: 'fatal', status: 400 });
      expect(res.provider).not.toBe(stack.catalog.require(model).provider);
    },
  ],
];

describe.each(FORMATS)('%s wire format', (_format, model) => {
  it.each(ROWS)('%s', async (_label, outcome, check) => {
    stack.simulator.setFaults({ [model]: { errorRates: {}, retryAfterSeconds: 1, hangRate: 0, malformedRate: 0, dropRate: 0, script: [outcome] } as never });
    const r = await stack.client
      .ask({ requestId: rid('row'), prompt: 'Give one word for happiness.', model, budgetScope: rid('rows') })
      .catch((e: unknown) => e as RequestFailedError);
    stack.simulator.setFaults({});
    check(r, model);
  });
});
