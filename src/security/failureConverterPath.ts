/**
 * Where the encoded-failure converter (failureConverter.cjs) lives, for
 * `DataConverter.failureConverterPath`: beside this module when run from source, or in the
 * package's src/security when run from dist (tsc does not copy .cjs files).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export function failureConverterPath(): string {
  const candidates = [join(here, 'failureConverter.cjs'), join(here, '..', '..', '..', 'src', 'security', 'failureConverter.cjs')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`failureConverter.cjs not found (looked in ${candidates.join(', ')}); reinstall the package`);
  return found;
}
