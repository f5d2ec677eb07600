/** The deferred lane's activities as workflow code calls them, and the steps the collector and a provider batch share. */
import { ActivityFailure, ApplicationFailure, log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { UnsettledSpend } from '../request/contract.js';
import { requestQueueOf } from '../taskQueues.js';
import type { DeferredActivities, LineRef } from './contract.js';

/** The activities run on the request queue, whose workers have the provider keys. */
export function deferredActs(): DeferredActivities {
  return proxyActivities<DeferredActivities>({
    taskQueue: requestQueueOf(workflowInfo().taskQueue),
    startToCloseTimeout: '10 minutes',
    // The activities heartbeat while they wait on the provider: a worker lost mid-call is retried
    // within half a minute. Not less: the SDK sends a heartbeat every 0.8 x this at most, and a
    // busy worker or server that delays one past the timeout starts a second delivery beside the
    // first (harmless, but twice the work).
    heartbeatTimeout: '30 seconds',
    // Provider outages are waited out: the lines' requests leave for live calls by their own deadlines.
    retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
  });
}

/** Tells lines' requests to go live; if even that fails, they leave on their own at their deadlines (never stuck). */
export async function returnOrLog(a: DeferredActivities, lines: readonly LineRef[], why: 'failed' | 'cancelled', message: string): Promise<void> {
  try {
    await a.returnLines({ lines, why, message });
  } catch (e) {
    log.warn('could not tell requests to go live; they leave at their deadlines', { lines: lines.length, error: e instanceof Error ? e.message : String(e) });
  }
}

/** What went wrong, for a request's result: an activity's own error, not the wrapper's "Activity task failed". */
export function failureText(e: unknown): string {
  if (e instanceof ActivityFailure && e.cause) return e.cause.message;
  return e instanceof Error ? e.message : String(e);
}

/** Settlements a failed delivery carried in its failure's details (settled by no one yet). */
export function unsettledOf(e: unknown): UnsettledSpend[] | undefined {
  const cause = e instanceof ActivityFailure ? e.cause : undefined;
  if (!(cause instanceof ApplicationFailure)) return undefined;
  const u = (cause.details?.[0] as { unsettled?: unknown } | undefined)?.unsettled;
  if (!Array.isArray(u)) return undefined;
  const items: unknown[] = u;
  return items.filter((x): x is UnsettledSpend => {
    const v = x as Partial<UnsettledSpend> | null;
    return typeof v?.reservationId === 'string' && typeof v.costNanos === 'number';
  });
}
