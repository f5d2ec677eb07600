/**
 * Provider health: one workflow holding a circuit breaker per model, fed by the callModel
 * activities' reports (signals), read by the router (query). Durable: a restart keeps every open
 * circuit and its cooldown.
 */
import { condition, log, setHandler, workflowInfo } from '@temporalio/workflow';
import { applyReport, claimTrial, type HealthState } from '../../health/circuits.js';
import { own } from '../../util/names.js';
import { continueAsNewWhenDrained } from '../entity.js';
import { isMessage, isRecord, onSignal, refusePlaintext, refuseUnless } from '../messages.js';
import { claimTrialUpdate, type HealthEntityInput, healthQuery, reportSignal, resetCircuitUpdate } from './contract.js';
import type { HealthEntityWorkflow } from './contract.js';

export async function healthEntity(input: HealthEntityInput): Promise<void> {
  refusePlaintext([input], 'healthEntity');
  const state: HealthState = input.state ?? {};
  let reports = 0;
  onSignal(reportSignal, (r) => {
    reports += 1;
    if (!isMessage(r) || typeof r.model !== 'string') return void log.warn('health report ignored: malformed', {});
    const changed = applyReport(state, r, input.settings);
    if (changed) log.info('circuit changed', { model: r.model, state: changed, kind: r.kind });
  });
  setHandler(
    resetCircuitUpdate,
    ({ model }) => {
      const existed = own(state, model) !== undefined;
      if (existed) delete state[model];
      return existed;
    },
    { validator: (a: { model: string }) => refuseUnless('resetCircuit', isRecord(a) && typeof a.model === 'string', '{"model": "..."}') },
  );
  setHandler(
    claimTrialUpdate,
    ({ model, holdMs }) => {
      reports += 1;
      return claimTrial(state, model, Date.now(), holdMs);
    },
    {
      validator: (a: { model: string; holdMs: number }) =>
        refuseUnless(
          'claimTrial',
          isRecord(a) && typeof a.model === 'string' && typeof a.holdMs === 'number' && Number.isFinite(a.holdMs),
          '{"model": "...", "holdMs": N}',
        ),
    },
  );
  setHandler(healthQuery, () => ({
    settings: input.settings,
    models: Object.fromEntries(
      Object.entries(state).map(([m, c]) => [
        m,
        { consecutiveFailures: c.consecutiveFailures, openUntil: c.openUntil, lastError: c.lastError ?? null, timesOpened: c.opened },
      ]),
    ),
  }));
  await condition(() => workflowInfo().continueAsNewSuggested || reports >= 2000);
  await continueAsNewWhenDrained<typeof healthEntity>(() => [{ settings: input.settings, state }]);
}

// The signature its contract publishes for callers that start it by name.
healthEntity satisfies HealthEntityWorkflow;
