/**
 * The paid-call step (reserve, call, settle or release: one activity) and the hedge step (a second
 * paid call to a higher tier when the first has not answered in time; the first answer wins and
 * the other is cancelled, its reservation released, or settled if it answered too).
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
  sleep,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { PaidCallInput, PaidCallOutcome, RequestActivities, RouteInput } from './activities.js';
import type { Candidate } from '../../routing/router.js';
import { TIERS } from '../../catalog/tiers.js';
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
  retry: { maximumAttempts: PAID_CALL_ATTEMPTS, initialInterval: '1 second', nonRetryableErrorTypes: ['BudgetRejected', 'BudgetUnavailable', 'NoEligibleModel', 'InvalidInput'] },
  // A cancelled call (hedged out, operator cancel) releases its own reservation: wait for that.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

/**
 * How long a settlement waits for its entity as a local activity (holding a workflow-task slot of
 * its worker, and adding a few events per workflow-task heartbeat); after that it goes on waiting
 * in a regular activity, which holds neither.
 */
export const SETTLE_LOCALLY_FOR = '1 minute';

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
}

/** What a later call sends: the text inline (small requests), or a reference to the run's input; a judge call its question. */
function callFor(s: RequestState, attemptId: string, judge: { answer: string; question?: string } | undefined): PaidCallInput['call'] {
  const req = s.req;
  const byRef = s.textByRef;
  const base = { workflowId: s.workflowId, runId: s.runId, attemptId };
  if (judge) return { ...base, judge: { answer: judge.answer, ...(byRef || judge.question === undefined ? {} : { prompt: judge.question }) }, ...(byRef ? { promptRef: true as const } : {}) };
  return { ...base, temperature: req.temperature, ...(byRef ? { promptRef: true as const } : callTextOf(req)) };
}

/** The request to validate and route: inline, or by reference to the run (large requests). */
export function routeInput(s: RequestState): RouteInput {
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

type Pay = { readonly route: true } | { readonly cand: Candidate; readonly attempt?: number; readonly judge?: { readonly answer: string; readonly question?: string; readonly reserveNanos: number } };

/**
 * Reserve, call and settle for one attempt. Provider failures and activity failures alike come
 * back as a `failed` outcome; a budget entity that is gone, or routing that finds no model, end
 * the request (thrown). With `route`, the activity classifies and selects first and pays for the
 * chain's first model; the state then holds the routing.
 */
export async function pay(s: RequestState, what: Pay, ids?: { attemptId: string; reservationId: string; t0: number }): Promise<Leg> {
  const judge = 'cand' in what ? what.judge : undefined;
  const { attemptId, reservationId } = ids ?? s.nextAttempt(judge ? 'j' : 'a');
  const t0 = ids?.t0 ?? Date.now();
  // Why this call goes where it goes: set by the decision before it (judge calls are not routing).
  const reason = s.nextReason;
  if (!judge) s.nextReason = 'retry';
  /** A call was made (answered, failed, or cancelled by a hedge): its routing decision. */
  const routed = (cand: Candidate): void => {
    if (judge) return;
    const preferred = s.sel?.decision.preferredTier ?? cand.tier;
    // A first call that left the preferred tier because its models were left out is put down to that.
    const leftOut = reason === 'primary' && cand.tier !== preferred ? s.sel?.preferredTierSkipped : undefined;
    s.routes.push({ fromTier: preferred, toTier: cand.tier, reason: leftOut ?? reason });
  };
  const input: PaidCallInput =
    'route' in what
      ? // The first attempt: the activity validates, routes, and sends the text it validated.
        { route: routeInput(s), call: { workflowId: s.workflowId, runId: s.runId, attemptId }, budget: { reservationId, force: s.approved }, maxAttempts: PAID_CALL_ATTEMPTS }
      : {
          model: { name: what.cand.model, maxOutputTokens: judge ? 16 : what.cand.maxOutputTokens, reserveNanos: judge ? judge.reserveNanos : s.reserveFor(what.cand) },
          call: callFor(s, attemptId, judge),
          budget: { scope: s.req.budgetScope, category: s.req.category, reservationId, force: s.approved },
          maxAttempts: PAID_CALL_ATTEMPTS,
          ...(what.attempt !== undefined && what.attempt > 1 ? { attempt: what.attempt } : {}),
        };
  let leg: Leg;
  try {
    const out = await paidCall(input);
    if (out.routed) s.routed(out.routed.classification, out.routed.selection, out.routed.request);
    const cand = 'cand' in what ? what.cand : s.chain.find((c) => c.model === out.model);
    if (!cand) throw new Error(`paid call answered for ${out.model}, which is not in the chain`);
    leg = { cand, attemptId, t0, outcome: out.outcome };
  } catch (err) {
    if (isCancellation(err)) {
      if ('cand' in what) routed(what.cand);
      throw err;
    }
    const stop = budgetStop(err) ?? ('route' in what ? routingStop(err) : undefined);
    if (stop) throw stop;
    if ('route' in what) await routeLocally(s);
    // The activity failed as an activity: its reservation may be open; free it, wherever it is.
    await CancellationScope.nonCancellable(() => releaseReservation({ scope: s.req.budgetScope, reservationId, workflowId: s.workflowId }));
    const cand = 'cand' in what ? what.cand : s.chain[0];
    if (!cand) throw err;
    routed(cand);
    return { cand, attemptId, t0, outcome: { kind: 'failed', failure: activityFailure(err) } };
  }
  const o = leg.outcome;
  // A denied reservation called nothing: the next call keeps this one's reason.
  if (o.kind === 'denied') {
    if (!judge) s.nextReason = reason;
  } else {
    routed(leg.cand);
  }
  if (o.kind === 'answered') {
    // The answer is in history now: settle it (runs to completion even when the leg is cancelled).
    const settlement = {
      scope: s.req.budgetScope,
      shard: o.shard,
      workflowId: s.workflowId,
      attemptId,
      reservationId,
      model: leg.cand.model,
      category: s.req.category,
      usage: o.out.usage,
      costNanos: o.out.costNanos,
      seq: o.seq,
      feature: s.req.feature ?? UNSPECIFIED_FEATURE,
      latencyMs: o.out.latencyMs,
      baselineNanos: o.out.premiumBaselineCostNanos,
    };
    try {
      await CancellationScope.nonCancellable(() => settle(settlement));
    } catch (err) {
      throw budgetStop(err) ?? err;
    }
  }
  return leg;
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

/** The hedge for a candidate: the first later candidate of a higher tier, else the next one. */
export function hedgeFor(s: RequestState, c: Candidate): Candidate | undefined {
  const rest = s.chain.filter((x) => x.model !== c.model && !s.skipped.has(x.model));
  return rest.find((x) => TIERS.indexOf(x.tier) > TIERS.indexOf(c.tier)) ?? rest[0];
}

/** Latency SLO: if the first call has not answered in `afterMs`, start the hedge; the first answer wins. */
export async function hedged(s: RequestState, cand: Candidate, hedgeTo: Candidate, afterMs: number): Promise<Leg> {
  /** A leg this step cancelled ends as `hedged_out`; a cancellation of the request itself goes on up. */
  const leg = (
    c: Candidate,
    scope: CancellationScope,
    ids: { attemptId: string; reservationId: string; t0: number },
    cancelledHere: () => boolean,
  ): Promise<Leg | { cancelled: true; cand: Candidate; attemptId: string; t0: number }> =>
    scope
      .run(() => pay(s, { cand: c }, ids))
      .catch((e: unknown) => {
        if (isCancellation(e) && cancelledHere()) return { cancelled: true as const, cand: c, attemptId: ids.attemptId, t0: ids.t0 };
        throw e;
      });
  let cancelled: 'a' | 'b' | undefined;
  const scopeA = new CancellationScope();
  const pA = leg(cand, scopeA, { ...s.nextAttempt(), t0: Date.now() }, () => cancelled === 'a');
  const timerScope = new CancellationScope();
  const timer = timerScope
    .run(() => sleep(afterMs))
    .then(
      () => 'timer' as const,
      () => 'timer' as const,
    );
  if ((await Promise.race([pA.then(() => 'answer' as const), timer])) === 'answer') {
    timerScope.cancel();
    const a = await pA;
    if ('cancelled' in a) throw new Error('a leg was cancelled before the hedge started');
    return a;
  }
  const scopeB = new CancellationScope();
  s.nextReason = 'hedge';
  const pB = leg(hedgeTo, scopeB, { ...s.nextAttempt(), t0: Date.now() }, () => cancelled === 'b');
  const answered = (l: Leg | { cancelled: true }): l is Leg & { outcome: { kind: 'answered' } } => !('cancelled' in l) && l.outcome.kind === 'answered';
  // Whichever answers first wins; a leg that failed or was denied waits for the other.
  const tag = <T>(p: Promise<T>, which: 'a' | 'b') => p.then((l) => ({ which, l }));
  const first = await Promise.race([tag(pA, 'a'), tag(pB, 'b')]);
  const other = first.which === 'a' ? pB : pA;
  let winner: Leg;
  let loser: 'a' | 'b';
  if (answered(first.l)) {
    winner = first.l;
    loser = first.which === 'a' ? 'b' : 'a';
    cancelled = loser;
    (loser === 'a' ? scopeA : scopeB).cancel();
  } else {
    const o = await other;
    const [a, b] = first.which === 'a' ? [first.l, o] : [o, first.l];
    if (!answered(o)) {
      // Neither answered: the first call's outcome goes the usual way; a failed hedge is recorded here.
      if ('cancelled' in a || 'cancelled' in b) throw new Error('a leg was cancelled before either answered');
      if (b.outcome.kind === 'failed') {
        const f = b.outcome.failure;
        s.record({
          attemptId: b.attemptId,
          model: b.cand.model,
          provider: b.cand.provider,
          tier: b.cand.tier,
          outcome: f.kind,
          status: f.status,
          message: f.message,
          startedAt: new Date(b.t0).toISOString(),
          durationMs: Date.now() - b.t0,
          decision: 'hedge failed too',
        });
      }
      return a;
    }
    winner = o;
    loser = first.which;
  }
  log.info('latency SLO missed; hedged', { first: cand.model, hedge: hedgeTo.model, afterMs });
  const lost = await (loser === 'a' ? pA : pB);
  const at = { attemptId: lost.attemptId, model: lost.cand.model, provider: lost.cand.provider, tier: lost.cand.tier, startedAt: new Date(lost.t0).toISOString(), durationMs: Date.now() - lost.t0 };
  if (answered(lost)) {
    // Both answered: both were paid for.
    s.record({ ...at, outcome: 'ok', costNanos: lost.outcome.out.costNanos, decision: `hedge: ${winner.cand.model} answered first` });
  } else if ('cancelled' in lost || lost.outcome.kind !== 'denied') {
    s.record({ ...at, outcome: 'hedged_out', decision: `cancelled: ${winner.cand.model} answered first` });
  }
  if (winner.cand === hedgeTo) s.escalations.push({ from: cand.model, to: hedgeTo.model, reason: `latency: no answer within ${afterMs} ms` });
  return winner;
}
