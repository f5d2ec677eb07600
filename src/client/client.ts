/**
 * The typed client for pipelines: validates a request before anything starts, derives the workflow
 * id from the request id (re-submitting is idempotent), and returns typed results or failures.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection, WithStartWorkflowOperation, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type WorkflowHandle, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { BudgetSettings, BudgetStatus, PeriodSummary } from '../budget/book.js';
import { type AdjustInput, adjustUpdate, budgetWorkflowId, historyQuery, resetUpdate, statusQuery } from '../workflows/budgetMessages.js';
import { ApplicationFailure } from '@temporalio/common';
import { parseOrThrow } from '../util/validation.js';
import { type RequestFailureDetails, type RequestInput, requestInputSchema, type RequestResult } from '../workflows/requestTypes.js';
import { LlmCategory } from '../workflows/searchAttributes.js';

export interface SwitchyardClientOptions {
  readonly address: string;
  readonly namespace?: string;
  readonly taskQueue?: string;
  /** Settings a budget scope starts with when `setBudget` creates it. */
  readonly budgetDefaults?: BudgetSettings;
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
  ) {}

  static async connect(opts: SwitchyardClientOptions): Promise<SwitchyardClient> {
    const connection = await Connection.connect({ address: opts.address });
    const client = new Client({ connection, namespace: opts.namespace ?? 'default' });
    return new SwitchyardClient(client, connection, opts.taskQueue ?? 'switchyard', opts.budgetDefaults);
  }

  /** The budget of a scope: period, total, spent, reserved, and each category. */
  async budgetStatus(scope = 'default'): Promise<BudgetStatus> {
    try {
      return await this.temporal.workflow.getHandle(budgetWorkflowId(scope)).query(statusQuery);
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new BudgetNotFoundError(`budget scope "${scope}" has no entity yet: it is created by the first request, or by \`switchyard budget set\``);
      throw e;
    }
  }

  async budgetHistory(scope = 'default'): Promise<PeriodSummary[]> {
    return this.temporal.workflow.getHandle(budgetWorkflowId(scope)).query(historyQuery);
  }

  /** Changes a scope's budget mid-period, creating the scope with the defaults first if needed. */
  async setBudget(scope: string, change: AdjustInput): Promise<BudgetStatus> {
    if (!this.budgetDefaults) throw new Error('setBudget needs budgetDefaults in SwitchyardClient.connect options');
    const start = new WithStartWorkflowOperation('budgetEntity', {
      workflowId: budgetWorkflowId(scope),
      taskQueue: this.taskQueue,
      args: [{ scope, settings: this.budgetDefaults }],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    try {
      return await this.temporal.workflow.executeUpdateWithStart(adjustUpdate, { args: [change], startWorkflowOperation: start });
    } catch (e) {
      if (e instanceof WorkflowUpdateFailedError) throw new Error(`budget change rejected: ${e.cause?.message ?? e.message}`);
      throw e;
    }
  }

  /** Closes the current period now (its summary is kept) and starts counting from zero. */
  async resetBudget(scope = 'default'): Promise<PeriodSummary> {
    return this.temporal.workflow.getHandle(budgetWorkflowId(scope)).executeUpdate(resetUpdate);
  }

  /** Validates and starts a request; an already-started request id returns the existing run. */
  async start(input: RequestInput): Promise<WorkflowHandle> {
    const req = parseOrThrow(requestInputSchema, input, 'request');
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
