/** Reads a YAML or JSON file (by extension) for the config, catalog and faults loaders. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ValidationError } from './validation.js';

/** `what` names the file in errors ("catalog file"); `hint` says how to point at another one. */
export function readStructuredFile(path: string, what: string, hint = ''): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ValidationError(path, [`cannot read ${what}: ${(e as Error).message}${hint}`]);
  }
  const json = path.endsWith('.json');
  try {
    return json ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ValidationError(path, [`not valid ${json ? 'JSON' : 'YAML'}: ${(e as Error).message}`]);
  }
}
