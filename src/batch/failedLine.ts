/** A failed request, or an error before it started, as a batch result line. */
import { RequestFailedError } from '../contracts/requestFailure.js';
import { type BatchResultLine, failedResultLine } from './summary.js';

export function failedLine(id: string, workflowId: string, e: unknown): BatchResultLine {
  if (e instanceof RequestFailedError) return failedResultLine(id, workflowId, { type: e.failureType ?? 'Failed', message: e.message }, e.details);
  const err = e as Error;
  return failedResultLine(id, workflowId, { type: err.name ?? 'Error', message: err.message ?? String(e) }, undefined);
}
