/**
 * How the request workflow names what went wrong: an attempt's failure (the error taxonomy every
 * adapter maps into, plus timeouts, unavailable providers and worker bugs), and the Stop that ends
 * a request with a failure type and the outcome recorded on its search attributes.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import type { FailureKind } from '../../routing/retryDecision.js';
import { FAILURE_TYPES, type UnsettledSpend } from './contract.js';

/** One attempt's failure, as the retry decision reads it. */
export interface AttemptFailure {
  readonly kind: FailureKind;
  readonly status?: number | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly message: string;
}

/** A paid-call activity that failed as an activity (timed out, its workers lost): an attempt's failure. */
export function activityFailure(err: unknown): AttemptFailure {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof TimeoutFailure) return { kind: 'timeout', message: `activity ${cause.timeoutType} timeout` };
    if (cause instanceof ApplicationFailure) return { kind: 'internal', message: `${cause.type ?? 'Error'}: ${cause.message}` };
    return { kind: 'transient', message: cause?.message ?? err.message };
  }
  throw err;
}

/** A failure that ends the request: recorded on the run's search attributes, then thrown. */
export class Stop extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly outcome: string,
    readonly unsettled: UnsettledSpend[] = [],
  ) {
    super(message);
  }
}

const BUDGET_GONE = new Set(['BudgetUnavailable', 'BudgetRejected']);

/** A budget entity that is gone or refused a message: the request ends (with any spend it could not settle). */
export function budgetStop(err: unknown): Stop | undefined {
  // An activity's failure arrives wrapped in an ActivityFailure; a local activity's, as itself.
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (!(cause instanceof ApplicationFailure) || !BUDGET_GONE.has(cause.type ?? '')) return undefined;
  const u = (cause.details?.[0] as { unsettled?: UnsettledSpend } | undefined)?.unsettled;
  const unsettled = u && typeof u.costNanos === 'number' && typeof u.reservationId === 'string' ? [u] : [];
  return new Stop(FAILURE_TYPES.budgetUnavailable, `budget unavailable: ${cause.message}`, 'budget_unavailable', unsettled);
}

/** Routing refused the request (no eligible model, invalid constraints): it ends with that reason. */
export function routingStop(err: unknown): Stop | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (!(cause instanceof ApplicationFailure)) return undefined;
  if (cause.type === FAILURE_TYPES.noEligibleModel) return new Stop(cause.type, cause.message, 'no_model');
  if (cause.type === FAILURE_TYPES.invalidInput)
    return new Stop(cause.type, cause.message, cause.message.startsWith('invalid request:') ? 'invalid' : 'no_model');
  if (cause.type === FAILURE_TYPES.categoryPaused) return new Stop(cause.type, cause.message, 'paused');
  return undefined;
}

/** Any other error ends the request too, with a reason; never a workflow-task retry loop. */
export function asStop(e: unknown): Stop {
  if (e instanceof Stop) return e;
  const budget = budgetStop(e);
  if (budget) return budget;
  if (e instanceof ApplicationFailure) {
    const type = e.type ?? FAILURE_TYPES.internal;
    return new Stop(
      type,
      e.message,
      type === FAILURE_TYPES.noEligibleModel
        ? 'no_model'
        : type === FAILURE_TYPES.invalidInput
          ? 'invalid'
          : type === FAILURE_TYPES.categoryPaused
            ? 'paused'
            : 'failed',
    );
  }
  if (e instanceof ActivityFailure)
    return new Stop(FAILURE_TYPES.internal, `${e.activityType ?? 'activity'} failed: ${e.cause?.message ?? e.message}`, 'failed');
  return new Stop(FAILURE_TYPES.internal, `internal error: ${e instanceof Error ? e.message : String(e)}`, 'failed');
}
