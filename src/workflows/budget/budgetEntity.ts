/**
 * The budget entity: one long-running workflow per budget scope that owns the period's spend. Every
 * reservation and settlement is an update applied in order to one book, so concurrent requests
 * cannot race past a hard limit; period resets are durable timers; the history is kept bounded by
 * continuing as new (with the whole book) when the server suggests it. What each message does is
 * BudgetEntityState's (./state.ts); this shell registers the handlers and owns the timers, the
 * alert deliveries and continue-as-new.
 */
import { condition, log, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { isRecord, refusePlaintext, refuseUnless } from '../messages.js';
import { reallocationPlan, type ReserveRequest, status } from '../../budget/book.js';
import {
  type AdjustInput,
  type BudgetOp,
  type SettleInput,
  adjustUpdate,
  type BudgetEntityInput,
  historyQuery,
  releaseUpdate,
  stateQuery,
  reserveUpdate,
  resetUpdate,
  settleUpdate,
  batchUpdate,
  statusQuery,
  reallocationPlanQuery,
  reallocationsQuery,
  reallocateUpdate,
} from './contract.js';
import { continueAsNewWhenDrained } from '../entity.js';
import { alertActivities } from '../alerts.js';
import type { BudgetEntityActivities, BudgetEntityWorkflow } from './contract.js';
import { BudgetEntityState } from './state.js';

const alerts = alertActivities<BudgetEntityActivities>();

export async function budgetEntity(input: BudgetEntityInput): Promise<void> {
  refusePlaintext([input], 'budgetEntity');
  const e = new BudgetEntityState(input);
  const book = e.book;
  setHandler(stateQuery, () => book);
  // Versioned change: alerts go out without holding up the loop (period boundaries, continue-as-new).
  // Runs recorded before it awaited each alert in turn and keep doing so.
  const alertsOffCriticalPath = patched('alerts-off-critical-path');
  setHandler(reserveUpdate, (req) => e.reserve(req), { validator: (req: ReserveRequest) => e.checkReserve(req) });
  setHandler(settleUpdate, (req) => e.settle(req), { validator: (req: SettleInput) => e.checkSettle(req) });
  setHandler(batchUpdate, (ops) => e.batch(ops), { validator: (ops: BudgetOp[]) => e.checkBatch(ops) });
  setHandler(releaseUpdate, ({ reservationId }) => e.release(reservationId), {
    validator: (a: { reservationId: string }) =>
      refuseUnless('release', isRecord(a) && typeof a.reservationId === 'string' && a.reservationId !== '', '{"reservationId": "..."}'),
  });
  setHandler(adjustUpdate, (a) => e.adjust(a), { validator: (a: AdjustInput) => e.checkAdjust(a) });
  setHandler(resetUpdate, () => e.reset());
  const shouldContinueAsNew = (): boolean => e.shouldContinueAsNew(input, workflowInfo());
  setHandler(statusQuery, () => status(book));
  // Reallocation (a versioned addition: runs recorded before it never reallocate).
  const reallocating = patched('budget-reallocation');
  setHandler(reallocationPlanQuery, () => reallocationPlan(book, Date.now()));
  setHandler(reallocationsQuery, () => [...(book.reallocations ?? [])]);
  if (reallocating) setHandler(reallocateUpdate, () => e.reallocate('operator'));
  setHandler(historyQuery, () => [...book.history]);

  for (;;) {
    e.closeDuePeriods();
    if (reallocating) e.reallocateIfDue();
    e.expireAbandoned();
    while (e.pendingAlerts.length > 0) {
      const alert = e.pendingAlerts.shift();
      if (!alert) continue;
      const notDelivered = (err: unknown): void => {
        // Never the entity's failure: note it and go on.
        log.warn('budget alert not delivered', {
          scope: book.scope,
          category: alert.category,
          threshold: alert.threshold,
          error: err instanceof Error ? err.message : String(err),
        });
      };
      if (alertsOffCriticalPath) {
        // Not awaited, and not waited for before continuing as new either (updates keep coming
        // meanwhile): an alert under way then finishes on its worker, its outcome unrecorded.
        void alerts.sendBudgetAlert({ alert, webhookUrl: book.settings.webhookUrl }).catch(notDelivered);
        continue;
      }
      try {
        await alerts.sendBudgetAlert({ alert, webhookUrl: book.settings.webhookUrl });
      } catch (err) {
        notDelivered(err);
      }
    }
    if (shouldContinueAsNew()) {
      const { book: _old, ...carry } = input;
      await continueAsNewWhenDrained<typeof budgetEntity>(() => [{ ...carry, settings: book.settings, book }]);
    }
    const wake = e.sleepMs(reallocating);
    // One durable timer per loop: the period boundary (or the reservation TTL). Messages do not
    // restart it; the loop wakes early only for alerts to send or a history to compact.
    e.rescheduled = false;
    await condition(() => e.pendingAlerts.length > 0 || shouldContinueAsNew() || e.rescheduled, wake);
  }
}

// The signature its contract publishes for callers that start it by name.
budgetEntity satisfies BudgetEntityWorkflow;
