/**
 * Property-based tests (fast-check): whatever a user sends (request input, batch lines, config and
 * catalog files, budget settings and commands), the answer is either accepted or a ValidationError
 * or BudgetError whose every line names a field and says what to do; nothing else is thrown, and
 * the budget book's money stays integer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBatchLine } from '../../src/batch/batchInput.js';
import { BudgetError, type BudgetSettings, newBook, reserve, settle, StaleReserveError, status, validateSettings } from '../../src/budget/book.js';
import { catalogFromFileContent } from '../../src/catalog/catalog.js';
import { fileConfigSchema } from '../../src/config/config.js';
import { describeIssues, parseOrThrow, ValidationError } from '../../src/util/validation.js';
import { requestInputSchema } from '../../src/contracts/requestInput.js';

const PROTO = Object.getOwnPropertyNames(Object.prototype);
/** Strings users type, plus the ones that break naive code. */
const nasty = fc.oneof(fc.string(), fc.constantFrom(...PROTO, '', ' ', '\n-', 'a'.repeat(300), 'critical', 'standard', 'batch', '💥', '../x', 'NaN'));
const anyValue = fc.oneof(
  nasty,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(nasty, { maxLength: 3 }),
  fc.dictionary(nasty, nasty, { maxKeys: 3 }),
);
const REQUEST_FIELDS = [
  'requestId',
  'prompt',
  'system',
  'context',
  'category',
  'maxLatencyMs',
  'hedgeAfterMs',
  'minQuality',
  'provider',
  'model',
  'maxOutputTokens',
  'requiredCapabilities',
  'costCapNanos',
  'temperature',
  'noFallback',
  'fallbacks',
  'quality',
  'minTier',
  'budgetScope',
  'maxBudgetWaitMs',
];
const requestLike = fc.dictionary(fc.oneof(fc.constantFrom(...REQUEST_FIELDS), nasty), anyValue, { maxKeys: 6 }).map((o) => ({ prompt: 'hi', ...o }));

/** Every message line names a field (path) before a colon and says something after it. */
function namesFields(lines: readonly string[]): boolean {
  return lines.length > 0 && lines.every((l) => /^(?:[^\s:"]|"(?:[^"\\]|\\.)*")+: \S/.test(l));
}

describe('fuzzing the boundaries', () => {
  it('request input: accepted, or every issue names its field; reserved names never pass', () => {
    fc.assert(
      fc.property(requestLike, (input) => {
        const r = requestInputSchema.safeParse(input);
        if (r.success) {
          expect(PROTO).not.toContain(r.data.category);
          expect(PROTO).not.toContain(r.data.budgetScope);
          return;
        }
        expect(namesFields(describeIssues(r.error))).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('batch lines: blank, a request, or a bad line that says its number, field and fix; never a throw', () => {
    const line = fc.oneof(
      fc.string(),
      requestLike.map((o) => JSON.stringify({ id: 'x', ...o })),
      fc.dictionary(nasty, anyValue, { maxKeys: 4 }).map((o) => JSON.stringify(o)),
    );
    fc.assert(
      fc.property(line, fc.integer({ min: 1, max: 1e6 }), (text, n) => {
        const p = parseBatchLine(text, n);
        if (p === undefined) expect(text.trim()).toBe('');
        else if (!p.ok) expect(p.bad.error).toMatch(new RegExp(`^line ${n}: [^:]+: \\S|^line ${n}: (not valid JSON|must be a JSON object)`));
      }),
      { numRuns: 2_000 },
    );
  });

  it('config files: parsed, or a ValidationError naming each field', () => {
    const budget = fc.dictionary(
      fc.constantFrom(
        'amountUsd',
        'timeZone',
        'allocations',
        'policies',
        'limits',
        'webhookUrl',
        'periodicity',
        'periodMs',
        'reservationTtlMs',
        'reservationMargin',
        'bogus',
      ),
      anyValue,
      { maxKeys: 4 },
    );
    const file = fc.record({ budget, callTimeoutMs: anyValue, retry: fc.dictionary(nasty, anyValue, { maxKeys: 2 }) }, { requiredKeys: [] });
    fc.assert(
      fc.property(file, (content) => {
        try {
          parseOrThrow(fileConfigSchema, content, 'config.yaml');
        } catch (e) {
          expect(e).toBeInstanceOf(ValidationError);
          expect(namesFields((e as ValidationError).fields)).toBe(true);
        }
      }),
      { numRuns: 1_000 },
    );
  });

  it('catalog files: built, or a ValidationError naming each field', () => {
    const model = fc.dictionary(
      fc.constantFrom(
        'name',
        'provider',
        'tier',
        'inputUsdPerMTok',
        'outputUsdPerMTok',
        'contextWindow',
        'maxOutputTokens',
        'quality',
        'capabilities',
        'typicalLatencyMs',
        'bogus',
      ),
      anyValue,
      { maxKeys: 6 },
    );
    fc.assert(
      fc.property(fc.oneof(fc.array(model, { maxLength: 3 }), fc.record({ models: fc.array(model, { maxLength: 3 }) }), anyValue), (content) => {
        try {
          catalogFromFileContent(content, 'catalog.yaml');
        } catch (e) {
          expect(e).toBeInstanceOf(ValidationError);
          expect(namesFields((e as ValidationError).fields)).toBe(true);
        }
      }),
      { numRuns: 1_000 },
    );
  });

  it('budget settings and commands: refused with field names, or applied with integer money that never exceeds a hard limit', () => {
    const base: BudgetSettings = {
      totalNanos: 1_000_000,
      allocations: { critical: 0.4, standard: 0.35, batch: 0.25 },
      limits: {},
      policies: {},
      periodicity: 'monthly',
      timeZone: 'UTC',
      alertThresholds: [0.5],
      maxWaitMs: 1,
      reservationTtlMs: 10_000,
    };
    const change = fc.record(
      {
        totalNanos: fc.oneof(fc.integer({ min: -5, max: 2e6 }), fc.double(), fc.constant(2 ** 60)),
        timeZone: fc.oneof(fc.constant('UTC'), nasty),
        webhookUrl: fc.oneof(fc.constant(undefined), nasty, fc.constant('https://x.example/h')),
      },
      { requiredKeys: [] },
    );
    const command = fc.record({
      op: fc.constantFrom('reserve', 'settle'),
      id: fc.oneof(nasty, fc.constantFrom('a', 'b', 'c')),
      category: fc.oneof(nasty, fc.constantFrom('critical', 'standard', 'batch')),
      amount: fc.oneof(fc.integer({ min: -10, max: 500_000 }), fc.double(), fc.constant(Number.MAX_SAFE_INTEGER)),
    });
    fc.assert(
      fc.property(change, fc.array(command, { maxLength: 30 }), (c, cmds) => {
        const settings = { ...base, ...c };
        const errs = validateSettings(settings);
        if (errs.length > 0) {
          expect(namesFields(errs)).toBe(true);
          return;
        }
        const book = newBook('s', settings, { start: 0, end: 1e12 });
        for (const [i, cmd] of cmds.entries()) {
          try {
            if (cmd.op === 'reserve') reserve(book, { reservationId: cmd.id, category: cmd.category, amountNanos: cmd.amount, workflowId: 'w' }, i);
            else if (Object.prototype.hasOwnProperty.call(book.reservations, cmd.id))
              settle(book, cmd.id, cmd.category, Math.min(cmd.amount, book.reservations[cmd.id]?.amountNanos ?? 0), i);
          } catch (e) {
            expect(e instanceof BudgetError || e instanceof StaleReserveError).toBe(true);
          }
        }
        const st = status(book);
        for (const cat of Object.values(st.categories)) {
          expect(Number.isSafeInteger(cat.spentNanos)).toBe(true);
          expect(Number.isSafeInteger(cat.reservedNanos)).toBe(true);
        }
        // Hard limits (all categories here): what is spent and held never exceeds the allocation.
        for (const name of ['critical', 'standard', 'batch']) {
          const cat = st.categories[name];
          if (cat) expect(cat.spentNanos + cat.reservedNanos).toBeLessThanOrEqual(cat.allocatedNanos);
        }
      }),
      { numRuns: 1_000 },
    );
  });
});
