import { describe, expect, it } from 'vitest';
import { allocate } from '../../src/budget/allocation.js';
import { type BudgetSettings, closePeriod, dueAlerts, expireReservations, newBook, release, reserve, settle, status } from '../../src/budget/book.js';
import { nextPeriod, periodContaining } from '../../src/budget/periods.js';

const iso = (ms: number): string => new Date(ms).toISOString();
const at = (s: string): number => Date.parse(s);

describe('periods', () => {
  it('monthly in UTC: calendar months, leap-year February', () => {
    const p = periodContaining(at('2028-02-15T12:00:00Z'), 'monthly', 'UTC');
    expect([iso(p.start), iso(p.end)]).toEqual(['2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z']);
    expect((p.end - p.start) / 86_400_000).toBe(29);
    const feb = periodContaining(at('2027-02-28T23:59:59Z'), 'monthly', 'UTC');
    expect((feb.end - feb.start) / 86_400_000).toBe(28);
    expect(iso(nextPeriod(feb, 'monthly', 'UTC').start)).toBe('2027-03-01T00:00:00.000Z');
  });

  it('month ends roll over the year; the boundary instant belongs to the next period', () => {
    const dec = periodContaining(at('2026-12-31T23:59:59.999Z'), 'monthly', 'UTC');
    expect(iso(dec.end)).toBe('2027-01-01T00:00:00.000Z');
    const jan = periodContaining(dec.end, 'monthly', 'UTC');
    expect(iso(jan.start)).toBe('2027-01-01T00:00:00.000Z');
    // The seed reset 32 days after the month start: 2026-02-01 + 32 days is March 5th, not March 1st.
    expect(iso(periodContaining(at('2026-02-10T00:00:00Z'), 'monthly', 'UTC').end)).toBe('2026-03-01T00:00:00.000Z');
  });

  it('monthly in a zone with DST: boundaries at local midnight, periods of 23- or 25-hour days', () => {
    const march = periodContaining(at('2026-03-20T12:00:00Z'), 'monthly', 'America/New_York');
    expect(iso(march.start)).toBe('2026-03-01T05:00:00.000Z'); // EST, UTC-5
    expect(iso(march.end)).toBe('2026-04-01T04:00:00.000Z'); // EDT, UTC-4
    expect(march.end - march.start).toBe(31 * 86_400_000 - 3_600_000);
    const nov = periodContaining(at('2026-11-15T12:00:00Z'), 'monthly', 'America/New_York');
    expect(nov.end - nov.start).toBe(30 * 86_400_000 + 3_600_000);
  });

  it('daily across the DST change is 23 hours; weekly starts on Monday local time', () => {
    const d = periodContaining(at('2026-03-29T12:00:00Z'), 'daily', 'Europe/Berlin');
    expect([iso(d.start), iso(d.end)]).toEqual(['2026-03-28T23:00:00.000Z', '2026-03-29T22:00:00.000Z']);
    const w = periodContaining(at('2026-11-28T10:00:00Z'), 'weekly', 'Asia/Tokyo'); // a Saturday
    expect(iso(w.start)).toBe('2026-11-22T15:00:00.000Z'); // Monday 23rd, 00:00 JST
    expect(w.end - w.start).toBe(7 * 86_400_000);
  });

  it('an instant in the first local minutes of a month in a zone ahead of UTC', () => {
    const p = periodContaining(at('2026-06-30T22:30:00Z'), 'monthly', 'Europe/Berlin'); // 00:30 on July 1st local
    expect(iso(p.start)).toBe('2026-06-30T22:00:00.000Z');
  });
});

describe('allocations', () => {
  it('split the total exactly, with no rounding drift', () => {
    const a = allocate(10_000_000_000_000, { critical: 0.4, standard: 0.35, batch: 0.25 });
    expect(a).toEqual({ batch: 2_500_000_000_000, critical: 4_000_000_000_000, standard: 3_500_000_000_000 });
    for (const total of [1, 2, 7, 100, 999_999_999, 1_000_000_001]) {
      const parts = allocate(total, { a: 1 / 3, b: 1 / 3, c: 1 / 3 });
      expect(Object.values(parts).reduce((x, y) => x + y, 0)).toBe(total);
      expect(Math.max(...Object.values(parts)) - Math.min(...Object.values(parts))).toBeLessThanOrEqual(1);
    }
  });
  it('reject fractions that do not sum to 1', () => {
    expect(() => allocate(100, { a: 0.5, b: 0.4 })).toThrow(/sum to 1/);
  });
});

describe('budget book', () => {
  const settings: BudgetSettings = {
    totalNanos: 1_000_000,
    allocations: { critical: 0.4, standard: 0.35, batch: 0.25 },
    limits: { critical: 'hard', standard: 'hard', batch: 'hard' },
    policies: { critical: 'downgrade', standard: 'downgrade', batch: 'reject' },
    periodicity: 'monthly',
    timeZone: 'UTC',
    alertThresholds: [0.5, 0.8, 1],
    maxWaitMs: 60_000,
    reservationTtlMs: 3_600_000,
  };
  const period = periodContaining(at('2026-11-28T00:00:00Z'), 'monthly', 'UTC');

  it('a zombie attempt cannot free the reservation its retry is about to settle (found by the soak: budget 5,500 nanodollars under the ledger)', () => {
    const book = newBook('zombie', settings, period);
    const now = at('2026-11-28T01:00:00Z');
    // Attempt 1 reserves; Temporal times it out (heartbeat) and attempt 2 reserves the same id.
    const r1 = reserve(book, { reservationId: 'w/a1', category: 'batch', amountNanos: 5_000, workflowId: 'w', attempt: 1 }, now);
    const r2 = reserve(book, { reservationId: 'w/a1', category: 'batch', amountNanos: 5_000, workflowId: 'w', attempt: 2 }, now);
    expect(r2).toMatchObject({ granted: true, seq: (r1 as { seq: number }).seq });
    // Attempt 1, still running, fails its call and releases: ignored.
    expect(release(book, 'w/a1', 1)).toBe(false);
    expect(book.counters.staleReleases).toBe(1);
    // Attempt 2's answer settles, and is charged.
    expect(settle(book, 'w/a1', 'batch', 5_500, now, (r2 as { seq: number }).seq)).toMatchObject({ settled: true, duplicate: false });
    expect(status(book).spentNanos).toBe(5_500);
    // A release from the latest attempt, or one not bound to an attempt, still frees.
    reserve(book, { reservationId: 'w/a2', category: 'batch', amountNanos: 5_000, workflowId: 'w', attempt: 1 }, now);
    expect(release(book, 'w/a2', 1)).toBe(true);
    reserve(book, { reservationId: 'w/a3', category: 'batch', amountNanos: 5_000, workflowId: 'w', attempt: 3 }, now);
    expect(release(book, 'w/a3')).toBe(true);
  });

  it('reserves up to the hard limit and denies past it with what remains', () => {
    const b = newBook('default', settings, period);
    expect(reserve(b, { reservationId: 'w/a1', category: 'batch', amountNanos: 200_000, workflowId: 'w' }, 0)).toMatchObject({
      granted: true,
      remainingNanos: 50_000,
    });
    const denied = reserve(b, { reservationId: 'w2/a1', category: 'batch', amountNanos: 50_001, workflowId: 'w2' }, 0);
    expect(denied).toMatchObject({ granted: false, category: 'batch', remainingNanos: 50_000, policy: 'reject' });
    expect(reserve(b, { reservationId: 'w2/a1', category: 'batch', amountNanos: 50_000, workflowId: 'w2' }, 0)).toMatchObject({
      granted: true,
      remainingNanos: 0,
    });
  });

  it('settles the actual cost, refunds the rest, and counts a retried settle once', () => {
    const b = newBook('default', settings, period);
    reserve(b, { reservationId: 'w/a1', category: 'standard', amountNanos: 100_000, workflowId: 'w' }, 0);
    expect(settle(b, 'w/a1', 'standard', 12_345, 1)).toEqual({ settled: true, duplicate: false, costNanos: 12_345 });
    expect(settle(b, 'w/a1', 'standard', 12_345, 2)).toEqual({ settled: false, duplicate: true, costNanos: 12_345 });
    const s = status(b);
    expect(s.categories.standard).toMatchObject({ allocatedNanos: 350_000, spentNanos: 12_345, reservedNanos: 0, remainingNanos: 337_655 });
    expect(s.spentNanos).toBe(12_345);
    expect(s.counters.duplicateSettles).toBe(1);
  });

  it('a re-sent reserve with the same id is the same reservation', () => {
    const b = newBook('default', settings, period);
    reserve(b, { reservationId: 'w/a1', category: 'critical', amountNanos: 300_000, workflowId: 'w' }, 0);
    reserve(b, { reservationId: 'w/a1', category: 'critical', amountNanos: 300_000, workflowId: 'w' }, 0);
    expect(status(b).categories.critical?.reservedNanos).toBe(300_000);
  });

  it('releases failed attempts and expires abandoned reservations', () => {
    const b = newBook('default', settings, period);
    reserve(b, { reservationId: 'a', category: 'critical', amountNanos: 100, workflowId: 'w' }, 0);
    reserve(b, { reservationId: 'b', category: 'critical', amountNanos: 100, workflowId: 'w' }, 0);
    expect(release(b, 'a')).toBe(true);
    expect(release(b, 'a')).toBe(false);
    expect(expireReservations(b, 3_600_001)).toBe(1);
    expect(status(b).reservedNanos).toBe(0);
  });

  it('rejects an unknown category naming the known ones', () => {
    const b = newBook('default', settings, period);
    expect(() => reserve(b, { reservationId: 'x', category: 'research', amountNanos: 1, workflowId: 'w' }, 0)).toThrow(
      /category "research" has no budget.*critical, standard, batch|known categories: batch, critical, standard/,
    );
  });

  it('soft limits grant past the allocation; alerts fire once per threshold per period', () => {
    const b = newBook('default', { ...settings, limits: { ...settings.limits, batch: 'soft' } }, period);
    reserve(b, { reservationId: 'a', category: 'batch', amountNanos: 300_000, workflowId: 'w' }, 0);
    settle(b, 'a', 'batch', 130_000, 0);
    expect(dueAlerts(b).map((a) => a.threshold)).toEqual([0.5]);
    expect(dueAlerts(b)).toEqual([]);
    reserve(b, { reservationId: 'b', category: 'batch', amountNanos: 300_000, workflowId: 'w' }, 0);
    settle(b, 'b', 'batch', 200_000, 0);
    expect(dueAlerts(b).map((a) => a.threshold)).toEqual([0.8, 1]);
    closePeriod(b, nextPeriod(period, 'monthly', 'UTC'), 'timer');
    reserve(b, { reservationId: 'c', category: 'batch', amountNanos: 300_000, workflowId: 'w' }, 0);
    settle(b, 'c', 'batch', 130_000, 0);
    expect(dueAlerts(b).map((a) => a.threshold)).toEqual([0.5]);
  });

  it('closing a period keeps its summary, resets spend, and carries open reservations', () => {
    const b = newBook('default', settings, period);
    reserve(b, { reservationId: 'a', category: 'critical', amountNanos: 1000, workflowId: 'w' }, 0);
    settle(b, 'a', 'critical', 700, 0);
    reserve(b, { reservationId: 'open', category: 'critical', amountNanos: 500, workflowId: 'w' }, 0);
    const next = nextPeriod(period, 'monthly', 'UTC');
    const summary = closePeriod(b, next, 'timer');
    expect(summary).toMatchObject({ spentNanos: 700, start: period.start, end: period.end, closedBy: 'timer' });
    expect(summary.categories.critical).toEqual({ allocatedNanos: 400_000, spentNanos: 700 });
    const s = status(b);
    expect(s.spentNanos).toBe(0);
    expect(s.reservedNanos).toBe(500);
    expect(s.period.start).toBe('2026-12-01T00:00:00.000Z');
    expect(b.history).toHaveLength(1);
  });

  it('validates settings with the field named', () => {
    expect(() => newBook('x', { ...settings, allocations: { critical: 0.5, batch: 0.4 } }, period)).toThrow(
      /allocations: fractions must sum to 1 \(they sum to 0.9\)/,
    );
  });
});
