/**
 * The budget entity: one long-running workflow per budget scope that owns the period's spend. Every
 * reservation and settlement is an update applied in order to one book, so concurrent requests
 * cannot race past a hard limit; period resets are durable timers; the history is kept bounded by
 * continuing as new (with the whole book) when the server suggests it.
 */
import { allHandlersFinished, ApplicationFailure, condition, makeContinueAsNewFunc, log, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { isRecord, refusePlaintext, refuseUnless } from '../messages.js';
import {
  type Alert,
  BudgetError,
  type ReserveRequest,
  closePeriod,
  dueAlerts,
  expireReservations,
  newBook,
  reallocate,
  reallocationPlan,
  release,
  reserve,
  settle,
  StaleReserveError,
  status,
  validateSettings,
} from '../../budget/book.js';
import { own } from '../../util/names.js';
import { nextPeriod, periodContaining } from '../../budget/periods.js';
import {
  type AdjustInput,
  adjustUpdate,
  type BudgetEntityInput,
  ADJUST_KEYS,
  historyQuery,
  releaseUpdate,
  stateQuery,
  reserveUpdate,
  resetUpdate,
  type SettleInput,
  settleUpdate,
  batchUpdate,
  type BudgetOp,
  type BudgetOpResult,
  MAX_BATCH_OPS,
  statusQuery,
  reallocationPlanQuery,
  reallocationsQuery,
  reallocateUpdate,
} from './contract.js';
import { continueOnQueue } from '../taskQueues.js';
import { alertActivities } from '../alerts.js';
import type { BudgetEntityWorkflow } from './contract.js';

const alerts = alertActivities();

function invalid(message: string, type = 'InvalidBudgetMessage'): never {
  throw ApplicationFailure.create({ type, nonRetryable: true, message });
}

export async function budgetEntity(input: BudgetEntityInput): Promise<void> {
  refusePlaintext([input], 'budgetEntity');
  const s = input.settings;
  // A new entity's settings are validated where they are made (config, client); one started with
  // bad ones anyway fails at once with the reason, instead of a workflow task that retries forever.
  // A carried book (continue-as-new, restore) is never refused: its spend must stay reachable.
  if (!input.book) {
    const errs = validateSettings(s);
    if (errs.length > 0) invalid(`budget "${input.scope}" cannot start: ${errs.join('; ')}`, 'InvalidBudgetSettings');
  }
  const book = input.book ?? newBook(input.scope, s, periodContaining(Date.now(), s.periodicity, s.timeZone, s.periodMs));
  setHandler(stateQuery, () => book);
  const pendingAlerts: Alert[] = [];
  // Versioned change: alerts go out without holding up the loop (period boundaries, continue-as-new).
  // Runs recorded before it awaited each alert in turn and keep doing so.
  const alertsOffCriticalPath = patched('alerts-off-critical-path');
  const guard = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof StaleReserveError) invalid(e.message, 'StaleReserve');
      if (e instanceof BudgetError || e instanceof RangeError) invalid(e.message);
      throw e;
    }
  };
  // The server caps updates per run (2000 by default): continue as new well before that.
  const maxUpdates = input.maxUpdatesPerRun ?? 1000;
  let updates = 0;
  /** The reallocation schedule changed: the loop computes its next wake-up again. */
  let rescheduled = false;
  const changed = (): void => {
    updates += 1;
    pendingAlerts.push(...dueAlerts(book));
  };

  const checkReserve = (req: ReserveRequest): void => {
    if (typeof req?.reservationId !== 'string' || req.reservationId === '') invalid('reservationId: required');
    if (!Number.isSafeInteger(req.amountNanos) || req.amountNanos < 0) invalid('amountNanos: must be a non-negative integer of nanodollars');
    if (req.force !== undefined && typeof req.force !== 'boolean') invalid('force: must be true or false');
    if (typeof req.category !== 'string' || own(book.settings.allocations, req.category) === undefined) {
      invalid(`category "${String(req.category)}" has no budget in scope "${book.scope}"; known categories: ${Object.keys(book.settings.allocations).join(', ')}`);
    }
    // A reserve from an activity attempt that has timed out: the retry's reserve counts. Rejected
    // here (not in history); the sending attempt, if it still listens, retries.
    if (req.notAfter !== undefined && own(book.reservations, req.reservationId) === undefined && Date.now() > req.notAfter) {
      invalid(`reserve ${req.reservationId} arrived after its activity attempt timed out`, 'StaleReserve');
    }
  };
  const checkSettle = (req: SettleInput): void => {
    if (typeof req?.reservationId !== 'string' || req.reservationId === '') invalid('reservationId: required');
    if (typeof req.category !== 'string' || req.category === '') invalid('category: required');
    if (!Number.isSafeInteger(req.costNanos) || req.costNanos < 0) invalid('costNanos: must be a non-negative integer of nanodollars');
    if (req.seq !== undefined && !(Number.isSafeInteger(req.seq) && req.seq > 0)) invalid('seq: must be the positive integer the reservation was granted with');
  };
  const applySettle = (req: SettleInput) => {
    const r = guard(() => settle(book, req.reservationId, req.category, req.costNanos, Date.now(), req.seq));
    if ((r.overshootNanos ?? 0) > 0) log.warn('settlement above its reservation', { scope: book.scope, reservationId: req.reservationId, overshootNanos: r.overshootNanos });
    return r;
  };
  setHandler(
    reserveUpdate,
    (req) => {
      const r = guard(() => reserve(book, req, Date.now()));
      changed();
      return r;
    },
    { validator: checkReserve },
  );
  setHandler(
    settleUpdate,
    (req) => {
      const r = applySettle(req);
      changed();
      return r;
    },
    { validator: checkSettle },
  );
  /**
   * Many requests' reserves, settlements and releases in one update (a worker's batcher folds
   * them). Ops apply in order, each on its own: one refused op is answered with its reason and
   * the others still apply. Every op is idempotent (an open reservation id is granted again, a
   * settlement by its sequence number), so a batch sent twice changes nothing the second time.
   */
  setHandler(
    batchUpdate,
    (ops) => {
      const results = ops.map((o): BudgetOpResult => {
        try {
          if (o.op === 'reserve') {
            checkReserve(o);
            return { ok: true, value: guard(() => reserve(book, o, Date.now())) };
          }
          if (o.op === 'settle') {
            checkSettle(o);
            return { ok: true, value: applySettle(o) };
          }
          if (o.op === 'release') {
            if (typeof o.reservationId !== 'string' || o.reservationId === '') invalid('reservationId: required');
            return { ok: true, value: release(book, o.reservationId, Number.isSafeInteger(o.attempt) ? o.attempt : undefined) };
          }
          return invalid(`op: unknown budget operation ${JSON.stringify((o as { op?: unknown }).op)}; known: reserve, settle, release`);
        } catch (e) {
          if (e instanceof ApplicationFailure) return { ok: false, type: e.type ?? 'InvalidBudgetMessage', message: e.message };
          throw e;
        }
      });
      changed();
      return results;
    },
    {
      validator: (ops: BudgetOp[]) => {
        if (!Array.isArray(ops) || ops.length === 0) invalid('batch: expected a non-empty list of budget operations');
        if (ops.length > MAX_BATCH_OPS) invalid(`batch: at most ${MAX_BATCH_OPS} operations per update (got ${ops.length})`);
        const at = ops.findIndex((o: unknown) => !isRecord(o));
        if (at !== -1) invalid(`batch: operation ${at} is not an object ({"op": "reserve" | "settle" | "release", ...})`);
      },
    },
  );
  setHandler(
    releaseUpdate,
    ({ reservationId }) => {
      updates += 1;
      return release(book, reservationId);
    },
    { validator: (a: { reservationId: string }) => refuseUnless('release', isRecord(a) && typeof a.reservationId === 'string' && a.reservationId !== '', '{"reservationId": "..."}') },
  );
  setHandler(
    adjustUpdate,
    (a) => {
      const { webhookUrl, reallocation, ...rest } = a;
      // New allocations from an operator replace the configured ones reallocation started from.
      if (rest.allocations) delete book.configuredAllocations;
      if (reallocation !== undefined) {
        delete book.nextReallocationAt;
        rescheduled = true;
      }
      book.settings = {
        ...book.settings,
        ...rest,
        ...(webhookUrl === null ? { webhookUrl: undefined } : webhookUrl !== undefined ? { webhookUrl } : {}),
        ...(reallocation === null ? { reallocation: undefined } : reallocation !== undefined ? { reallocation } : {}),
      };
      changed();
      log.info('budget adjusted', { scope: book.scope, totalNanos: book.settings.totalNanos });
      return status(book);
    },
    {
      validator: (a: AdjustInput) => {
        if (typeof a !== 'object' || a === null) invalid('adjust: expected an object of settings to change');
        const unknown = Object.keys(a).filter((k) => !(ADJUST_KEYS as readonly string[]).includes(k));
        if (unknown.length > 0) invalid(`adjust: unknown setting(s) ${unknown.join(', ')}; known: ${ADJUST_KEYS.join(', ')}`);
        const { webhookUrl, reallocation, ...rest } = a;
        if (webhookUrl !== undefined && webhookUrl !== null && typeof webhookUrl !== 'string') invalid('webhookUrl: must be an http(s) URL, or null to remove it');
        if (reallocation !== undefined && reallocation !== null && (typeof reallocation !== 'object' || typeof reallocation.everyMs !== 'number'))
          invalid('reallocation: must be {"everyMs": N, ...} or null to stop reallocating');
        const errs = validateSettings({ ...book.settings, ...rest, webhookUrl: typeof webhookUrl === 'string' ? webhookUrl : undefined, reallocation: reallocation ?? undefined });
        if (errs.length > 0) invalid(errs.join('; '));
      },
    },
  );
  setHandler(resetUpdate, () => {
    const now = Date.now();
    const current = book.period;
    const summary = closePeriod(book, { start: now, end: current.end }, 'reset');
    log.info('budget reset by operator', { scope: book.scope, spentNanos: summary.spentNanos });
    return summary;
  });
  const shouldContinueAsNew = (): boolean => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || updates >= maxUpdates || (input.maxHistoryEvents !== undefined && info.historyLength >= input.maxHistoryEvents);
  };
  setHandler(statusQuery, () => status(book));
  // Reallocation (a versioned addition: runs recorded before it never reallocate).
  const reallocating = patched('budget-reallocation');
  const reallocateNow = (by: 'schedule' | 'operator') => {
    const r = reallocate(book, Date.now(), by);
    if (r.moves.length > 0) {
      changed();
      log.info('budget reallocated', { scope: book.scope, by, moves: r.moves.length, why: r.why });
    }
    return r;
  };
  setHandler(reallocationPlanQuery, () => reallocationPlan(book, Date.now()));
  setHandler(reallocationsQuery, () => [...(book.reallocations ?? [])]);
  if (reallocating) setHandler(reallocateUpdate, () => reallocateNow('operator'));
  setHandler(historyQuery, () => [...book.history]);

  for (;;) {
    while (Date.now() >= book.period.end) {
      const summary = closePeriod(book, nextPeriod(book.period, book.settings.periodicity, book.settings.timeZone, book.settings.periodMs), 'timer');
      log.info('budget period closed', { scope: book.scope, start: summary.start, end: summary.end, spentNanos: summary.spentNanos });
    }
    const every = book.settings.reallocation?.everyMs;
    if (reallocating && every !== undefined) {
      book.nextReallocationAt ??= Date.now() + every;
      if (Date.now() >= book.nextReallocationAt) {
        reallocateNow('schedule');
        book.nextReallocationAt = Date.now() + every;
      }
    }
    const expired = expireReservations(book, Date.now());
    if (expired > 0) log.warn('abandoned reservations released', { scope: book.scope, expired });
    while (pendingAlerts.length > 0) {
      const alert = pendingAlerts.shift();
      if (!alert) continue;
      const notDelivered = (e: unknown): void => {
        // Never the entity's failure: note it and go on.
        log.warn('budget alert not delivered', { scope: book.scope, category: alert.category, threshold: alert.threshold, error: e instanceof Error ? e.message : String(e) });
      };
      if (alertsOffCriticalPath) {
        // Not awaited, and not waited for before continuing as new either (updates keep coming
        // meanwhile): an alert under way then finishes on its worker, its outcome unrecorded.
        void alerts.sendBudgetAlert({ alert, webhookUrl: book.settings.webhookUrl }).catch(notDelivered);
        continue;
      }
      try {
        await alerts.sendBudgetAlert({ alert, webhookUrl: book.settings.webhookUrl });
      } catch (e) {
        notDelivered(e);
      }
    }
    if (shouldContinueAsNew()) {
      await condition(allHandlersFinished);
      const { book: _old, ...carry } = input;
      const taskQueue = continueOnQueue(workflowInfo().taskQueue);
      await makeContinueAsNewFunc<typeof budgetEntity>(taskQueue ? { taskQueue } : {})({ ...carry, settings: book.settings, book });
    }
    const untilBoundary = Math.max(1, book.period.end - Date.now());
    const untilRealloc = reallocating && book.nextReallocationAt !== undefined && book.settings.reallocation ? Math.max(1, book.nextReallocationAt - Date.now()) : Infinity;
    const wake = Math.min(untilBoundary, book.settings.reservationTtlMs, untilRealloc);
    // One durable timer per loop: the period boundary (or the reservation TTL). Messages do not
    // restart it; the loop wakes early only for alerts to send or a history to compact.
    rescheduled = false;
    await condition(() => pendingAlerts.length > 0 || shouldContinueAsNew() || rescheduled, wake);
  }
}

// The signature its contract publishes for callers that start it by name.
budgetEntity satisfies BudgetEntityWorkflow;
