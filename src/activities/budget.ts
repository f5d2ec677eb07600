/**
 * Budget activities: the request workflow's way to the budget entity. Each call is an update; the
 * first one for a scope starts the entity (update-with-start). Update ids are derived from the
 * reservation id, so an activity retried after a lost worker sends the same update again and the
 * server answers it once.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { type Client, WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
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
}

function unwrapUpdateFailure(e: unknown): never {
  if (e instanceof WorkflowUpdateFailedError) {
    const cause = e.cause;
    throw ApplicationFailure.create({ type: 'BudgetRejected', nonRetryable: true, message: cause?.message ?? e.message });
  }
  throw e;
}

export function createBudgetActivities(deps: BudgetDeps) {
  const { temporal, log } = deps;
  const shards = Math.max(1, deps.budgetShards);
  const handle = (scope: string, shard: number) => temporal.workflow.getHandle(shardWorkflowId(deps.taskQueue, scope, shard, shards));
  const reserveOn = async (input: ReserveInput, shard: number): Promise<ReserveResult> => {
    const start = new WithStartWorkflowOperation('budgetEntity', {
      workflowId: shardWorkflowId(deps.taskQueue, input.scope, shard, shards),
      taskQueue: deps.taskQueue,
      args: [{ scope: input.scope, settings: settingsForShard(deps.budgetDefaults, shard, shards), ...(shards > 1 ? { shard: { index: shard, count: shards } } : {}) }],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    try {
      return await temporal.workflow.executeUpdateWithStart(reserveUpdate, {
        args: [{ reservationId: input.reservationId, category: input.category, amountNanos: input.amountNanos, workflowId: input.workflowId, force: input.force }],
        updateId: `reserve:${input.reservationId}`,
        startWorkflowOperation: start,
      });
    } catch (e) {
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
          args: [{ reservationId: input.reservationId, category: input.category, costNanos: input.costNanos }],
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
