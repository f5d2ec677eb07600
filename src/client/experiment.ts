/**
 * The experiment entity's part of the client: create, inspect, stop and promote A/B experiments,
 * and feedback on an answered request (it reaches the request's experiment and the tuner).
 */
import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { type ExperimentSpec, ExperimentSpecError, validateExperiment } from '../learning/experiments.js';
import { type ControlSettings, EXPERIMENTS_MAX } from '../learning/routingControl.js';
import { outcomeKey } from '../learning/tuner.js';
import { registerExperiment, signalRouting } from '../learning/worker/routingHandle.js';
import type { experimentEntity } from '../workflows/experiment/experimentEntity.js';
import {
  experimentWorkflowId,
  type ExperimentStatus,
  feedbackSignal as experimentFeedback,
  promoteUpdate,
  statusQuery,
  stopUpdate,
} from '../workflows/experiment/contract.js';
import { feedbackSignal as tunerFeedback } from '../workflows/routing/contract.js';
import type { RequestResult } from '../workflows/request/contract.js';
import { entityTaskQueue } from '../workflows/taskQueues.js';
import { ValidationError } from '../util/validation.js';
import { type RoutingClient, updateMessage } from './routing.js';

export class ExperimentNotFoundError extends Error {
  override readonly name = 'ExperimentNotFoundError';
}

export interface FeedbackReceipt {
  readonly workflowId: string;
  readonly score: number;
  /** The experiment (and arm) the feedback reached, when the request was in one. */
  readonly experiment?: { readonly name: string; readonly arm: string };
  /** Whether it was sent to the tuner (not for experiment or rule traffic, nor requests routed before the learning loop); the tuner keeps the first feedback per request. */
  readonly tuner: boolean;
}

export class ExperimentClient {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    private readonly settings: ControlSettings,
    private readonly routing: RoutingClient,
  ) {}

  private experimentHandle(name: string) {
    return this.temporal.workflow.getHandle(experimentWorkflowId(this.taskQueue, name));
  }

  /** Starts an experiment (refused, naming the field, when the spec is bad or the name is taken). */
  async createExperiment(input: ExperimentSpec): Promise<ExperimentStatus> {
    let spec: ExperimentSpec;
    try {
      spec = validateExperiment(input);
    } catch (e) {
      if (e instanceof ExperimentSpecError) throw new ValidationError('experiment', [e.message]);
      throw e;
    }
    const running = (await this.routing.policy()).experiments.length;
    if (running >= EXPERIMENTS_MAX)
      throw new ValidationError('experiment', [
        `${EXPERIMENTS_MAX} experiments run on task queue ${this.taskQueue} already: stop or promote one first (switchyard experiment list)`,
      ]);
    try {
      await this.temporal.workflow.start<typeof experimentEntity>('experimentEntity', {
        workflowId: experimentWorkflowId(this.taskQueue, spec.name),
        taskQueue: entityTaskQueue(this.taskQueue),
        args: [{ spec, taskQueue: this.taskQueue }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError)
        throw new ValidationError('experiment', [`name: an experiment "${spec.name}" exists already (running or ended); choose another name`]);
      throw e;
    }
    // In force before this returns: every request started after it is assigned to an arm (the
    // entity announces itself too, but later; both say the same).
    try {
      await registerExperiment(this.temporal, this.taskQueue, this.settings, { started: { name: spec.name, arms: spec.arms, filter: spec.filter } });
    } catch (e) {
      // Refused (another create took the last place meanwhile), or no answer (a timeout after the
      // routing entity took it): the experiment must not run unregistered, and routing must not
      // keep assigning traffic to an experiment that no longer runs. The entity's own stop sends its
      // `ended` on the same chain as its own `started` (which may still be on its way), so routing
      // sees them in that order; an entity that cannot stop (it failed: routing refused it) is
      // terminated, and routing told directly.
      const h = this.experimentHandle(spec.name);
      const stopped = await this.temporal
        .withDeadline(Date.now() + 30_000, () => h.executeUpdate(stopUpdate))
        .then(
          () => true,
          () => false,
        );
      if (!stopped) {
        await h.terminate(`not registered with routing: ${(e as Error).message}`).catch(() => undefined);
        await registerExperiment(this.temporal, this.taskQueue, this.settings, { ended: { name: spec.name } }).catch(() => undefined);
      }
      if (e instanceof WorkflowUpdateFailedError) throw new ValidationError('experiment', [e.cause?.message ?? e.message]);
      throw e;
    }
    return this.experimentStatus(spec.name);
  }

  /** An experiment's arms, statistics and verdict: from the running entity, or the result of an ended one. */
  async experimentStatus(name: string): Promise<ExperimentStatus> {
    const h = this.experimentHandle(name);
    let running: boolean;
    try {
      running = (await h.describe()).status.name === 'RUNNING';
    } catch (e) {
      if (e instanceof WorkflowNotFoundError)
        throw new ExperimentNotFoundError(`no experiment "${name}" on task queue ${this.taskQueue}; \`switchyard experiment list\` shows them`);
      throw e;
    }
    if (running) return h.query(statusQuery);
    try {
      return (await h.result()) as ExperimentStatus;
    } catch (e) {
      if (e instanceof WorkflowFailedError) throw new Error(`experiment "${name}" failed: ${e.cause?.message ?? e.message}`);
      throw e;
    }
  }

  /** Every experiment of this task queue, newest first. */
  async listExperiments(limit = 100): Promise<ExperimentStatus[]> {
    const prefix = experimentWorkflowId(this.taskQueue, '');
    const names: string[] = [];
    for await (const w of this.temporal.workflow.list({ query: `WorkflowType = 'experimentEntity'` })) {
      if (w.workflowId.startsWith(prefix) && !names.includes(w.workflowId.slice(prefix.length))) names.push(w.workflowId.slice(prefix.length));
      if (names.length >= limit) break;
    }
    // One experiment that failed or was terminated does not hide the others.
    const all = await Promise.allSettled(names.map((n) => this.experimentStatus(n)));
    return all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  /** Takes the experiment off the traffic; in force when this returns. An experiment that ended already is returned as it ended. */
  async stopExperiment(name: string): Promise<ExperimentStatus> {
    const st = await this.experimentStatus(name);
    if (st.state === 'stopped' || st.state === 'promoted') return st;
    return this.experimentHandle(name).executeUpdate(stopUpdate).catch(updateMessage);
  }

  /** The winner becomes the routing rule for the experiment's traffic (recorded in the routing history). */
  async promoteExperiment(name: string): Promise<ExperimentStatus> {
    const st = await this.experimentStatus(name);
    if (st.state === 'promoted') throw new Error(`experiment "${name}" was promoted already`);
    if (st.state === 'stopped') throw new Error(`experiment "${name}" was stopped: only a running or concluded experiment can be promoted`);
    return this.experimentHandle(name).executeUpdate(promoteUpdate).catch(updateMessage);
  }

  /**
   * Feedback on one answered request (a score in [0, 1]): it replaces the request's automatic
   * quality in its experiment, and counts for the tuner. Idempotent: both keep the first feedback
   * per request and ignore repeats.
   */
  async feedback(workflowId: string, score: number, opts: { comment?: string } = {}): Promise<FeedbackReceipt> {
    if (typeof score !== 'number' || !Number.isFinite(score) || score < 0 || score > 1)
      throw new ValidationError('feedback', [`score: must be a number from 0 to 1 (got ${String(score)})`]);
    if (opts.comment !== undefined && opts.comment.length > 2_000) throw new ValidationError('feedback', ['comment: at most 2000 characters']);
    const h = this.temporal.workflow.getHandle(workflowId);
    let result: RequestResult;
    try {
      const d = await h.describe();
      if (d.type !== 'llmRequest') throw new ValidationError('feedback', [`${workflowId} is a ${d.type} workflow, not a request`]);
      if (d.status.name !== 'COMPLETED')
        throw new ValidationError('feedback', [`${workflowId} is ${d.status.name.toLowerCase()}: feedback is on answered requests`]);
      result = (await h.result()) as RequestResult;
    } catch (e) {
      if (e instanceof WorkflowNotFoundError)
        throw new ValidationError('feedback', [`no request ${workflowId}; give the workflow id the request ran as (switchyard runs list)`]);
      throw e;
    }
    const l = result.learning;
    if (l?.experiment) {
      await this.experimentHandle(l.experiment.name)
        .signal(experimentFeedback, {
          workflowId,
          arm: l.experiment.arm,
          score,
          automaticQuality: l.automaticQuality,
          ...(opts.comment ? { comment: opts.comment } : {}),
        })
        .catch((e: unknown) => {
          if (!(e instanceof WorkflowNotFoundError)) throw e;
        });
    }
    // The tuner learns from requests its thresholds routed; feedback judges the tier that answered.
    const tuner = l !== undefined && !l.experiment && !l.rule;
    if (tuner) {
      const sameTier = l.firstTier === result.tier;
      await signalRouting(this.temporal, this.taskQueue, this.settings, tunerFeedback, [
        {
          workflowId,
          key: outcomeKey(result.category, result.tier, l.band, l.explore),
          score,
          ...(sameTier ? { replaces: result.escalations.length === 0 ? (1 as const) : (0 as const) } : {}),
        },
      ]);
    }
    return { workflowId, score, ...(l?.experiment ? { experiment: l.experiment } : {}), tuner };
  }
}
