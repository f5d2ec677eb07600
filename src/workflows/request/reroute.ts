/**
 * The re-route step: select again, with what the request has learned (models too dear for the
 * budget, answers that failed their checks, an operator's escalation). The new chain is tried
 * from its start, once serve() takes it.
 */
import { ActivityFailure, ApplicationFailure, patched, proxyLocalActivities } from '@temporalio/workflow';
import type { RequestActivities } from './activities.js';
import type { Tier } from '../../catalog/tiers.js';
import { FAILURE_TYPES } from './contract.js';
import { Stop } from './failure.js';
import type { RequestState } from './state.js';
import { type RecordedSelection, selectWithRetryPolicy } from './v4/recorded.js';

const { selectRoute } = proxyLocalActivities<RequestActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 ms' },
});

export interface RerouteBy {
  /** At most this much per attempt (what the budget has left). */
  readonly costCapNanos?: number;
  readonly excludeModels?: string[];
  /** Drop the request's pinned model. */
  readonly unpin?: boolean;
  /** Pin this model instead. */
  readonly model?: string;
  readonly minTier?: Tier;
}

/** Selects again (the caller's Next carries the selection to serve()); no eligible model ends the request (Stop, NoEligibleModel). */
export async function reroute(s: RequestState, by: RerouteBy): Promise<RecordedSelection> {
  const { prompt: _p, messages: _m, system: _s, context: _c, tools: _t, toolChoice: _tc, parallelToolCalls: _pt, quality, ...request } = s.req;
  if (by.costCapNanos !== undefined) request.costCapNanos = Math.min(by.costCapNanos, request.costCapNanos ?? Number.MAX_SAFE_INTEGER);
  if (by.unpin) delete request.model;
  if (by.model !== undefined) request.model = by.model;
  if (!s.cls) throw new Stop(FAILURE_TYPES.internal, 'reroute before the request was classified', 'failed');
  try {
    const input = {
      request,
      ...(quality?.judge?.model ? { judgeModel: quality.judge.model } : {}),
      classification: s.cls,
      ...(by.excludeModels ? { excludeModels: by.excludeModels } : {}),
      ...(by.minTier ? { minTier: by.minTier } : {}),
    };
    // Runs recorded before verdicts selected with the worker's retry policy in the answer.
    return await (patched('route-selection') ? selectRoute(input) : selectWithRetryPolicy(input));
  } catch (e) {
    const cause = e instanceof ActivityFailure ? e.cause : e;
    if (cause instanceof ApplicationFailure)
      throw new Stop(cause.type ?? FAILURE_TYPES.noEligibleModel, cause.message, cause.type === FAILURE_TYPES.categoryPaused ? 'paused' : 'no_model');
    throw e;
  }
}
