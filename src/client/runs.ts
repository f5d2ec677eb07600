/**
 * The runs part of the client: finding request runs (visibility), inspecting one, and re-driving
 * failed ones. SwitchyardClient exposes it as `runs` and forwards its methods.
 */
import { type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import { RequestFailedError, toRequestFailed } from '../contracts/requestFailure.js';
import { requestRunsQuery } from './runsQuery.js';
import { startInput, type StartOptions } from './startInput.js';
import {
  type RequestFailureDetails,
  type RequestInput,
  type RequestResult,
  LlmBatch,
  LlmCategory,
  LlmCostNanos,
  LlmModel,
  LlmOutcome,
  LlmTier,
  type RequestTrace,
  traceQuery,
  type RequestMemo,
  workflowIdFor,
} from '../workflows/request/contract.js';
import type { RequestRunner } from '../batch/runBatch.js';

export interface RunSummary {
  readonly workflowId: string;
  readonly runId: string;
  readonly status: string;
  readonly startTime: string;
  readonly closeTime: string | null;
  readonly title: string | null;
  readonly category: string | null;
  readonly tier: string | null;
  readonly model: string | null;
  readonly outcome: string | null;
  readonly costNanos: number | null;
  readonly batchId: string | null;
  readonly redriveOf: string | null;
}

export interface RunInspection extends RunSummary {
  readonly result?: RequestResult;
  readonly failure?: { type: string; message: string; details?: RequestFailureDetails };
  readonly trace?: RequestTrace;
}

export interface RedriveReport {
  restarted: Array<{ workflowId: string; previousRunId: string; runId: string; previousCostNanos: number }>;
  skipped: Array<{ workflowId: string; runId: string; reason: string }>;
}

function runSummary(w: Omit<WorkflowExecutionInfo, 'raw'>): RunSummary {
  const memo = (w.memo ?? {}) as Partial<RequestMemo>;
  const sa = w.typedSearchAttributes;
  const cost = sa.get(LlmCostNanos);
  return {
    workflowId: w.workflowId,
    runId: w.runId,
    status: w.status.name,
    startTime: w.startTime.toISOString(),
    closeTime: w.closeTime ? w.closeTime.toISOString() : null,
    title: memo.title ?? null,
    category: sa.get(LlmCategory) ?? memo.category ?? null,
    tier: sa.get(LlmTier) ?? null,
    model: sa.get(LlmModel) ?? null,
    outcome: sa.get(LlmOutcome) ?? null,
    costNanos: cost === undefined ? null : Number(cost),
    batchId: sa.get(LlmBatch) ?? memo.batchId ?? null,
    redriveOf: memo.redriveOf ?? null,
  };
}

export class RunsClient {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    /** Starts the new runs of a re-drive (the SwitchyardClient this belongs to). */
    private readonly runner: { submit(input: RequestInput, opts?: StartOptions): ReturnType<RequestRunner['submit']> },
  ) {}

  /** Request runs on this task queue, newest first, optionally narrowed by a visibility query. */
  async listRuns(opts: { query?: string; limit?: number } = {}): Promise<RunSummary[]> {
    const query = requestRunsQuery(this.taskQueue, opts.query);
    const out: RunSummary[] = [];
    for await (const w of this.temporal.workflow.list({ query, pageSize: Math.min(opts.limit ?? 50, 1000) })) {
      out.push(runSummary(w));
      if (out.length >= (opts.limit ?? 50)) break;
    }
    return out;
  }

  /** Everything known about one request run: status, memo, and its trace (result, failure or progress). */
  async inspect(workflowId: string, runId?: string): Promise<RunInspection> {
    const handle = this.temporal.workflow.getHandle(workflowId, runId);
    const desc = await handle.describe();
    const summary = runSummary(desc);
    if (desc.status.name === 'COMPLETED') return { ...summary, result: (await handle.result()) as RequestResult };
    if (desc.status.name === 'RUNNING') return { ...summary, trace: await handle.query(traceQuery) };
    try {
      await handle.result();
    } catch (e) {
      const f = toRequestFailed(e, workflowId);
      if (f instanceof RequestFailedError)
        return { ...summary, failure: { type: f.failureType ?? desc.status.name, message: f.message, ...(f.details ? { details: f.details } : {}) } };
      return { ...summary, failure: { type: desc.status.name, message: (f as Error).message } };
    }
    return summary;
  }

  /**
   * Starts a new run of each failed request the query matches (same request id, same input). The
   * new run's reservations are scoped to it, so what the failed run already settled is neither
   * charged again nor lost. A request whose latest run has since completed is skipped.
   */
  async redrive(opts: { query?: string; limit?: number; dryRun?: boolean } = {}): Promise<RedriveReport> {
    const query = requestRunsQuery(this.taskQueue, opts.query, "ExecutionStatus = 'Failed'");
    const report: RedriveReport = { restarted: [], skipped: [] };
    const seen = new Set<string>();
    for await (const w of this.temporal.workflow.list({ query })) {
      if (seen.has(w.workflowId)) continue;
      seen.add(w.workflowId);
      if (report.restarted.length >= (opts.limit ?? 1000)) break;
      const latest = await this.temporal.workflow.getHandle(w.workflowId).describe();
      if (latest.runId !== w.runId) {
        report.skipped.push({ workflowId: w.workflowId, runId: w.runId, reason: `a later run (${latest.runId}) exists: ${latest.status.name.toLowerCase()}` });
        continue;
      }
      let input: RequestInput;
      try {
        input = await startInput<RequestInput>(this.temporal, w.workflowId, w.runId);
      } catch {
        report.skipped.push({ workflowId: w.workflowId, runId: w.runId, reason: 'cannot read its input' });
        continue;
      }
      const requestId = input.requestId ?? (w.workflowId.startsWith('llm-') ? w.workflowId.slice(4) : undefined);
      if (requestId === undefined || workflowIdFor(requestId) !== w.workflowId) {
        report.skipped.push({ workflowId: w.workflowId, runId: w.runId, reason: 'not started by Switchyard (no request id matching its workflow id)' });
        continue;
      }
      const previousCostNanos = Number(w.typedSearchAttributes.get(LlmCostNanos) ?? 0);
      if (opts.dryRun) {
        report.restarted.push({ workflowId: w.workflowId, previousRunId: w.runId, runId: '(dry run)', previousCostNanos });
        continue;
      }
      const memo = (w.memo ?? {}) as Partial<RequestMemo>;
      const { runId, existing } = await this.runner.submit(
        { ...input, requestId },
        {
          redrive: true,
          redriveOf: w.runId,
          ...(memo.batchId ? { batch: { batchId: memo.batchId, ...(memo.line !== undefined ? { line: memo.line } : {}) } } : {}),
        },
      );
      if (existing) report.skipped.push({ workflowId: w.workflowId, runId: w.runId, reason: 'a newer run started meanwhile' });
      else report.restarted.push({ workflowId: w.workflowId, previousRunId: w.runId, runId: runId ?? '', previousCostNanos });
    }
    return report;
  }
}
