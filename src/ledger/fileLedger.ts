/**
 * A durable spend ledger: one JSON line per charged provider attempt, appended and fsynced, with
 * the idempotency key (workflow id + attempt id) checked before each append, so a retried
 * recordSpend activity counts once. Other processes' appends are picked up by tailing the file
 * before each check. (The budget entity workflow of the budgets issue replaces this as the place
 * where spend is decided; the file stays as an audit log.)
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface LedgerEntry {
  readonly key: string;
  readonly workflowId: string;
  readonly attemptId: string;
  readonly model: string;
  readonly provider: string;
  readonly tier: string;
  readonly category: string;
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
  readonly costNanos: number;
  readonly at: string;
}

export class FileLedger {
  private readonly keys = new Set<string>();
  private readonly all: LedgerEntry[] = [];
  private offset = 0;
  private partial = '';

  constructor(readonly path: string) {
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
    const line = `${JSON.stringify(entry)}\n`;
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

  entries(): readonly LedgerEntry[] {
    this.catchUp();
    return this.all;
  }

  totalNanos(filter: (e: LedgerEntry) => boolean = () => true): number {
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
        const e = JSON.parse(l) as LedgerEntry;
        if (this.keys.has(e.key)) continue;
        this.keys.add(e.key);
        this.all.push(e);
      }
    } finally {
      closeSync(fd);
    }
  }
}
