/**
 * Provider health: one workflow holding a circuit breaker per model, fed by the callModel
 * activities' reports (signals), read by the router (query). Durable: a restart keeps every open
 * circuit and its cooldown.
 */
import { allHandlersFinished, condition, makeContinueAsNewFunc, defineQuery, defineSignal, defineUpdate, log, setHandler, workflowInfo } from '@temporalio/workflow';
import { applyReport, type CircuitSettings, claimTrial, type HealthReport, type HealthState } from '../health/circuits.js';
import { own } from '../util/names.js';
import { continueOnQueue } from './taskQueues.js';

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

export async function healthEntity(input: HealthEntityInput): Promise<void> {
  const state: HealthState = input.state ?? {};
  let reports = 0;
  setHandler(reportSignal, (r) => {
    reports += 1;
    const changed = applyReport(state, r, input.settings);
    if (changed) log.info('circuit changed', { model: r.model, state: changed, kind: r.kind });
  });
  setHandler(resetCircuitUpdate, ({ model }) => {
    const existed = own(state, model) !== undefined;
    if (existed) delete state[model];
    return existed;
  });
  setHandler(claimTrialUpdate, ({ model, holdMs }) => {
    reports += 1;
    return claimTrial(state, model, Date.now(), holdMs);
  });
  setHandler(healthQuery, () => ({
    settings: input.settings,
    models: Object.fromEntries(
      Object.entries(state).map(([m, c]) => [m, { consecutiveFailures: c.consecutiveFailures, openUntil: c.openUntil, lastError: c.lastError ?? null, timesOpened: c.opened }]),
    ),
  }));
  await condition(() => workflowInfo().continueAsNewSuggested || reports >= 2000);
  await condition(allHandlersFinished);
  const taskQueue = continueOnQueue(workflowInfo().taskQueue);
  await makeContinueAsNewFunc<typeof healthEntity>(taskQueue ? { taskQueue } : {})({ settings: input.settings, state });
}
