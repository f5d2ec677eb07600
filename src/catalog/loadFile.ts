/** Reads a user's catalog file (YAML or JSON). The only catalog module that touches the disk. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { type Catalog, catalogFromFileContent, defaultCatalog } from './catalog.js';
import { ValidationError } from '../util/validation.js';

export function loadCatalogFile(path: string): Catalog {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ValidationError(path, [`cannot read catalog file: ${(e as Error).message}; check SWITCHYARD_CATALOG`]);
  }
  let content: unknown;
  try {
    content = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ValidationError(path, [`not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`]);
  }
  return catalogFromFileContent(content, path);
}

export function loadCatalog(path: string | undefined): Catalog {
  return path ? loadCatalogFile(path) : defaultCatalog();
}
