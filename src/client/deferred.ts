/** The deferred lane's part of the client: its collectors (one per model) and their provider batches; flush and cancel. */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import {
  PROVIDER_BATCH_TYPE,
  type ProviderBatchStatus,
  providerBatchStatusQuery,
  cancelSignal,
  COLLECTOR_TYPE,
  type CollectorStatus,
  collectorStatusQuery,
  type CollectorView,
  collectorWorkflowId,
  flushSignal,
} from '../workflows/deferred/contract.js';
import { visibilityString } from './runsQuery.js';
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
      const q = `WorkflowType = '${COLLECTOR_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = ${visibilityString(entityTaskQueue(this.taskQueue))}`;
      for await (const w of this.temporal.workflow.list({ query: q })) ids.push(w.workflowId);
    }
    const out: CollectorView[] = [];
    for (const id of ids) {
      try {
        const st: CollectorStatus = await this.temporal.workflow.getHandle(id).query(collectorStatusQuery);
        const flights = await this.flights(st.model);
        out.push({
          ...st,
          ...(st.oldestPendingSinceMs !== undefined ? { oldestPendingAgeMs: Math.max(0, Date.now() - st.oldestPendingSinceMs) } : {}),
          flights,
        });
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
    const found = await this.signal(model, 'cancel');
    for (const id of await this.batchIds(model)) {
      try {
        await this.temporal.workflow.getHandle(id).signal(cancelSignal);
      } catch (e) {
        if (!(e instanceof WorkflowNotFoundError)) throw e; // ended meanwhile
      }
    }
    return found;
  }

  /** The provider batches of `model` in flight (their workflows, found by the search attributes they keep). */
  async flights(model: string): Promise<ProviderBatchStatus[]> {
    const out: ProviderBatchStatus[] = [];
    for (const id of await this.batchIds(model)) {
      try {
        out.push(await this.temporal.workflow.getHandle(id).query(providerBatchStatusQuery));
      } catch (e) {
        if (!(e instanceof WorkflowNotFoundError) && !(e instanceof Error && /completed|closed/i.test(e.message))) throw e;
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  private async batchIds(model: string): Promise<string[]> {
    const ids: string[] = [];
    const q = `WorkflowType = '${PROVIDER_BATCH_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = ${visibilityString(entityTaskQueue(this.taskQueue))} AND LlmModel = ${visibilityString(model)}`;
    for await (const w of this.temporal.workflow.list({ query: q })) ids.push(w.workflowId);
    return ids;
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
