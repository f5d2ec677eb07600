/**
 * The request workflow's input and result as versioned JSON Schemas, generated from the zod
 * schemas the client and the workflow use, so that pipelines in other languages (Python's
 * `temporalio`, Go, Java) can build and check `llmRequest` inputs and read its results. Checked in
 * under contracts/ and tested for drift. Pure (zod only). Limits a JSON Schema cannot express are
 * listed in each description.
 */
import { z } from 'zod';
import { FAILURE_TYPES } from '../workflows/request/contract.js';
import { MAX_INPUT_BYTES } from '../workflows/request/limits.js';
import { requestInputSchema } from './requestInput.js';
import { requestFailureDetailsSchema, requestResultSchema } from './requestResult.js';

export const REQUEST_INPUT_CONTRACT_VERSION = 1;
export const REQUEST_RESULT_CONTRACT_VERSION = 1;

export function requestInputJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(requestInputSchema, { io: 'input' }),
    // Exactly one of prompt and messages (zod checks this in a refinement, which JSON Schema cannot see).
    anyOf: [{ required: ['prompt'] }, { required: ['messages'] }],
    not: { required: ['prompt', 'messages'] },
    $id: `https://switchyard.dev/contracts/request-input.v${REQUEST_INPUT_CONTRACT_VERSION}.schema.json`,
    title: `Switchyard llmRequest input, v${REQUEST_INPUT_CONTRACT_VERSION}`,
    description: `The input of the llmRequest workflow (task queue 'switchyard' by default; workflow id llm-<requestId>). Send prompt or messages (a chat conversation), not both. Also checked: in messages, the first and the last non-system message are the user's; category and budgetScope must not be names of Object.prototype members (constructor, __proto__, toString, ...); prompt or messages, context and system together at most ${MAX_INPUT_BYTES} UTF-8 bytes.`,
  };
}

export function requestResultJsonSchema(): Record<string, unknown> {
  const failure = z.toJSONSchema(requestFailureDetailsSchema, { io: 'output' });
  delete failure.$schema;
  return {
    ...z.toJSONSchema(requestResultSchema, { io: 'output' }),
    $id: `https://switchyard.dev/contracts/request-result.v${REQUEST_RESULT_CONTRACT_VERSION}.schema.json`,
    title: `Switchyard llmRequest result, v${REQUEST_RESULT_CONTRACT_VERSION}`,
    description: `The result of a completed llmRequest workflow. A failed one ends with an ApplicationFailure whose type is one of ${Object.values(FAILURE_TYPES).join(', ')}, and whose details[0] is $defs.failureDetails (absent for InvalidInput). Money is integer nanodollars (US dollars x 1e9).`,
    $defs: { failureDetails: failure },
  };
}
