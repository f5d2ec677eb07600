/** The checked-in JSON Schema of the request input matches the zod schema (no drift), and means the same. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { REQUEST_INPUT_CONTRACT_VERSION, requestInputJsonSchema } from '../../src/contracts/jsonSchema.js';
import { requestInputSchema } from '../../src/workflows/requestTypes.js';

const checkedIn = JSON.parse(readFileSync(join(process.cwd(), 'contracts', `request-input.v${REQUEST_INPUT_CONTRACT_VERSION}.schema.json`), 'utf8')) as Record<string, unknown>;

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
    ];
    for (const c of cases) expect(validate(c)).toBe(requestInputSchema.safeParse(c).success);
  });
});
