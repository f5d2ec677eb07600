/**
 * What a budget entity holds and how each message changes it: the book (the pure rules in
 * src/budget/book.ts), the checks that refuse a malformed message before it reaches history, the
 * alerts a change makes due, and the counts that say when the run should continue as new. The
 * workflow (./budgetEntity.ts) is a shell: it registers these as handlers and owns the timers,
 * the alert deliveries and continue-as-new.
 */
import { ApplicationFailure, log } from '@temporalio/workflow';
import {
  type Alert,
  BudgetError,
  type BookState,
  type ReserveRequest,
  closePeriod,
  dueAlerts,
  expireReservations,
  newBook,
  reallocate,
  release,
  reserve,
  settle,
  StaleReserveError,
  status,
  validateSettings,
} from '../../budget/book.js';
import { nextPeriod, periodContaining } from '../../budget/periods.js';
import { own } from '../../util/names.js';
import { isRecord } from '../messages.js';
import { ADJUST_KEYS, type AdjustInput, type BudgetEntityInput, type BudgetOp, type BudgetOpResult, MAX_BATCH_OPS, type SettleInput } from './contract.js';

/** Refuses a message (fails the update for its caller, never the entity). */
export function invalid(message: string, type = 'InvalidBudgetMessage'): never {
  throw ApplicationFailure.create({ type, nonRetryable: true, message });
}

/** The book's own refusals, as refused messages. */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof StaleReserveError) invalid(e.message, 'StaleReserve');
    if (e instanceof BudgetError || e instanceof RangeError) invalid(e.message);
    throw e;
  }
}

export class BudgetEntityState {
  readonly book: BookState;
  /** Alerts made due by changes, not yet handed to a delivery. */
  readonly pendingAlerts: Alert[] = [];
  /** Changes in this run (the server caps updates per run). */
  private updates = 0;
  /** The reallocation schedule changed: the loop computes its next wake-up again. */
  rescheduled = false;

  constructor(input: BudgetEntityInput) {
    const s = input.settings;
    // A new entity's settings are validated where they are made (config, client); one started with
    // bad ones anyway fails at once with the reason, instead of a workflow task that retries forever.
    // A carried book (continue-as-new, restore) is never refused: its spend must stay reachable.
    if (!input.book) {
      const errs = validateSettings(s);
      if (errs.length > 0) invalid(`budget "${input.scope}" cannot start: ${errs.join('; ')}`, 'InvalidBudgetSettings');
    }
    this.book = input.book ?? newBook(input.scope, s, periodContaining(Date.now(), s.periodicity, s.timeZone, s.periodMs));
  }

  private changed(): void {
    this.updates += 1;
    this.pendingAlerts.push(...dueAlerts(this.book));
  }

  // --- checks (update validators: a refused message never reaches history) ---

  checkReserve(req: ReserveRequest): void {
    const book = this.book;
    if (typeof req?.reservationId !== 'string' || req.reservationId === '') invalid('reservationId: required');
    if (!Number.isSafeInteger(req.amountNanos) || req.amountNanos < 0) invalid('amountNanos: must be a non-negative integer of nanodollars');
    if (req.force !== undefined && typeof req.force !== 'boolean') invalid('force: must be true or false');
    if (typeof req.category !== 'string' || own(book.settings.allocations, req.category) === undefined) {
      invalid(
        `category "${String(req.category)}" has no budget in scope "${book.scope}"; known categories: ${Object.keys(book.settings.allocations).join(', ')}`,
      );
    }
    // A reserve from an activity attempt that has timed out: the retry's reserve counts. Rejected
    // here (not in history); the sending attempt, if it still listens, retries.
    if (req.notAfter !== undefined && own(book.reservations, req.reservationId) === undefined && Date.now() > req.notAfter) {
      invalid(`reserve ${req.reservationId} arrived after its activity attempt timed out`, 'StaleReserve');
    }
  }

  checkSettle(req: SettleInput): void {
    if (typeof req?.reservationId !== 'string' || req.reservationId === '') invalid('reservationId: required');
    if (typeof req.category !== 'string' || req.category === '') invalid('category: required');
    if (!Number.isSafeInteger(req.costNanos) || req.costNanos < 0) invalid('costNanos: must be a non-negative integer of nanodollars');
    if (req.seq !== undefined && !(Number.isSafeInteger(req.seq) && req.seq > 0)) invalid('seq: must be the positive integer the reservation was granted with');
  }

  checkBatch(ops: BudgetOp[]): void {
    if (!Array.isArray(ops) || ops.length === 0) invalid('batch: expected a non-empty list of budget operations');
    if (ops.length > MAX_BATCH_OPS) invalid(`batch: at most ${MAX_BATCH_OPS} operations per update (got ${ops.length})`);
    const at = ops.findIndex((o: unknown) => !isRecord(o));
    if (at !== -1) invalid(`batch: operation ${at} is not an object ({"op": "reserve" | "settle" | "release", ...})`);
  }

  checkAdjust(a: AdjustInput): void {
    if (typeof a !== 'object' || a === null) invalid('adjust: expected an object of settings to change');
    const unknown = Object.keys(a).filter((k) => !(ADJUST_KEYS as readonly string[]).includes(k));
    if (unknown.length > 0) invalid(`adjust: unknown setting(s) ${unknown.join(', ')}; known: ${ADJUST_KEYS.join(', ')}`);
    const { webhookUrl, reallocation, ...rest } = a;
    if (webhookUrl !== undefined && webhookUrl !== null && typeof webhookUrl !== 'string') invalid('webhookUrl: must be an http(s) URL, or null to remove it');
    if (reallocation !== undefined && reallocation !== null && (typeof reallocation !== 'object' || typeof reallocation.everyMs !== 'number'))
      invalid('reallocation: must be {"everyMs": N, ...} or null to stop reallocating');
    const errs = validateSettings({
      ...this.book.settings,
      ...rest,
      webhookUrl: typeof webhookUrl === 'string' ? webhookUrl : undefined,
      reallocation: reallocation ?? undefined,
    });
    if (errs.length > 0) invalid(errs.join('; '));
  }

  // --- messages ---

  reserve(req: ReserveRequest) {
    const r = guard(() => reserve(this.book, req, Date.now()));
    this.changed();
    return r;
  }

  settle(req: SettleInput) {
    const r = this.applySettle(req);
    this.changed();
    return r;
  }

  private applySettle(req: SettleInput) {
    const r = guard(() => settle(this.book, req.reservationId, req.category, req.costNanos, Date.now(), req.seq));
    if ((r.overshootNanos ?? 0) > 0)
      log.warn('settlement above its reservation', { scope: this.book.scope, reservationId: req.reservationId, overshootNanos: r.overshootNanos });
    return r;
  }

  /**
   * Many requests' reserves, settlements and releases in one update (a worker's batcher folds
   * them). Ops apply in order, each on its own: one refused op is answered with its reason and
   * the others still apply. Every op is idempotent (an open reservation id is granted again, a
   * settlement by its sequence number), so a batch sent twice changes nothing the second time.
   */
  batch(ops: BudgetOp[]): BudgetOpResult[] {
    const results = ops.map((o): BudgetOpResult => {
      try {
        if (o.op === 'reserve') {
          this.checkReserve(o);
          return { ok: true, value: guard(() => reserve(this.book, o, Date.now())) };
        }
        if (o.op === 'settle') {
          this.checkSettle(o);
          return { ok: true, value: this.applySettle(o) };
        }
        if (o.op === 'release') {
          if (typeof o.reservationId !== 'string' || o.reservationId === '') invalid('reservationId: required');
          return { ok: true, value: release(this.book, o.reservationId, Number.isSafeInteger(o.attempt) ? o.attempt : undefined) };
        }
        return invalid(`op: unknown budget operation ${JSON.stringify((o as { op?: unknown }).op)}; known: reserve, settle, release`);
      } catch (e) {
        if (e instanceof ApplicationFailure) return { ok: false, type: e.type ?? 'InvalidBudgetMessage', message: e.message };
        throw e;
      }
    });
    this.changed();
    return results;
  }

  release(reservationId: string): boolean {
    this.updates += 1;
    return release(this.book, reservationId);
  }

  adjust(a: AdjustInput) {
    const book = this.book;
    const { webhookUrl, reallocation, ...rest } = a;
    // New allocations from an operator replace the configured ones reallocation started from.
    if (rest.allocations) delete book.configuredAllocations;
    if (reallocation !== undefined) {
      delete book.nextReallocationAt;
      this.rescheduled = true;
    }
    book.settings = {
      ...book.settings,
      ...rest,
      ...(webhookUrl === null ? { webhookUrl: undefined } : webhookUrl !== undefined ? { webhookUrl } : {}),
      ...(reallocation === null ? { reallocation: undefined } : reallocation !== undefined ? { reallocation } : {}),
    };
    this.changed();
    log.info('budget adjusted', { scope: book.scope, totalNanos: book.settings.totalNanos });
    return status(book);
  }

  /** An operator's reset: the period closes now and a new one runs to the same end. */
  reset() {
    const current = this.book.period;
    const summary = closePeriod(this.book, { start: Date.now(), end: current.end }, 'reset');
    log.info('budget reset by operator', { scope: this.book.scope, spentNanos: summary.spentNanos });
    return summary;
  }

  reallocate(by: 'schedule' | 'operator') {
    const r = reallocate(this.book, Date.now(), by);
    if (r.moves.length > 0) {
      this.changed();
      log.info('budget reallocated', { scope: this.book.scope, by, moves: r.moves.length, why: r.why });
    }
    return r;
  }

  // --- the loop's turns ---

  /** Closes every period whose end has passed (one per boundary crossed). */
  closeDuePeriods(): void {
    const book = this.book;
    while (Date.now() >= book.period.end) {
      const summary = closePeriod(book, nextPeriod(book.period, book.settings.periodicity, book.settings.timeZone, book.settings.periodMs), 'timer');
      log.info('budget period closed', { scope: book.scope, start: summary.start, end: summary.end, spentNanos: summary.spentNanos });
    }
  }

  /** Reallocates on the schedule, when one is set and due. */
  reallocateIfDue(): void {
    const every = this.book.settings.reallocation?.everyMs;
    if (every === undefined) return;
    this.book.nextReallocationAt ??= Date.now() + every;
    if (Date.now() >= this.book.nextReallocationAt) {
      this.reallocate('schedule');
      this.book.nextReallocationAt = Date.now() + every;
    }
  }

  /** Releases reservations nobody settled within their time to live. */
  expireAbandoned(): void {
    const expired = expireReservations(this.book, Date.now());
    if (expired > 0) log.warn('abandoned reservations released', { scope: this.book.scope, expired });
  }

  /** The run has grown long enough to continue as new. */
  shouldContinueAsNew(input: BudgetEntityInput, info: { continueAsNewSuggested: boolean; historyLength: number }): boolean {
    // The server caps updates per run (2000 by default): continue as new well before that.
    const maxUpdates = input.maxUpdatesPerRun ?? 1000;
    return info.continueAsNewSuggested || this.updates >= maxUpdates || (input.maxHistoryEvents !== undefined && info.historyLength >= input.maxHistoryEvents);
  }

  /** How long the loop may sleep: to the period boundary, the reservation TTL, or the next reallocation. */
  sleepMs(reallocating: boolean): number {
    const book = this.book;
    const untilBoundary = Math.max(1, book.period.end - Date.now());
    const untilRealloc =
      reallocating && book.nextReallocationAt !== undefined && book.settings.reallocation ? Math.max(1, book.nextReallocationAt - Date.now()) : Infinity;
    return Math.min(untilBoundary, book.settings.reservationTtlMs, untilRealloc);
  }
}
