/**
 * The typed client for pipelines: validates a request before anything starts, derives the workflow
 * id from the request id (re-submitting is idempotent), and returns typed results or failures.
 */
import { randomUUID } from 'node:crypto';
import { own } from '../util/names.js';
import { DeferredClient } from './deferred.js';
import { Client, Connection, isGrpcServiceError, ServiceError, WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { type BudgetSettings, type BudgetStatus, type PeriodSummary } from '../budget/book.js';
import { type AdjustInput } from '../workflows/budget/contract.js';
import type { ReallocationRecord } from '../budget/book.js';
import type { ReallocationPlan } from '../budget/reallocation.js';
import type { ControlSettings } from '../learning/routingControl.js';
import { controlSettingsFrom } from '../learning/worker/routingHandle.js';
import { fileConfigSchema } from '../config/config.js';
import { type FeedbackReceipt, LearningClient } from './learningClient.js';
import { status } from '@grpc/grpc-js';
import { toRequestFailed } from '../contracts/requestFailure.js';
import { type BatchEntry, runBatch, type RunBatchOptions } from '../batch/runBatch.js';
import type { BatchResultLine, BatchSummary } from '../batch/summary.js';

export { RequestFailedError } from '../contracts/requestFailure.js';
export { requestRunsQuery } from './runsQuery.js';
export { BudgetNotFoundError, type BudgetStatusView } from './budget.js';
import { BudgetClient, type BudgetStatusView } from './budget.js';
import { BatchClient } from './batch.js';
import { type RedriveReport, type RunInspection, RunsClient, type RunSummary } from './runs.js';
export type { RedriveReport, RunInspection, RunSummary } from './runs.js';
import { startInput, type StartOptions } from './startInput.js';
export type { StartOptions } from './startInput.js';

import { type Tier, TIERS } from '../catalog/schema.js';
import { parseOrThrow, ValidationError } from '../util/validation.js';
import { requestSchemaIssues } from '../quality/checks.js';
import {
  type RequestInput,
  type RequestResult,
  escalateSignal,
  LlmBatch,
  LlmCategory,
  LlmFeature,
  LlmTier,
  requestMemo,
  UNSPECIFIED_FEATURE,
  workflowIdFor,
} from '../workflows/request/contract.js';
import { requestInputSchema } from '../contracts/requestInput.js';
import { type BatchRunInput, type BatchRunStatus } from '../workflows/batch/contract.js';
import { instructionOf } from '../workflows/conversation.js';
import { connectionOptions, dataConverterFor, type TemporalAccess } from '../temporal/connection.js';
import type { llmRequest } from '../workflows/request/llmRequest.js';
import { countTemporalActions, type TemporalActionsSummary } from './actions.js';
import { HealthClient } from './health.js';
import { KeysClient } from './keys.js';

export type { TemporalActionsSummary } from './actions.js';

export interface SwitchyardClientOptions {
  readonly address: string;
  readonly namespace?: string;
  readonly taskQueue?: string;
  /** Settings a budget scope starts with when `setBudget` creates it. */
  readonly budgetDefaults?: BudgetSettings;
  /** Entity workflows each budget scope is split across; must match the workers' setting. */
  readonly budgetShards?: number;
  /** TLS, API key and payload codec (from the environment: `loadConfig().access`). */
  readonly access?: TemporalAccess;
  /** Settings the task queue's routing entity starts with if a client message creates it (default: the configuration defaults). */
  readonly controlSettings?: ControlSettings;
  /** A deadline for requests of these categories that name none (config `deferred.categoryDeadlines`, e.g. {"batch": "12h"}). */
  readonly categoryDeadlines?: Readonly<Record<string, string>>;
}

export { workflowIdFor } from '../workflows/request/contract.js';

/** How long `ask` and `result` wait for an unreachable Temporal server before giving up. */
const SERVER_OUTAGE_MS = 120_000;

/** The server could not be reached (gRPC UNAVAILABLE): worth trying again, unlike any answer it gave. */
function serverUnreachable(e: unknown): boolean {
  const cause = e instanceof ServiceError ? e.cause : e;
  return isGrpcServiceError(cause) && cause.code === status.UNAVAILABLE;
}

async function throughServerOutage<T>(fn: () => Promise<T>, maxMs = SERVER_OUTAGE_MS): Promise<T> {
  const until = Date.now() + maxMs;
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await fn();
    } catch (e) {
      if (!serverUnreachable(e) || Date.now() + delay > until) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

export class SwitchyardClient {
  private constructor(
    readonly temporal: Client,
    private readonly connection: Connection,
    readonly taskQueue: string,
    budgetDefaults: BudgetSettings | undefined,
    budgetShards: number,
    /** Payloads are encrypted: memos carry no prompt text. */
    readonly encrypted = false,
    controlSettings: ControlSettings = controlSettingsFrom(fileConfigSchema.parse({})),
    private readonly categoryDeadlines: Readonly<Record<string, string>> = {},
  ) {
    this.learning = new LearningClient(temporal, taskQueue, controlSettings);
    this.budgets = new BudgetClient(temporal, taskQueue, budgetDefaults, budgetShards);
    this.batches = new BatchClient(temporal, taskQueue, encrypted, this);
    this.runs = new RunsClient(temporal, taskQueue, this);
  }

  /** Finding, inspecting and re-driving request runs (client/runs.ts). */
  readonly runs: RunsClient;

  listRuns(...args: Parameters<RunsClient['listRuns']>): Promise<RunSummary[]> {
    return this.runs.listRuns(...args);
  }
  inspect(workflowId: string, runId?: string): Promise<RunInspection> {
    return this.runs.inspect(workflowId, runId);
  }
  redrive(...args: Parameters<RunsClient['redrive']>): Promise<RedriveReport> {
    return this.runs.redrive(...args);
  }

  /** Detached batches (the batchRun workflow): start, status, results, list (client/batch.ts). */
  readonly batches: BatchClient;

  startBatch(input: BatchRunInput): Promise<string> {
    return this.batches.startBatch(input);
  }
  batchExists(batchId: string): Promise<boolean> {
    return this.batches.batchExists(batchId);
  }
  batchStatus(batchId: string, opts: { sampleWaits?: boolean } = {}): Promise<BatchRunStatus> {
    return this.batches.batchStatus(batchId, opts);
  }
  batchResults(...args: Parameters<BatchClient['batchResults']>): Promise<BatchSummary> {
    return this.batches.batchResults(...args);
  }
  listBatches(limit = 50): ReturnType<BatchClient['listBatches']> {
    return this.batches.listBatches(limit);
  }

  /** Budgets: status, settings, periods, reallocation, restore (client/budget.ts). */
  readonly budgets: BudgetClient;

  budgetStatus(scope = 'default'): Promise<BudgetStatusView> {
    return this.budgets.budgetStatus(scope);
  }
  restoreBudget(scope = 'default'): ReturnType<BudgetClient['restoreBudget']> {
    return this.budgets.restoreBudget(scope);
  }
  budgetHistory(scope = 'default'): Promise<PeriodSummary[]> {
    return this.budgets.budgetHistory(scope);
  }
  setBudget(scope: string, change: AdjustInput): Promise<BudgetStatus> {
    return this.budgets.setBudget(scope, change);
  }
  resetBudget(scope = 'default'): Promise<PeriodSummary> {
    return this.budgets.resetBudget(scope);
  }
  reallocationPlan(scope = 'default'): Promise<ReallocationPlan[]> {
    return this.budgets.reallocationPlan(scope);
  }
  reallocate(scope = 'default'): Promise<ReallocationRecord[]> {
    return this.budgets.reallocate(scope);
  }
  reallocations(scope = 'default'): Promise<ReallocationRecord[]> {
    return this.budgets.reallocations(scope);
  }

  /** Experiments, feedback, the routing policy's tuning and history, spend anomalies. */
  readonly learning: LearningClient;

  /** Feedback on an answered request (0..1): its experiment and the tuner count it, once per request. */
  feedback(workflowId: string, score: number, opts: { comment?: string } = {}): Promise<FeedbackReceipt> {
    return this.learning.feedback(workflowId, score, opts);
  }

  static async connect(opts: SwitchyardClientOptions): Promise<SwitchyardClient> {
    const connection = await Connection.connect(connectionOptions(opts.address, opts.access));
    const client = new Client({ connection, namespace: opts.namespace ?? 'default', dataConverter: dataConverterFor(opts.access) });
    return new SwitchyardClient(
      client,
      connection,
      opts.taskQueue ?? 'switchyard',
      opts.budgetDefaults,
      Math.max(1, opts.budgetShards ?? 1),
      opts.access?.codec !== undefined,
      opts.controlSettings,
      opts.categoryDeadlines,
    );
  }

  /** The input a workflow run was started with (the first event of its history). */
  /** Validates and starts a request; an already-started request id returns the existing run. */
  async start(input: RequestInput, opts: StartOptions = {}): Promise<WorkflowHandle> {
    return (await this.submit(input, opts)).handle;
  }

  /**
   * Validates and starts a request. A request id that already ran (finished or still running) is
   * not run again: its existing run is returned with `existing: true`, so re-submitting charges
   * nothing. `redrive` starts a new run of a request whose last run failed, was cancelled or
   * terminated (never one that completed).
   */
  async submit(input: RequestInput, opts: StartOptions = {}): Promise<{ handle: WorkflowHandle; existing: boolean; runId?: string }> {
    const req = parseOrThrow(requestInputSchema, input, 'request');
    const bad = requestSchemaIssues(req);
    if (bad.length > 0)
      throw new ValidationError(
        'request',
        bad.map((i) => `${i.path}: ${i.message}`),
      );
    const requestId = req.requestId ?? randomUUID();
    const workflowId = workflowIdFor(requestId);
    // A category's default deadline (a streamed request is never deferred: its client is waiting).
    const deadline = req.deadline ?? (req.stream ? undefined : own(this.categoryDeadlines, req.category));
    try {
      const handle = await this.temporal.workflow.start<typeof llmRequest>('llmRequest', {
        taskQueue: this.taskQueue,
        workflowId,
        args: [{ ...input, requestId, ...(deadline !== undefined ? { deadline } : {}) }],
        workflowIdReusePolicy: opts.redrive ? 'ALLOW_DUPLICATE_FAILED_ONLY' : 'REJECT_DUPLICATE',
        memo: {
          ...requestMemo(this.encrypted ? undefined : instructionOf(req), req.category, opts.batch),
          ...(opts.redriveOf ? { redriveOf: opts.redriveOf } : {}),
          ...(opts.fingerprint ? { fingerprint: opts.fingerprint } : {}),
          ...(req.keyId ? { keyId: req.keyId } : {}),
        },
        typedSearchAttributes: [
          { key: LlmCategory, value: req.category },
          { key: LlmFeature, value: req.feature ?? UNSPECIFIED_FEATURE },
          ...(opts.batch ? [{ key: LlmBatch, value: opts.batch.batchId }] : []),
        ],
      });
      return { handle, existing: false, runId: handle.firstExecutionRunId };
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError) return { handle: this.temporal.workflow.getHandle(workflowId), existing: true };
      throw e;
    }
  }

  /** A run's answer, waiting for it; `signal` stops the wait (the run goes on). */
  async result(workflowId: string, signal?: AbortSignal): Promise<RequestResult> {
    const handle = this.temporal.workflow.getHandle(workflowId);
    const wait = () => (signal ? this.connection.withAbortSignal(signal, () => handle.result()) : handle.result());
    try {
      return (await throughServerOutage(wait)) as RequestResult;
    } catch (e) {
      throw toRequestFailed(e, workflowId);
    }
  }

  /**
   * Runs one request and waits for its answer. A Temporal server that is briefly unreachable
   * (restarting, failing over) is waited for, up to 2 minutes: the request keeps its id (one is
   * drawn before the first try when none is given), so a start that reached the server is found
   * again, never run twice.
   */
  async ask(input: RequestInput): Promise<RequestResult> {
    const withId = { ...input, requestId: input.requestId ?? randomUUID() };
    const handle = await throughServerOutage(() => this.start(withId));
    return this.result(handle.workflowId);
  }

  /**
   * Runs many requests, each its own workflow, at most `concurrency` at a time, and returns their
   * results in input order with a summary. Every request needs a `requestId`: a request that
   * already ran is collected instead of run again, so calling this again after a crash finishes
   * the batch without paying twice.
   */
  async batch(
    requests: Iterable<RequestInput & { requestId: string }> | AsyncIterable<RequestInput & { requestId: string }>,
    opts: { concurrency?: number } & Omit<RunBatchOptions, 'concurrency' | 'onInvalid'> = {},
  ): Promise<{ results: BatchResultLine[]; summary: BatchSummary }> {
    const results: BatchResultLine[] = [];
    async function* entries(): AsyncGenerator<BatchEntry> {
      let line = 0;
      for await (const request of requests) {
        line += 1;
        yield { ok: true, item: { line, id: request.requestId, request } };
      }
    }
    const summary = await runBatch(this, entries(), {
      ...opts,
      concurrency: opts.concurrency ?? 16,
      onResult: async (r) => {
        results.push(r);
        await opts.onResult?.(r);
      },
    });
    return { results, summary };
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
    const input = await startInput<RequestInput>(this.temporal, workflowId);
    const tier = desc.typedSearchAttributes.get(LlmTier) as Tier | undefined;
    const up = tier ? TIERS[Math.min(TIERS.length - 1, TIERS.indexOf(tier) + 1)] : undefined;
    const { requestId: _r, model: _m, minTier: _t, ...rest } = input;
    let k = 1;
    for (; k < 100; k++) {
      const candidate = workflowIdFor(`${input.requestId ?? workflowId}-esc${k}`);
      const exists = await this.temporal.workflow
        .getHandle(candidate)
        .describe()
        .then(
          () => true,
          () => false,
        );
      if (!exists) break;
    }
    const next = await this.start({
      ...rest,
      requestId: `${input.requestId ?? workflowId}-esc${k}`,
      ...(opts.model ? { model: opts.model } : up ? { minTier: up } : {}),
    });
    return { action: 'restarted', workflowId: next.workflowId };
  }

  /** Circuit breakers per model, with their state computed now. */
  /** The gateway's virtual keys (the key registry). */
  keys(): KeysClient {
    return new KeysClient(this.temporal, this.taskQueue);
  }

  /** The deferred lane: collectors and their provider batches, flush and cancel (docs/deferred.md). */
  deferred(): DeferredClient {
    return new DeferredClient(this.temporal, this.taskQueue);
  }

  health(): ReturnType<HealthClient['circuits']> {
    return new HealthClient(this.temporal, this.taskQueue).circuits();
  }

  /** Billable Temporal actions of these request runs, and what they cost (client/actions.ts). */
  temporalActions(
    workflowIds: readonly string[],
    usdPerMillion: number,
    opts: { scopes?: readonly string[]; concurrency?: number } = {},
  ): Promise<TemporalActionsSummary> {
    return countTemporalActions(this.temporal, this.taskQueue, workflowIds, usdPerMillion, opts);
  }

  /** Cancels a running request: its open reservation is released; it ends as cancelled. */
  async cancel(workflowId: string): Promise<void> {
    await this.temporal.workflow.getHandle(workflowId).cancel();
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
