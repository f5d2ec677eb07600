/** The checked-in JSON Schema of the request input matches the zod schema (no drift), and means the same. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import {
  REQUEST_INPUT_CONTRACT_VERSION,
  REQUEST_RESULT_CONTRACT_VERSION,
  requestInputJsonSchema,
  requestResultJsonSchema,
} from '../../src/contracts/jsonSchema.js';
import { requestInputSchema } from '../../src/contracts/requestInput.js';

const checkedIn = JSON.parse(readFileSync(join(process.cwd(), 'contracts', `request-input.v${REQUEST_INPUT_CONTRACT_VERSION}.schema.json`), 'utf8')) as Record<
  string,
  unknown
>;

describe('request input contract', () => {
  it('the checked-in schema is what the zod schema generates (run `npm run contracts` after changing it)', () => {
    expect(checkedIn).toEqual(requestInputJsonSchema());
  });

  it('accepts and refuses what the zod schema accepts and refuses', () => {
    const validate = new Ajv2020({ strict: false }).compile(checkedIn);
    const cases: unknown[] = [
      { prompt: 'hi' },
      { prompt: 'hi', category: 'batch', maxOutputTokens: 100, provider: 'openai', quality: { json: true } },
      { prompt: '' },
      { prompt: 'hi', category: 'Bad Name' },
      { prompt: 'hi', bogus: 1 },
      { prompt: 'hi', maxOutputTokens: 0 },
      { prompt: 'hi', provider: 'nope' },
      {},
      {
        messages: [
          { role: 'system', content: 'terse' },
          { role: 'user', content: 'hi' },
        ],
      },
      { messages: [{ role: 'user', content: 'hi' }], prompt: 'hi' },
      { messages: [{ role: 'robot', content: 'hi' }] },
      { messages: [] },
    ];
    for (const c of cases) expect(validate(c)).toBe(requestInputSchema.safeParse(c).success);
  });
});

describe('request result contract', () => {
  const resultSchema = JSON.parse(
    readFileSync(join(process.cwd(), 'contracts', `request-result.v${REQUEST_RESULT_CONTRACT_VERSION}.schema.json`), 'utf8'),
  ) as Record<string, unknown>;

  it('the checked-in schema is what the zod schema generates (run `npm run contracts` after changing it)', () => {
    expect(resultSchema).toEqual(requestResultJsonSchema());
  });

  it('names every failure type and refuses a result without its money fields', () => {
    expect(String(resultSchema.description)).toContain('QualityCheckFailed');
    const validate = new Ajv2020({ strict: false }).compile(resultSchema);
    expect(validate({ text: 'x' })).toBe(false);
  });
});
