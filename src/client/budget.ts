/**
 * The budget part of the client: a scope's status, settings, periods, reallocation and restore,
 * over every shard of its entity (workflows/budget). SwitchyardClient exposes it as `budgets`
 * and forwards its methods.
 */
import {
  type Client,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { type BudgetSettings, type BudgetStatus, type PeriodSummary, isWebhookUrl } from '../budget/book.js';
import type { ReallocationRecord } from '../budget/book.js';
import type { ReallocationPlan } from '../budget/reallocation.js';
import { combineHistories, combineStatuses, settingsForShard, shardTotals, shardWorkflowId } from '../budget/shards.js';
import { ValidationError } from '../util/validation.js';
import { RequestFailedError, toRequestFailed } from '../contracts/requestFailure.js';
import type { RequestFailureDetails, UnsettledSpend } from '../workflows/request/contract.js';
import { DeferredState, PROVIDER_BATCH_TYPE, type ProviderBatchSummary } from '../workflows/deferred/contract.js';
import { requestRunsQuery, visibilityString } from './runsQuery.js';
import {
  ADJUST_KEYS,
  type AdjustInput,
  adjustUpdate,
  BUDGET_ENTITY_TYPE,
  type BudgetEntityInput,
  type BudgetEntityWorkflow,
  historyQuery,
  reallocateUpdate,
  reallocationPlanQuery,
  reallocationsQuery,
  resetUpdate,
  settleUpdate,
  stateQuery,
  statusQuery,
} from '../workflows/budget/contract.js';
import { entityTaskQueue } from '../workflows/taskQueues.js';

export class BudgetNotFoundError extends Error {
  override readonly name = 'BudgetNotFoundError';
}

/** A budget scope's status, and any of its entities that are not running (failed or terminated). */
export type BudgetStatusView = BudgetStatus & {
  readonly unavailable?: Array<{ workflowId: string; status: string; closeTime: string | null }>;
};

export class BudgetClient {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    private readonly budgetDefaults: BudgetSettings | undefined,
    private readonly budgetShards: number,
  ) {}

  /** What a reallocation would move now, per shard of the scope (`budget realloc --dry-run`). */
  async reallocationPlan(scope = 'default'): Promise<ReallocationPlan[]> {
    const plans = await Promise.allSettled(this.shardHandles(scope).map((h) => h.query(reallocationPlanQuery)));
    const found = plans.flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
    if (found.length === 0)
      throw new BudgetNotFoundError(`budget scope "${scope}" has no entity yet: it is created by the first request, or by \`switchyard budget set\``);
    return found;
  }

  /** Reallocates now on every shard of the scope; each record lists its moves (none when nothing needed moving). */
  async reallocate(scope = 'default'): Promise<ReallocationRecord[]> {
    await this.reallocationPlan(scope);
    return Promise.all(this.shardHandles(scope).map((h) => h.executeUpdate(reallocateUpdate))).catch((e: unknown) => {
      if (e instanceof WorkflowUpdateFailedError) throw new Error(`reallocation refused: ${e.cause?.message ?? e.message}`);
      // An entity run started by an older release has no reallocate handler until its next continue-as-new.
      if (/No registered handler for update/i.test(String((e as Error).message ?? '')))
        throw new Error(
          `budget scope "${scope}" runs on an entity started by an older release, which cannot reallocate yet; it can after its next continue-as-new (\`budget realloc --dry-run\` works meanwhile)`,
        );
      throw e;
    });
  }

  /** The reallocations applied to a scope (every shard), oldest first. */
  async reallocations(scope = 'default'): Promise<ReallocationRecord[]> {
    const results = await Promise.allSettled(this.shardHandles(scope).map((h) => h.query(reallocationsQuery)));
    return results.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])).sort((a, b) => a.at - b.at);
  }

  private shardHandles(scope: string) {
    return Array.from({ length: this.budgetShards }, (_, k) => this.temporal.workflow.getHandle(shardWorkflowId(this.taskQueue, scope, k, this.budgetShards)));
  }

  /**
   * The budget of a scope: period, total, spent, reserved, and each category (all shards). An
   * entity that failed or was terminated still answers with its last state, and is listed in
   * `unavailable`: it refuses reservations until `restoreBudget`.
   */
  async budgetStatus(scope = 'default'): Promise<BudgetStatusView> {
    const handles = this.shardHandles(scope);
    const results = await Promise.allSettled(handles.map((h) => h.query(statusQuery)));
    const found: BudgetStatus[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') found.push(r.value);
      else if (!(r.reason instanceof WorkflowNotFoundError)) throw r.reason;
    }
    if (found.length === 0)
      throw new BudgetNotFoundError(`budget scope "${scope}" has no entity yet: it is created by the first request, or by \`switchyard budget set\``);
    const unavailable = [];
    for (const h of handles) {
      const d = await h.describe().catch((e: unknown) => {
        if (e instanceof WorkflowNotFoundError) return undefined;
        throw e;
      });
      if (d && d.status.name !== 'RUNNING')
        unavailable.push({ workflowId: h.workflowId, status: d.status.name, closeTime: d.closeTime?.toISOString() ?? null });
    }
    return { ...combineStatuses(found), ...(unavailable.length > 0 ? { unavailable } : {}) };
  }

  /**
   * Brings back a scope's entities that failed or were terminated, each from its last state (spend,
   * open reservations, history): a new run of the same workflow id. Running entities are left alone.
   */
  async restoreBudget(scope = 'default'): Promise<{
    entities: Array<{ workflowId: string; was: string; restored: boolean; reason?: string }>;
    settled: Array<{ workflowId: string; reservationId: string; costNanos: number; duplicate: boolean }>;
    /** Runs whose settlements could not be read (their history gone, or a payload this client cannot decode). */
    unreadable: Array<{ workflowId: string; error: string }>;
  }> {
    const out = [];
    for (const [k, h] of this.shardHandles(scope).entries()) {
      let d;
      try {
        d = await h.describe();
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) {
          out.push({ workflowId: h.workflowId, was: 'absent', restored: false, reason: 'no entity: it is created by the first request' });
          continue;
        }
        throw e;
      }
      if (d.status.name === 'RUNNING') {
        out.push({ workflowId: h.workflowId, was: 'RUNNING', restored: false, reason: 'running' });
        continue;
      }
      // A closed run still answers queries (its history is replayed on a worker).
      const book = await this.temporal.workflow.getHandle(h.workflowId, d.runId).query(stateQuery);
      const n = this.budgetShards;
      const input: BudgetEntityInput = { scope, settings: book.settings, book, ...(n > 1 ? { shard: { index: k, count: n } } : {}) };
      await this.temporal.workflow.start<BudgetEntityWorkflow>(BUDGET_ENTITY_TYPE, {
        workflowId: h.workflowId,
        taskQueue: entityTaskQueue(this.taskQueue),
        args: [input],
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      });
      out.push({ workflowId: h.workflowId, was: d.status.name, restored: true });
    }
    return { entities: out, ...(await this.settleStranded(scope)) };
  }

  /**
   * Settlements that could not be made while the scope's entity was down, applied now, each once
   * (by its sequence number, or its reservation id; a second restore finds them duplicates): those
   * of requests whose runs failed with `unsettled` spend, and those of provider batches whose
   * delivery found the entity gone (state `unsettled`, docs/deferred.md) and that ended since the
   * scope's entity last went down (so a later outage's restore does not apply an earlier one's again).
   */
  private async settleStranded(scope: string): Promise<{
    settled: Array<{ workflowId: string; reservationId: string; costNanos: number; duplicate: boolean }>;
    unreadable: Array<{ workflowId: string; error: string }>;
  }> {
    const settled: Array<{ workflowId: string; reservationId: string; costNanos: number; duplicate: boolean }> = [];
    const unreadable: Array<{ workflowId: string; error: string }> = [];
    const apply = async (workflowId: string, unsettled: readonly UnsettledSpend[] | undefined): Promise<void> => {
      for (const u of unsettled ?? []) {
        if (u.scope !== scope) continue;
        const r = await this.temporal.workflow.getHandle(shardWorkflowId(this.taskQueue, scope, u.shard, this.budgetShards)).executeUpdate(settleUpdate, {
          args: [{ reservationId: u.reservationId, category: u.category, costNanos: u.costNanos, ...(u.seq !== undefined ? { seq: u.seq } : {}) }],
          updateId: `restore-settle:${u.reservationId}:${randomUUID()}`,
        });
        settled.push({ workflowId, reservationId: u.reservationId, costNanos: u.costNanos, duplicate: r.duplicate });
      }
    };
    for await (const w of this.temporal.workflow.list({ query: requestRunsQuery(this.taskQueue, undefined, "LlmOutcome = 'unsettled'") })) {
      let details: RequestFailureDetails | undefined;
      try {
        await this.temporal.workflow.getHandle(w.workflowId, w.runId).result();
      } catch (e) {
        const f = toRequestFailed(e, w.workflowId);
        if (f instanceof RequestFailedError) details = f.details;
        else unreadable.push({ workflowId: w.workflowId, error: e instanceof Error ? e.message : String(e) });
      }
      await apply(w.workflowId, details?.unsettled);
    }
    const since = await this.downSince(scope);
    if (since === undefined) return { settled, unreadable };
    const batches = [
      `WorkflowType = '${PROVIDER_BATCH_TYPE}'`,
      `TaskQueue = ${visibilityString(entityTaskQueue(this.taskQueue))}`,
      `${DeferredState.name} = 'unsettled'`,
      `CloseTime >= '${since.toISOString()}'`,
    ];
    for await (const w of this.temporal.workflow.list({ query: batches.join(' AND ') })) {
      let summary: ProviderBatchSummary;
      try {
        summary = (await this.temporal.workflow.getHandle(w.workflowId, w.runId).result()) as ProviderBatchSummary;
      } catch (e) {
        unreadable.push({ workflowId: w.workflowId, error: e instanceof Error ? e.message : String(e) });
        continue;
      }
      await apply(w.workflowId, summary.unsettled);
    }
    return { settled, unreadable };
  }

  /**
   * When the scope's entity last went down, if ever: each shard's latest failed, terminated,
   * timed-out or cancelled run's close time, the earliest of them over the shards.
   */
  private async downSince(scope: string): Promise<Date | undefined> {
    const ids = Array.from({ length: this.budgetShards }, (_, k) => visibilityString(shardWorkflowId(this.taskQueue, scope, k, this.budgetShards)));
    const down = ['Failed', 'Terminated', 'TimedOut', 'Canceled'].map((s) => `ExecutionStatus = '${s}'`).join(' OR ');
    const latest = new Map<string, Date>();
    for await (const w of this.temporal.workflow.list({ query: `(${ids.map((id) => `WorkflowId = ${id}`).join(' OR ')}) AND (${down})` })) {
      const seen = latest.get(w.workflowId);
      if (w.closeTime && (seen === undefined || w.closeTime > seen)) latest.set(w.workflowId, w.closeTime);
    }
    return [...latest.values()].reduce<Date | undefined>((min, t) => (min === undefined || t < min ? t : min), undefined);
  }

  async budgetHistory(scope = 'default'): Promise<PeriodSummary[]> {
    const results = await Promise.allSettled(this.shardHandles(scope).map((h) => h.query(historyQuery)));
    return combineHistories(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])));
  }

  /** Changes a scope's budget mid-period, creating it (every shard) with the defaults first if needed. */
  async setBudget(scope: string, change: AdjustInput): Promise<BudgetStatus> {
    const defaults = this.budgetDefaults;
    if (!defaults) throw new Error('setBudget needs budgetDefaults in SwitchyardClient.connect options');
    const problems = [
      ...Object.keys(change)
        .filter((k) => !(ADJUST_KEYS as readonly string[]).includes(k))
        .map((k) => `${k}: not a budget setting (known: ${ADJUST_KEYS.join(', ')})`),
      ...(typeof change.webhookUrl === 'string' && !isWebhookUrl(change.webhookUrl)
        ? [`webhookUrl: "${change.webhookUrl}" is not an http(s) URL such as https://hooks.example.com/budget`]
        : []),
    ];
    if (problems.length > 0) throw new ValidationError('budget change', problems);
    const n = this.budgetShards;
    const totals = change.totalNanos !== undefined ? shardTotals(change.totalNanos, n) : undefined;
    const statuses = await Promise.all(
      Array.from({ length: n }, async (_, k) => {
        const start = new WithStartWorkflowOperation<BudgetEntityWorkflow>(BUDGET_ENTITY_TYPE, {
          workflowId: shardWorkflowId(this.taskQueue, scope, k, n),
          taskQueue: entityTaskQueue(this.taskQueue),
          args: [{ scope, settings: settingsForShard(defaults, k, n), ...(n > 1 ? { shard: { index: k, count: n } } : {}) }],
          workflowIdConflictPolicy: 'USE_EXISTING',
          // Never replace a failed or terminated entity with an empty one (its spend would be lost).
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
        });
        try {
          return await this.temporal.workflow.executeUpdateWithStart(adjustUpdate, {
            args: [{ ...change, ...(totals ? { totalNanos: totals[k] } : {}) }],
            startWorkflowOperation: start,
          });
        } catch (e) {
          if (e instanceof WorkflowUpdateFailedError) throw new Error(`budget change rejected: ${e.cause?.message ?? e.message}`);
          if (e instanceof WorkflowExecutionAlreadyStartedError) {
            throw new Error(
              `budget entity ${shardWorkflowId(this.taskQueue, scope, k, n)} of scope "${scope}" is not running (failed or terminated): restore it first with \`switchyard budget restore --scope ${scope}\``,
            );
          }
          throw e;
        }
      }),
    );
    return combineStatuses(statuses);
  }

  /** Closes the current period now on every shard (summaries are kept) and starts from zero. */
  async resetBudget(scope = 'default'): Promise<PeriodSummary> {
    const parts = await Promise.all(this.shardHandles(scope).map((h) => h.executeUpdate(resetUpdate)));
    const [merged] = combineHistories(parts.map((p) => [p]));
    if (!merged) throw new BudgetNotFoundError(`budget scope "${scope}" has no entity`);
    return merged;
  }
}
