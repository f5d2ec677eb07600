/**
 * The spend ledger as workers and reports use it: the JSONL file (one machine, the embedded
 * default) or PostgreSQL (`SWITCHYARD_LEDGER_URL`, shared by every worker). Both are idempotent by
 * the entry's key (the reservation id): a retried settlement never records twice.
 */
import type { FileLedger, LedgerEntry } from './fileLedger.js';

export interface LedgerQuery {
  /** Entries at or after this instant. */
  readonly since?: Date | undefined;
  /** Entries before this instant. */
  readonly until?: Date | undefined;
  readonly scope?: string | undefined;
}

export interface SpendLedger {
  /** Where it is, for messages (never a password). */
  readonly describe: string;
  /** Appends the entry unless its key is there; true when it was appended. */
  record(entry: LedgerEntry): Promise<boolean>;
  entries(q?: LedgerQuery): Promise<LedgerEntry[]>;
  close(): Promise<void>;
}

export function matches(e: LedgerEntry, q: LedgerQuery): boolean {
  const at = Date.parse(e.at);
  if (q.since && at < q.since.getTime()) return false;
  if (q.until && at >= q.until.getTime()) return false;
  if (q.scope !== undefined && (e.scope ?? 'default') !== q.scope) return false;
  return true;
}

/** The JSONL file behind the SpendLedger interface. */
export function fileSpendLedger(file: FileLedger): SpendLedger {
  return {
    describe: file.path,
    record: async (entry) => file.record(entry),
    entries: async (q = {}) => file.entries().filter((e) => matches(e, q)),
    close: async () => undefined,
  };
}
