/**
 * Budget activities: the request workflow's way to the budget entity. Each call is an update; the
 * first one for a scope starts the entity (update-with-start). Update ids are derived from the
 * reservation id, so an activity retried after a lost worker sends the same update again and the
 * server answers it once.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { type Client, WithStartWorkflowOperation, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Alert, BudgetSettings, ReserveResult, SettleResult } from '../budget/book.js';
import type { Usage } from '../catalog/pricing.js';
import type { Catalog } from '../catalog/catalog.js';
import type { LedgerEntry } from '../ledger/fileLedger.js';
import { releaseUpdate, reserveUpdate, settleUpdate } from '../workflows/budgetMessages.js';
import { settingsForShard, shardOrder, shardWorkflowId } from '../budget/shards.js';

export interface BudgetDeps {
  readonly temporal: Client;
  readonly taskQueue: string;
  readonly budgetDefaults: BudgetSettings;
  /** Entity workflows each scope is split across (1: one entity per scope). */
  readonly budgetShards: number;
  readonly catalog: Catalog;
  readonly ledger: { record(entry: LedgerEntry): boolean };
  readonly log: Logger;
}

export interface ReserveInput {
  readonly scope: string;
  readonly reservationId: string;
  readonly category: string;
  readonly amountNanos: number;
  readonly workflowId: string;
  readonly force?: boolean;
}

export type ShardedReserveResult = ReserveResult & { readonly shard: number };

export interface RecordSpendInput {
  readonly scope: string;
  /** The shard that granted the reservation. */
  readonly shard: number;
  readonly workflowId: string;
  readonly attemptId: string;
  readonly reservationId: string;
  readonly model: string;
  readonly category: string;
  readonly usage: Usage;
  readonly costNanos: number;
  /** The sequence number the reservation was granted with. */
  readonly seq?: number | undefined;
}

function unwrapUpdateFailure(e: unknown): never {
  if (e instanceof WorkflowUpdateFailedError) {
    const cause = e.cause;
    // A reserve that arrived after this attempt's deadline: retry (a new attempt, a new deadline).
    if (cause instanceof ApplicationFailure && cause.type === 'StaleReserve') throw ApplicationFailure.create({ type: 'StaleReserve', message: cause.message });
    throw ApplicationFailure.create({ type: 'BudgetRejected', nonRetryable: true, message: cause?.message ?? e.message });
  }
  throw e;
}

/** This activity attempt's deadline on the server's clock, if Temporal says when it was scheduled. */
function attemptDeadline(): number | undefined {
  try {
    const info = Context.current().info;
    return info.currentAttemptScheduledTimestampMs + info.startToCloseTimeoutMs;
  } catch {
    return undefined; // not inside an activity (direct calls in tests and tools)
  }
}

export function createBudgetActivities(deps: BudgetDeps) {
  const { temporal, log } = deps;
  const shards = Math.max(1, deps.budgetShards);
  const handle = (scope: string, shard: number) => temporal.workflow.getHandle(shardWorkflowId(deps.taskQueue, scope, shard, shards));
  /**
   * The entity of a scope whose last run failed or was terminated is never silently replaced by an
   * empty one (that would reset its spend): reservations are refused until an operator restores it.
   */
  const unavailable = async (workflowId: string, scope: string): Promise<ApplicationFailure> => {
    let how = 'closed';
    try {
      const d = await temporal.workflow.getHandle(workflowId).describe();
      how = `${d.status.name.toLowerCase()}${d.closeTime ? ` at ${d.closeTime.toISOString()}` : ''}`;
    } catch (e) {
      if (!(e instanceof WorkflowNotFoundError)) throw e;
    }
    const message = `budget entity ${workflowId} of scope "${scope}" has ${how}; reservations are refused until an operator restores it (\`switchyard budget restore ${scope}\`)`;
    log.error({ workflowId, scope }, message);
    return ApplicationFailure.create({ type: 'BudgetUnavailable', nonRetryable: true, message });
  };
  const reserveOn = async (input: ReserveInput, shard: number): Promise<ReserveResult> => {
    const workflowId = shardWorkflowId(deps.taskQueue, input.scope, shard, shards);
    const start = new WithStartWorkflowOperation('budgetEntity', {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [{ scope: input.scope, settings: settingsForShard(deps.budgetDefaults, shard, shards), ...(shards > 1 ? { shard: { index: shard, count: shards } } : {}) }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
    const notAfter = attemptDeadline();
    try {
      return await temporal.workflow.executeUpdateWithStart(reserveUpdate, {
        args: [{ reservationId: input.reservationId, category: input.category, amountNanos: input.amountNanos, workflowId: input.workflowId, force: input.force, ...(notAfter !== undefined ? { notAfter } : {}) }],
        updateId: `reserve:${input.reservationId}`,
        startWorkflowOperation: start,
      });
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError) throw await unavailable(workflowId, input.scope);
      return unwrapUpdateFailure(e);
    }
  };
  return {
    /**
     * Reserves on the request's home shard, spilling over to the other shards in turn; a denial
     * from every shard reports the most any single shard could still grant.
     */
    async reserveBudget(input: ReserveInput): Promise<ShardedReserveResult> {
      const order = input.force ? shardOrder(input.workflowId, shards).slice(0, 1) : shardOrder(input.workflowId, shards);
      let best: (ReserveResult & { granted: false }) | undefined;
      for (const shard of order) {
        const r = await reserveOn(input, shard);
        if (r.granted) return { ...r, shard };
        if (!best || r.remainingNanos > best.remainingNanos) best = r;
      }
      if (!best) throw new Error('no budget shard answered');
      return { ...best, shard: order[0] ?? 0 };
    },

    async releaseBudget(input: { scope: string; shard: number; reservationId: string }): Promise<boolean> {
      try {
        return await handle(input.scope, input.shard).executeUpdate(releaseUpdate, { args: [{ reservationId: input.reservationId }], updateId: `release:${input.reservationId}` });
      } catch (e) {
        return unwrapUpdateFailure(e);
      }
    },

    /** Settles the attempt in the budget entity and appends it to the audit ledger; both idempotent. */
    async recordSpend(input: RecordSpendInput): Promise<SettleResult> {
      let result: SettleResult;
      try {
        result = await handle(input.scope, input.shard).executeUpdate(settleUpdate, {
          args: [{ reservationId: input.reservationId, category: input.category, costNanos: input.costNanos, ...(input.seq !== undefined ? { seq: input.seq } : {}) }],
          updateId: `settle:${input.reservationId}`,
        });
      } catch (e) {
        return unwrapUpdateFailure(e);
      }
      const spec = deps.catalog.require(input.model);
      deps.ledger.record({
        key: input.reservationId,
        workflowId: input.workflowId,
        attemptId: input.attemptId,
        model: spec.name,
        provider: spec.provider,
        tier: spec.tier,
        category: input.category,
        inputTokens: input.usage.inputTokens,
        cachedInputTokens: input.usage.cachedInputTokens,
        outputTokens: input.usage.outputTokens,
        costNanos: input.costNanos,
        at: new Date().toISOString(),
      });
      if (result.duplicate) log.info({ workflowId: input.workflowId, attemptId: input.attemptId }, 'spend already settled; retry ignored');
      if ((result.overshootNanos ?? 0) > 0) log.warn({ workflowId: input.workflowId, attemptId: input.attemptId, model: spec.name, overshootNanos: result.overshootNanos }, 'cost above its reservation (raise budget.reservationMargin for this provider)');
      return result;
    },

    /** A soft-limit alert: one structured log line, and a POST to the webhook when configured. */
    async sendBudgetAlert(input: { alert: Alert; webhookUrl?: string | undefined }): Promise<void> {
      const a = input.alert;
      log.warn({ budgetAlert: true, scope: a.scope, category: a.category, threshold: a.threshold, spentNanos: a.spentNanos, allocatedNanos: a.allocatedNanos }, `budget ${a.scope}/${a.category} reached ${Math.round(a.threshold * 100)}% of its allocation`);
      if (!input.webhookUrl) return;
      const res = await fetch(input.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'switchyard.budget.threshold', ...a, periodStart: new Date(a.periodStart).toISOString() }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`budget alert webhook answered ${res.status}`);
    },
  };
}
