/**
 * Files and batch records the gateway's /v1/files and /v1/batches serve, in a directory every
 * gateway instance and every worker can read: `<dir>/<file id>.data` beside its metadata
 * `<file id>.json`, and `<dir>/batches/<batch id>.json`. A directory, not PostgreSQL: the batch
 * workflow's workers read a batch's input by byte offset, a page at a time, from a path
 * (activities/batch), so the input must be a file they can open; on one machine that is the state
 * directory, across machines a shared volume (docs/files-and-batches.md). Uploads are streamed to
 * disk and renamed into place once whole, metadata written by rename too, so a reader never sees
 * half a file and two instances never clash.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export const FILE_PURPOSES = ['batch', 'batch_output'] as const;
export type FilePurpose = (typeof FILE_PURPOSES)[number];

/** A file as OpenAI's API shows it, plus who may see it (a key's lineage; never shown). */
export interface StoredFile {
  readonly id: string;
  readonly object: 'file';
  readonly bytes: number;
  readonly created_at: number;
  readonly expires_at: number | null;
  readonly filename: string;
  readonly purpose: FilePurpose;
  readonly status: 'processed';
  readonly status_details: null;
  /** Non-blank lines (JSONL). */
  readonly lines: number;
  readonly owner: string;
}

/** What a caller sees of a file (OpenAI's fields). */
export function fileObject(f: StoredFile): Record<string, unknown> {
  const { lines: _l, owner: _o, ...shown } = f;
  return shown;
}

export class FileTooLargeError extends Error {
  override readonly name = 'FileTooLargeError';
}

const ID = /^(file|batch)-?[A-Za-z0-9_-]{1,80}$/;

/**
 * A new id: the prefix, the time in 12 hex digits, and 12 random ones (OpenAI's ids look like
 * file-abc..., batch_abc...). Ids sort by creation, so a page cursor (`after`) keeps its place
 * even when the item it names was deleted.
 */
export function newId(prefix: 'file-' | 'batch_'): string {
  return `${prefix}${Date.now().toString(16).padStart(12, '0')}${randomBytes(6).toString('hex')}`;
}

export class DirFileStore {
  constructor(readonly dir: string) {}

  private dataPath(id: string): string {
    return join(this.dir, `${id}.data`);
  }

  private metaPath(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /** Where a file's bytes are: what a batch's workers read. */
  pathOf(id: string): string {
    return this.dataPath(id);
  }

  /**
   * Streams `body` to a new file, at most `maxBytes` (FileTooLargeError past it: nothing kept),
   * counting its non-blank lines. `onChunk` sees each chunk (an upload's idle timer).
   */
  async create(
    body: Readable | AsyncIterable<Buffer | string>,
    meta: { filename: string; purpose: FilePurpose; owner: string; maxBytes: number; id?: string },
  ): Promise<StoredFile> {
    await mkdir(this.dir, { recursive: true });
    const id = meta.id ?? newId('file-');
    const part = join(this.dir, `${id}.${randomBytes(4).toString('hex')}.part`);
    let bytes = 0;
    let lines = 0;
    let lineHasText = false;
    const counted = async function* (src: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
      for await (const c of src) {
        const buf = typeof c === 'string' ? Buffer.from(c) : c;
        bytes += buf.length;
        if (bytes > meta.maxBytes) throw new FileTooLargeError(`the file is larger than ${meta.maxBytes} bytes`);
        for (const b of buf) {
          if (b === 0x0a) {
            if (lineHasText) lines += 1;
            lineHasText = false;
          } else if (b !== 0x20 && b !== 0x0d && b !== 0x09) lineHasText = true;
        }
        yield buf;
      }
    };
    try {
      await pipeline(body as AsyncIterable<Buffer>, counted, createWriteStream(part, { flags: 'wx' }));
    } catch (e) {
      await rm(part, { force: true });
      throw e;
    }
    if (lineHasText) lines += 1;
    return this.publish(part, { id, bytes, lines, ...meta });
  }

  /** A whole file in place under its id, then its metadata (a reader sees both or neither). */
  private async publish(
    part: string,
    f: { id: string; bytes: number; lines: number; filename: string; purpose: FilePurpose; owner: string },
  ): Promise<StoredFile> {
    const file: StoredFile = {
      id: f.id,
      object: 'file',
      bytes: f.bytes,
      created_at: Math.floor(Date.now() / 1000),
      expires_at: null,
      filename: f.filename,
      purpose: f.purpose,
      status: 'processed',
      status_details: null,
      lines: f.lines,
      owner: f.owner,
    };
    await rename(part, this.dataPath(f.id));
    await this.writeJson(this.metaPath(f.id), file);
    return file;
  }

  /**
   * A file written line by line (a batch's output): nothing is held in memory but the stream's
   * buffer. `close` renames it into place, or removes it and returns null when no line was written.
   */
  async writer(meta: {
    filename: string;
    purpose: FilePurpose;
    owner: string;
  }): Promise<{ write(line: string): Promise<void>; close(): Promise<StoredFile | null> }> {
    await mkdir(this.dir, { recursive: true });
    const id = newId('file-');
    const part = join(this.dir, `${id}.${randomBytes(4).toString('hex')}.part`);
    const out = createWriteStream(part, { flags: 'wx' });
    let bytes = 0;
    let lines = 0;
    return {
      write: async (line: string) => {
        const buf = Buffer.from(`${line}\n`);
        bytes += buf.length;
        lines += 1;
        if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
      },
      close: async () => {
        await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
        if (lines === 0) {
          await rm(part, { force: true });
          return null;
        }
        return this.publish(part, { id, bytes, lines, filename: meta.filename, purpose: meta.purpose, owner: meta.owner });
      },
    };
  }

  /** The file, if it exists and `owner` may see it (undefined owner: any, the admin key). */
  async get(id: string, owner: string | undefined): Promise<StoredFile | undefined> {
    if (!ID.test(id)) return undefined;
    const f = await this.readJson<StoredFile>(this.metaPath(id));
    return f && (owner === undefined || f.owner === owner) ? f : undefined;
  }

  content(id: string): ReadStream {
    return createReadStream(this.dataPath(id));
  }

  async delete(id: string): Promise<void> {
    await rm(this.metaPath(id), { force: true });
    await rm(this.dataPath(id), { force: true });
  }

  /** The owner's files, newest first (or oldest, `order: asc`), after the id given. */
  async list(
    owner: string | undefined,
    opts: { purpose?: string; after?: string; limit: number; order: 'asc' | 'desc' },
  ): Promise<{ data: StoredFile[]; hasMore: boolean }> {
    const all = (await this.readAll<StoredFile>(this.dir)).filter(
      (f) => (owner === undefined || f.owner === owner) && (!opts.purpose || f.purpose === opts.purpose),
    );
    return page(all, opts);
  }

  // ---- batch records

  private batchPath(id: string): string {
    return join(this.dir, 'batches', `${id}.json`);
  }

  async putBatch<T extends { id: string }>(b: T): Promise<void> {
    await mkdir(join(this.dir, 'batches'), { recursive: true });
    await this.writeJson(this.batchPath(b.id), b);
  }

  async getBatch<T extends { id: string; owner: string }>(id: string, owner: string | undefined): Promise<T | undefined> {
    if (!ID.test(id)) return undefined;
    const b = await this.readJson<T>(this.batchPath(id));
    return b && (owner === undefined || b.owner === owner) ? b : undefined;
  }

  async listBatches<T extends { id: string; owner: string }>(
    owner: string | undefined,
    opts: { after?: string; limit: number },
  ): Promise<{ data: T[]; hasMore: boolean }> {
    const all = (await this.readAll<T>(join(this.dir, 'batches'))).filter((b) => owner === undefined || b.owner === owner);
    return page(all, { ...opts, order: 'desc' });
  }

  // ---- helpers

  private async writeJson(path: string, v: unknown): Promise<void> {
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(v));
    await rename(tmp, path);
  }

  private async readJson<T>(path: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as T;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  private async readAll<T>(dir: string): Promise<T[]> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: T[] = [];
    for (const n of names.filter((x) => x.endsWith('.json'))) {
      const v = await this.readJson<T>(join(dir, n));
      if (v) out.push(v);
    }
    return out;
  }

  /** Whether the data file exists (a record whose bytes were removed by hand is not served). */
  async hasData(id: string): Promise<boolean> {
    return stat(this.dataPath(id)).then(
      () => true,
      () => false,
    );
  }
}

/** Sorted by id (which sorts by creation), from just after `after` (present or not), at most `limit`. */
function page<T extends { id: string }>(all: T[], opts: { after?: string; limit: number; order: 'asc' | 'desc' }): { data: T[]; hasMore: boolean } {
  const asc = opts.order === 'asc';
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  all.sort((a, b) => (asc ? cmp(a.id, b.id) : cmp(b.id, a.id)));
  const after = opts.after;
  const rest = after === undefined ? all : all.filter((x) => (asc ? x.id > after : x.id < after));
  return { data: rest.slice(0, opts.limit), hasMore: rest.length > opts.limit };
}
