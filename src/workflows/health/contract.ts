/** The provider-health entity's contract: its id, input, view, and messages. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CircuitSettings, HealthReport, HealthState } from '../../health/circuits.js';

/** One health entity per task queue: the workers of a queue share what they learn. */
export function healthWorkflowId(taskQueue: string): string {
  return `provider-health-${taskQueue}`;
}

export interface HealthEntityInput {
  readonly settings: CircuitSettings;
  readonly state?: HealthState;
}

export interface HealthView {
  readonly settings: CircuitSettings;
  /** openUntil is authoritative; callers compare it with their own clock (a query has no "now"). */
  readonly models: Record<string, { consecutiveFailures: number; openUntil: number; lastError: string | null; timesOpened: number }>;
}

export const reportSignal = defineSignal<[HealthReport]>('report');
export const healthQuery = defineQuery<HealthView>('health');
export const resetCircuitUpdate = defineUpdate<boolean, [{ model: string }]>('resetCircuit');
/** A request asks to be a half-open circuit's one trial (see claimTrial). */
export const claimTrialUpdate = defineUpdate<boolean, [{ model: string; holdMs: number }]>('claimTrial');

/** The entity's workflow type and signature, for starting it without importing its code. */
export const HEALTH_ENTITY_TYPE = 'healthEntity';
export type HealthEntityWorkflow = (input: HealthEntityInput) => Promise<void>;

/** The health entity calls no activities: the paid calls' reports come to it as signals. */
export type HealthEntityActivities = Record<never, never>;
