/**
 * The typed client for pipelines: validates a request before anything starts, derives the workflow
 * id from the request id (re-submitting is idempotent), and returns typed results or failures.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection, WithStartWorkflowOperation, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type WorkflowHandle, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { BudgetSettings, BudgetStatus, PeriodSummary } from '../budget/book.js';
import { type AdjustInput, adjustUpdate, escalateSignal, historyQuery, resetUpdate, statusQuery } from '../workflows/budgetMessages.js';
import { combineHistories, combineStatuses, settingsForShard, shardTotals, shardWorkflowId } from '../budget/shards.js';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { type Tier, TIERS } from '../catalog/schema.js';
import { parseOrThrow, ValidationError } from '../util/validation.js';
import { schemaError } from '../quality/checks.js';
import { type RequestFailureDetails, type RequestInput, requestInputSchema, type RequestResult } from '../workflows/requestTypes.js';
import { LlmCategory, LlmTier } from '../workflows/searchAttributes.js';
import { healthQuery, type HealthView, healthWorkflowId } from '../workflows/healthEntity.js';

export interface SwitchyardClientOptions {
  readonly address: string;
  readonly namespace?: string;
  readonly taskQueue?: string;
  /** Settings a budget scope starts with when `setBudget` creates it. */
  readonly budgetDefaults?: BudgetSettings;
  /** Entity workflows each budget scope is split across; must match the workers' setting. */
  readonly budgetShards?: number;
}

export class BudgetNotFoundError extends Error {
  override readonly name = 'BudgetNotFoundError';
}

export class RequestFailedError extends Error {
  override readonly name = 'RequestFailedError';
  constructor(
    message: string,
    readonly workflowId: string,
    readonly failureType: string | undefined,
    readonly details: RequestFailureDetails | undefined,
  ) {
    super(message);
  }
}

export function workflowIdFor(requestId: string): string {
  return `llm-${requestId}`;
}

export class SwitchyardClient {
  private constructor(
    readonly temporal: Client,
    private readonly connection: Connection,
    readonly taskQueue: string,
    private readonly budgetDefaults: BudgetSettings | undefined,
    private readonly budgetShards: number,
  ) {}

  static async connect(opts: SwitchyardClientOptions): Promise<SwitchyardClient> {
    const connection = await Connection.connect({ address: opts.address });
    const client = new Client({ connection, namespace: opts.namespace ?? 'default' });
    return new SwitchyardClient(client, connection, opts.taskQueue ?? 'switchyard', opts.budgetDefaults, Math.max(1, opts.budgetShards ?? 1));
  }

  private shardHandles(scope: string) {
    return Array.from({ length: this.budgetShards }, (_, k) => this.temporal.workflow.getHandle(shardWorkflowId(this.taskQueue, scope, k, this.budgetShards)));
  }

  /** The budget of a scope: period, total, spent, reserved, and each category (all shards). */
  async budgetStatus(scope = 'default'): Promise<BudgetStatus> {
    const results = await Promise.allSettled(this.shardHandles(scope).map((h) => h.query(statusQuery)));
    const found: BudgetStatus[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') found.push(r.value);
      else if (!(r.reason instanceof WorkflowNotFoundError)) throw r.reason;
    }
    if (found.length === 0) throw new BudgetNotFoundError(`budget scope "${scope}" has no entity yet: it is created by the first request, or by \`switchyard budget set\``);
    return combineStatuses(found);
  }

  async budgetHistory(scope = 'default'): Promise<PeriodSummary[]> {
    const results = await Promise.allSettled(this.shardHandles(scope).map((h) => h.query(historyQuery)));
    return combineHistories(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])));
  }

  /** Changes a scope's budget mid-period, creating it (every shard) with the defaults first if needed. */
  async setBudget(scope: string, change: AdjustInput): Promise<BudgetStatus> {
    const defaults = this.budgetDefaults;
    if (!defaults) throw new Error('setBudget needs budgetDefaults in SwitchyardClient.connect options');
    const n = this.budgetShards;
    const totals = change.totalNanos !== undefined ? shardTotals(change.totalNanos, n) : undefined;
    const statuses = await Promise.all(
      Array.from({ length: n }, async (_, k) => {
        const start = new WithStartWorkflowOperation('budgetEntity', {
          workflowId: shardWorkflowId(this.taskQueue, scope, k, n),
          taskQueue: this.taskQueue,
          args: [{ scope, settings: settingsForShard(defaults, k, n), ...(n > 1 ? { shard: { index: k, count: n } } : {}) }],
          workflowIdConflictPolicy: 'USE_EXISTING',
        });
        try {
          return await this.temporal.workflow.executeUpdateWithStart(adjustUpdate, { args: [{ ...change, ...(totals ? { totalNanos: totals[k] } : {}) }], startWorkflowOperation: start });
        } catch (e) {
          if (e instanceof WorkflowUpdateFailedError) throw new Error(`budget change rejected: ${e.cause?.message ?? e.message}`);
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

  /** Validates and starts a request; an already-started request id returns the existing run. */
  async start(input: RequestInput): Promise<WorkflowHandle> {
    const req = parseOrThrow(requestInputSchema, input, 'request');
    const bad = req.quality?.jsonSchema ? schemaError(req.quality.jsonSchema) : undefined;
    if (bad) throw new ValidationError('request', [`quality.jsonSchema: not a valid JSON Schema (${bad})`]);
    const requestId = req.requestId ?? randomUUID();
    const workflowId = workflowIdFor(requestId);
    try {
      return await this.temporal.workflow.start('llmRequest', {
        taskQueue: this.taskQueue,
        workflowId,
        args: [{ ...input, requestId }],
        typedSearchAttributes: [{ key: LlmCategory, value: req.category }],
      });
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError) return this.temporal.workflow.getHandle(workflowId);
      throw e;
    }
  }

  async result(workflowId: string): Promise<RequestResult> {
    const handle = this.temporal.workflow.getHandle(workflowId);
    try {
      return (await handle.result()) as RequestResult;
    } catch (e) {
      throw toRequestFailed(e, workflowId);
    }
  }

  async ask(input: RequestInput): Promise<RequestResult> {
    const handle = await this.start(input);
    return this.result(handle.workflowId);
  }

  /**
   * Operator escalation. A running request re-routes at once (to `model`, or one tier up); a
   * finished one is re-run as a new request (`<request id>-esc<N>`) at the next tier or on `model`.
   */
  async escalate(workflowId: string, opts: { model?: string; reason?: string } = {}): Promise<{ action: 'signalled' | 'restarted'; workflowId: string }> {
    const handle = this.temporal.workflow.getHandle(workflowId);
    const desc = await handle.describe();
    if (desc.status.name === 'RUNNING') {
      await handle.signal(escalateSignal, { ...(opts.model ? { model: opts.model } : {}), ...(opts.reason ? { reason: opts.reason } : {}) });
      return { action: 'signalled', workflowId };
    }
    const history = await handle.fetchHistory();
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) throw new Error(`cannot read the input of ${workflowId}`);
    const input = defaultPayloadConverter.fromPayload<RequestInput>(payload);
    const tier = desc.typedSearchAttributes.get(LlmTier) as Tier | undefined;
    const up = tier ? TIERS[Math.min(TIERS.length - 1, TIERS.indexOf(tier) + 1)] : undefined;
    const { requestId: _r, model: _m, minTier: _t, ...rest } = input;
    let k = 1;
    for (; k < 100; k++) {
      const candidate = workflowIdFor(`${input.requestId ?? workflowId}-esc${k}`);
      const exists = await this.temporal.workflow.getHandle(candidate).describe().then(() => true, () => false);
      if (!exists) break;
    }
    const next = await this.start({ ...rest, requestId: `${input.requestId ?? workflowId}-esc${k}`, ...(opts.model ? { model: opts.model } : up ? { minTier: up } : {}) });
    return { action: 'restarted', workflowId: next.workflowId };
  }

  /** Circuit breakers per model, with their state computed now. */
  async health(): Promise<Array<{ model: string; state: 'closed' | 'open' | 'half_open'; consecutiveFailures: number; openUntil: string | null; lastError: string | null; timesOpened: number }>> {
    let view: HealthView;
    try {
      view = await this.temporal.workflow.getHandle(healthWorkflowId(this.taskQueue)).query(healthQuery);
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return [];
      throw e;
    }
    const now = Date.now();
    return Object.entries(view.models)
      .map(([model, c]) => ({
        model,
        state: c.openUntil === 0 ? ('closed' as const) : now < c.openUntil ? ('open' as const) : ('half_open' as const),
        consecutiveFailures: c.consecutiveFailures,
        openUntil: c.openUntil ? new Date(c.openUntil).toISOString() : null,
        lastError: c.lastError,
        timesOpened: c.timesOpened,
      }))
      .sort((a, b) => a.model.localeCompare(b.model));
  }

  /** Cancels a running request: its open reservation is released; it ends as cancelled. */
  async cancel(workflowId: string): Promise<void> {
    await this.temporal.workflow.getHandle(workflowId).cancel();
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

export function toRequestFailed(e: unknown, workflowId: string): unknown {
  if (e instanceof WorkflowFailedError && e.cause instanceof ApplicationFailure) {
    const details = e.cause.details?.[0] as RequestFailureDetails | undefined;
    return new RequestFailedError(e.cause.message, workflowId, e.cause.type ?? undefined, details);
  }
  if (e instanceof WorkflowFailedError) return new RequestFailedError(e.cause?.message ?? e.message, workflowId, undefined, undefined);
  return e;
}
