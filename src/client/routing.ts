/**
 * The routing entity's part of the client: the policy workers route by, its history, the tuner
 * (propose, apply, revert) and spend anomalies (list, acknowledge).
 */
import { type Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { AnomalyAlert, ControlSettings, PolicyChange, PolicyView } from '../learning/routingControl.js';
import type { ThresholdChange } from '../learning/tuner.js';
import { routingEntityStart } from '../learning/worker/routingHandle.js';
import {
  acknowledgeUpdate,
  anomaliesQuery,
  historyQuery,
  policyQuery,
  proposalQuery,
  revertUpdate,
  routingWorkflowId,
  tuneUpdate,
} from '../workflows/routing/contract.js';
import { ValidationError } from '../util/validation.js';

/** What an update's failure says, without the SDK's wrapping. */
export function updateMessage(e: unknown): never {
  if (e instanceof WorkflowUpdateFailedError) throw new Error(e.cause?.message ?? e.message);
  throw e;
}

/** A query on the routing entity, or `absent` before it exists (nothing has been routed or reported yet). */
async function orAbsent<T>(query: Promise<T>, absent: T): Promise<T> {
  try {
    return await query;
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return absent;
    throw e;
  }
}

export class RoutingClient {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    private readonly settings: ControlSettings,
  ) {}

  private routing() {
    return this.temporal.workflow.getHandle(routingWorkflowId(this.taskQueue));
  }

  /** The routing policy workers route by now (an empty one before the routing entity exists). */
  async policy(): Promise<PolicyView> {
    return orAbsent(this.routing().query(policyQuery), {
      version: 0,
      categories: {},
      explore: this.settings.tuner.explore,
      rules: [],
      experiments: [],
      actions: {},
    });
  }

  async routingHistory(): Promise<PolicyChange[]> {
    return orAbsent(this.routing().query(historyQuery), []);
  }

  /** The tuner's proposal now (dryRun), or applies it; null when nothing changes. */
  async tune(opts: { dryRun?: boolean } = {}): Promise<ThresholdChange[] | PolicyChange | null> {
    if (opts.dryRun) return orAbsent(this.routing().query(proposalQuery), []);
    return this.temporal.workflow
      .executeUpdateWithStart(tuneUpdate, { args: [], startWorkflowOperation: routingEntityStart(this.taskQueue, this.settings) })
      .catch(updateMessage);
  }

  async revert(version: number): Promise<PolicyChange> {
    if (!Number.isSafeInteger(version) || version < 1)
      throw new ValidationError('routing revert', [`version: a change number from \`switchyard routing history\` (got ${version})`]);
    return this.routing()
      .executeUpdate(revertUpdate, { args: [{ version }] })
      .catch((e: unknown) => {
        if (e instanceof WorkflowNotFoundError) throw new Error('no routing changes yet: nothing to revert');
        return updateMessage(e);
      });
  }

  async anomalies(): Promise<AnomalyAlert[]> {
    return orAbsent(this.routing().query(anomaliesQuery), []);
  }

  /** Acknowledges an anomaly: its action (downgrade, pause) ends. */
  async acknowledge(id: string): Promise<AnomalyAlert> {
    return this.routing()
      .executeUpdate(acknowledgeUpdate, { args: [{ id }] })
      .catch((e: unknown) => {
        if (e instanceof WorkflowNotFoundError) throw new Error(`no anomaly "${id}": no anomalies have been raised`);
        return updateMessage(e);
      });
  }
}
