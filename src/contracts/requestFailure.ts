/**
 * A request that ended in failure, with its reason, attempts and spend: what a client (the SDK
 * client, the batch runner, the detached batch's activities) makes of a failed request workflow.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { type RequestFailureDetails, requestFailureDetails } from '../workflows/request/contract.js';

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
