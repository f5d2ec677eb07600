/** `npm run contracts`: writes the checked-in JSON Schemas from the zod schemas (see contracts/). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REQUEST_INPUT_CONTRACT_VERSION, requestInputJsonSchema } from '../../src/contracts/jsonSchema.js';

const path = join(process.cwd(), 'contracts', `request-input.v${REQUEST_INPUT_CONTRACT_VERSION}.schema.json`);
writeFileSync(path, `${JSON.stringify(requestInputJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${path}\n`);
