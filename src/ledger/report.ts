/**
 * Spend reports from ledger entries: spend, requests, attempts, tokens and the saving against the
 * premium baseline, grouped by any of day (UTC), model, tier, category, feature, scope. Pure: the
 * caller reads the entries and says how to price an entry that predates recorded baselines.
 */
import type { LedgerEntry } from './fileLedger.js';

export const REPORT_DIMENSIONS = ['day', 'model', 'tier', 'category', 'feature', 'scope'] as const;
export type ReportDimension = (typeof REPORT_DIMENSIONS)[number];

export interface ReportFigures {
  /** Distinct requests (workflow ids) with spend in the group. */
  readonly requests: number;
  /** Charged provider attempts (ledger entries). */
  readonly attempts: number;
  readonly costNanos: number;
  /** What the same usage would have cost on the premium baseline model. */
  readonly baselineNanos: number;
  readonly savingNanos: number;
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
}

export interface ReportRow extends ReportFigures {
  readonly group: Partial<Record<ReportDimension, string>>;
}

export interface Report {
  readonly since: string | null;
  readonly until: string | null;
  readonly by: readonly ReportDimension[];
  readonly rows: readonly ReportRow[];
  readonly total: ReportFigures;
}

function valueOf(e: LedgerEntry, d: ReportDimension): string {
  switch (d) {
    case 'day':
      return e.at.slice(0, 10);
    case 'feature':
      return e.feature ?? 'unspecified';
    case 'scope':
      return e.scope ?? 'default';
    default:
      return e[d];
  }
}

function figures(entries: readonly LedgerEntry[], baselineOf: (e: LedgerEntry) => number): ReportFigures {
  let costNanos = 0;
  let baselineNanos = 0;
  let inputTokens = 0;
  let cachedInputTokens = 0;
  let outputTokens = 0;
  for (const e of entries) {
    costNanos += e.costNanos;
    baselineNanos += e.baselineNanos ?? baselineOf(e);
    inputTokens += e.inputTokens;
    cachedInputTokens += e.cachedInputTokens;
    outputTokens += e.outputTokens;
  }
  return { requests: new Set(entries.map((e) => e.workflowId)).size, attempts: entries.length, costNanos, baselineNanos, savingNanos: baselineNanos - costNanos, inputTokens, cachedInputTokens, outputTokens };
}

export function buildReport(entries: readonly LedgerEntry[], opts: { by: readonly ReportDimension[]; since?: Date | undefined; until?: Date | undefined }, baselineOf: (e: LedgerEntry) => number): Report {
  const groups = new Map<string, { group: Partial<Record<ReportDimension, string>>; entries: LedgerEntry[] }>();
  for (const e of entries) {
    const group = Object.fromEntries(opts.by.map((d) => [d, valueOf(e, d)])) as Partial<Record<ReportDimension, string>>;
    const key = JSON.stringify(opts.by.map((d) => group[d]));
    const g = groups.get(key) ?? { group, entries: [] };
    g.entries.push(e);
    groups.set(key, g);
  }
  const rows = [...groups.values()]
    .map((g) => ({ group: g.group, ...figures(g.entries, baselineOf) }))
    .sort((a, b) => opts.by.map((d) => (a.group[d] ?? '').localeCompare(b.group[d] ?? '')).find((c) => c !== 0) ?? b.costNanos - a.costNanos);
  return { since: opts.since?.toISOString() ?? null, until: opts.until?.toISOString() ?? null, by: opts.by, rows, total: figures(entries, baselineOf) };
}

const usd = (n: number): string => `$${(n / 1e9).toFixed(6)}`;
const FIGURE_COLUMNS = ['requests', 'attempts', 'costNanos', 'baselineNanos', 'savingNanos', 'inputTokens', 'cachedInputTokens', 'outputTokens'] as const;

/** CSV: one line per group, then a total line; money in nanodollars (exact). */
export function reportCsv(r: Report): string {
  const cell = (v: string | number): string => (typeof v === 'number' || /^[\w .:/-]*$/.test(v) ? String(v) : `"${v.replaceAll('"', '""')}"`);
  const lines = [[...r.by, ...FIGURE_COLUMNS].join(',')];
  for (const row of r.rows) lines.push([...r.by.map((d) => cell(row.group[d] ?? '')), ...FIGURE_COLUMNS.map((c) => row[c])].join(','));
  lines.push([...r.by.map((_, i) => (i === 0 ? 'total' : '')), ...FIGURE_COLUMNS.map((c) => r.total[c])].join(','));
  return `${lines.join('\n')}\n`;
}

/** A table for people: dollars, requests, tokens, saving. */
export function reportTable(r: Report): string[][] {
  const head = [...r.by, 'requests', 'attempts', 'cost', 'premium baseline', 'saved', 'tokens in', 'tokens out'];
  const line = (g: string[], f: ReportFigures) => [...g, String(f.requests), String(f.attempts), usd(f.costNanos), usd(f.baselineNanos), `${usd(f.savingNanos)}${f.baselineNanos > 0 ? ` (${((f.savingNanos / f.baselineNanos) * 100).toFixed(1)}%)` : ''}`, String(f.inputTokens), String(f.outputTokens)];
  return [head, ...r.rows.map((row) => line(r.by.map((d) => row.group[d] ?? ''), row)), line(r.by.map((_, i) => (i === 0 ? 'total' : '')), r.total)];
}
