/** The experiment entity's activities: its registration with routing, and the promotion of its winner. */
import { type Client, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import type { ActiveExperiment, ControlSettings, PolicyChange, RoutingRule } from '../../learning/routingControl.js';
import { registerExperiment, routingEntityStart } from '../../learning/worker/routingHandle.js';
import { promoteUpdate } from '../../workflows/routing/contract.js';
import type { ExperimentActivities } from '../../workflows/experiment/contract.js';

export interface ExperimentActivityDeps {
  readonly temporal: Client;
  readonly log: Logger;
  readonly controlSettings: () => ControlSettings;
}

export function createExperimentActivities(deps: ExperimentActivityDeps) {
  const experiment = {
    /**
     * Registers a running experiment with its task queue's routing entity, or takes it off; returns
     * once workers would route by the change (an update, not a signal: see routing/contract.ts).
     */
    async notifyRouting(input: { taskQueue: string; started?: ActiveExperiment; ended?: { name: string } }): Promise<void> {
      try {
        await registerExperiment(deps.temporal, input.taskQueue, deps.controlSettings(), {
          ...(input.started ? { started: input.started } : {}),
          ...(input.ended ? { ended: input.ended } : {}),
        });
      } catch (e) {
        // Refused by the routing entity (too many experiments): retrying cannot help.
        if (e instanceof WorkflowUpdateFailedError)
          throw ApplicationFailure.create({ type: 'ExperimentRefused', nonRetryable: true, message: e.cause?.message ?? e.message });
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
  return experiment;
}
