import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';

/** The input a run was started with, read from its first history event. */
export async function startInput<T>(temporal: Client, workflowId: string, runId?: string): Promise<T> {
  const history = await temporal.workflow.getHandle(workflowId, runId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error(`cannot read the input of ${workflowId}`);
  return defaultPayloadConverter.fromPayload<T>(payload);
}

/** How a request is started (SwitchyardClient.start and submit). */
export interface StartOptions {
  /** Start a new run when the last run of this request id failed (see `redrive`). */
  readonly redrive?: boolean;
  /** Recorded in the memo and as LlmBatch: the batch this request belongs to and its input line. */
  readonly batch?: { batchId: string; line?: number };
  /** Recorded in the memo of a re-driven run: the failed run it replaces. */
  readonly redriveOf?: string;
  /** Recorded in the memo: a digest of what the caller sent (the gateway refuses an Idempotency-Key reused with another body). */
  readonly fingerprint?: string;
}
