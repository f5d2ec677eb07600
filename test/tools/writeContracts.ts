/** `npm run contracts`: writes the checked-in JSON Schemas from the zod schemas (see contracts/). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  REQUEST_INPUT_CONTRACT_VERSION,
  REQUEST_RESULT_CONTRACT_VERSION,
  requestInputJsonSchema,
  requestResultJsonSchema,
} from '../../src/contracts/jsonSchema.js';

for (const [name, schema] of [
  [`request-input.v${REQUEST_INPUT_CONTRACT_VERSION}.schema.json`, requestInputJsonSchema()],
  [`request-result.v${REQUEST_RESULT_CONTRACT_VERSION}.schema.json`, requestResultJsonSchema()],
] as const) {
  const path = join(process.cwd(), 'contracts', name);
  writeFileSync(path, `${JSON.stringify(schema, null, 2)}\n`);
  process.stdout.write(`wrote ${path}\n`);
}
