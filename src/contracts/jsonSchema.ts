/**
 * The request workflow's input as a versioned JSON Schema, generated from the zod schema the client
 * and the workflow validate with, so that pipelines in other languages (Python's `temporalio`, Go,
 * Java) can build and check `llmRequest` inputs. Checked in under contracts/ and tested for drift.
 * Pure (zod only). Limits a JSON Schema cannot express (names of Object.prototype members, the
 * 1,500,000-byte total of prompt + context + system) are listed in its description.
 */
import { z } from 'zod';
import { MAX_INPUT_BYTES, requestInputSchema } from '../workflows/requestTypes.js';

export const REQUEST_INPUT_CONTRACT_VERSION = 1;

export function requestInputJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(requestInputSchema, { io: 'input' }),
    $id: `https://switchyard.dev/contracts/request-input.v${REQUEST_INPUT_CONTRACT_VERSION}.schema.json`,
    title: `Switchyard llmRequest input, v${REQUEST_INPUT_CONTRACT_VERSION}`,
    description: `The input of the llmRequest workflow (task queue 'switchyard' by default; workflow id llm-<requestId>). Also checked: category and budgetScope must not be names of Object.prototype members (constructor, __proto__, toString, ...); prompt + context + system together at most ${MAX_INPUT_BYTES} UTF-8 bytes.`,
  };
}
