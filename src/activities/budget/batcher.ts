/**
 * Folds the budget operations of every request on this worker into few updates: per budget
 * entity, one update is in flight at a time, and whatever arrives meanwhile goes out together in
 * the next one. Each caller still waits for its own op's answer, so a worker that dies loses
 * nothing: an op that was not acknowledged fails its activity, which Temporal retries, and every op
 * is idempotent in the entity's book (open reservation ids are granted again, settlements go by
 * sequence number). At concurrency 1 this costs one update per op, as before; at 64 requests in
 * flight one update carries many ops (BENCHMARKS "Request path").
 */
import { type BudgetEntityInput, type BudgetOp, type BudgetOpResult, MAX_BATCH_OPS } from '../../workflows/budget/contract.js';

/** Where a batch goes, and how to start the entity if it does not exist yet (reserves only). */
export interface BatchTarget {
  readonly workflowId: string;
  /** Start arguments for update-with-start; absent: the entity must exist already. */
  readonly startArgs?: BudgetEntityInput;
}

export type SendBatch = (target: BatchTarget, ops: BudgetOp[]) => Promise<BudgetOpResult[]>;

interface Waiting {
  readonly op: BudgetOp;
  readonly resolve: (r: BudgetOpResult) => void;
  readonly reject: (e: unknown) => void;
}

interface Queue {
  target: BatchTarget;
  waiting: Waiting[];
  busy: boolean;
}

export interface BatcherStats {
  readonly batches: number;
  readonly ops: number;
}

export class BudgetBatcher {
  private readonly queues = new Map<string, Queue>();
  private batches = 0;
  private ops = 0;

  constructor(
    private readonly send: SendBatch,
    private readonly maxOps = MAX_BATCH_OPS,
  ) {}

  /** Sends `op` to the entity in the next batch; resolves with its own answer. */
  submit(target: BatchTarget, op: BudgetOp): Promise<BudgetOpResult> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(target.workflowId);
      if (!q) {
        q = { target, waiting: [], busy: false };
        this.queues.set(target.workflowId, q);
      }
      // A reserve brings the start arguments, so the batch it rides in can start the entity.
      if (target.startArgs !== undefined) q.target = target;
      q.waiting.push({ op, resolve, reject });
      // Ops submitted in the same tick go out together: flush on the next microtask.
      if (!q.busy) {
        q.busy = true;
        queueMicrotask(() => void this.flush(target.workflowId));
      }
    });
  }

  stats(): BatcherStats {
    return { batches: this.batches, ops: this.ops };
  }

  private async flush(key: string): Promise<void> {
    const q = this.queues.get(key);
    if (!q) return;
    while (q.waiting.length > 0) {
      const batch = q.waiting.splice(0, this.maxOps);
      // Start arguments are needed only when the batch holds a reserve.
      const target = batch.some((w) => w.op.op === 'reserve') ? q.target : { workflowId: q.target.workflowId };
      this.batches += 1;
      this.ops += batch.length;
      try {
        const results = await this.send(
          target,
          batch.map((w) => w.op),
        );
        batch.forEach((w, i) => {
          const r = results[i];
          if (r) w.resolve(r);
          else w.reject(new Error(`budget batch answered ${results.length} results for ${batch.length} operations`));
        });
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
    q.busy = false;
    if (q.waiting.length === 0) this.queues.delete(key);
  }
}
