/** Reads a user's catalog file (YAML or JSON). The only catalog module that touches the disk. */
import { type Catalog, catalogFromFileContent, defaultCatalog } from './catalog.js';
import { readStructuredFile } from '../util/structuredFile.js';

export function loadCatalogFile(path: string): Catalog {
  return catalogFromFileContent(readStructuredFile(path, 'catalog file', '; check SWITCHYARD_CATALOG'), path);
}

export function loadCatalog(path: string | undefined): Catalog {
  return path ? loadCatalogFile(path) : defaultCatalog();
}
