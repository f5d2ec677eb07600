/**
 * The spend ledger as workers and reports use it: the JSONL file (one machine, the embedded
 * default) or PostgreSQL (`SWITCHYARD_LEDGER_URL`, shared by every worker). Both are idempotent by
 * the entry's key (the reservation id): a retried settlement never records twice.
 */
import { costNanos } from '../catalog/pricing.js';
import type { ModelSpec } from '../catalog/schema.js';
import type { FileLedger, LedgerEntry } from './fileLedger.js';
import { type Report, ReportAccumulator, type ReportDimension } from './report.js';

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
  /** The spend report over the entries the query selects, aggregated where the entries are (streamed, or in SQL). */
  report(q: LedgerQuery, opts: ReportOptions): Promise<LedgerReport>;
  close(): Promise<void>;
}

export interface ReportOptions {
  readonly by: readonly ReportDimension[];
  /** Prices entries written before baselines were recorded (their usage on this model). */
  readonly baseline: ModelSpec;
}

export interface LedgerReport extends Report {
  /** Where the entries came from (never a password). */
  readonly ledger: string;
  /** Lines that could not be read as entries and were left out (a file ledger's torn writes). */
  readonly skippedLines: number;
  /** Settlements found in more than one ledger (or twice in one), counted once. */
  readonly repeatedKeys: number;
}

/** What an entry written before baselines were recorded would have cost on the baseline model. */
export function baselineOf(baseline: ModelSpec): (e: LedgerEntry) => number {
  return (e) => costNanos(baseline, { inputTokens: e.inputTokens, cachedInputTokens: e.cachedInputTokens, outputTokens: e.outputTokens });
}

/**
 * One report over several JSONL ledgers (a file per worker): each settlement's key counts once,
 * whichever files it appears in (a worker that took over a settlement may have written it again).
 */
export function reportOverFiles(files: readonly FileLedger[], q: LedgerQuery, opts: ReportOptions): LedgerReport {
  const acc = new ReportAccumulator({ by: opts.by, since: q.since, until: q.until, dedupeKeys: true }, baselineOf(opts.baseline));
  let skippedLines = 0;
  for (const f of files) {
    skippedLines += f.forEach((e) => {
      if (matches(e, q)) acc.add(e);
    }).skippedLines;
  }
  return { ledger: files.map((f) => f.path).join(', '), ...acc.build(), skippedLines, repeatedKeys: acc.repeatedKeys };
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
    report: async (q, opts) => reportOverFiles([file], q, opts),
    close: async () => undefined,
  };
}
