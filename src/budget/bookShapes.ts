/**
 * The budget book's shapes (settings, reservations, periods, results, status) and the rules for
 * valid settings. Pure and serializable; the operations on a book are in ./book.ts.
 */
import { type ReallocationPlan, type ReallocationSettings, validateReallocation } from './reallocation.js';
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

/** The largest budget integer nanodollars hold exactly: about $9 million. */
export const MAX_BUDGET_NANOS = Number.MAX_SAFE_INTEGER;

export class StaleReserveError extends Error {
  override readonly name = 'StaleReserveError';
}
export class BudgetError extends Error {
  override readonly name = 'BudgetError';
}

export function validateSettings(s: BudgetSettings): string[] {
  const errs: string[] = [];
  if (!Number.isSafeInteger(s.totalNanos) || s.totalNanos < 0)
    errs.push(
      `totalNanos: must be a non-negative integer of nanodollars, at most ${MAX_BUDGET_NANOS} (about $9 million per scope; split larger budgets into scopes)`,
    );
  if (!validTimeZone(s.timeZone)) errs.push(`timeZone: "${s.timeZone}" is not an IANA time zone such as UTC or Europe/Berlin`);
  if (!Number.isSafeInteger(s.maxWaitMs) || s.maxWaitMs < 0) errs.push('maxWaitMs: must be a non-negative whole number of milliseconds');
  if (!Number.isSafeInteger(s.reservationTtlMs) || s.reservationTtlMs < 1000) errs.push('reservationTtlMs: must be at least 1000 ms');
  if (s.periodicity === 'fixed' && !(Number.isSafeInteger(s.periodMs) && (s.periodMs ?? 0) >= 1000))
    errs.push('periodMs: a fixed period needs periodMs >= 1000');
  if (s.webhookUrl !== undefined && !isWebhookUrl(s.webhookUrl)) errs.push(`webhookUrl: "${s.webhookUrl}" is not an http(s) URL`);
  const cats = Object.keys(s.allocations);
  if (cats.length === 0) errs.push('allocations: name at least one category, e.g. {"critical": 0.4, "standard": 0.35, "batch": 0.25}');
  for (const [c, f] of Object.entries(s.allocations)) {
    if (!/^[a-z][a-z0-9_-]{0,63}$/.test(c) || c in Object.prototype)
      errs.push(`allocations.${c}: category names are lowercase words, not reserved names such as constructor`);
    if (!(f >= 0 && f <= 1)) errs.push(`allocations.${c}: must be a fraction in [0,1]`);
  }
  if (s.reallocation) errs.push(...validateReallocation(s.reallocation, cats));
  const sum = Object.values(s.allocations).reduce((a, b) => a + b, 0);
  if (cats.length > 0 && Math.abs(sum - 1) > 1e-9) errs.push(`allocations: fractions must sum to 1 (they sum to ${Number(sum.toFixed(9))})`);
  for (const t of s.alertThresholds) if (!(t > 0 && t <= 10)) errs.push(`alertThresholds: ${t} must be a fraction such as 0.5 or 1`);
  for (const [c, l] of Object.entries(s.limits)) if (l !== 'hard' && l !== 'soft') errs.push(`limits.${c}: must be hard or soft`);
  for (const [c, p] of Object.entries(s.policies))
    if (!(DENIAL_POLICIES as readonly string[]).includes(p)) errs.push(`policies.${c}: must be one of ${DENIAL_POLICIES.join(', ')}`);
  return errs;
}

export function isWebhookUrl(u: string): boolean {
  // URL.canParse is not in every runtime this runs in (workflow sandbox): parse by pattern.
  return /^https?:\/\/[^\s/?#]+[^\s]*$/i.test(u) && u.length <= 2048;
}
