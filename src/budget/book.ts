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
import { DEFAULT_REALLOCATION_EVERY_MS, planReallocation, type ReallocationPlan } from './reallocation.js';
import { own, setOwn } from '../util/names.js';
import { allocate } from './allocation.js';
import type { Period } from './periods.js';
import {
  BudgetError,
  StaleReserveError,
  validateSettings,
  type Alert,
  type BookState,
  type BudgetSettings,
  type BudgetStatus,
  type CategoryStatus,
  type DenialPolicy,
  type LimitKind,
  type PeriodSummary,
  type ReallocationRecord,
  type ReserveRequest,
  type ReserveResult,
  type SettleResult,
} from './bookShapes.js';

/** The book's shapes, from where they are defined. */
export { BudgetError, DENIAL_POLICIES, MAX_BUDGET_NANOS, StaleReserveError, isWebhookUrl, validateSettings } from './bookShapes.js';
export type {
  Alert,
  BookState,
  BudgetSettings,
  BudgetStatus,
  CategoryStatus,
  DenialPolicy,
  LimitKind,
  PeriodSummary,
  ReallocationRecord,
  Reservation,
  ReserveRequest,
  ReserveResult,
  SettleResult,
} from './bookShapes.js';

const RECENT_SETTLED_MAX = 5_000;
const EXPIRED_MAX = 10_000;
const HISTORY_MAX = 36;

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
    throw new BudgetError(
      `category "${category}" has no budget in scope "${book.scope}"; known categories: ${Object.keys(alloc).join(', ')} (add it with \`switchyard budget set --allocation\`)`,
    );
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
    throw new StaleReserveError(
      `reserve ${req.reservationId} arrived after its activity attempt timed out (${now - req.notAfter} ms late); the retry's reserve counts`,
    );
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
