/**
 * A durable spend ledger: one JSON line per charged provider attempt, appended and fsynced, with
 * the idempotency key (workflow id + attempt id) checked before each append, so a retried
 * recordSpend activity counts once. Other processes' appends are picked up by tailing the file
 * before each check. (The budget entity is where spend is decided; the file is the audit log.)
 *
 * Memory holds the keys and the running total, not the entries: `entries()` reads the file. A
 * torn line (a process killed mid-write, a full disk) is skipped and counted, never fatal, and the
 * next append starts on a fresh line so it cannot glue itself to the torn one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface LedgerEntry {
  readonly key: string;
  readonly workflowId: string;
  readonly attemptId: string;
  readonly model: string;
  readonly provider: string;
  readonly tier: string;
  readonly category: string;
  /** The request's feature ("unspecified" when it named none; absent in entries written before features). */
  readonly feature?: string;
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
  readonly costNanos: number;
  /** The budget scope charged (absent in entries written before reports: "default"). */
  readonly scope?: string;
  /** What the same usage would have cost on the premium baseline model (absent in older entries). */
  readonly baselineNanos?: number;
  readonly at: string;
}

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

  /** Every entry, read from the file (first occurrence of each key). */
  entries(): LedgerEntry[] {
    this.catchUp();
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return [];
    }
    const seen = new Set<string>();
    const out: LedgerEntry[] = [];
    for (const l of text.split('\n')) {
      const e = l.trim() === '' ? undefined : parseEntry(l);
      if (!e || seen.has(e.key)) continue;
      seen.add(e.key);
      out.push(e);
    }
    return out;
  }

  totalNanos(filter?: (e: LedgerEntry) => boolean): number {
    if (!filter) {
      this.catchUp();
      return this.total;
    }
    return this.entries().filter(filter).reduce((s, e) => s + e.costNanos, 0);
  }

  private catchUp(): void {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return;
    }
    if (size <= this.offset) return;
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(size - this.offset);
      readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.partial + buf.toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const l of lines) {
        if (l.trim() === '') continue;
        const e = parseEntry(l);
        if (!e) {
          this.skippedLines += 1;
          this.onSkip(l);
          continue;
        }
        if (this.keys.has(e.key)) continue;
        this.keys.add(e.key);
        this.total += e.costNanos;
      }
    } finally {
      closeSync(fd);
    }
  }
}
