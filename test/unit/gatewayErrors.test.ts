/** How the gateway answers each way a request can end without an answer: OpenAI's status, type and code. */
import { describe, expect, it } from 'vitest';
import { RequestFailedError } from '../../src/contracts/requestFailure.js';
import { gatewayErrorOf } from '../../src/gateway/errors.js';
import { ValidationError } from '../../src/util/validation.js';
import { FAILURE_TYPES } from '../../src/workflows/request/contract.js';

const failed = (type: string) => new RequestFailedError('the reason', 'llm-wf-1', type, undefined);

describe('gateway errors', () => {
  it.each([
    [FAILURE_TYPES.invalidInput, 400, 'invalid_request_error', null],
    [FAILURE_TYPES.noEligibleModel, 400, 'invalid_request_error', 'no_eligible_model'],
    [FAILURE_TYPES.budgetExceeded, 429, 'insufficient_quota', 'insufficient_quota'],
    [FAILURE_TYPES.budgetUnavailable, 503, 'service_unavailable', 'budget_unavailable'],
    [FAILURE_TYPES.categoryPaused, 503, 'service_unavailable', 'category_paused'],
    [FAILURE_TYPES.qualityCheckFailed, 502, 'upstream_error', 'quality_check_failed'],
    [FAILURE_TYPES.allCandidatesFailed, 502, 'upstream_error', 'all_candidates_failed'],
    [FAILURE_TYPES.nonRetryable, 502, 'upstream_error', 'all_candidates_failed'],
    [FAILURE_TYPES.streamInterrupted, 502, 'upstream_error', 'stream_interrupted'],
  ])('%s answers %i %s', (type, status, errType, code) => {
    const e = gatewayErrorOf(failed(type));
    expect(e.status).toBe(status);
    expect(e.body.error.type).toBe(errType);
    expect(e.body.error.code).toBe(code);
    expect(e.body.error.message).toContain('llm-wf-1');
  });

  it('an internal failure or a gateway bug says nothing of its cause', () => {
    const internal = gatewayErrorOf(new RequestFailedError('TypeError at /src/x.ts:10 with prompt "secret"', 'llm-wf-2', FAILURE_TYPES.internal, undefined));
    expect(internal.status).toBe(500);
    expect(internal.body.error.message).not.toMatch(/secret|\.ts/);
    const bug = gatewayErrorOf(new Error('stack at Object.<anonymous> (/work/src/gateway/server.ts:1:1)'));
    expect(bug.status).toBe(500);
    expect(bug.body.error.message).not.toMatch(/server\.ts|stack/);
  });

  it('a field the request schema refuses is named as the chat body names it', () => {
    const e = gatewayErrorOf(new ValidationError('request', ['maxOutputTokens: Too big: expected number to be <=128000']));
    expect(e.status).toBe(400);
    expect(e.body.error.param).toBe('max_completion_tokens');
    expect(e.body.error.message).toMatch(/^max_completion_tokens/);
  });
});
