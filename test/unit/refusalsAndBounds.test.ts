/** Pure pieces of issue 9: decisions for every failure, own-property books, settings, ledger, classifier bounds. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newBook, reserve, settle, status, validateSettings, type BudgetSettings, expireReservations } from '../../src/budget/book.js';
import { loadConfig } from '../../src/config/config.js';
import { applyReport, claimTrial, type HealthState } from '../../src/health/circuits.js';
import { FileLedger, type LedgerEntry } from '../../src/ledger/fileLedger.js';
import { classify, patternWindow } from '../../src/routing/classifier.js';
import { decideAfterFailure, type FailureKind, type RetryPolicy } from '../../src/routing/retryDecision.js';
import { countTokens } from '../../src/routing/tokens.js';
import { utf8Bytes } from '../../src/util/bytes.js';
import { ValidationError } from '../../src/util/validation.js';
import { requestInputSchema } from '../../src/contracts/requestInput.js';

const policy: RetryPolicy = {
  maximumAttempts: 3,
  initialIntervalMs: 100,
  backoffCoefficient: 2,
  maximumIntervalMs: 1_000,
  maxRetryAfterMs: 10_000,
  maxRateLimitWaitMs: 60_000,
};

describe('every failure kind ends in a decision', () => {
  it('internal and unavailable move on; an unknown kind from another worker version does too', () => {
    expect(decideAfterFailure({ kind: 'internal', message: 'TypeError: x', attempt: 1 }, policy)).toMatchObject({
      action: 'next',
      why: 'worker error: TypeError: x',
    });
    expect(decideAfterFailure({ kind: 'unavailable', message: 'provider anthropic is not configured', attempt: 1 }, policy)).toMatchObject({
      action: 'next',
      otherProvider: true,
    });
    const d = decideAfterFailure({ kind: 'from-the-future' as FailureKind, message: 'm', attempt: 1 }, policy);
    expect(d.action).toBe('next');
  });

  it('a Retry-After on a 5xx above the bound moves to the next model; within it, it is honoured', () => {
    expect(decideAfterFailure({ kind: 'transient', status: 503, retryAfterMs: 31_536_000_000, message: 'm', attempt: 1 }, policy)).toMatchObject({
      action: 'next',
    });
    expect(decideAfterFailure({ kind: 'transient', status: 503, retryAfterMs: 2_000, message: 'm', attempt: 1 }, policy)).toEqual({
      action: 'retry',
      delayMs: 2_000,
      why: 'transient, backoff 2000 ms',
    });
  });
});

const settings: BudgetSettings = {
  totalNanos: 1_000_000,
  allocations: { critical: 0.4, standard: 0.35, batch: 0.25 },
  limits: {},
  policies: {},
  periodicity: 'monthly',
  timeZone: 'UTC',
  alertThresholds: [0.5],
  maxWaitMs: 1000,
  reservationTtlMs: 10_000,
};
const period = { start: 0, end: 1e12 };

describe('the book reads own properties only', () => {
  it('a category named after an Object.prototype member has no budget and cannot turn spend into a string', () => {
    const b = newBook('s', settings, period);
    for (const c of ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
      expect(() => reserve(b, { reservationId: c, category: c, amountNanos: 1, workflowId: 'w' }, 1)).toThrow(/has no budget/);
    }
    settle(b, 'x', 'constructor', 5, 1);
    settle(b, 'y', '__proto__', 3, 1);
    const st = status(b);
    expect(st.spentNanos).toBe(8);
    expect(Object.getPrototypeOf(b.spent)).toBe(Object.prototype);
    expect(validateSettings({ ...settings, allocations: { constructor: 1 } })).toEqual([
      expect.stringMatching(/allocations.constructor: .*not reserved names/),
    ]);
  });

  it('settlement is exactly once by sequence number, without remembering settled ids', () => {
    const b = newBook('s', settings, period);
    const g = reserve(b, { reservationId: 'a', category: 'standard', amountNanos: 100, workflowId: 'w' }, 1);
    expect(g.granted && g.seq).toBe(1);
    expect(settle(b, 'a', 'standard', 60, 2, 1)).toEqual({ settled: true, duplicate: false, costNanos: 60 });
    expect(b.recentSettled).toEqual({});
    expect(settle(b, 'a', 'standard', 60, 3, 1)).toEqual({ settled: false, duplicate: true, costNanos: 60 });
    expect(status(b).categories.standard?.spentNanos).toBe(60);
  });

  it('a late settlement of an expired reservation is charged once; an overshoot is counted', () => {
    const b = newBook('s', settings, period);
    reserve(b, { reservationId: 'a', category: 'standard', amountNanos: 100, workflowId: 'w' }, 1);
    expect(expireReservations(b, 20_000)).toBe(1);
    expect(settle(b, 'a', 'standard', 80, 20_001, 1).settled).toBe(true);
    expect(settle(b, 'a', 'standard', 80, 20_002, 1).duplicate).toBe(true);
    reserve(b, { reservationId: 'b', category: 'standard', amountNanos: 100, workflowId: 'w' }, 1);
    expect(settle(b, 'b', 'standard', 130, 2, 2)).toEqual({ settled: true, duplicate: false, costNanos: 130, overshootNanos: 30 });
    expect(status(b).counters).toMatchObject({ overshoots: 1, overshootNanos: 30 });
    expect(status(b).categories.standard?.spentNanos).toBe(210);
  });

  it('a reserve past its attempt deadline is refused and creates nothing', () => {
    const b = newBook('s', settings, period);
    expect(() => reserve(b, { reservationId: 'z', category: 'standard', amountNanos: 1, workflowId: 'w', notAfter: 10 }, 11)).toThrow(
      /after its activity attempt timed out/,
    );
    expect(status(b).openReservations).toBe(0);
  });
});

describe('settings the entity cannot run are refused where they are made', () => {
  it('validateSettings names each field', () => {
    const errs = validateSettings({ ...settings, timeZone: 'Mars/Base', totalNanos: 2 ** 60, webhookUrl: 'notaurl' });
    expect(errs.join('\n')).toMatch(/totalNanos: .*about \$9 million/);
    expect(errs.join('\n')).toMatch(/timeZone: "Mars\/Base" is not an IANA time zone/);
    expect(errs.join('\n')).toMatch(/webhookUrl: "notaurl" is not an http\(s\) URL/);
  });

  it('the config file: time zone, amounts past integer nanodollars, webhook, reservation TTL shorter than a call', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-cfg-'));
    const check = (cfg: object, pattern: RegExp): void => {
      const path = join(dir, `c${Math.random()}.json`);
      writeFileSync(path, JSON.stringify(cfg));
      let err: unknown;
      try {
        loadConfig({ SWITCHYARD_CONFIG: path });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(pattern);
    };
    check({ budget: { timeZone: 'Mars/Base' } }, /budget.timeZone: must be an IANA time zone/);
    check({ budget: { amountUsd: 100_000_000 } }, /budget.amountUsd: must be at most 9007199/);
    check({ budget: { webhookUrl: 'notaurl' } }, /budget.webhookUrl: must be an http\(s\) URL/);
    check({ budget: { allocations: { constructor: 1 } } }, /budget.allocations.constructor: category name is a reserved name/);
    check({ callTimeoutMs: 600_000, budget: { reservationTtlMs: 60_000 } }, /budget.reservationTtlMs: must be at least 1320000 ms/);
  });
});

describe('task queue names', () => {
  it("a request queue may not end with the entities' suffix (it would be another deployment's entities queue)", () => {
    expect(() => loadConfig({ SWITCHYARD_TASK_QUEUE: 'billing-entities' })).toThrow(/SWITCHYARD_TASK_QUEUE or --task-queue/);
    expect(loadConfig({ SWITCHYARD_TASK_QUEUE: 'billing' }).taskQueue).toBe('billing');
  });
});

describe('circuits: one trial when half-open', () => {
  it('the first claim after the cooldown is granted, the others wait for its outcome or its hold', () => {
    const state: HealthState = {};
    const s = { failureThreshold: 1, cooldownMs: 1_000 };
    applyReport(state, { model: 'm', ok: false, kind: 'transient', at: 0 }, s);
    expect(claimTrial(state, 'm', 500, 10_000)).toBe(false); // open
    expect(claimTrial(state, 'm', 1_500, 10_000)).toBe(true); // half-open: the trial
    expect(claimTrial(state, 'm', 1_600, 10_000)).toBe(false);
    expect(claimTrial(state, 'm', 12_000, 10_000)).toBe(true); // the hold ran out
    applyReport(state, { model: 'm', ok: true, at: 12_100 }, s);
    expect(claimTrial(state, 'm', 12_200, 10_000)).toBe(true); // closed
    expect(claimTrial(state, 'constructor', 1, 1)).toBe(true);
    applyReport(state, { model: 'toString', ok: false, at: 0 }, s);
    expect(Object.getOwnPropertyDescriptor(state, 'toString')?.value?.consecutiveFailures).toBe(1);
  });
});

describe('the ledger survives a torn line', () => {
  const entry = (key: string, costNanos: number): LedgerEntry => ({
    key,
    workflowId: 'w',
    attemptId: key,
    model: 'm',
    provider: 'p',
    tier: 't',
    category: 'c',
    inputTokens: 1,
    cachedInputTokens: 0,
    outputTokens: 1,
    costNanos,
    at: '2026-01-01T00:00:00Z',
  });
  it('a torn line in the middle and one at the end: the worker starts, skips them, and the next entry is its own line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-ledger-'));
    const path = join(dir, 'ledger.jsonl');
    writeFileSync(path, `${JSON.stringify(entry('a', 5))}\n{"key":"b","cos\n${JSON.stringify(entry('c', 7))}\n{"key":"d","costNa`);
    const skipped: string[] = [];
    const l = new FileLedger(path, (line) => skipped.push(line));
    expect(l.totalNanos()).toBe(12);
    expect(skipped).toHaveLength(1);
    expect(l.record(entry('e', 11))).toBe(true);
    expect(l.record(entry('e', 11))).toBe(false);
    expect(new FileLedger(path).entries().map((e) => e.key)).toEqual(['a', 'c', 'e']);
    expect(
      readFileSync(path, 'utf8')
        .split('\n')
        .filter((x) => x.startsWith('{"key":"d"')),
    ).toEqual(['{"key":"d","costNa']);
  });
});

describe('classification is linear in the prompt', () => {
  it('patterns read a bounded window of the instruction', () => {
    expect(patternWindow('x'.repeat(4_000_000)).length).toBeLessThanOrEqual(16_384 + 4_096 + 1);
  });

  it('the adversarial prompt ("\\n-" + spaces + "x") classifies, at 4 MB, with a token count', () => {
    for (const size of [40_000, 4_000_000]) {
      const c = classify({ prompt: `\n-${' '.repeat(size)}x` });
      expect(c.complexity).toBeGreaterThanOrEqual(0);
      expect(c.inputTokens).toBeGreaterThan(size / 64);
    }
  });

  it('long runs are counted piece by piece, never fewer tokens than whole; ordinary text is counted exactly', () => {
    const prose = 'The quick brown fox jumps over the lazy dog. '.repeat(200);
    expect(countTokens(prose)).toBe(2_001);
    expect(countTokens(' '.repeat(10_000))).toBeGreaterThanOrEqual(Math.ceil(10_000 / 64));
  });

  it('multi-part instructions are still recognised', () => {
    expect(classify({ prompt: 'Do these:\n1. plan\n2. build\n3. test' }).signals).toContain('+multi-part');
    expect(classify({ prompt: '1. one line only' }).signals).not.toContain('+multi-part');
  });
});

describe('request size', () => {
  it('prompt, context and system together are bounded in UTF-8 bytes', () => {
    expect(utf8Bytes('aé€😀')).toBe(1 + 2 + 3 + 4);
    const r = requestInputSchema.safeParse({ prompt: 'hi', context: '€'.repeat(600_000) });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['context']);
  });
});
