/**
 * Every activity a worker registers, composed from each workflow's own (activities/<workflow>/),
 * and checked here, where all are in view, against the interfaces the workflows' contracts
 * declare. The paid call is composed of the parts (a test may replace some).
 */
import { createBatchActivities } from '../activities/batch/index.js';
import { createBudgetActivities } from '../activities/budget/index.js';
import { createDeferredActivities } from '../activities/deferred/index.js';
import { createExperimentActivities } from '../activities/experiment/index.js';
import { createLedgerActivities } from '../activities/ledger/index.js';
import { createRoutingActivities } from '../activities/routing/index.js';
import { type ActivityDeps, createRequestActivities } from '../activities/request/index.js';
import { createPaidCallActivities } from '../activities/request/paidCall.js';
import { fileConfigSchema } from '../config/config.js';
import { controlSettingsFrom } from '../learning/worker/routingHandle.js';
import type { AlertActivities } from '../workflows/alerts.js';
import type { BatchActivities } from '../workflows/batch/contract.js';
import type { DeferredActivities } from '../workflows/deferred/contract.js';
import type { ExperimentActivities } from '../workflows/experiment/contract.js';
import type { LedgerOutboxActivities } from '../workflows/ledger/contract.js';
import type { RequestActivities } from '../workflows/request/activities.js';

export type { ActivityDeps } from '../activities/request/index.js';

/** The activities the workflows call one by one, and the paid call is made of. */
export function createActivityParts(deps: ActivityDeps) {
  // Workers pass their own; the configuration defaults otherwise (parsed once, not per activity).
  const defaults = controlSettingsFrom({ routing: deps.routing, learning: fileConfigSchema.parse({}).learning });
  const budget = createBudgetActivities(deps);
  return {
    ...budget,
    ...createDeferredActivities(deps, budget),
    ...createLedgerActivities(deps),
    ...createExperimentActivities({ temporal: deps.temporal, log: deps.log, controlSettings: deps.controlSettings ?? (() => defaults) }),
    ...createRoutingActivities(deps),
    ...createBatchActivities(deps),
    ...createRequestActivities(deps),
  };
}

export type ActivityParts = ReturnType<typeof createActivityParts>;

/** Every activity of a worker: the parts, and the paid call composed of them (the given parts: a test may have replaced some). */
export function composeActivities(parts: ActivityParts) {
  return { ...parts, ...createPaidCallActivities(parts) };
}

export function createActivities(deps: ActivityDeps) {
  return composeActivities(createActivityParts(deps));
}

export type Activities = ReturnType<typeof createActivities>;

// Each workflow's activity contract is implemented by the composition (a type error here names the gap).
const implemented = (
  a: Activities,
): RequestActivities & DeferredActivities & AlertActivities & BatchActivities & ExperimentActivities & LedgerOutboxActivities => a;
void implemented;
