/** A request that ended in failure, with its reason, attempts and spend. */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { type RequestFailureDetails, requestFailureDetails } from '../workflows/requestTypes.js';
import { type BatchResultLine, failedResultLine } from '../batch/summary.js';

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

export function toRequestFailed(e: unknown, workflowId: string): unknown {
  if (e instanceof WorkflowFailedError && e.cause instanceof ApplicationFailure) {
    return new RequestFailedError(e.cause.message, workflowId, e.cause.type ?? undefined, requestFailureDetails(e.cause.details?.[0]));
  }
  if (e instanceof WorkflowFailedError) return new RequestFailedError(e.cause?.message ?? e.message, workflowId, undefined, undefined);
  return e;
}

/** A failed request (or an error before it started) as a batch result line. */
export function failedLine(id: string, workflowId: string, e: unknown): BatchResultLine {
  if (e instanceof RequestFailedError) return failedResultLine(id, workflowId, { type: e.failureType ?? 'Failed', message: e.message }, e.details);
  const err = e as Error;
  return failedResultLine(id, workflowId, { type: err.name ?? 'Error', message: err.message ?? String(e) }, undefined);
}
