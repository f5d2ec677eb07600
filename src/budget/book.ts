/**
 * The budget book: one scope's budget, allocations, reservations and spend for the current period,
 * as a plain serializable state and pure operations on it. The budget entity workflow holds one and
 * applies messages to it; tests exercise it directly.
 *
 * Invariant (hard limits): for every category, spent + open reservations <= allocated, as long as
 * each settlement is at most its reservation (reservations are upper bounds; a settlement above
 * its reservation is still charged, and counted as an overshoot).
 *
 * Exactly-once settlement: every reservation gets a sequence number from the book. A settlement
 * names it; one whose reservation is no longer open and whose number the book has already issued
 * was settled (or released) before and changes nothing. That needs no memory of settled ids, so it
 * holds however late a retried settlement arrives and however often the entity continued as new.
 * Reservations that expired unsettled are remembered (the newest EXPIRED_MAX) so that a late
 * settlement of one is still charged, once.
 *
 * Category names and reservation ids are keys of plain objects: every lookup reads own properties
 * only (`own`), so a name such as `constructor` finds nothing inherited.
 */
import { DEFAULT_REALLOCATION_EVERY_MS, planReallocation, type ReallocationPlan, type ReallocationSettings, validateReallocation } from './reallocation.js';
import { own, setOwn } from '../util/names.js';
import { allocate } from './allocation.js';
import { type Period, type Periodicity, validTimeZone } from './periods.js';

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
  /** Move unused allocation between categories on a schedule (absent: allocations stay as set). */
  readonly reallocation?: ReallocationSettings | undefined;
}

/** A reallocation the book applied (by its schedule or an operator), for `budget history`. */
export interface ReallocationRecord extends ReallocationPlan {
  readonly by: 'schedule' | 'operator';
  /** Allocations before the moves. */
  readonly before: Record<string, number>;
}

export interface Reservation {
  readonly category: string;
  readonly amountNanos: number;
  readonly workflowId: string;
  readonly at: number;
  readonly forced: boolean;
  /** Issued by the book (absent on reservations made before sequence numbers existed). */
  readonly seq?: number;
  /**
   * The latest activity attempt that reserved it (a retry reserves the same id again). A release
   * from an earlier attempt (one Temporal gave up on, still running: a zombie) is ignored, so it
   * cannot free the reservation that the retry's answer is about to settle.
   */
  attempt?: number;
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
  /** The next reservation sequence number (see exactly-once above). */
  nextSeq?: number;
  /** Reservations that expired unsettled: id -> category and when (bounded, newest kept). */
  expired?: Record<string, { category: string; at: number }>;
  /**
   * Settled ids of settlements that carry no sequence number (sent by request runs started before
   * sequence numbers existed) -> time; bounded. New settlements do not use it.
   */
  recentSettled: Record<string, number>;
  alertsSent: Record<string, number[]>;
  history: PeriodSummary[];
  /** Reallocations applied (bounded, newest kept), and the configured allocations they started from. */
  reallocations?: ReallocationRecord[];
  configuredAllocations?: Record<string, number>;
  nextReallocationAt?: number;
  counters: {
    settles: number;
    duplicateSettles: number;
    unreservedSettles: number;
    expiredReservations: number;
    /** Releases from an activity attempt older than the one holding the reservation, ignored. */
    staleReleases?: number;
    denials: number;
    /** Settlements above their reservation, and by how much in all. */
    overshoots?: number;
    overshootNanos?: number;
    /** Reserve messages from an activity attempt past its deadline (a retry superseded it). */
    staleReserves?: number;
  };
}

export interface ReserveRequest {
  readonly reservationId: string;
  readonly category: string;
  readonly amountNanos: number;
  readonly workflowId: string;
  /** An operator approved spending past a hard limit. */
  readonly force?: boolean | undefined;
  /**
   * When the sending activity attempt times out (epoch ms, server clock). A reserve that arrives
   * later comes from an attempt Temporal has already given up on; it must not re-create a
   * reservation that the retry made and the request has since settled.
   */
  readonly notAfter?: number | undefined;
  /** The reserving activity attempt (see Reservation.attempt). */
  readonly attempt?: number | undefined;
}

export type ReserveResult =
  | { readonly granted: true; readonly reservationId: string; readonly remainingNanos: number; readonly periodEnd: number; readonly seq?: number }
  | {
      readonly granted: false;
      readonly category: string;
      readonly remainingNanos: number;
      readonly requestedNanos: number;
      readonly policy: DenialPolicy;
      readonly periodEnd: number;
      readonly maxWaitMs: number;
    };

export interface SettleResult {
  readonly settled: boolean;
  readonly duplicate: boolean;
  readonly costNanos: number;
  /** How much the cost exceeded its reservation (0 when within it). */
  readonly overshootNanos?: number;
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
const EXPIRED_MAX = 10_000;
/** The largest budget integer nanodollars hold exactly: about $9 million. */
export const MAX_BUDGET_NANOS = Number.MAX_SAFE_INTEGER;

export class StaleReserveError extends Error {
  override readonly name = 'StaleReserveError';
}
const HISTORY_MAX = 36;

export class BudgetError extends Error {
  override readonly name = 'BudgetError';
}

export function validateSettings(s: BudgetSettings): string[] {
  const errs: string[] = [];
  if (!Number.isSafeInteger(s.totalNanos) || s.totalNanos < 0)
    errs.push(`totalNanos: must be a non-negative integer of nanodollars, at most ${MAX_BUDGET_NANOS} (about $9 million per scope; split larger budgets into scopes)`);
  if (!validTimeZone(s.timeZone)) errs.push(`timeZone: "${s.timeZone}" is not an IANA time zone such as UTC or Europe/Berlin`);
  if (!Number.isSafeInteger(s.maxWaitMs) || s.maxWaitMs < 0) errs.push('maxWaitMs: must be a non-negative whole number of milliseconds');
  if (!Number.isSafeInteger(s.reservationTtlMs) || s.reservationTtlMs < 1000) errs.push('reservationTtlMs: must be at least 1000 ms');
  if (s.periodicity === 'fixed' && !(Number.isSafeInteger(s.periodMs) && (s.periodMs ?? 0) >= 1000)) errs.push('periodMs: a fixed period needs periodMs >= 1000');
  if (s.webhookUrl !== undefined && !isWebhookUrl(s.webhookUrl)) errs.push(`webhookUrl: "${s.webhookUrl}" is not an http(s) URL`);
  const cats = Object.keys(s.allocations);
  if (cats.length === 0) errs.push('allocations: name at least one category, e.g. {"critical": 0.4, "standard": 0.35, "batch": 0.25}');
  for (const [c, f] of Object.entries(s.allocations)) {
    if (!/^[a-z][a-z0-9_-]{0,63}$/.test(c) || c in Object.prototype) errs.push(`allocations.${c}: category names are lowercase words, not reserved names such as constructor`);
    if (!(f >= 0 && f <= 1)) errs.push(`allocations.${c}: must be a fraction in [0,1]`);
  }
  if (s.reallocation) errs.push(...validateReallocation(s.reallocation, cats));
  const sum = Object.values(s.allocations).reduce((a, b) => a + b, 0);
  if (cats.length > 0 && Math.abs(sum - 1) > 1e-9) errs.push(`allocations: fractions must sum to 1 (they sum to ${Number(sum.toFixed(9))})`);
  for (const t of s.alertThresholds) if (!(t > 0 && t <= 10)) errs.push(`alertThresholds: ${t} must be a fraction such as 0.5 or 1`);
  for (const [c, l] of Object.entries(s.limits)) if (l !== 'hard' && l !== 'soft') errs.push(`limits.${c}: must be hard or soft`);
  for (const [c, p] of Object.entries(s.policies)) if (!(DENIAL_POLICIES as readonly string[]).includes(p)) errs.push(`policies.${c}: must be one of ${DENIAL_POLICIES.join(', ')}`);
  return errs;
}

export function isWebhookUrl(u: string): boolean {
  // URL.canParse is not in every runtime this runs in (workflow sandbox): parse by pattern.
  return /^https?:\/\/[^\s/?#]+[^\s]*$/i.test(u) && u.length <= 2048;
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
    nextSeq: 1,
    expired: {},
    recentSettled: {},
    alertsSent: {},
    history: [],
    counters: { settles: 0, duplicateSettles: 0, unreservedSettles: 0, expiredReservations: 0, denials: 0, overshoots: 0, overshootNanos: 0, staleReserves: 0 },
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
  return own(book.settings.policies, category) ?? 'reject';
}

function limitFor(book: BookState, category: string): LimitKind {
  return own(book.settings.limits, category) ?? 'hard';
}

function spentOn(book: BookState, category: string): number {
  return own(book.spent, category) ?? 0;
}

function charge(book: BookState, category: string, costNanos: number): void {
  const next = spentOn(book, category) + costNanos;
  if (!Number.isSafeInteger(next)) throw new BudgetError(`spend on ${category} would exceed the integer range`);
  setOwn(book.spent, category, next);
}

/** Checks a category has a budget here; returns its allocation. */
export function allocationOf(book: BookState, category: string): number {
  const alloc = allocations(book);
  const allocated = own(alloc, category);
  if (allocated === undefined) {
    throw new BudgetError(`category "${category}" has no budget in scope "${book.scope}"; known categories: ${Object.keys(alloc).join(', ')} (add it with \`switchyard budget set --allocation\`)`);
  }
  return allocated;
}

export function reserve(book: BookState, req: ReserveRequest, now: number): ReserveResult {
  const allocated = allocationOf(book, req.category);
  if (!Number.isSafeInteger(req.amountNanos) || req.amountNanos < 0) throw new BudgetError('amountNanos: must be a non-negative integer');
  const existing = own(book.reservations, req.reservationId);
  const spent = spentOn(book, req.category);
  if (existing) {
    if (req.attempt !== undefined && req.attempt > (existing.attempt ?? 0)) existing.attempt = req.attempt;
    return {
      granted: true,
      reservationId: req.reservationId,
      remainingNanos: allocated - spent - reservedBy(book, req.category),
      periodEnd: book.period.end,
      ...(existing.seq !== undefined ? { seq: existing.seq } : {}),
    };
  }
  if (req.notAfter !== undefined && now > req.notAfter) {
    book.counters.staleReserves = (book.counters.staleReserves ?? 0) + 1;
    throw new StaleReserveError(`reserve ${req.reservationId} arrived after its activity attempt timed out (${now - req.notAfter} ms late); the retry's reserve counts`);
  }
  const remaining = allocated - spent - reservedBy(book, req.category);
  const hard = limitFor(book, req.category) === 'hard';
  if (hard && req.force !== true && req.amountNanos > remaining) {
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
  const seq = book.nextSeq ?? 1;
  book.nextSeq = seq + 1;
  setOwn(book.reservations, req.reservationId, {
    category: req.category,
    amountNanos: req.amountNanos,
    workflowId: req.workflowId,
    at: now,
    forced: req.force === true,
    seq,
    ...(req.attempt !== undefined ? { attempt: req.attempt } : {}),
  });
  return { granted: true, reservationId: req.reservationId, remainingNanos: remaining - req.amountNanos, periodEnd: book.period.end, seq };
}

/**
 * Records the actual cost of a reserved attempt and frees the rest of its reservation. A settle
 * whose reservation was already settled is a duplicate and changes nothing; one whose reservation
 * expired (or that this book never granted) is still recorded, because the money was spent.
 */
export function settle(book: BookState, reservationId: string, category: string, costNanos: number, now: number, seq?: number): SettleResult {
  if (!Number.isSafeInteger(costNanos) || costNanos < 0) throw new BudgetError('costNanos: must be a non-negative integer');
  const duplicate = (): SettleResult => {
    book.counters.duplicateSettles += 1;
    return { settled: false, duplicate: true, costNanos };
  };
  const r = own(book.reservations, reservationId);
  if (r) {
    delete book.reservations[reservationId];
    charge(book, r.category, costNanos);
    book.counters.settles += 1;
    if (seq === undefined) rememberSettled(book, reservationId, now);
    const overshootNanos = Math.max(0, costNanos - r.amountNanos);
    if (overshootNanos > 0) {
      book.counters.overshoots = (book.counters.overshoots ?? 0) + 1;
      book.counters.overshootNanos = (book.counters.overshootNanos ?? 0) + overshootNanos;
    }
    return { settled: true, duplicate: false, costNanos, ...(overshootNanos > 0 ? { overshootNanos } : {}) };
  }
  const expired = own(book.expired, reservationId);
  if (expired && book.expired) {
    delete book.expired[reservationId];
    charge(book, expired.category, costNanos);
  } else if (seq !== undefined && Number.isSafeInteger(seq) && seq > 0 && seq < (book.nextSeq ?? 1)) {
    // Issued here, no longer open, not expired: settled (or released) before.
    return duplicate();
  } else if (own(book.recentSettled, reservationId) !== undefined) {
    return duplicate();
  } else {
    charge(book, category, costNanos);
    if (seq === undefined) rememberSettled(book, reservationId, now);
  }
  book.counters.unreservedSettles += 1;
  book.counters.settles += 1;
  return { settled: true, duplicate: false, costNanos };
}

function rememberSettled(book: BookState, reservationId: string, now: number): void {
  setOwn(book.recentSettled, reservationId, now);
  pruneRecent(book);
}

/**
 * Frees an open reservation. `attempt` (the releasing activity attempt) older than the latest
 * attempt that reserved it is a zombie's release: ignored (counted in staleReleases).
 */
export function release(book: BookState, reservationId: string, attempt?: number): boolean {
  const r = own(book.reservations, reservationId);
  if (!r) return false;
  if (attempt !== undefined && (r.attempt ?? 0) > attempt) {
    book.counters.staleReleases = (book.counters.staleReleases ?? 0) + 1;
    return false;
  }
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
  const expired = (book.expired ??= {});
  for (const [id, r] of Object.entries(book.reservations)) {
    if (now - r.at > book.settings.reservationTtlMs) {
      delete book.reservations[id];
      setOwn(expired, id, { category: r.category, at: now });
      n += 1;
    }
  }
  const ids = Object.keys(expired);
  if (ids.length > EXPIRED_MAX) {
    ids.sort((a, b) => (expired[a]?.at ?? 0) - (expired[b]?.at ?? 0));
    for (const id of ids.slice(0, ids.length - EXPIRED_MAX)) delete expired[id];
  }
  book.counters.expiredReservations += n;
  return n;
}

/** Thresholds crossed since the last call, each reported once per category per period. */
export function dueAlerts(book: BookState): Alert[] {
  const alloc = allocations(book);
  const out: Alert[] = [];
  for (const [cat, allocated] of Object.entries(alloc)) {
    const spent = spentOn(book, cat);
    const sent = own(book.alertsSent, cat) ?? setOwn(book.alertsSent, cat, []);
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
    categories: Object.fromEntries([...cats].map((c) => [c, { allocatedNanos: own(alloc, c) ?? 0, spentNanos: spentOn(book, c) }])),
    closedBy,
  };
  book.history.push(summary);
  if (book.history.length > HISTORY_MAX) book.history.splice(0, book.history.length - HISTORY_MAX);
  book.period = next;
  book.spent = {};
  book.alertsSent = {};
  // Reallocation is within a period: a new period starts from the configured allocations.
  if (book.configuredAllocations) {
    book.settings = { ...book.settings, allocations: book.configuredAllocations };
    delete book.configuredAllocations;
  }
  return summary;
}

const REALLOCATIONS_MAX = 100;

/** What a reallocation would do now (the dry run). */
export function reallocationPlan(book: BookState, now: number): ReallocationPlan {
  return planReallocation({
    totalNanos: book.settings.totalNanos,
    configured: book.configuredAllocations ?? book.settings.allocations,
    current: book.settings.allocations,
    spentNanos: book.spent,
    reservedNanos: Object.fromEntries(Object.keys(book.settings.allocations).map((c) => [c, reservedBy(book, c)])),
    period: book.period,
    now,
    settings: book.settings.reallocation ?? { everyMs: DEFAULT_REALLOCATION_EVERY_MS },
  });
}

/** Applies a reallocation now; records it when something moved. */
export function reallocate(book: BookState, now: number, by: ReallocationRecord['by']): ReallocationRecord {
  const plan = reallocationPlan(book, now);
  const record: ReallocationRecord = { ...plan, by, before: { ...book.settings.allocations } };
  if (plan.moves.length > 0) {
    book.configuredAllocations ??= { ...book.settings.allocations };
    book.settings = { ...book.settings, allocations: plan.allocations };
    (book.reallocations ??= []).push(record);
    if (book.reallocations.length > REALLOCATIONS_MAX) book.reallocations.splice(0, book.reallocations.length - REALLOCATIONS_MAX);
  }
  return record;
}

export function status(book: BookState): BudgetStatus {
  const alloc = allocations(book);
  const categories: Record<string, CategoryStatus> = {};
  let spentTotal = 0;
  let reservedTotal = 0;
  const cats = new Set([...Object.keys(alloc), ...Object.keys(book.spent)]);
  for (const c of cats) {
    const allocated = own(alloc, c) ?? 0;
    const spent = spentOn(book, c);
    const reserved = reservedBy(book, c);
    spentTotal += spent;
    reservedTotal += reserved;
    categories[c] = {
      allocatedNanos: allocated,
      spentNanos: spent,
      reservedNanos: reserved,
      remainingNanos: allocated - spent - reserved,
      utilization: allocated > 0 ? spent / allocated : 0,
      limit: limitFor(book, c),
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
