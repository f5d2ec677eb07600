/**
 * Dynamic budget reallocation, pure: forecast each category's spend at the period's end from its
 * burn rate so far, then move allocation from categories that will not use theirs to those that
 * will run out, within bounds. Amounts are whole nanodollars; the total never changes.
 *
 * - A category's floor (a fraction of the total) is never crossed; `critical` is never reduced
 *   below its configured allocation unless a floor for it is given explicitly.
 * - A donor keeps its forecast plus a margin; a receiver gets at most its forecast plus the margin
 *   minus what it has. Donations are shared out in proportion to need.
 * - Nothing moves before `minElapsedShare` of the period has passed (an early burn rate is noise).
 * - A donor keeps what it has spent plus its open reservations; one that has spent nothing keeps
 *   everything until `idleUntilShare` (half) of the period has passed (it may spend late).
 */
import { allocate } from './allocation.js';

export interface ReallocationSettings {
  /** How often the entity reallocates (ms): a day by default. */
  readonly everyMs: number;
  /** Per category, the least share of the total it keeps (0..1). */
  readonly floors?: Readonly<Record<string, number>> | undefined;
  /** Share of the period that must have passed before the first move (0..1). */
  readonly minElapsedShare?: number | undefined;
  /** Headroom over the forecast that donors keep and receivers get (0.1 = 10%). */
  readonly margin?: number | undefined;
  /** Until this share of the period has passed, a category that has spent nothing keeps its allocation (it may spend late). */
  readonly idleUntilShare?: number | undefined;
}

export const DEFAULT_REALLOCATION_EVERY_MS = 86_400_000;

export interface CategoryUse {
  readonly allocatedNanos: number;
  readonly spentNanos: number;
}

export interface Move {
  readonly from: string;
  readonly to: string;
  readonly nanos: number;
}

export interface ReallocationPlan {
  readonly at: number;
  /** Forecast spend at the period's end per category. */
  readonly forecastNanos: Record<string, number>;
  readonly moves: Move[];
  /** The allocations (fractions of the total) after the moves; equal to before when nothing moves. */
  readonly allocations: Record<string, number>;
  readonly why: string;
}

export interface ReallocationInput {
  readonly totalNanos: number;
  /** The configured allocations (fractions): `critical`'s is its default floor. */
  readonly configured: Readonly<Record<string, number>>;
  /** The allocations now (fractions). */
  readonly current: Readonly<Record<string, number>>;
  readonly spentNanos: Readonly<Record<string, number>>;
  /** Open reservations per category: money already promised to calls in flight, never given away. */
  readonly reservedNanos?: Readonly<Record<string, number>>;
  readonly period: { readonly start: number; readonly end: number };
  readonly now: number;
  readonly settings: ReallocationSettings;
}

export const CRITICAL_CATEGORY = 'critical';

export function floorOf(category: string, input: Pick<ReallocationInput, 'configured' | 'settings'>): number {
  const explicit = input.settings.floors?.[category];
  if (explicit !== undefined) return explicit;
  return category === CRITICAL_CATEGORY ? (input.configured[category] ?? 0) : 0;
}

export function validateReallocation(s: ReallocationSettings, categories: readonly string[]): string[] {
  const errs: string[] = [];
  const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!Number.isSafeInteger(s.everyMs) || s.everyMs < 1_000) errs.push('reallocation.everyMs: must be at least 1000 (milliseconds; 86400000 is a day)');
  if (s.minElapsedShare !== undefined && !(isNum(s.minElapsedShare) && s.minElapsedShare >= 0 && s.minElapsedShare < 1))
    errs.push('reallocation.minElapsedShare: must be a number in [0, 1)');
  if (s.margin !== undefined && !(isNum(s.margin) && s.margin >= 0 && s.margin <= 10)) errs.push('reallocation.margin: must be a number in [0, 10]');
  if (s.idleUntilShare !== undefined && !(isNum(s.idleUntilShare) && s.idleUntilShare >= 0 && s.idleUntilShare <= 1))
    errs.push('reallocation.idleUntilShare: must be a number in [0, 1]');
  let floors = 0;
  for (const [c, f] of Object.entries(s.floors ?? {})) {
    if (!categories.includes(c)) errs.push(`reallocation.floors.${c}: not a category of this budget (${categories.join(', ')})`);
    if (!(isNum(f) && f >= 0 && f <= 1)) errs.push(`reallocation.floors.${c}: must be a fraction in [0, 1]`);
    floors += isNum(f) ? f : 0;
  }
  if (floors > 1 + 1e-9) errs.push(`reallocation.floors: they sum to ${floors}, more than the whole budget`);
  return errs;
}

export function planReallocation(input: ReallocationInput): ReallocationPlan {
  const { totalNanos, period, now, settings } = input;
  const categories = Object.keys(input.current).sort();
  const allocated = allocate(totalNanos, input.current);
  const span = Math.max(1, period.end - period.start);
  const elapsed = Math.min(span, Math.max(0, now - period.start));
  const margin = settings.margin ?? 0.1;
  const forecastNanos = Object.fromEntries(
    categories.map((c) => {
      const spent = input.spentNanos[c] ?? 0;
      return [c, elapsed === 0 ? spent : Math.round((spent * span) / elapsed)];
    }),
  );
  const unchanged = (why: string): ReallocationPlan => ({ at: now, forecastNanos, moves: [], allocations: { ...input.current }, why });
  if (elapsed / span < (settings.minElapsedShare ?? 0.1))
    return unchanged(
      `${Math.round((100 * elapsed) / span)}% of the period has passed; nothing moves before ${Math.round(100 * (settings.minElapsedShare ?? 0.1))}%`,
    );

  const surplus = new Map<string, number>();
  const need = new Map<string, number>();
  for (const c of categories) {
    const have = allocated[c] ?? 0;
    const committed = (input.spentNanos[c] ?? 0) + (input.reservedNanos?.[c] ?? 0);
    // A category that has spent nothing may be one that spends late (a month-end batch): it keeps
    // its allocation until half the period has passed.
    const idle = committed === 0 && elapsed / span < (settings.idleUntilShare ?? 0.5);
    const keep = idle ? have : Math.max(Math.ceil((forecastNanos[c] ?? 0) * (1 + margin)), Math.ceil(floorOf(c, input) * totalNanos), committed);
    if (have > keep) surplus.set(c, have - keep);
    else if ((forecastNanos[c] ?? 0) > have) need.set(c, Math.ceil((forecastNanos[c] ?? 0) * (1 + margin)) - have);
  }
  const pool = [...surplus.values()].reduce((a, b) => a + b, 0);
  const wanted = [...need.values()].reduce((a, b) => a + b, 0);
  if (wanted === 0) return unchanged('no category is forecast to run out');
  if (pool === 0) return unchanged(`${[...need.keys()].join(', ')} forecast to run out, but no category has allocation to spare above its forecast and floor`);

  const give = Math.min(pool, wanted);
  // Donors give in proportion to their surplus, receivers get in proportion to their need, in whole nanodollars.
  const donors = [...surplus.entries()];
  const receivers = [...need.entries()];
  const given = donors.map(([c, s]) => [c, Math.floor((give * s) / pool)] as const);
  let left = give - given.reduce((a, [, n]) => a + n, 0);
  const gives = new Map(given.map(([c, n]) => [c, n]));
  for (const [c, s] of donors) {
    if (left === 0) break;
    if ((gives.get(c) ?? 0) < s) {
      gives.set(c, (gives.get(c) ?? 0) + 1);
      left -= 1;
    }
  }
  const total = [...gives.values()].reduce((a, b) => a + b, 0);
  const gets = new Map(receivers.map(([c, n]) => [c, Math.floor((total * n) / wanted)]));
  let rest = total - [...gets.values()].reduce((a, b) => a + b, 0);
  for (const [c] of receivers) {
    if (rest === 0) break;
    gets.set(c, (gets.get(c) ?? 0) + 1);
    rest -= 1;
  }
  // Moves: pair donors with receivers in order (a transport plan; any pairing sums the same).
  const moves: Move[] = [];
  const d = [...gives.entries()].filter(([, n]) => n > 0).map(([c, n]) => ({ c, n }));
  const r = [...gets.entries()].filter(([, n]) => n > 0).map(([c, n]) => ({ c, n }));
  let i = 0;
  let j = 0;
  while (i < d.length && j < r.length) {
    const n = Math.min(d[i]!.n, r[j]!.n);
    moves.push({ from: d[i]!.c, to: r[j]!.c, nanos: n });
    d[i]!.n -= n;
    r[j]!.n -= n;
    if (d[i]!.n === 0) i += 1;
    if (r[j]!.n === 0) j += 1;
  }
  const after = { ...allocated };
  for (const m of moves) {
    after[m.from] = (after[m.from] ?? 0) - m.nanos;
    after[m.to] = (after[m.to] ?? 0) + m.nanos;
  }
  const allocations = totalNanos > 0 ? Object.fromEntries(categories.map((c) => [c, (after[c] ?? 0) / totalNanos])) : { ...input.current };
  // Fractions of floats may sum to 1 +- 1e-16: put the residue on the largest, so validation holds.
  const sum = Object.values(allocations).reduce((a, b) => a + b, 0);
  const largest = categories.reduce((best, c) => ((allocations[c] ?? 0) > (allocations[best] ?? 0) ? c : best), categories[0]!);
  allocations[largest] = (allocations[largest] ?? 0) + (1 - sum);
  return {
    at: now,
    forecastNanos,
    moves,
    allocations,
    why: `${[...need.keys()].join(', ')} forecast to run out; ${[...surplus.keys()].join(', ')} will not use all of theirs`,
  };
}
