/**
 * A durable spend ledger: one JSON line per charged provider attempt, appended and fsynced, with
 * the idempotency key (workflow id + attempt id) checked before each append, so a retried
 * recordSpend activity counts once. Other processes' appends are picked up by tailing the file
 * before each check. (The budget entity is where spend is decided; the file is the audit log.)
 *
 * Memory holds the keys and the running total, not the entries: `forEach()` streams the file in
 * chunks (a ledger of any size: a 600 MB file is never one string), `entries()` collects it. A
 * torn line (a process killed mid-write, a full disk) is skipped and counted, never fatal, and the
 * next append starts on a fresh line so it cannot glue itself to the torn one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { dirname } from 'node:path';

export type { LedgerEntry } from './entry.js';
import type { LedgerEntry } from './entry.js';

function parseEntry(line: string): LedgerEntry | undefined {
  try {
    const e = JSON.parse(line) as Partial<LedgerEntry> | null;
    return e && typeof e.key === 'string' && Number.isSafeInteger(e.costNanos) ? (e as LedgerEntry) : undefined;
  } catch {
    return undefined;
  }
}

export class FileLedger {
  private readonly keys = new Set<string>();
  private total = 0;
  private offset = 0;
  private partial = '';
  /** Lines that could not be read (torn or not ledger entries), skipped. */
  skippedLines = 0;

  constructor(
    readonly path: string,
    private readonly onSkip: (line: string) => void = () => undefined,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.catchUp();
  }

  /** Appends the entry unless its key is already there. Returns whether it was appended. */
  record(entry: LedgerEntry): boolean {
    if (!Number.isSafeInteger(entry.costNanos) || entry.costNanos < 0) {
      throw new RangeError(`costNanos must be a non-negative integer, got ${entry.costNanos}`);
    }
    this.catchUp();
    if (this.keys.has(entry.key)) return false;
    // After a torn tail, start on a new line: the torn text stays one bad line.
    const line = `${this.partial !== '' ? '\n' : ''}${JSON.stringify(entry)}\n`;
    const fd = openSync(this.path, 'a');
    try {
      writeSync(fd, line);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.catchUp();
    return true;
  }

  has(key: string): boolean {
    this.catchUp();
    return this.keys.has(key);
  }

  /**
   * Calls fn with every entry in the file, the first occurrence of each key, streaming it in chunks.
   * A missing file has no entries; any other read error is thrown (a report must never print a
   * total it could not read). Returns the number of unreadable lines skipped.
   */
  forEach(fn: (e: LedgerEntry) => void): { skippedLines: number } {
    this.catchUp();
    const seen = new Set<string>();
    let skippedLines = 0;
    const take = (l: string): void => {
      const e = parseEntry(l);
      if (!e) {
        skippedLines += 1;
        return;
      }
      if (seen.has(e.key)) return;
      seen.add(e.key);
      fn(e);
    };
    const tail = readLines(this.path, 0, this.offset, take);
    // A last line without its newline counts when it is a whole entry (a torn one is not yet an error:
    // its writer may still be finishing it).
    if (tail.trim() !== '' && parseEntry(tail)) take(tail);
    return { skippedLines };
  }

  /** Every entry, read from the file (first occurrence of each key). For small ledgers: forEach streams. */
  entries(): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    this.forEach((e) => out.push(e));
    return out;
  }

  totalNanos(filter?: (e: LedgerEntry) => boolean): number {
    if (!filter) {
      this.catchUp();
      return this.total;
    }
    let sum = 0;
    this.forEach((e) => {
      if (filter(e)) sum += e.costNanos;
    });
    return sum;
  }

  private catchUp(): void {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    if (size <= this.offset) return;
    const from = this.offset;
    this.offset = size;
    this.partial = readLines(
      this.path,
      from,
      size,
      (l) => {
        const e = parseEntry(l);
        if (!e) {
          this.skippedLines += 1;
          this.onSkip(l);
          return;
        }
        if (this.keys.has(e.key)) return;
        this.keys.add(e.key);
        this.total += e.costNanos;
      },
      this.partial,
    );
    // A whole entry without its newline counts (its key is remembered, so it counts once when a
    // later append completes the line).
    const tail = this.partial.trim() === '' ? undefined : parseEntry(this.partial);
    if (tail && !this.keys.has(tail.key)) {
      this.keys.add(tail.key);
      this.total += tail.costNanos;
    }
  }
}

/** Bytes read at a time: a large ledger is never one buffer or one string. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Calls onLine with each complete, non-blank line of the file between two byte offsets, reading it
 * in chunks (UTF-8 split across chunks is decoded whole). Returns the text after the last newline
 * (a line still being written, or torn). `carry` is such a tail from an earlier call.
 */
function readLines(path: string, from: number, to: number, onLine: (line: string) => void, carry = ''): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return carry;
    throw e;
  }
  const decoder = new StringDecoder('utf8');
  let partial = carry;
  try {
    const buf = Buffer.alloc(Math.min(CHUNK_BYTES, Math.max(1, to - from)));
    let at = from;
    while (at < to) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, to - at), at);
      if (n === 0) break;
      at += n;
      const lines = (partial + decoder.write(buf.subarray(0, n))).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim() !== '') onLine(l);
    }
    partial += decoder.end();
  } finally {
    closeSync(fd);
  }
  return partial;
}
