/**
 * The batch part of the client: detached batches (the batchRun workflow): start, status, results,
 * list. SwitchyardClient exposes it as `batches` and forwards its methods.
 */
import type { RequestRunner } from '../batch/runBatch.js';
import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { countWait, runBatch, type RunBatchOptions } from '../batch/runBatch.js';
import type { BatchResultLine, BatchSummary } from '../batch/summary.js';
import { traceQuery } from '../workflows/request/contract.js';
import { type BatchRunInput, type BatchRunStatus, batchStatusQuery, batchWorkflowId } from '../workflows/batch/contract.js';
import { readBatchFile } from '../batch/inputFile.js';
import type { batchRun } from '../workflows/batch/batchRun.js';
import { startInput } from './startInput.js';
import { visibilityString } from './runsQuery.js';

export class BatchClient {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    /** Payloads are encrypted: memos carry no prompt text. */
    private readonly encrypted: boolean,
    /** Starts and awaits requests (the SwitchyardClient this belongs to). */
    private readonly runner: RequestRunner,
  ) {}

  /** Starts a server-side batch workflow (see `prepareDetachedBatch`); returns its workflow id. */
  async startBatch(input: BatchRunInput): Promise<string> {
    const workflowId = batchWorkflowId(input.batchId);
    try {
      await this.temporal.workflow.start<typeof batchRun>('batchRun', {
        taskQueue: this.taskQueue,
        workflowId,
        args: [this.encrypted ? { ...input, redactTitles: true } : input],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        memo: { title: `batch of ${input.source.lines} from ${input.source.originalName}`, category: input.category ?? 'mixed' },
      });
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError)
        throw new Error(`batch "${input.batchId}" already exists: see \`switchyard batch status ${input.batchId}\`, or pass another --batch-id`);
      throw e;
    }
    return workflowId;
  }

  /** Whether a server-side batch of this id was ever started (any run, open or closed). */
  async batchExists(batchId: string): Promise<boolean> {
    try {
      await this.temporal.workflow.getHandle(batchWorkflowId(batchId)).describe();
      return true;
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return false;
      throw e;
    }
  }

  /**
   * A server-side batch's progress and summary (running or finished). With `sampleWaits`, what its
   * in-flight requests wait on (a query to each of up to 50 of them: for people, not for polling loops).
   */
  async batchStatus(batchId: string, opts: { sampleWaits?: boolean } = {}): Promise<BatchRunStatus> {
    const handle = this.temporal.workflow.getHandle(batchWorkflowId(batchId));
    let desc;
    try {
      desc = await handle.describe();
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new Error(`no batch "${batchId}": list batches with \`switchyard runs list --batches\``);
      throw e;
    }
    if (desc.status.name === 'COMPLETED') return (await handle.result()) as BatchRunStatus;
    if (desc.status.name === 'RUNNING') {
      const st = await handle.query(batchStatusQuery);
      if (!opts.sampleWaits) return st;
      const waiting: NonNullable<BatchRunStatus['waiting']> = {};
      await Promise.all(
        (st.inFlightIds ?? []).slice(0, 50).map(async (id) => {
          const w = (
            await this.temporal.workflow
              .getHandle(id)
              .query(traceQuery)
              .catch(() => undefined)
          )?.waiting;
          if (w) countWait(waiting, w);
        }),
      );
      return Object.keys(waiting).length > 0 ? { ...st, waiting } : st;
    }
    throw new Error(
      `batch "${batchId}" ended ${desc.status.name.toLowerCase()}; its requests' results can still be collected with \`switchyard batch results ${batchId}\``,
    );
  }

  /**
   * A server-side batch's results in input order, read from each request workflow (the batch input
   * copy gives the ids and their order).
   */
  async batchResults(
    batchId: string,
    opts: {
      concurrency?: number;
      onResult?: (r: BatchResultLine) => void | Promise<void>;
      onProgress?: RunBatchOptions['onProgress'];
      onInvalid?: RunBatchOptions['onInvalid'];
    } = {},
  ): Promise<BatchSummary> {
    const input = await startInput<BatchRunInput>(this.temporal, batchWorkflowId(batchId));
    const defaults = { category: input.category, feature: input.feature, overrides: input.overrides, requestIdPrefix: input.requestIdPrefix };
    return runBatch(this.runner, readBatchFile(input.source.path, defaults), {
      concurrency: opts.concurrency ?? 32,
      total: input.source.lines,
      collectOnly: true,
      ...(opts.onResult ? { onResult: opts.onResult } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.onInvalid ? { onInvalid: opts.onInvalid } : {}),
    });
  }

  /** Server-side batches on this task queue, newest first (one row per batch, not per run). */
  async listBatches(limit = 50): Promise<Array<{ batchId: string; workflowId: string; status: string; startTime: string; title: string | null }>> {
    const query = `WorkflowType = 'batchRun' AND TaskQueue = ${visibilityString(this.taskQueue)} AND ExecutionStatus != 'ContinuedAsNew'`;
    const out = [];
    for await (const w of this.temporal.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
      out.push({
        batchId: w.workflowId.replace(/^batch-/, ''),
        workflowId: w.workflowId,
        status: w.status.name,
        startTime: w.startTime.toISOString(),
        title: ((w.memo ?? {}) as { title?: string }).title ?? null,
      });
      if (out.length >= limit) break;
    }
    return out;
  }
}
