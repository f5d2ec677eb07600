/**
 * A request with a deadline: before any live call, it may join its model's collector and wait for
 * the provider's batch to answer, at the batch price. It routes first (the same chain as live);
 * the join activity reserves at the batch price and says whether the model can be deferred at all.
 * It then waits in one activity the deliverer completes (its timeout is the leave time), and the
 * deliverer settles what it hands over (runs before `deferred-await` wait on a timer for an update
 * and settle here). The answer comes back as a leg like a live call's (checks and escalation as
 * usual: an escalation goes live). A request whose line errors, expires or is cancelled, or whose
 * deadline comes near, leaves for a live call; a line the provider answers after that is charged as
 * duplicated by the activity that delivers it. docs/deferred.md.
 */
import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { deadlineAt } from '../../deferred/deadline.js';
import {
  batchWaitActivityId,
  collectorWorkflowId,
  type DeferredActivities,
  type DeferredAnswer,
  deferredAnswerUpdate,
  type JoinOutput,
  leaveSignal,
  lineIdOf,
} from '../deferred/contract.js';
import { requestQueueOf } from '../taskQueues.js';
import { type Leg, newIds, routedTo, routeLocally, settleIfAnswered } from './legs.js';
import type { RequestState } from './state.js';
import { type Deferral, UNSPECIFIED_FEATURE } from './contract.js';
import type { Candidate } from '../../routing/router.js';
import type { RequestActivities } from './activities.js';

// Local: the join runs in the workflow task that routed the request, so the two cost one action.
const { joinDeferred } = proxyLocalActivities<DeferredActivities>({
  startToCloseTimeout: '20 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second', nonRetryableErrorTypes: ['BudgetUnavailable'] },
});
const { releaseReservation } = proxyActivities<RequestActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 ms', maximumInterval: '30 seconds' },
});

/** A line that failed in its batch (not one the request left) goes to one more batch when its deadline allows. */
const MAX_BATCHES = 2;
const RETRIED: readonly string[] = ['errored', 'expired', 'failed'];

/** The answered leg from the provider's batch; undefined when the request goes live (s.deferral says why). */
export async function deferredLeg(s: RequestState, deadline: string): Promise<Leg | undefined> {
  // Validated first: a bad deadline is refused as invalid input, naming the field.
  await routeLocally(s);
  const deadlineMs = deadlineAt(deadline, s.startedAt);
  // A stronger model whose batch price is at or below the routed one's (deferred.upgrade); a live call still starts from the chain.
  const pick = s.sel?.decision.deferredPick;
  const routed = s.chain[0];
  let cand: Candidate | undefined = pick ?? routed;
  if (!cand) return undefined;
  let about: Pick<Deferral, 'upgradedFrom' | 'upgradeReason'> = pick ? { upgradedFrom: pick.instead, upgradeReason: pick.reason } : {};
  let answer: DeferredAnswer | undefined;
  // Waiting from before the join: a batch may answer before the join activity's result is recorded.
  let waitingFor: string | undefined;
  /**
   * Since `deferred-await`, the request waits in an activity that the deliverer completes (one
   * action where a timer and an update were two), and the deliverer settles what it takes.
   */
  const inActivity = patched('deferred-await');
  /** Attempts whose answer came by completing the wait: a retried delivery's update is told `taken`. */
  const took = new Set<string>();
  // Taken once, by the attempt still waiting; anything else is a line the request has left.
  setHandler(deferredAnswerUpdate, (a) => {
    if (took.has(a.attemptId)) return 'taken';
    if (a.attemptId !== waitingFor || answer !== undefined) return 'left';
    answer = a;
    return 'taken';
  });
  let earlier: Deferral['earlier'];
  for (let round = 1; ; round++) {
    const model = cand.model;
    answer = undefined;
    const ids = newIds(s, 'a');
    waitingFor = ids.attemptId;
    const leave = async (lineId: string | undefined): Promise<void> => {
      waitingFor = undefined;
      await CancellationScope.nonCancellable(async () => {
        if (lineId !== undefined)
          await getExternalWorkflowHandle(collectorWorkflowId(requestQueueOf(workflowInfo().taskQueue), model))
            .signal(leaveSignal, { id: lineId })
            .catch(() => undefined);
        await releaseReservation({ scope: s.req.budgetScope, reservationId: ids.reservationId, workflowId: s.workflowId });
      });
    };
    let joined: JoinOutput;
    try {
      joined = await joinDeferred({
        workflowId: s.workflowId,
        runId: s.runId,
        attemptId: ids.attemptId,
        reservationId: ids.reservationId,
        model: cand.model,
        scope: s.req.budgetScope,
        category: s.req.category,
        deadlineMs,
        inputTokens: s.cls?.inputTokens ?? 0,
        maxOutputTokens: cand.maxOutputTokens,
        force: s.approved,
        ...(inActivity
          ? { settleOnDelivery: true, feature: s.req.feature ?? UNSPECIFIED_FEATURE, ...(s.req.keyId !== undefined ? { keyId: s.req.keyId } : {}) }
          : {}),
      });
    } catch (e) {
      if (isCancellation(e)) throw e;
      // The join may have reached the collector: its line, if answered, is charged as duplicated.
      await leave(lineIdOf(s.workflowId, ids.attemptId));
      s.deferral = {
        model: cand.model,
        outcome: 'not_deferred',
        message: `could not join the batch (${e instanceof Error ? e.message : String(e)}): called live`,
        ...about,
        ...(earlier ? { earlier } : {}),
      };
      return undefined;
    }
    if (!joined.joined) {
      waitingFor = undefined;
      if (pick && cand === pick && routed && routed.model !== pick.model) {
        // The stronger model's batch would not take it (its latency leaves too little time, no batch
        // API on this worker, the budget): the routed model's batch may, before any live call.
        about = { upgradeReason: `${pick.reason}; not taken (${joined.why}), so ${routed.model}'s batch instead` };
        cand = routed;
        round -= 1;
        continue;
      }
      s.deferral = { model: cand.model, outcome: 'not_deferred', message: joined.why, ...about, ...(earlier ? { earlier } : {}) };
      return undefined;
    }
    s.phase = 'deferred';
    s.deferral = { model: cand.model, outcome: 'waiting', ...about, ...(earlier ? { earlier } : {}) };
    try {
      if (inActivity) {
        const got = await waitInActivity(ids.attemptId, joined.lineId, joined.leaveAtMs, () => answer);
        if (got) {
          answer ??= got;
          took.add(ids.attemptId);
        }
      } else await condition(() => answer !== undefined, Math.max(1, joined.leaveAtMs - Date.now()));
    } catch (e) {
      // Cancelled while waiting: leave the collector and free the reservation, then end as cancelled.
      if (isCancellation(e) && answer === undefined) await leave(joined.lineId);
      throw e;
    }
    waitingFor = undefined;
    s.phase = 'calling';
    // Set by the wait's activity, or by the update handler while waiting.
    const got = answer;
    if (got?.ok) {
      const leg: Leg = {
        ...ids,
        t0: Date.now(),
        cand,
        batchId: got.batchId,
        outcome: { kind: 'answered', out: got.out, shard: joined.shard, seq: joined.seq },
      };
      const liveNanos = got.out.liveCostNanos ?? got.out.costNanos;
      s.deferral = {
        model: cand.model,
        outcome: 'answered',
        batchId: got.batchId,
        savedNanos: Math.max(0, liveNanos - got.out.costNanos),
        ...about,
        ...(earlier ? { earlier } : {}),
      };
      routedTo(s, cand, 'primary');
      // Settled by the activity that delivered it (after this request took it), or here.
      if (got.settledByDelivery !== true) await settleIfAnswered(s, leg, ids.reservationId, { liveNanos });
      return leg;
    }
    // Going live, or to another batch: the line is held back if not yet submitted, and the batch reservation freed.
    s.deferral = got
      ? {
          model: cand.model,
          outcome: got.why,
          message: got.message,
          ...(got.batchId ? { batchId: got.batchId } : {}),
          ...about,
          ...(earlier ? { earlier } : {}),
        }
      : {
          model: cand.model,
          outcome: 'left_for_deadline',
          message: 'the deadline came near before the provider answered: called live',
          ...about,
          ...(earlier ? { earlier } : {}),
        };
    await leave(got ? undefined : joined.lineId);
    // A line the provider failed goes to one more batch if the deadline still allows (the join says whether it does).
    if (!got || got.final === true || !RETRIED.includes(got.why) || round >= MAX_BATCHES) return undefined;
    earlier = { outcome: got.why, ...(got.batchId ? { batchId: got.batchId } : {}), ...(got.message ? { message: got.message } : {}) };
  }
}

/**
 * Waits for the line's outcome in an activity the deliverer completes by its id; the activity's
 * schedule-to-close timeout is the leave time (undefined: it came first). An answer sent by an
 * update (a deliverer from before `deferred-await`) is taken as well.
 */
async function waitInActivity(
  attemptId: string,
  lineId: string,
  leaveAtMs: number,
  byUpdate: () => DeferredAnswer | undefined,
): Promise<DeferredAnswer | undefined> {
  const { awaitBatchAnswer } = proxyActivities<DeferredActivities>({
    activityId: batchWaitActivityId(attemptId),
    scheduleToCloseTimeout: Math.max(1, leaveAtMs - Date.now()),
    retry: { maximumAttempts: 1 },
    // Nothing runs to cancel: a cancelled request moves on at once (a late completion is not found).
    cancellationType: ActivityCancellationType.ABANDON,
  });
  const wait = awaitBatchAnswer({ lineId }).catch((e: unknown) => {
    if (isCancellation(e)) throw e;
    // Timed out (the leave time) or could not run: either way, leave for a live call.
    return undefined;
  });
  return Promise.race([wait, condition(() => byUpdate() !== undefined).then(byUpdate)]);
}
