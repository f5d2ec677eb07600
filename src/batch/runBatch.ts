/**
 * The client-side batch runner: starts each request as its own workflow (id from the line's id)
 * with at most `concurrency` in flight, collects the results, and hands them back in input order.
 * A request that already ran is collected, not run again, so re-running a file charges nothing
 * twice.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { RequestFailedError } from '../contracts/requestFailure.js';
import { type RequestInput, type RequestResult, workflowIdFor, traceQuery } from '../workflows/request/contract.js';
import { failedLine } from './failedLine.js';
import { ValidationError } from '../util/validation.js';
import type { BadLine, BatchItem } from './batchInput.js';
import { addInvalid, addResult, type BatchResultLine, type BatchSummary, completedResultLine, emptySummary } from './summary.js';

/** What the runner needs of a client: SwitchyardClient is one (this module does not import it). */
export interface RequestRunner {
  readonly temporal: Client;
  submit(input: RequestInput, opts?: { batch?: { batchId: string; line?: number } }): Promise<{ handle: WorkflowHandle; existing: boolean; runId?: string }>;
  result(workflowId: string): Promise<RequestResult>;
}

export type BatchEntry = { readonly ok: true; readonly item: BatchItem } | { readonly ok: false; readonly bad: BadLine; readonly duplicate?: boolean };

export interface BatchProgress {
  readonly total: number | undefined;
  readonly done: number;
  /** Malformed lines skipped so far. */
  readonly invalid: number;
  readonly completed: number;
  readonly failed: number;
  readonly inFlight: number;
  readonly costNanos: number;
  /**
   * Of the requests in flight, those waiting on a durable timer, by what they wait on, with the
   * earliest time one of them resumes (sampled from their traces every few seconds).
   */
  readonly waiting?: WaitCounts;
}

export type WaitKind = 'budget' | 'rate_limit' | 'backoff';
export type WaitCounts = Partial<Record<WaitKind, { count: number; until: string }>>;

/** Counts one waiting request into `acc`, keeping the earliest time any of them resumes. */
export function countWait(acc: WaitCounts, w: { on: WaitKind; until: string }): void {
  const cur = acc[w.on];
  acc[w.on] = { count: (cur?.count ?? 0) + 1, until: cur && cur.until < w.until ? cur.until : w.until };
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
  /** `input` (default): results in input order; `finish`: each result as soon as it is in. */
  readonly order?: 'input' | 'finish';
  /** Fields set on every request that does not set them (e.g. maxBudgetWaitMs). */
  readonly requestDefaults?: Partial<RequestInput>;
  /** How often in-flight requests are sampled for what they wait on (0: never). */
  readonly waitSampleMs?: number;
}

/**
 * What in-flight requests wait on: each tick, the traces of up to `perTick` of them (those in flight
 * longest first, a few seconds at least), so that a batch held up by a budget or a rate limit says
 * so instead of looking hung.
 */
class WaitSampler {
  private readonly known = new Map<string, { on: WaitKind; until: string } | null>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly client: RequestRunner,
    private readonly inFlight: Map<string, number>,
    private readonly onChange: () => void,
    private readonly perTick = 50,
  ) {}

  start(everyMs: number): void {
    if (everyMs > 0) this.timer = setInterval(() => void this.tick(), everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  forget(workflowId: string): void {
    this.known.delete(workflowId);
  }

  summary(): BatchProgress['waiting'] {
    const out: WaitCounts = {};
    for (const [id, w] of this.known) if (w && this.inFlight.has(id)) countWait(out, w);
    return Object.keys(out).length > 0 ? out : undefined;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const old = Date.now() - 2_000;
      const ids = [...this.inFlight]
        .filter(([, t]) => t < old)
        .sort((a, b) => a[1] - b[1])
        .slice(0, this.perTick)
        .map(([id]) => id);
      await Promise.all(
        ids.map(async (id) => {
          const t = await this.client.temporal.workflow
            .getHandle(id)
            .query(traceQuery)
            .catch(() => undefined);
          if (t) this.known.set(id, t.waiting ? { on: t.waiting.on, until: t.waiting.until } : null);
        }),
      );
      this.onChange();
    } finally {
      this.busy = false;
    }
  }
}

async function outcome(
  client: RequestRunner,
  item: BatchItem,
  opts: RunBatchOptions,
  started?: (workflowId: string) => void,
): Promise<{ line: BatchResultLine; existing: boolean }> {
  let workflowId: string;
  let existing = false;
  if (opts.collectOnly) {
    workflowId = workflowIdFor(item.request.requestId);
  } else {
    let s: Awaited<ReturnType<RequestRunner['submit']>>;
    try {
      s = await client.submit({ ...opts.requestDefaults, ...item.request }, opts.batchId ? { batch: { batchId: opts.batchId, line: item.line } } : {});
    } catch (e) {
      // Invalid requests fail alone (nothing started, nothing charged); other errors stop the batch.
      if (e instanceof ValidationError)
        return {
          line: { ...failedLine(item.id, workflowIdFor(item.request.requestId), e), error: { type: 'InvalidInput', message: e.message } },
          existing: false,
        };
      throw e;
    }
    workflowId = s.handle.workflowId;
    existing = s.existing;
  }
  started?.(workflowId);
  try {
    return { line: completedResultLine(item.id, await client.result(workflowId)), existing };
  } catch (e) {
    if (e instanceof RequestFailedError || opts.collectOnly) return { line: failedLine(item.id, workflowId, e), existing };
    throw e;
  }
}

/** Runs the entries; resolves with the summary once every result has been handed to `onResult`. */
export async function runBatch(client: RequestRunner, entries: AsyncIterable<BatchEntry> | Iterable<BatchEntry>, opts: RunBatchOptions): Promise<BatchSummary> {
  const started = Date.now();
  const summary = emptySummary();
  const iterator = Symbol.asyncIterator in entries ? entries[Symbol.asyncIterator]() : entries[Symbol.iterator]();
  let seq = 0;
  let emitted = 0;
  let inFlight = 0;
  const ready = new Map<number, BatchResultLine>();
  let emitting: Promise<void> = Promise.resolve();
  const running = new Map<string, number>();
  const sampler = new WaitSampler(client, running, () => progress());
  const progress = (): void => {
    const waiting = sampler.summary();
    opts.onProgress?.({
      total: opts.total,
      done: summary.requests,
      invalid: summary.invalid,
      completed: summary.completed,
      failed: summary.failed,
      inFlight,
      costNanos: summary.costNanos,
      ...(waiting ? { waiting } : {}),
    });
  };

  // Results go out strictly in input order: a finished result waits for the ones before it.
  const flush = async (): Promise<void> => {
    if (opts.order === 'finish') {
      for (const [k, r] of [...ready].sort((a, b) => a[0] - b[0])) {
        ready.delete(k);
        await opts.onResult?.(r);
      }
      return;
    }
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
      let wid: string | undefined;
      const { line, existing } = await outcome(client, item, opts, (id) => {
        wid = id;
        running.set(id, Date.now());
      });
      if (wid !== undefined) {
        running.delete(wid);
        sampler.forget(wid);
      }
      inFlight -= 1;
      if (existing) summary.alreadyStarted += 1;
      addResult(summary, line);
      ready.set(mine, line);
      emitting = emitting.then(flush);
      progress();
    }
  };
  sampler.start(opts.waitSampleMs ?? (opts.collectOnly ? 0 : 5_000));
  try {
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, () => lane()));
  } finally {
    sampler.stop();
  }
  await emitting;
  summary.wallMs = Date.now() - started;
  return summary;
}
