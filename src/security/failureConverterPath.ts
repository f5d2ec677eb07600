/**
 * Where the encoded-failure converter (failureConverter.cjs) lives, for
 * `DataConverter.failureConverterPath`: beside this module (in src/, and in dist/, where the build
 * copies it: tsc does not emit .cjs files).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export function failureConverterPath(): string {
  const candidates = [join(here, 'failureConverter.cjs')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`failureConverter.cjs not found (looked in ${candidates.join(', ')}); rebuild with npm run build, or reinstall the package`);
  return found;
}
