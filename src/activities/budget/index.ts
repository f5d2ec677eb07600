/**
 * Budget activities: the request workflow's way to the budget entity. Each call is an update; the
 * first one for a scope starts the entity (update-with-start). Update ids are derived from the
 * reservation id, so an activity retried after a lost worker sends the same update again and the
 * server answers it once.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  type Client,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import type { Logger } from 'pino';
import type { Alert, BudgetSettings, ReserveResult, SettleResult } from '../../budget/book.js';
import type { Catalog } from '../../catalog/catalog.js';
import type { LedgerEntry } from '../../ledger/fileLedger.js';
import { LEDGER_OUTBOX_TYPE, type LedgerOutboxWorkflow, ledgerOutboxWorkflowId } from '../../workflows/ledger/contract.js';

/** How long a settlement waits for the ledger before its line goes to the outbox. */
const LEDGER_WRITE_MS = 3_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
import type { SwitchyardMetrics } from '../../metrics/metrics.js';
import { randomUUID } from 'node:crypto';
import { BUDGET_ENTITY_TYPE, batchUpdate, type BudgetEntityWorkflow, type BudgetOpResult } from '../../workflows/budget/contract.js';
import { BudgetBatcher, type SendBatch } from './batcher.js';
import { settingsForShard, shardOrder, shardWorkflowId } from '../../budget/shards.js';
import { entityTaskQueue } from '../../workflows/taskQueues.js';
import { UNSPECIFIED_FEATURE } from '../../workflows/request/contract.js';
import type { ReserveInput, ShardedReserveResult, RecordSpendInput } from '../../workflows/request/activities.js';
export type { ReserveInput, ShardedReserveResult, RecordSpendInput } from '../../workflows/request/activities.js';

export interface BudgetDeps {
  readonly temporal: Client;
  readonly taskQueue: string;
  readonly budgetDefaults: BudgetSettings;
  /** Entity workflows each scope is split across (1: one entity per scope). */
  readonly budgetShards: number;
  readonly catalog: Catalog;
  /** The spend ledger: the JSONL file (sync) or PostgreSQL; idempotent by key. */
  readonly ledger: { record(entry: LedgerEntry): boolean | Promise<boolean> };
  readonly log: Logger;
  /** Counts each paid attempt when the budget entity applies its settlement for the first time. */
  readonly metrics?: SwitchyardMetrics | undefined;
  /** Shared by every activity of the worker (one is made when absent). */
  readonly batcher?: BudgetBatcher;
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

/** One op's answer from a batch: its value, or the failure a single update would have raised. */
function unwrapOp<T>(r: BudgetOpResult): T {
  if (r.ok) return r.value as T;
  if (r.type === 'StaleReserve') throw ApplicationFailure.create({ type: 'StaleReserve', message: r.message });
  throw ApplicationFailure.create({ type: 'BudgetRejected', nonRetryable: true, message: r.message });
}

/** The update's target workflow is closed (failed, terminated) or gone. */
function isClosed(e: unknown): boolean {
  if (e instanceof WorkflowNotFoundError) return true;
  const code = (e as { code?: unknown } | null)?.code;
  return code === 5 || /workflow execution already completed/i.test((e as Error | null)?.message ?? '');
}

/**
 * A time after which this activity attempt has certainly timed out: its start-to-close timeout from
 * now (the attempt has just started), plus a minute for clock skew between this worker and the
 * server. A reserve arriving later is a zombie's: Temporal has already retried the attempt.
 */
const STALE_SLACK_MS = 60_000;
/**
 * The paid call's activity attempt this runs in: reserve and release from inside one paid call
 * carry it (see Reservation.attempt). Undefined elsewhere (the budget activities called on their
 * own by runs of earlier versions, direct calls in tests and tools): those are not attempt-bound.
 */
function currentAttempt(): number | undefined {
  try {
    const info = Context.current().info;
    return info.activityType === 'paidCall' ? info.attempt : undefined;
  } catch {
    return undefined;
  }
}

function attemptDeadline(): number | undefined {
  try {
    return Date.now() + Context.current().info.startToCloseTimeoutMs + STALE_SLACK_MS;
  } catch {
    return undefined; // not inside an activity (direct calls in tests and tools)
  }
}

export function createBudgetActivities(deps: BudgetDeps) {
  const { temporal, log } = deps;
  const shards = Math.max(1, deps.budgetShards);
  const handle = (scope: string, shard: number) => temporal.workflow.getHandle(shardWorkflowId(deps.taskQueue, scope, shard, shards));
  const send: SendBatch = async (target, ops) => {
    const updateId = `batch:${randomUUID()}`;
    if (target.startArgs === undefined) return temporal.workflow.getHandle(target.workflowId).executeUpdate(batchUpdate, { args: [ops], updateId });
    const startWorkflowOperation = new WithStartWorkflowOperation<BudgetEntityWorkflow>(BUDGET_ENTITY_TYPE, {
      workflowId: target.workflowId,
      taskQueue: entityTaskQueue(deps.taskQueue),
      args: [target.startArgs],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
    return temporal.workflow.executeUpdateWithStart(batchUpdate, { args: [ops], updateId, startWorkflowOperation });
  };
  const batcher = deps.batcher ?? new BudgetBatcher(send);
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
    const message = `budget entity ${workflowId} of scope "${scope}" has ${how}; reservations are refused until an operator restores it (\`switchyard budget restore --scope ${scope}\`)`;
    log.error({ workflowId, scope }, message);
    return ApplicationFailure.create({ type: 'BudgetUnavailable', nonRetryable: true, message });
  };
  /** The scope's entity has no running run (failed, terminated): checked, not inferred from one error. */
  const entityDown = async (scope: string, shard: number): Promise<boolean> => {
    try {
      const d = await handle(scope, shard).describe();
      return d.status.name !== 'RUNNING' && d.status.name !== 'CONTINUED_AS_NEW';
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return true;
      throw e;
    }
  };
  /**
   * Appends the attempt to the audit ledger (idempotent by reservation id). When the ledger does
   * not take it within LEDGER_WRITE_MS (its database is down), the line goes to the ledger outbox:
   * a `ledgerOutbox` run (started before this returns, so the line is durable) writes it when the
   * ledger is back, and the request answers now instead of waiting for the database. True when the
   * line is new (not written or deferred by an earlier attempt).
   */
  const record = async (input: RecordSpendInput): Promise<void> => {
    const entry = entryOf(input);
    try {
      await withTimeout(Promise.resolve(deps.ledger.record(entry)), LEDGER_WRITE_MS);
      return;
    } catch (e) {
      log.warn({ err: (e as Error).message, key: entry.key }, 'ledger write failed; the line goes to the ledger outbox');
    }
    await defer(entry, 'USE_EXISTING');
  };
  /**
   * Hands the line to a `ledgerOutbox` run. With `FAIL`, only the first start for a line succeeds:
   * true then, false when a run for it exists or existed (the once-only token of the entity-down path).
   */
  const defer = async (entry: LedgerEntry, conflict: 'USE_EXISTING' | 'FAIL'): Promise<boolean> => {
    const deferredAt = Date.now();
    const started = await deps.temporal.workflow
      .start<LedgerOutboxWorkflow>(LEDGER_OUTBOX_TYPE, {
        workflowId: ledgerOutboxWorkflowId(entry.key),
        taskQueue: deps.taskQueue,
        args: [{ entry, deferredAt }],
        workflowIdConflictPolicy: conflict,
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      })
      .then(
        () => true,
        (e: unknown) => {
          // A run for this line exists, or one that ended wrote it.
          if (e instanceof WorkflowExecutionAlreadyStartedError) return false;
          throw e;
        },
      );
    if (started || conflict === 'USE_EXISTING') deps.metrics?.ledgerDeferred(entry.key, deferredAt);
    return started;
  };
  const entryOf = (input: RecordSpendInput): LedgerEntry => {
    // A model no worker's catalog knows any more is still recorded, by its name.
    const spec = deps.catalog.get(input.model);
    return {
      key: input.reservationId,
      scope: input.scope,
      ...(input.baselineNanos !== undefined ? { baselineNanos: input.baselineNanos } : {}),
      workflowId: input.workflowId,
      attemptId: input.attemptId,
      model: input.model,
      provider: spec?.provider ?? 'unknown',
      tier: spec?.tier ?? 'unknown',
      category: input.category,
      feature: input.feature ?? UNSPECIFIED_FEATURE,
      ...(input.keyId !== undefined ? { keyId: input.keyId } : {}),
      inputTokens: input.usage.inputTokens,
      cachedInputTokens: input.usage.cachedInputTokens,
      outputTokens: input.usage.outputTokens,
      costNanos: input.costNanos,
      ...(input.mode ? { mode: input.mode } : {}),
      ...(input.liveNanos !== undefined ? { liveNanos: input.liveNanos } : {}),
      at: new Date().toISOString(),
    };
  };
  /** Metrics of a first settlement; never fails the settlement (a retry would be a duplicate, never counted). */
  const counted = (input: RecordSpendInput): void => {
    try {
      deps.metrics?.settled({
        model: input.model,
        tier: deps.catalog.get(input.model)?.tier ?? 'unknown',
        feature: input.feature ?? UNSPECIFIED_FEATURE,
        costNanos: input.costNanos,
        latencyMs: input.latencyMs,
        keyId: input.keyId,
        mode: input.mode,
        liveNanos: input.liveNanos,
      });
    } catch (e) {
      log.warn({ err: (e as Error).message, model: input.model }, 'settlement not counted in metrics');
    }
  };
  const reserveOn = async (input: ReserveInput, shard: number): Promise<ReserveResult> => {
    const workflowId = shardWorkflowId(deps.taskQueue, input.scope, shard, shards);
    const notAfter = attemptDeadline();
    const attempt = currentAttempt();
    const startArgs = {
      scope: input.scope,
      settings: settingsForShard(deps.budgetDefaults, shard, shards),
      ...(shards > 1 ? { shard: { index: shard, count: shards } } : {}),
    };
    try {
      const r = await batcher.submit(
        { workflowId, startArgs },
        {
          op: 'reserve',
          reservationId: input.reservationId,
          category: input.category,
          amountNanos: input.amountNanos,
          workflowId: input.workflowId,
          force: input.force,
          ...(notAfter !== undefined ? { notAfter } : {}),
          ...(attempt !== undefined ? { attempt } : {}),
        },
      );
      return unwrapOp<ReserveResult>(r);
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
      // Its budget is reported from now on, granted or not (a spent scope that denies everything too).
      deps.metrics?.sawBudget(input.scope);
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
        // From inside the paid call: as the attempt it is (a zombie attempt's release is ignored).
        const attempt = currentAttempt();
        const r = await batcher.submit(
          { workflowId: handle(input.scope, input.shard).workflowId },
          { op: 'release', reservationId: input.reservationId, ...(attempt !== undefined ? { attempt } : {}) },
        );
        return unwrapOp<boolean>(r);
      } catch (e) {
        // The entity is gone (failed or terminated): nothing to release now; a restore carries the
        // reservation, which then expires by its TTL. Never a request stuck on a release.
        if (isClosed(e) && (await entityDown(input.scope, input.shard))) return false;
        return unwrapUpdateFailure(e);
      }
    },

    /** Releases a reservation on whichever shard holds it (a paid call that failed as an activity). */
    async releaseReservation(input: { scope: string; reservationId: string; workflowId: string }): Promise<boolean> {
      let released = false;
      for (const shard of shardOrder(input.workflowId, shards)) {
        try {
          const r = await batcher.submit({ workflowId: handle(input.scope, shard).workflowId }, { op: 'release', reservationId: input.reservationId });
          released = unwrapOp<boolean>(r) || released;
        } catch (e) {
          // A shard that is gone holds nothing this request can free now (a restore carries it).
          if (isClosed(e) && (await entityDown(input.scope, shard))) continue;
          throw e;
        }
      }
      return released;
    },

    /** Settles the attempt in the budget entity and appends it to the audit ledger; both idempotent. */
    async recordSpend(input: RecordSpendInput): Promise<SettleResult> {
      let result: SettleResult;
      try {
        const r = await batcher.submit(
          { workflowId: handle(input.scope, input.shard).workflowId },
          {
            op: 'settle',
            reservationId: input.reservationId,
            category: input.category,
            costNanos: input.costNanos,
            ...(input.seq !== undefined ? { seq: input.seq } : {}),
          },
        );
        result = unwrapOp<SettleResult>(r);
      } catch (e) {
        if (!isClosed(e) || !(await entityDown(input.scope, input.shard))) return unwrapUpdateFailure(e);
        // The entity went away while this request held a reservation: the money was spent, so the
        // ledger records it; the request fails with the settlement in its failure (`unsettled`),
        // and `switchyard budget restore` applies it once, by its sequence number. The line goes
        // through the outbox, whose first start is the once-only token for counting it (a retried
        // attempt finds the run and does not count again; one that crashed between the start and
        // the count leaves it uncounted: the ledger and the restore still hold it).
        if (await defer(entryOf(input), 'FAIL')) counted(input);
        const unsettled = {
          scope: input.scope,
          shard: input.shard,
          reservationId: input.reservationId,
          category: input.category,
          costNanos: input.costNanos,
          ...(input.seq !== undefined ? { seq: input.seq } : {}),
        };
        const failure = await unavailable(handle(input.scope, input.shard).workflowId, input.scope);
        throw ApplicationFailure.create({ type: 'BudgetUnavailable', nonRetryable: true, message: failure.message, details: [{ unsettled }] });
      }
      // Counted where the entity applied it for the first time (a retried settlement is a
      // duplicate there), before the ledger append, whose failure retries the settlement.
      if (result.duplicate) log.info({ workflowId: input.workflowId, attemptId: input.attemptId }, 'spend already settled; retry ignored');
      else counted(input);
      await record(input);
      if ((result.overshootNanos ?? 0) > 0)
        log.warn(
          { workflowId: input.workflowId, attemptId: input.attemptId, model: input.model, overshootNanos: result.overshootNanos },
          'cost above its reservation (raise budget.reservationMargin for this provider)',
        );
      return result;
    },

    /** A soft-limit alert: one structured log line, and a POST to the webhook when configured. */
    async sendBudgetAlert(input: { alert: Alert; webhookUrl?: string | undefined }): Promise<void> {
      const a = input.alert;
      log.warn(
        { budgetAlert: true, scope: a.scope, category: a.category, threshold: a.threshold, spentNanos: a.spentNanos, allocatedNanos: a.allocatedNanos },
        `budget ${a.scope}/${a.category} reached ${Math.round(a.threshold * 100)}% of its allocation`,
      );
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
