/**
 * Switchyard's failures as OpenAI API errors: the status code and `{"error": {message, type, param,
 * code}}` an OpenAI client expects, so its own retry and error handling work unchanged. Never a
 * stack trace; a failed request's message is the workflow's own reason (no prompt text in it).
 */
import { RequestFailedError } from '../contracts/requestFailure.js';
import { ValidationError } from '../util/validation.js';
import { FAILURE_TYPES } from '../workflows/request/contract.js';
import { refusalOf } from './openaiChat.js';

export interface GatewayError {
  readonly status: number;
  readonly body: { error: { message: string; type: string; param: string | null; code: string | null } };
}

export function openAIError(status: number, type: string, message: string, param: string | null = null, code: string | null = null): GatewayError {
  return { status, body: { error: { message, type, param, code } } };
}

/** The status and error a failed request answers with. */
export function gatewayErrorOf(e: unknown): GatewayError {
  if (e instanceof ValidationError) {
    // Refused by the request schema before anything started: the field as the chat body names it.
    const r = refusalOf(e.fields[0] ?? e.message);
    return openAIError(400, 'invalid_request_error', r.message, r.param);
  }
  if (e instanceof RequestFailedError) {
    const msg = `${e.message} (workflow ${e.workflowId})`;
    switch (e.failureType) {
      case FAILURE_TYPES.invalidInput:
        return openAIError(400, 'invalid_request_error', msg);
      case FAILURE_TYPES.noEligibleModel:
        return openAIError(400, 'invalid_request_error', msg, 'model', 'no_eligible_model');
      case FAILURE_TYPES.budgetExceeded:
        return openAIError(429, 'insufficient_quota', msg, null, 'insufficient_quota');
      case FAILURE_TYPES.budgetUnavailable:
      case FAILURE_TYPES.categoryPaused:
        return openAIError(503, 'service_unavailable', msg, null, e.failureType === FAILURE_TYPES.categoryPaused ? 'category_paused' : 'budget_unavailable');
      case FAILURE_TYPES.qualityCheckFailed:
        return openAIError(502, 'upstream_error', msg, null, 'quality_check_failed');
      case FAILURE_TYPES.allCandidatesFailed:
      case FAILURE_TYPES.nonRetryable:
        return openAIError(502, 'upstream_error', msg, null, 'all_candidates_failed');
      case FAILURE_TYPES.streamInterrupted:
        return openAIError(502, 'upstream_error', msg, null, 'stream_interrupted');
      default:
        return openAIError(500, 'server_error', `the request failed (workflow ${e.workflowId}); see its trace: switchyard show ${e.workflowId}`);
    }
  }
  return openAIError(500, 'server_error', 'internal error in the gateway; nothing was charged for this call');
}
