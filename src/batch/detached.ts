/**
 * Preparing a server-side batch: validate the whole file first (so malformed lines are reported
 * before anything starts), then copy it where the workers read it, named by the batch id, with
 * its size and sha256 so a worker can tell if it changed.
 */
import { constants, copyFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileSha256 } from '../activities/batch/index.js';
import type { BadLine, BatchDefaults } from './batchInput.js';
import { readBatchFile } from './inputFile.js';
import type { BatchSource } from '../workflows/batch/contract.js';

export interface PreparedBatch {
  readonly source: BatchSource;
  readonly requests: number;
  readonly invalid: BadLine[];
  /** Lines whose id repeats an earlier line's: the worker skips them. */
  readonly duplicates: BadLine[];
  /** Removes the copy (when the batch could not be started). */
  discard(): void;
}

/**
 * Duplicate lines a detached batch carries in its input (as line numbers, passed to every page
 * read); a file with more should be de-duplicated first.
 */
export const MAX_DUPLICATE_LINES = 1_000;

export class BatchIdTakenError extends Error {
  override readonly name = 'BatchIdTakenError';
}

/** A readable, unique-enough batch id: the file's name and the time, e.g. `tickets-20261128-031500`. */
export function defaultBatchId(file: string, now = new Date()): string {
  const stem =
    basename(file)
      .replace(/\.[^.]*$/, '')
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .slice(0, 40) || 'batch';
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stem}-${t}`;
}

export async function prepareDetachedBatch(file: string, batchId: string, batchDir: string, defaults: BatchDefaults): Promise<PreparedBatch> {
  const invalid: BadLine[] = [];
  const duplicates: BadLine[] = [];
  let requests = 0;
  let lines = 0;
  for await (const e of readBatchFile(file, defaults)) {
    lines += 1;
    if (e.ok) requests += 1;
    else {
      invalid.push(e.bad);
      if (e.duplicate) duplicates.push(e.bad);
    }
  }
  if (duplicates.length > MAX_DUPLICATE_LINES) {
    throw new BatchIdTakenError(
      `${file} repeats ids on ${duplicates.length} lines (more than ${MAX_DUPLICATE_LINES}): make the ids unique, or run it without --detach`,
    );
  }
  mkdirSync(batchDir, { recursive: true });
  const path = resolve(join(batchDir, `${batchId}.jsonl`));
  const sha256 = await fileSha256(file);
  // Never overwrite another batch's input: a copy under this id is reused only if it is this file.
  if (existsSync(path)) {
    if ((await fileSha256(path)) !== sha256) {
      throw new BatchIdTakenError(`batch id "${batchId}" is taken: ${path} holds another input; pass another --batch-id`);
    }
  } else copyFileSync(file, path, constants.COPYFILE_EXCL);
  return {
    source: { path, sha256, sizeBytes: statSync(path).size, lines, originalName: basename(file) },
    requests,
    invalid,
    duplicates,
    discard: () => rmSync(path, { force: true }),
  };
}
