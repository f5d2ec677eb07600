/** Activities of the learning loop: the experiment entity's registration and promotion, and anomaly alerts. */
import { type Client, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import type { ActiveExperiment, AnomalyAlert, ControlSettings, PolicyChange, RoutingRule } from '../learning/routingControl.js';
import { registerExperiment, routingEntityStart } from '../learning/worker/routingHandle.js';
import type { SwitchyardMetrics } from '../metrics/metrics.js';
import { promoteUpdate } from '../workflows/routing/contract.js';
import type { ExperimentActivities } from '../workflows/experiment/contract.js';

export interface LearningDeps {
  readonly temporal: Client;
  readonly log: Logger;
  readonly controlSettings: () => ControlSettings;
  readonly metrics?: SwitchyardMetrics | undefined;
}

/** Alert ids whose metric this worker counted (a retried webhook delivery is not a second anomaly). */
const COUNTED_MAX = 10_000;

export function createLearningActivities(deps: LearningDeps) {
  const counted = new Set<string>();
  const experiment = {
    /**
     * Registers a running experiment with its task queue's routing entity, or takes it off; returns
     * once workers would route by the change (an update, not a signal: see routing/contract.ts).
     */
    async notifyRouting(input: { taskQueue: string; started?: ActiveExperiment; ended?: { name: string } }): Promise<void> {
      try {
        await registerExperiment(deps.temporal, input.taskQueue, deps.controlSettings(), { ...(input.started ? { started: input.started } : {}), ...(input.ended ? { ended: input.ended } : {}) });
      } catch (e) {
        // Refused by the routing entity (too many experiments): retrying cannot help.
        if (e instanceof WorkflowUpdateFailedError) throw ApplicationFailure.create({ type: 'ExperimentRefused', nonRetryable: true, message: e.cause?.message ?? e.message });
        throw e;
      }
    },

    /** Makes an experiment's winner the routing rule for its traffic: the recorded routing change. */
    async promoteRoutingRule(input: { taskQueue: string; rule: RoutingRule; evidence: unknown }): Promise<PolicyChange> {
      return deps.temporal.workflow.executeUpdateWithStart(promoteUpdate, {
        args: [{ rule: input.rule, evidence: input.evidence }],
        startWorkflowOperation: routingEntityStart(input.taskQueue, deps.controlSettings()),
      });
    },
  } satisfies ExperimentActivities;
  return {
    ...experiment,

    /** A spend anomaly: one structured log line, the metric, and a POST to the webhook when configured. */
    async sendAnomalyAlert(input: { alert: AnomalyAlert; webhookUrl?: string | undefined }): Promise<void> {
      const a = input.alert;
      if (!counted.has(a.id)) {
        counted.add(a.id);
        if (counted.size > COUNTED_MAX) counted.delete(counted.values().next().value!);
        deps.metrics?.anomaly(a.scope, a.category, a.action);
      }
      deps.log.warn(
        { spendAnomaly: true, id: a.id, scope: a.scope, category: a.category, model: a.model, feature: a.feature, spendNanos: a.spendNanos, baselineNanos: a.baselineNanos, action: a.action },
        `spend anomaly ${a.id}: ${a.scope}/${a.category} (${a.model}, ${a.feature}) spent ${a.spendNanos} nanodollars in a bucket against a baseline of ${a.baselineNanos}`,
      );
      if (!input.webhookUrl) return;
      const res = await fetch(input.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'switchyard.spend.anomaly', ...a, bucketStart: new Date(a.bucketStart).toISOString(), at: new Date(a.at).toISOString() }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`anomaly alert webhook answered ${res.status}`);
    },
  };
}
