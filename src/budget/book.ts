/**
 * The budget book: one scope's budget, allocations, reservations and spend for the current period,
 * as a plain serializable state and pure operations on it. The budget entity workflow holds one and
 * applies messages to it; tests exercise it directly.
 *
 * Invariant (hard limits): for every category, spent + open reservations <= allocated, as long as
 * each settlement is at most its reservation (reservations are upper bounds).
 */
import { allocate } from './allocation.js';
import { type Period, type Periodicity } from './periods.js';

export const DENIAL_POLICIES = ['downgrade', 'wait', 'reject'] as const;
export type DenialPolicy = (typeof DENIAL_POLICIES)[number];
export type LimitKind = 'hard' | 'soft';

export interface BudgetSettings {
  readonly totalNanos: number;
  /** Category -> fraction of the total; sums to 1. */
  readonly allocations: Readonly<Record<string, number>>;
  readonly limits: Readonly<Record<string, LimitKind>>;
  readonly policies: Readonly<Record<string, DenialPolicy>>;
  readonly periodicity: Periodicity;
  /** Length of a `fixed` period. */
  readonly periodMs?: number | undefined;
  readonly timeZone: string;
  /** Fractions of a category's allocation at which an alert is sent once per period. */
  readonly alertThresholds: readonly number[];
  readonly webhookUrl?: string | undefined;
  /** Longest a `wait` request waits for the next period or an approval. */
  readonly maxWaitMs: number;
  /** Open reservations older than this are released (their request workflow is gone). */
  readonly reservationTtlMs: number;
}

export interface Reservation {
  readonly category: string;
  readonly amountNanos: number;
  readonly workflowId: string;
  readonly at: number;
  readonly forced: boolean;
}

export interface PeriodSummary {
  readonly start: number;
  readonly end: number;
  readonly totalNanos: number;
  readonly spentNanos: number;
  readonly categories: Record<string, { allocatedNanos: number; spentNanos: number }>;
  readonly closedBy: 'timer' | 'reset';
}

export interface BookState {
  scope: string;
  settings: BudgetSettings;
  period: Period;
  spent: Record<string, number>;
  reservations: Record<string, Reservation>;
  /** Recently settled reservation ids -> time, so a retried settle is recognised (bounded). */
  recentSettled: Record<string, number>;
  alertsSent: Record<string, number[]>;
  history: PeriodSummary[];
  counters: { settles: number; duplicateSettles: number; unreservedSettles: number; expiredReservations: number; denials: number };
}

export interface ReserveRequest {
  readonly reservationId: string;
  readonly category: string;
  readonly amountNanos: number;
  readonly workflowId: string;
  /** An operator approved spending past a hard limit. */
  readonly force?: boolean | undefined;
}

export type ReserveResult =
  | { readonly granted: true; readonly reservationId: string; readonly remainingNanos: number; readonly periodEnd: number }
  | { readonly granted: false; readonly category: string; readonly remainingNanos: number; readonly requestedNanos: number; readonly policy: DenialPolicy; readonly periodEnd: number; readonly maxWaitMs: number };

export interface SettleResult {
  readonly settled: boolean;
  readonly duplicate: boolean;
  readonly costNanos: number;
}

export interface Alert {
  readonly scope: string;
  readonly category: string;
  readonly threshold: number;
  readonly spentNanos: number;
  readonly allocatedNanos: number;
  readonly periodStart: number;
}

export interface CategoryStatus {
  allocatedNanos: number;
  spentNanos: number;
  reservedNanos: number;
  remainingNanos: number;
  utilization: number;
  limit: LimitKind;
  policy: DenialPolicy;
}

export interface BudgetStatus {
  scope: string;
  period: { start: string; end: string };
  periodicity: Periodicity;
  timeZone: string;
  totalNanos: number;
  spentNanos: number;
  reservedNanos: number;
  remainingNanos: number;
  utilization: number;
  openReservations: number;
  categories: Record<string, CategoryStatus>;
  counters: BookState['counters'];
}

const RECENT_SETTLED_MAX = 5_000;
const HISTORY_MAX = 36;

export class BudgetError extends Error {
  override readonly name = 'BudgetError';
}

export function validateSettings(s: BudgetSettings): string[] {
  const errs: string[] = [];
  if (!Number.isSafeInteger(s.totalNanos) || s.totalNanos < 0) errs.push('totalNanos: must be a non-negative integer of nanodollars');
  const cats = Object.keys(s.allocations);
  if (cats.length === 0) errs.push('allocations: name at least one category, e.g. {"critical": 0.4, "standard": 0.35, "batch": 0.25}');
  for (const [c, f] of Object.entries(s.allocations)) {
    if (!/^[a-z][a-z0-9_-]{0,63}$/.test(c)) errs.push(`allocations.${c}: category names are lowercase words`);
    if (!(f >= 0 && f <= 1)) errs.push(`allocations.${c}: must be a fraction in [0,1]`);
  }
  const sum = Object.values(s.allocations).reduce((a, b) => a + b, 0);
  if (cats.length > 0 && Math.abs(sum - 1) > 1e-9) errs.push(`allocations: fractions must sum to 1 (they sum to ${Number(sum.toFixed(9))})`);
  for (const t of s.alertThresholds) if (!(t > 0 && t <= 10)) errs.push(`alertThresholds: ${t} must be a fraction such as 0.5 or 1`);
  return errs;
}

export function newBook(scope: string, settings: BudgetSettings, period: Period): BookState {
  const errs = validateSettings(settings);
  if (errs.length > 0) throw new BudgetError(errs.join('; '));
  return {
    scope,
    settings,
    period,
    spent: {},
    reservations: {},
    recentSettled: {},
    alertsSent: {},
    history: [],
    counters: { settles: 0, duplicateSettles: 0, unreservedSettles: 0, expiredReservations: 0, denials: 0 },
  };
}

export function allocations(book: BookState): Record<string, number> {
  return allocate(book.settings.totalNanos, book.settings.allocations);
}

function reservedBy(book: BookState, category: string): number {
  let sum = 0;
  for (const r of Object.values(book.reservations)) if (r.category === category) sum += r.amountNanos;
  return sum;
}

export function policyFor(book: BookState, category: string): DenialPolicy {
  return book.settings.policies[category] ?? 'reject';
}

export function reserve(book: BookState, req: ReserveRequest, now: number): ReserveResult {
  const alloc = allocations(book);
  const allocated = alloc[req.category];
  if (allocated === undefined) {
    throw new BudgetError(`category "${req.category}" has no budget in scope "${book.scope}"; known categories: ${Object.keys(alloc).join(', ')} (add it with \`switchyard budget set --allocation\`)`);
  }
  if (!Number.isSafeInteger(req.amountNanos) || req.amountNanos < 0) throw new BudgetError('amountNanos: must be a non-negative integer');
  const existing = book.reservations[req.reservationId];
  const spent = book.spent[req.category] ?? 0;
  if (existing) {
    return { granted: true, reservationId: req.reservationId, remainingNanos: allocated - spent - reservedBy(book, req.category), periodEnd: book.period.end };
  }
  const remaining = allocated - spent - reservedBy(book, req.category);
  const hard = (book.settings.limits[req.category] ?? 'hard') === 'hard';
  if (hard && !req.force && req.amountNanos > remaining) {
    book.counters.denials += 1;
    return {
      granted: false,
      category: req.category,
      remainingNanos: Math.max(0, remaining),
      requestedNanos: req.amountNanos,
      policy: policyFor(book, req.category),
      periodEnd: book.period.end,
      maxWaitMs: book.settings.maxWaitMs,
    };
  }
  book.reservations[req.reservationId] = { category: req.category, amountNanos: req.amountNanos, workflowId: req.workflowId, at: now, forced: req.force === true };
  return { granted: true, reservationId: req.reservationId, remainingNanos: remaining - req.amountNanos, periodEnd: book.period.end };
}

/**
 * Records the actual cost of a reserved attempt and frees the rest of its reservation. A settle
 * whose reservation was already settled is a duplicate and changes nothing; one with no reservation
 * at all (expired) is still recorded, because the money was spent.
 */
export function settle(book: BookState, reservationId: string, category: string, costNanos: number, now: number): SettleResult {
  if (!Number.isSafeInteger(costNanos) || costNanos < 0) throw new BudgetError('costNanos: must be a non-negative integer');
  if (book.recentSettled[reservationId] !== undefined) {
    book.counters.duplicateSettles += 1;
    return { settled: false, duplicate: true, costNanos };
  }
  const r = book.reservations[reservationId];
  const cat = r?.category ?? category;
  if (!r) book.counters.unreservedSettles += 1;
  delete book.reservations[reservationId];
  book.spent[cat] = (book.spent[cat] ?? 0) + costNanos;
  book.counters.settles += 1;
  book.recentSettled[reservationId] = now;
  pruneRecent(book);
  return { settled: true, duplicate: false, costNanos };
}

export function release(book: BookState, reservationId: string): boolean {
  if (!book.reservations[reservationId]) return false;
  delete book.reservations[reservationId];
  return true;
}

function pruneRecent(book: BookState): void {
  const ids = Object.keys(book.recentSettled);
  if (ids.length <= RECENT_SETTLED_MAX) return;
  const sorted = ids.sort((a, b) => (book.recentSettled[a] ?? 0) - (book.recentSettled[b] ?? 0));
  for (const id of sorted.slice(0, ids.length - RECENT_SETTLED_MAX)) delete book.recentSettled[id];
}

/** Releases reservations older than the TTL; returns how many. */
export function expireReservations(book: BookState, now: number): number {
  let n = 0;
  for (const [id, r] of Object.entries(book.reservations)) {
    if (now - r.at > book.settings.reservationTtlMs) {
      delete book.reservations[id];
      n += 1;
    }
  }
  book.counters.expiredReservations += n;
  return n;
}

/** Thresholds crossed since the last call, each reported once per category per period. */
export function dueAlerts(book: BookState): Alert[] {
  const alloc = allocations(book);
  const out: Alert[] = [];
  for (const [cat, allocated] of Object.entries(alloc)) {
    const spent = book.spent[cat] ?? 0;
    const sent = (book.alertsSent[cat] ??= []);
    for (const t of [...book.settings.alertThresholds].sort((a, b) => a - b)) {
      if (sent.includes(t)) continue;
      if (allocated > 0 ? spent >= allocated * t : spent > 0) {
        sent.push(t);
        out.push({ scope: book.scope, category: cat, threshold: t, spentNanos: spent, allocatedNanos: allocated, periodStart: book.period.start });
      }
    }
  }
  return out;
}

/** Closes the period: keeps its summary, resets spend and alerts; open reservations carry over. */
export function closePeriod(book: BookState, next: Period, closedBy: PeriodSummary['closedBy']): PeriodSummary {
  const alloc = allocations(book);
  const cats = new Set([...Object.keys(alloc), ...Object.keys(book.spent)]);
  const summary: PeriodSummary = {
    start: book.period.start,
    end: closedBy === 'reset' ? Math.min(book.period.end, next.start) : book.period.end,
    totalNanos: book.settings.totalNanos,
    spentNanos: Object.values(book.spent).reduce((a, b) => a + b, 0),
    categories: Object.fromEntries([...cats].map((c) => [c, { allocatedNanos: alloc[c] ?? 0, spentNanos: book.spent[c] ?? 0 }])),
    closedBy,
  };
  book.history.push(summary);
  if (book.history.length > HISTORY_MAX) book.history.splice(0, book.history.length - HISTORY_MAX);
  book.period = next;
  book.spent = {};
  book.alertsSent = {};
  return summary;
}

export function status(book: BookState): BudgetStatus {
  const alloc = allocations(book);
  const categories: Record<string, CategoryStatus> = {};
  let spentTotal = 0;
  let reservedTotal = 0;
  const cats = new Set([...Object.keys(alloc), ...Object.keys(book.spent)]);
  for (const c of cats) {
    const allocated = alloc[c] ?? 0;
    const spent = book.spent[c] ?? 0;
    const reserved = reservedBy(book, c);
    spentTotal += spent;
    reservedTotal += reserved;
    categories[c] = {
      allocatedNanos: allocated,
      spentNanos: spent,
      reservedNanos: reserved,
      remainingNanos: allocated - spent - reserved,
      utilization: allocated > 0 ? spent / allocated : 0,
      limit: book.settings.limits[c] ?? 'hard',
      policy: policyFor(book, c),
    };
  }
  const total = book.settings.totalNanos;
  return {
    scope: book.scope,
    period: { start: new Date(book.period.start).toISOString(), end: new Date(book.period.end).toISOString() },
    periodicity: book.settings.periodicity,
    timeZone: book.settings.timeZone,
    totalNanos: total,
    spentNanos: spentTotal,
    reservedNanos: reservedTotal,
    remainingNanos: total - spentTotal - reservedTotal,
    utilization: total > 0 ? spentTotal / total : 0,
    openReservations: Object.keys(book.reservations).length,
    categories,
    counters: { ...book.counters },
  };
}
