/**
 * An A/B experiment: while running it is registered with the task queue's routing entity (workers
 * assign matching requests to arms by their unit key); each request reports its outcome here when
 * it ends, and feedback replaces a request's automatic quality score. The stopping rule (every arm
 * at minSamples and a significant result, or maxSamples) concludes it, which takes it off the
 * traffic; `promote` makes the winner the routing rule, recorded in the routing history.
 */
import { allHandlersFinished, ApplicationFailure, condition, log, makeContinueAsNewFunc, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import { type ArmStats, armReport, confidenceAtLook, EMPTY_ARM, ExperimentSpecError, lookAt, recordFeedback, recordOutcome, validateExperiment, verdict, zFor } from '../../learning/experiments.js';
import type { PolicyChange } from '../../learning/routingControl.js';
import { continueOnQueue } from '../taskQueues.js';
import { boundCarried } from './carry.js';
import { isMessage, onSignal, refusePlaintext } from '../messages.js';
import { own, setOwn } from '../../util/names.js';
import {
  type ExperimentEntityInput,
  type ExperimentState,
  type ExperimentStatus,
  type ExperimentActivities,
  type FeedbackComment,
  feedbackSignal,
  outcomeSignal,
  promoteUpdate,
  statusQuery,
  stopUpdate,
} from './contract.js';

/** Outcome ids remembered against duplicates (a re-run request reports again); bounded so the carried state stays small. */
const SEEN_MAX = 5_000;
const MESSAGES_PER_RUN = 1_500;
const COMMENTS_MAX = 20;

/** Registration with the routing entity and promotion: retried until the routing entity answers. */
const routing = proxyActivities<ExperimentActivities>({ startToCloseTimeout: '30 seconds', retry: { initialInterval: '1 second', maximumInterval: '30 seconds' } });
/** A promotion answers its caller: bounded, and a failure leaves the experiment as it was. */
const promoter = proxyActivities<ExperimentActivities>({
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds' },
});

function fail(message: string, type = 'InvalidExperiment'): never {
  throw ApplicationFailure.create({ type, nonRetryable: true, message });
}

export async function experimentEntity(input: ExperimentEntityInput): Promise<ExperimentStatus> {
  refusePlaintext([input], 'experimentEntity');
  let spec;
  try {
    spec = validateExperiment(input.spec, { reservedArmNames: 'allow' });
  } catch (e) {
    if (e instanceof ExperimentSpecError) fail(`experiment "${String(input.spec?.name)}" cannot start: ${e.message}`);
    throw e;
  }
  const createdAt = input.createdAt ?? Date.now();
  let state: ExperimentState = input.carried?.state ?? 'running';
  const arms = new Map<string, ArmStats>(spec.arms.map((a) => [a.name, input.carried?.arms[a.name] ?? EMPTY_ARM]));
  const seen = new Set(input.carried?.seen ?? []);
  const seenOrder = [...(input.carried?.seen ?? [])];
  const feedbackSeen = new Set(input.carried?.feedbackSeen ?? []);
  const comments: Record<string, FeedbackComment[]> = { ...(input.carried?.comments ?? {}) };
  let endedAt = input.carried?.endedAt;
  let promotion: PolicyChange | undefined = input.carried?.promotion;
  let messages = 0;
  let promoting = false;
  let lastLook = input.carried?.lastLook ?? -1;
  let concluded = input.carried?.concluded;
  const currentVerdict = () => {
    const look = lookAt(Math.min(...[...arms.values()].map((a) => a.requests)), spec.minSamples);
    return verdict({ minSamples: spec.minSamples, confidence: confidenceAtLook(spec.confidence, look ?? 0) }, arms);
  };
  const z = zFor(spec.confidence);

  const status = (): ExperimentStatus => {
    const v = concluded ?? currentVerdict();
    return {
      name: spec.name,
      state,
      arms: Object.fromEntries([...arms].map(([n, s]) => [n, armReport(s, z)])),
      winner: v.winner,
      verdict: v,
      interim: concluded === undefined,
      spec,
      createdAt: new Date(createdAt).toISOString(),
      endedAt: endedAt === undefined ? null : new Date(endedAt).toISOString(),
      ...(promotion ? { promotion } : {}),
      comments,
    };
  };
  let announce: 'start' | 'end' | undefined = input.carried ? undefined : 'start';
  // Messages to the routing entity go one after another (an end never overtakes its start).
  let routingChain: Promise<unknown> = Promise.resolve();
  const notify = (m: { started?: { name: string; arms: typeof spec.arms; filter: typeof spec.filter }; ended?: { name: string } }): Promise<void> => {
    const p = routingChain.then(() => routing.notifyRouting({ taskQueue: input.taskQueue, ...m }));
    routingChain = p.catch(() => undefined);
    return p;
  };
  const end = (to: ExperimentState): void => {
    if (state === 'running') announce = 'end';
    state = to;
    endedAt ??= Date.now();
  };

  onSignal(outcomeSignal, (o) => {
    messages += 1;
    if (!isMessage(o)) return;
    const s = arms.get(o.arm);
    if (!s || typeof o.workflowId !== 'string' || typeof o.costNanos !== 'number' || typeof o.quality !== 'number' || seen.has(o.workflowId)) return;
    seen.add(o.workflowId);
    seenOrder.push(o.workflowId);
    if (seenOrder.length > SEEN_MAX) seen.delete(seenOrder.shift()!);
    arms.set(o.arm, recordOutcome(s, o));
    if (state !== 'running') return;
    // The stopping rule looks only at the scheduled looks (alpha spent across them), and freezes its verdict.
    const look = lookAt(Math.min(...[...arms.values()].map((a) => a.requests)), spec.minSamples);
    const full = spec.maxSamples !== undefined && [...arms.values()].every((a) => a.requests >= spec.maxSamples!);
    if ((look === null || look <= lastLook) && !full) return;
    if (look !== null) lastLook = look;
    const v = currentVerdict();
    if (v.state === 'decided' || full) {
      concluded = v;
      log.info('experiment concluded', { name: spec.name, winner: v.winner, reason: v.reason });
      end('concluded');
    }
  });
  onSignal(feedbackSignal, (f) => {
    messages += 1;
    if (!isMessage(f)) return;
    const s = arms.get(f.arm);
    if (!s || typeof f.workflowId !== 'string' || typeof f.score !== 'number' || !Number.isFinite(f.score) || feedbackSeen.has(f.workflowId)) return;
    // Feedback only on a request this experiment counted (its automatic quality is what is replaced).
    if (!seen.has(f.workflowId)) return;
    feedbackSeen.add(f.workflowId);
    if (feedbackSeen.size > SEEN_MAX) feedbackSeen.delete(feedbackSeen.values().next().value!);
    arms.set(f.arm, recordFeedback(s, f.score, f.automaticQuality));
    if (typeof f.comment === 'string' && f.comment !== '') {
      const list = own(comments, f.arm) ?? setOwn(comments, f.arm, []);
      list.push({ workflowId: f.workflowId, score: f.score, comment: f.comment.slice(0, 2_000) });
      if (list.length > COMMENTS_MAX) list.shift();
    }
  });
  setHandler(statusQuery, status);
  setHandler(stopUpdate, async () => {
    if (state === 'running' || state === 'concluded') end('stopped');
    // `experiment stop` returns once the routing entity has taken it off the traffic (patched: runs
    // recorded before announced it after the update returned).
    if (announce === 'end' && patched('experiment-stop-in-force')) {
      announce = undefined;
      await notify({ ended: { name: spec.name } });
    } else if (state === 'stopped' && patched('experiment-stop-awaits-ended')) {
      // Concluded just before: its "ended" may still be on the way to routing (the main loop sent
      // it); the stop returns once it has landed (patched: runs recorded before returned at once).
      await routingChain;
    }
    return status();
  });
  setHandler(
    promoteUpdate,
    async () => {
      promoting = true;
      try {
        const before = status();
        const arm = spec.arms.find((a) => a.name === before.winner)!;
        promotion = await promoter.promoteRoutingRule({
          taskQueue: input.taskQueue,
          rule: { filter: spec.filter, arm, experiment: spec.name, at: Date.now() },
          evidence: { experiment: spec.name, verdict: before.verdict, arms: before.arms },
        });
      } finally {
        promoting = false;
      }
      end('promoted');
      return status();
    },
    {
      validator: () => {
        if (state === 'promoted' || promoting) fail(`experiment "${spec.name}" was promoted already`);
        const v = concluded ?? currentVerdict();
        if (v.winner === null) fail(`experiment "${spec.name}" has no winner to promote (${v.reason}); wait for more samples, or stop it`, 'NoWinner');
      },
    },
  );
  for (;;) {
    if (announce === 'start') {
      announce = undefined;
      await notify({ started: { name: spec.name, arms: spec.arms, filter: spec.filter } });
    } else if (announce === 'end') {
      announce = undefined;
      await notify({ ended: { name: spec.name } });
    }
    if (state === 'promoted' || state === 'stopped') break;
    if (workflowInfo().continueAsNewSuggested || messages >= MESSAGES_PER_RUN) {
      await condition(allHandlersFinished);
      const taskQueue = continueOnQueue(workflowInfo().taskQueue);
      await makeContinueAsNewFunc<typeof experimentEntity>(taskQueue ? { taskQueue } : {})({
        spec,
        taskQueue: input.taskQueue,
        createdAt,
        carried: boundCarried({
          state,
          arms: Object.fromEntries(arms),
          seen: seenOrder,
          feedbackSeen: [...feedbackSeen],
          comments,
          lastLook,
          ...(concluded ? { concluded } : {}),
          ...(endedAt !== undefined ? { endedAt } : {}),
          ...(promotion ? { promotion } : {}),
        }),
      });
    }
    await condition(() => announce !== undefined || state === 'promoted' || state === 'stopped' || messages >= MESSAGES_PER_RUN || workflowInfo().continueAsNewSuggested);
  }
  await condition(allHandlersFinished);
  if (announce === 'end') await notify({ ended: { name: spec.name } });
  return status();
}
