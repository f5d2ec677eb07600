/**
 * Preparing a server-side batch: validate the whole file first (so malformed lines are reported
 * before anything starts), then copy it where the workers read it, named by the batch id, with
 * its size and sha256 so a worker can tell if it changed.
 */
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileSha256 } from '../activities/batch.js';
import type { BadLine } from './batchInput.js';
import { readBatchFile } from './inputFile.js';
import type { BatchSource } from '../workflows/batchTypes.js';

export interface PreparedBatch {
  readonly source: BatchSource;
  readonly requests: number;
  readonly invalid: BadLine[];
}

/** A readable, unique-enough batch id: the file's name and the time, e.g. `tickets-20261128-031500`. */
export function defaultBatchId(file: string, now = new Date()): string {
  const stem = basename(file).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 40) || 'batch';
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stem}-${t}`;
}

export async function prepareDetachedBatch(file: string, batchId: string, batchDir: string, category: string | undefined): Promise<PreparedBatch> {
  const invalid: BadLine[] = [];
  let requests = 0;
  let lines = 0;
  for await (const e of readBatchFile(file, { category })) {
    lines += 1;
    if (e.ok) requests += 1;
    else invalid.push(e.bad);
  }
  mkdirSync(batchDir, { recursive: true });
  const path = resolve(join(batchDir, `${batchId}.jsonl`));
  copyFileSync(file, path);
  return {
    source: { path, sha256: await fileSha256(path), sizeBytes: statSync(path).size, lines, originalName: basename(file) },
    requests,
    invalid,
  };
}
