/**
 * Reaching a task queue's routing entity from outside workflows (workers, activities, the client):
 * every message starts it when it is not running yet, with the sender's settings.
 */
import { type Client, WithStartWorkflowOperation } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/common';
import type { ActiveExperiment, ControlSettings } from '../routingControl.js';
import { usdToNanos } from '../../catalog/schema.js';
import type { SwitchyardConfig } from '../../config/config.js';
import { experimentUpdate, ROUTING_ENTITY_TYPE, type RoutingEntityWorkflow, routingWorkflowId } from '../../workflows/routing/contract.js';
import { entityTaskQueue } from '../../workflows/taskQueues.js';

export function controlSettingsFrom(config: Pick<SwitchyardConfig, 'routing' | 'learning'>): ControlSettings {
  const { minSpendUsd, webhookUrl, ...anomaly } = config.learning.anomaly;
  return {
    base: config.routing.thresholds,
    tuner: config.learning.tuner,
    anomaly: { ...anomaly, minSpendNanos: usdToNanos(minSpendUsd), ...(webhookUrl ? { webhookUrl } : {}) },
  };
}

export async function signalRouting<T>(
  temporal: Client,
  taskQueue: string,
  settings: ControlSettings,
  signal: SignalDefinition<[T]>,
  args: [T],
): Promise<void> {
  await temporal.workflow.signalWithStart<RoutingEntityWorkflow, [T]>(ROUTING_ENTITY_TYPE, {
    workflowId: routingWorkflowId(taskQueue),
    taskQueue: entityTaskQueue(taskQueue),
    args: [{ settings }],
    signal,
    signalArgs: args,
  });
}

/** Starting the routing entity alongside an update (when the update may be its first message). */
export function routingEntityStart(taskQueue: string, settings: ControlSettings): WithStartWorkflowOperation<RoutingEntityWorkflow> {
  return new WithStartWorkflowOperation<RoutingEntityWorkflow>(ROUTING_ENTITY_TYPE, {
    workflowId: routingWorkflowId(taskQueue),
    taskQueue: entityTaskQueue(taskQueue),
    args: [{ settings }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/** Registers an experiment with the routing entity (or takes it off); returns once workers would route by it. */
export async function registerExperiment(
  temporal: Client,
  taskQueue: string,
  settings: ControlSettings,
  change: { started?: ActiveExperiment; ended?: { name: string } },
): Promise<number> {
  const { epoch } = await temporal.workflow.executeUpdateWithStart(experimentUpdate, {
    args: [change],
    startWorkflowOperation: routingEntityStart(taskQueue, settings),
  });
  return epoch;
}
