/**
 * What runs recorded before `route-selection` (v4 histories) need and nothing newer does: their
 * selections carry the worker's retry policy, so their failed attempts are decided from it, and
 * their re-routes select with `selectModels`. Retire with the `route-selection` patch
 * (src/workflows/patches.ts).
 */
import { proxyLocalActivities } from '@temporalio/workflow';
import type { RequestActivities, RouteSelection, SelectInput, SelectOutput } from '../activities.js';
import { decideAfterFailure, type FailureFacts, type RetryVerdict } from '../../../routing/retryDecision.js';
import { own } from '../../../util/names.js';

/** A selection as recorded: runs recorded before verdicts (v4 histories) have the worker's retry policy in it. */
export type RecordedSelection = RouteSelection & Partial<Pick<SelectOutput, 'retry' | 'retryByModel'>>;

const { selectModels } = proxyLocalActivities<RequestActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 ms' },
});

/** A v4 run's re-route: the selection with the worker's retry policy in it. */
export function selectWithRetryPolicy(input: SelectInput): Promise<SelectOutput> {
  return selectModels(input);
}

/** A v4 run's verdict on a failed attempt, from the retry policy its selection recorded; undefined for newer runs. */
export function recordedVerdict(sel: RecordedSelection | undefined, model: string, facts: FailureFacts): RetryVerdict | undefined {
  if (!sel?.retry) return undefined;
  const policy = (sel.retryByModel ? own(sel.retryByModel, model) : undefined) ?? sel.retry;
  return { decision: decideAfterFailure(facts, policy), maxRateLimitWaitMs: sel.retry.maxRateLimitWaitMs };
}
