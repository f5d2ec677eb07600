import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';

/** The input a run was started with, read from its first history event. */
export async function startInput<T>(temporal: Client, workflowId: string, runId?: string): Promise<T> {
  const history = await temporal.workflow.getHandle(workflowId, runId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error(`cannot read the input of ${workflowId}`);
  return defaultPayloadConverter.fromPayload<T>(payload);
}
