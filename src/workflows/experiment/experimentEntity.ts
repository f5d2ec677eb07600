/**
 * An A/B experiment: while running it is registered with the task queue's routing entity (workers
 * assign matching requests to arms by their unit key); each request reports its outcome here when
 * it ends, and feedback replaces a request's automatic quality score. The stopping rule (every arm
 * at minSamples and a significant result, or maxSamples) concludes it, which takes it off the
 * traffic; `promote` makes the winner the routing rule, recorded in the routing history. What
 * each message does is ExperimentEntityState's (./state.ts); this shell registers the handlers and
 * owns the messages to routing, the promotion and continue-as-new.
 */
import { allHandlersFinished, ApplicationFailure, condition, log, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import { ExperimentSpecError, validateExperiment } from '../../learning/experiments.js';
import { continueAsNewWhenDrained } from '../entity.js';
import { onSignal, refusePlaintext } from '../messages.js';
import {
  type ExperimentEntityInput,
  type ExperimentStatus,
  type ExperimentActivities,
  feedbackSignal,
  outcomeSignal,
  promoteUpdate,
  statusQuery,
  stopUpdate,
} from './contract.js';
import { ExperimentEntityState } from './state.js';

const MESSAGES_PER_RUN = 1_500;

/** Registration with the routing entity and promotion: retried until the routing entity answers. */
const routing = proxyActivities<ExperimentActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
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
  const x = new ExperimentEntityState(spec, input, Date.now());
  // Messages to the routing entity go one after another (an end never overtakes its start).
  let routingChain: Promise<unknown> = Promise.resolve();
  const notify = (m: { started?: { name: string; arms: typeof spec.arms; filter: typeof spec.filter }; ended?: { name: string } }): Promise<void> => {
    const p = routingChain.then(() => routing.notifyRouting({ taskQueue: input.taskQueue, ...m }));
    routingChain = p.catch(() => undefined);
    return p;
  };

  onSignal(outcomeSignal, (o) => {
    const v = x.outcome(o, Date.now());
    if (v) log.info('experiment concluded', { name: spec.name, winner: v.winner, reason: v.reason });
  });
  onSignal(feedbackSignal, (f) => x.feedback(f));
  setHandler(statusQuery, () => x.status());
  setHandler(stopUpdate, async () => {
    if (x.state === 'running' || x.state === 'concluded') x.end('stopped', Date.now());
    // `experiment stop` returns once the routing entity has taken it off the traffic (patched: runs
    // recorded before announced it after the update returned).
    if (x.announce === 'end' && patched('experiment-stop-in-force')) {
      x.takeAnnouncement();
      await notify({ ended: { name: spec.name } });
    } else if (x.state === 'stopped' && patched('experiment-stop-awaits-ended')) {
      // Concluded just before: its "ended" may still be on the way to routing (the main loop sent
      // it); the stop returns once it has landed (patched: runs recorded before returned at once).
      await routingChain;
    }
    return x.status();
  });
  setHandler(
    promoteUpdate,
    async () => {
      x.promoting = true;
      try {
        const before = x.status();
        const arm = spec.arms.find((a) => a.name === before.winner)!;
        x.promotion = await promoter.promoteRoutingRule({
          taskQueue: input.taskQueue,
          rule: { filter: spec.filter, arm, experiment: spec.name, at: Date.now() },
          evidence: { experiment: spec.name, verdict: before.verdict, arms: before.arms },
        });
      } finally {
        x.promoting = false;
      }
      x.end('promoted', Date.now());
      return x.status();
    },
    {
      validator: () => {
        const refused = x.promotionRefusal();
        if (refused) fail(refused.message, refused.type);
      },
    },
  );
  for (;;) {
    const announce = x.takeAnnouncement();
    if (announce === 'start') await notify({ started: { name: spec.name, arms: spec.arms, filter: spec.filter } });
    else if (announce === 'end') await notify({ ended: { name: spec.name } });
    if (x.ended) break;
    if (workflowInfo().continueAsNewSuggested || x.messages >= MESSAGES_PER_RUN) {
      await continueAsNewWhenDrained<typeof experimentEntity>(() => [x.carry(input.taskQueue)]);
    }
    await condition(() => x.announce !== undefined || x.ended || x.messages >= MESSAGES_PER_RUN || workflowInfo().continueAsNewSuggested);
  }
  await condition(allHandlersFinished);
  if (x.takeAnnouncement() === 'end') await notify({ ended: { name: spec.name } });
  return x.status();
}
