/**
 * The request's legs: each is one paid-call activity (reserve, call, and release what it did not
 * spend) followed, for an answer, by its settlement. Three kinds: the first call, which also
 * validates and routes; a call to a candidate of the chain; a judge's call. (The activity that
 * serves them is activities/request/paidCall.ts.)
 */
import {
  ActivityFailure,
  type ActivityOptions,
  ActivityCancellationType,
  type LocalActivityOptions,
  CancellationScope,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { PaidCallInput, PaidCallOutcome, RequestActivities, RouteInput } from './activities.js';
import type { Candidate } from '../../routing/router.js';
import type { RoutingReason } from '../sinks.js';
import { callTextOf } from '../conversation.js';
import { activityFailure, budgetStop, routingStop } from './failure.js';
import type { RequestState } from './state.js';
import { UNSPECIFIED_FEATURE } from './contract.js';

/** Temporal's attempts of a paid call: a lost worker or a bug is retried once. */
const PAID_CALL_ATTEMPTS = 2;

const { paidCall } = proxyActivities<RequestActivities>({
  // The SDK times the provider call out first, and heartbeats catch a lost worker within seconds;
  // this bound only catches a stuck one.
  startToCloseTimeout: '15 minutes',
  // Short, so that a cancellation (hedging, operator cancel) reaches the call within ~3 s.
  heartbeatTimeout: '4 seconds',
  retry: {
    maximumAttempts: PAID_CALL_ATTEMPTS,
    initialInterval: '1 second',
    nonRetryableErrorTypes: ['BudgetRejected', 'BudgetUnavailable', 'NoEligibleModel', 'InvalidInput'],
  },
  // A cancelled call (hedged out, operator cancel) releases its own reservation: wait for that.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

/**
 * How long a settlement waits for its entity as a local activity (holding a workflow-task slot of
 * its worker, and adding a few events per workflow-task heartbeat); after that it goes on waiting
 * in a regular activity, which holds neither.
 */
const SETTLE_LOCALLY_FOR = '1 minute';

/** Budget messages (settlements, releases) must not be lost: they retry until the entity answers. */
const budgetMessageOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 ms', maximumInterval: '30 seconds', nonRetryableErrorTypes: ['BudgetRejected'] },
} satisfies ActivityOptions & LocalActivityOptions;
const { releaseReservation, recordSpend: recordSpendActivity } = proxyActivities<RequestActivities>(budgetMessageOptions);
/**
 * The settlement as a local activity: it runs on the worker that took the answer, in the workflow
 * task that records it, so a simple request has the floor's shape (one activity, two workflow
 * tasks). A worker lost mid-settlement fails that task; the next worker replays the answer from
 * history and settles again (ignored by sequence number), never calling the provider twice.
 */
const { recordSpend: recordSpendLocally } = proxyLocalActivities<RequestActivities>({ ...budgetMessageOptions, scheduleToCloseTimeout: SETTLE_LOCALLY_FOR });

const { route } = proxyLocalActivities<RequestActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 ms' },
});

/** One paid call's result, with the attempt it was made under. */
export interface Leg {
  readonly cand: Candidate;
  readonly attemptId: string;
  readonly t0: number;
  readonly outcome: PaidCallOutcome;
  /** Answered in this provider batch (absent: a live call). */
  readonly batchId?: string | undefined;
}

/** What a later call sends: the text inline (small requests), or a reference to the run's input; a judge call its question. */
function callFor(s: RequestState, attemptId: string, judge: { answer: string; question?: string } | undefined): PaidCallInput['call'] {
  const req = s.req;
  const byRef = s.textByRef;
  const base = { workflowId: s.workflowId, runId: s.runId, attemptId };
  if (judge)
    return {
      ...base,
      judge: { answer: judge.answer, ...(byRef || judge.question === undefined ? {} : { prompt: judge.question }) },
      ...(byRef ? { promptRef: true as const } : {}),
    };
  return {
    ...base,
    temperature: req.temperature,
    ...(byRef ? { promptRef: true as const } : callTextOf(req)),
    ...(streaming(s) && req.stream ? { stream: req.stream } : {}),
  };
}

/**
 * A streamed request (a gateway client's `stream: true`): its answer calls relay the text as it
 * comes, it is never hedged (two answers would interleave), and checks cannot escalate an answer
 * the client already has. Runs recorded before streaming never set `stream`.
 */
export function streaming(s: RequestState): boolean {
  return s.req.stream !== undefined && patched('request-stream');
}

/** The request to validate and route: inline, or by reference to the run (large requests). */
function routeInput(s: RequestState): RouteInput {
  return { start: s.textByRef ? { run: { workflowId: s.workflowId, runId: s.runId } } : { request: s.raw } };
}

/** Validate, classify and select as a local activity (hedged requests; or when a paid call could not). */
export async function routeLocally(s: RequestState): Promise<void> {
  try {
    const r = await route(routeInput(s));
    s.routed(r.classification, r.selection, r.request);
  } catch (e) {
    throw routingStop(e) ?? e;
  }
}

/** The fields an attempt is recorded with: which call, where it went, when it started and how long it took. */
export function attemptOf(leg: Pick<Leg, 'attemptId' | 'cand' | 't0' | 'batchId'>) {
  return {
    ...(leg.batchId !== undefined ? { mode: 'batch' as const, batchId: leg.batchId } : {}),
    attemptId: leg.attemptId,
    model: leg.cand.model,
    provider: leg.cand.provider,
    tier: leg.cand.tier,
    startedAt: new Date(leg.t0).toISOString(),
    durationMs: Date.now() - leg.t0,
  };
}

/** A call's attempt ids (a hedge makes them before its legs start). */
export interface LegIds {
  readonly attemptId: string;
  readonly reservationId: string;
  readonly t0: number;
}

/** A call was made (answered, failed, or cancelled by a hedge): its routing decision, for the metrics. */
export function routedTo(s: RequestState, cand: Candidate, reason: RoutingReason): void {
  const preferred = s.sel?.decision.preferredTier ?? cand.tier;
  // A first call that left the preferred tier because its models were left out is put down to that.
  const leftOut = reason === 'primary' && cand.tier !== preferred ? s.sel?.preferredTierSkipped : undefined;
  s.routes.push({ fromTier: preferred, toTier: cand.tier, reason: leftOut ?? reason });
}

/** The activity failed as an activity: its reservation may be open; free it, wherever it is. */
async function release(s: RequestState, reservationId: string): Promise<void> {
  await CancellationScope.nonCancellable(() => releaseReservation({ scope: s.req.budgetScope, reservationId, workflowId: s.workflowId }));
}

/** The paid call's input for a model chosen in the workflow (a candidate or a judge). */
function modelCall(
  s: RequestState,
  ids: LegIds,
  model: PaidCallInput['model'],
  judge: { answer: string; question?: string } | undefined,
  attempt: number | undefined,
): PaidCallInput {
  return {
    model,
    call: callFor(s, ids.attemptId, judge),
    budget: { scope: s.req.budgetScope, category: s.req.category, reservationId: ids.reservationId, force: s.approved },
    maxAttempts: PAID_CALL_ATTEMPTS,
    ...(attempt !== undefined && attempt > 1 ? { attempt } : {}),
  };
}

export function newIds(s: RequestState, prefix: 'a' | 'j'): LegIds {
  return { ...s.nextAttempt(prefix), t0: Date.now() };
}

/**
 * The first call: one activity validates the input, classifies, selects, and pays for the chain's
 * first model; the state then holds the routing. Provider failures and activity failures alike
 * come back as a `failed` outcome; a budget entity that is gone, or routing that finds no model,
 * end the request (thrown).
 */
export async function payFirst(s: RequestState): Promise<Leg> {
  const ids = newIds(s, 'a');
  const input: PaidCallInput = {
    route: routeInput(s),
    call: { workflowId: s.workflowId, runId: s.runId, attemptId: ids.attemptId },
    budget: { reservationId: ids.reservationId, force: s.approved },
    maxAttempts: PAID_CALL_ATTEMPTS,
  };
  let leg: Leg;
  try {
    const out = await paidCall(input);
    if (out.routed) s.routed(out.routed.classification, out.routed.selection, out.routed.request);
    const cand = s.chain.find((c) => c.model === out.model);
    if (!cand) throw new Error(`paid call answered for ${out.model}, which is not in the chain`);
    leg = { ...ids, cand, outcome: out.outcome };
  } catch (err) {
    if (isCancellation(err)) throw err;
    const stop = budgetStop(err) ?? routingStop(err);
    if (stop) throw stop;
    // The activity could not say how it routed: route here, and count the attempt against the chain's first model.
    await routeLocally(s);
    await release(s, ids.reservationId);
    const cand = s.chain[0];
    if (!cand) throw err;
    routedTo(s, cand, 'primary');
    return { ...ids, cand, outcome: { kind: 'failed', failure: activityFailure(err) } };
  }
  if (leg.outcome.kind !== 'denied') routedTo(s, leg.cand, 'primary');
  await settleIfAnswered(s, leg, ids.reservationId);
  return leg;
}

/** A call to a candidate of the chain (its `attempt`-th on that model), sent there for `reason`. */
export async function payCandidate(s: RequestState, cand: Candidate, attempt: number, reason: RoutingReason, ids: LegIds = newIds(s, 'a')): Promise<Leg> {
  const input = modelCall(s, ids, { name: cand.model, maxOutputTokens: cand.maxOutputTokens, reserveNanos: s.reserveFor(cand) }, undefined, attempt);
  let leg: Leg;
  try {
    leg = { ...ids, cand, outcome: (await paidCall(input)).outcome };
  } catch (err) {
    if (isCancellation(err)) {
      routedTo(s, cand, reason);
      throw err;
    }
    const stop = budgetStop(err);
    if (stop) throw stop;
    await release(s, ids.reservationId);
    routedTo(s, cand, reason);
    return { ...ids, cand, outcome: { kind: 'failed', failure: activityFailure(err) } };
  }
  // A denied reservation called nothing: no routing decision.
  if (leg.outcome.kind !== 'denied') routedTo(s, cand, reason);
  await settleIfAnswered(s, leg, ids.reservationId);
  return leg;
}

/** A judge call: paid for like an attempt, but no routing decision. */
export async function payJudge(
  s: RequestState,
  cand: Candidate,
  judge: { readonly answer: string; readonly question?: string; readonly reserveNanos: number },
): Promise<Leg> {
  const ids = newIds(s, 'j');
  const input = modelCall(s, ids, { name: cand.model, maxOutputTokens: 16, reserveNanos: judge.reserveNanos }, judge, undefined);
  let leg: Leg;
  try {
    leg = { ...ids, cand, outcome: (await paidCall(input)).outcome };
  } catch (err) {
    if (isCancellation(err)) throw err;
    const stop = budgetStop(err);
    if (stop) throw stop;
    await release(s, ids.reservationId);
    return { ...ids, cand, outcome: { kind: 'failed', failure: activityFailure(err) } };
  }
  await settleIfAnswered(s, leg, ids.reservationId);
  return leg;
}

/** The answer is in history now: settle it (runs to completion even when the leg is cancelled). */
export async function settleIfAnswered(s: RequestState, leg: Leg, reservationId: string, batch?: { liveNanos: number }): Promise<void> {
  const o = leg.outcome;
  if (o.kind !== 'answered') return;
  const settlement = {
    scope: s.req.budgetScope,
    shard: o.shard,
    workflowId: s.workflowId,
    attemptId: leg.attemptId,
    reservationId,
    model: leg.cand.model,
    category: s.req.category,
    usage: o.out.usage,
    costNanos: o.out.costNanos,
    seq: o.seq,
    feature: s.req.feature ?? UNSPECIFIED_FEATURE,
    latencyMs: o.out.latencyMs,
    baselineNanos: o.out.premiumBaselineCostNanos,
    // Only requests sent through a gateway key carry one (runs recorded before keys never do).
    ...(s.req.keyId !== undefined ? { keyId: s.req.keyId } : {}),
    // An answer from a provider batch: its mode and what it would have cost live (runs before batches never have one).
    ...(batch ? { mode: 'batch' as const, liveNanos: batch.liveNanos } : {}),
  };
  try {
    await CancellationScope.nonCancellable(() => settle(settlement));
  } catch (err) {
    throw budgetStop(err) ?? err;
  }
}

/**
 * Settles an answer: as a local activity, and in a regular activity if the entity has not answered
 * within SETTLE_LOCALLY_FOR (both idempotent by sequence number). Runs started before the
 * settlement became local settle in an activity, as they did.
 */
async function settle(input: Parameters<RequestActivities['recordSpend']>[0]): Promise<void> {
  if (!patched('settle-local')) {
    await recordSpendActivity(input);
    return;
  }
  try {
    await recordSpendLocally(input);
  } catch (e) {
    const timedOut = e instanceof TimeoutFailure || (e instanceof ActivityFailure && e.cause instanceof TimeoutFailure);
    if (!timedOut) throw e;
    log.warn('budget entity slow to answer a settlement; waiting in an activity instead', { reservationId: input.reservationId });
    await recordSpendActivity(input);
  }
}
