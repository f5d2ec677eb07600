/**
 * The client-side batch runner: starts each request as its own workflow (id from the line's id)
 * with at most `concurrency` in flight, collects the results, and hands them back in input order.
 * A request that already ran is collected, not run again, so re-running a file charges nothing
 * twice.
 */
import { type SwitchyardClient, workflowIdFor } from '../client/client.js';
import { failedLine, RequestFailedError } from '../client/errors.js';
import { ValidationError } from '../util/validation.js';
import type { BadLine, BatchItem } from './batchInput.js';
import { addInvalid, addResult, type BatchResultLine, type BatchSummary, completedResultLine, emptySummary } from './summary.js';

export type BatchEntry = { readonly ok: true; readonly item: BatchItem } | { readonly ok: false; readonly bad: BadLine };

export interface BatchProgress {
  readonly total: number | undefined;
  readonly done: number;
  /** Malformed lines skipped so far. */
  readonly invalid: number;
  readonly completed: number;
  readonly failed: number;
  readonly inFlight: number;
  readonly costNanos: number;
}

export interface RunBatchOptions {
  readonly concurrency: number;
  /** Requests expected (for progress and ETA), if known. */
  readonly total?: number;
  /** Each result, in input order, as soon as it and every earlier one are in. */
  readonly onResult?: (r: BatchResultLine) => void | Promise<void>;
  readonly onInvalid?: (bad: BadLine) => void;
  readonly onProgress?: (p: BatchProgress) => void;
  /** Recorded in each request's memo. */
  readonly batchId?: string;
  /** Only collect: never start a request (a missing one is reported as failed). */
  readonly collectOnly?: boolean;
}

async function outcome(client: SwitchyardClient, item: BatchItem, opts: RunBatchOptions): Promise<{ line: BatchResultLine; existing: boolean }> {
  let workflowId: string;
  let existing = false;
  if (opts.collectOnly) {
    workflowId = workflowIdFor(item.id);
  } else {
    let s: Awaited<ReturnType<SwitchyardClient['submit']>>;
    try {
      s = await client.submit(item.request, opts.batchId ? { batch: { batchId: opts.batchId, line: item.line } } : {});
    } catch (e) {
      // Invalid requests fail alone (nothing started, nothing charged); other errors stop the batch.
      if (e instanceof ValidationError) return { line: { ...failedLine(item.id, workflowIdFor(item.id), e), error: { type: 'InvalidInput', message: e.message } }, existing: false };
      throw e;
    }
    workflowId = s.handle.workflowId;
    existing = s.existing;
  }
  try {
    return { line: completedResultLine(item.id, await client.result(workflowId)), existing };
  } catch (e) {
    if (e instanceof RequestFailedError || opts.collectOnly) return { line: failedLine(item.id, workflowId, e), existing };
    throw e;
  }
}

/** Runs the entries; resolves with the summary once every result has been handed to `onResult`. */
export async function runBatch(client: SwitchyardClient, entries: AsyncIterable<BatchEntry> | Iterable<BatchEntry>, opts: RunBatchOptions): Promise<BatchSummary> {
  const started = Date.now();
  const summary = emptySummary();
  const iterator = (Symbol.asyncIterator in entries ? entries[Symbol.asyncIterator]() : (entries)[Symbol.iterator]());
  let seq = 0;
  let emitted = 0;
  let inFlight = 0;
  const ready = new Map<number, BatchResultLine>();
  let emitting: Promise<void> = Promise.resolve();
  const progress = (): void =>
    opts.onProgress?.({ total: opts.total, done: summary.requests, invalid: summary.invalid, completed: summary.completed, failed: summary.failed, inFlight, costNanos: summary.costNanos });

  // Results go out strictly in input order: a finished result waits for the ones before it.
  const flush = async (): Promise<void> => {
    for (let r = ready.get(emitted); r !== undefined; r = ready.get(emitted)) {
      ready.delete(emitted);
      emitted += 1;
      await opts.onResult?.(r);
    }
  };
  const next = async (): Promise<BatchItem | undefined> => {
    for (;;) {
      const n = await iterator.next();
      if (n.done) return undefined;
      if (n.value.ok) return n.value.item;
      addInvalid(summary, n.value.bad);
      opts.onInvalid?.(n.value.bad);
      progress();
    }
  };
  const lane = async (): Promise<void> => {
    for (let item = await next(); item !== undefined; item = await next()) {
      const mine = seq++;
      inFlight += 1;
      progress();
      const { line, existing } = await outcome(client, item, opts);
      inFlight -= 1;
      if (existing) summary.alreadyStarted += 1;
      addResult(summary, line);
      ready.set(mine, line);
      emitting = emitting.then(flush);
      progress();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, () => lane()));
  await emitting;
  summary.wallMs = Date.now() - started;
  return summary;
}
