/**
 * A deliberately incompatible change to the request workflow, for the replay test: a timer before
 * classification, not guarded by `patched()`. Replaying any recorded request history against this
 * must report a determinism error.
 */
import { sleep } from '@temporalio/workflow';
import { llmRequest as current } from '../../../src/workflows/request/llmRequest.js';
import type { RequestInput, RequestResult } from '../../../src/workflows/request/contract.js';

export { budgetEntity, healthEntity } from '../../../src/workflows/index.js';

export async function llmRequest(input: RequestInput): Promise<RequestResult> {
  await sleep('1 second');
  return current(input);
}
