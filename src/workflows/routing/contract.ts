/** Messages of the routing entity: one per task queue, holding the policy workers route by. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ThresholdChange } from '../../learning/tuner.js';
import type { AlertActivities } from '../alerts.js';
import type {
  ActiveExperiment,
  AnomalyAlert,
  ControlSettings,
  ControlState,
  FeedbackReport,
  OutcomeReport,
  PolicyChange,
  PolicyView,
  RoutingRule,
} from '../../learning/routingControl.js';

export interface RoutingEntityInput {
  readonly settings: ControlSettings;
  /** Carried over by continue-as-new. */
  readonly state?: ControlState;
}

/** A worker's outcome counts and spend since its last report (sent every few seconds, not per request). */
export const reportSignal = defineSignal<[OutcomeReport]>('report');
/** Explicit feedback on one request (`switchyard feedback`), once per request id. */
export const feedbackSignal = defineSignal<[FeedbackReport]>('feedback');
/** A worker's configuration: the last worker started sets the tuner's and detector's settings. */
export const configureSignal = defineSignal<[ControlSettings]>('configure');
export const experimentStartedSignal = defineSignal<[ActiveExperiment]>('experimentStarted');
export const experimentEndedSignal = defineSignal<[{ name: string }]>('experimentEnded');

export const policyQuery = defineQuery<PolicyView>('policy');
export const historyQuery = defineQuery<PolicyChange[]>('history');
/** What the tuner would change now (`routing tune --dry-run`). */
export const proposalQuery = defineQuery<ThresholdChange[]>('proposal');
export const anomaliesQuery = defineQuery<AnomalyAlert[]>('anomalies');
export const settingsQuery = defineQuery<ControlSettings>('settings');

/** Apply the tuner's proposal now (`routing tune`); null when nothing changes. */
export const tuneUpdate = defineUpdate<PolicyChange | null, []>('tune');
export const revertUpdate = defineUpdate<PolicyChange, [{ version: number }]>('revert');
export const promoteUpdate = defineUpdate<PolicyChange, [{ rule: RoutingRule; evidence: unknown }]>('promote');
export const acknowledgeUpdate = defineUpdate<AnomalyAlert, [{ id: string }]>('acknowledge');
/**
 * Registers a running experiment, or takes it off, and answers once workers would route by it
 * (the experiment signals of earlier releases still work, but return before that).
 */
export const experimentUpdate = defineUpdate<{ epoch: number }, [{ started?: ActiveExperiment; ended?: { name: string } }]>('experiment');

/**
 * The memo key under which the routing entity publishes its policy epoch (PolicyView.epoch). It is
 * written in the same workflow task as the change, so an update that returned is already visible to
 * `describe()`, which needs no worker: workers compare it with their copy before routing.
 */
export const POLICY_EPOCH_MEMO = 'policyEpoch';

export function routingWorkflowId(taskQueue: string): string {
  return `routing:${taskQueue}`;
}

/** The entity's workflow type and signature, for starting it without importing its code. */
export const ROUTING_ENTITY_TYPE = 'routingEntity';
export type RoutingEntityWorkflow = (input: RoutingEntityInput) => Promise<void>;

/** The activities the routing entity calls: its spend-anomaly alerts (implemented in activities/routing/). */
export type RoutingEntityActivities = Pick<AlertActivities, 'sendAnomalyAlert'>;
