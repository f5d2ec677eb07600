/** The deferred lane's part of the client: its collectors (one per model) and their provider batches; flush and cancel. */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import {
  cancelSignal,
  COLLECTOR_TYPE,
  type CollectorStatus,
  collectorStatusQuery,
  type CollectorView,
  collectorWorkflowId,
  flushSignal,
} from '../workflows/deferred/contract.js';
import { entityTaskQueue } from '../workflows/taskQueues.js';

export class DeferredClient {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
  ) {}

  /** Every running collector of this task queue (or the one of `model`), with its lines and provider batches. */
  async status(model?: string): Promise<CollectorView[]> {
    const ids: string[] = [];
    if (model !== undefined) ids.push(collectorWorkflowId(this.taskQueue, model));
    else {
      const q = `WorkflowType = '${COLLECTOR_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = '${entityTaskQueue(this.taskQueue)}'`;
      for await (const w of this.temporal.workflow.list({ query: q })) ids.push(w.workflowId);
    }
    const out: CollectorView[] = [];
    for (const id of ids) {
      try {
        const st: CollectorStatus = await this.temporal.workflow.getHandle(id).query(collectorStatusQuery);
        out.push(st.oldestPendingSinceMs !== undefined ? { ...st, oldestPendingAgeMs: Math.max(0, Date.now() - st.oldestPendingSinceMs) } : st);
      } catch (e) {
        if (!(e instanceof WorkflowNotFoundError)) throw e;
      }
    }
    return out.sort((a, b) => a.model.localeCompare(b.model));
  }

  /** Submit what `model`'s collector holds now; false when it has no collector. */
  async flush(model: string): Promise<boolean> {
    return this.signal(model, 'flush');
  }

  /** Cancel `model`'s provider batches in flight and send its waiting lines live; false when it has no collector. */
  async cancel(model: string): Promise<boolean> {
    return this.signal(model, 'cancel');
  }

  private async signal(model: string, what: 'flush' | 'cancel'): Promise<boolean> {
    try {
      await this.temporal.workflow.getHandle(collectorWorkflowId(this.taskQueue, model)).signal(what === 'flush' ? flushSignal : cancelSignal);
      return true;
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return false;
      throw e;
    }
  }
}
