/**
 * Spend reports from ledger entries: spend, requests, attempts, tokens and the saving against the
 * premium baseline, grouped by any of day (UTC), model, tier, category, feature, scope, gateway key,
 * mode (live, batch, duplicated), with what provider batches saved against the live price. Pure: the
 * caller reads the entries and says how to price an entry that predates recorded baselines.
 */
import type { LedgerEntry } from './fileLedger.js';

export const REPORT_DIMENSIONS = ['day', 'model', 'tier', 'category', 'feature', 'scope', 'key', 'mode'] as const;
export type ReportDimension = (typeof REPORT_DIMENSIONS)[number];

/** The key of spend not sent through a gateway key. */
export const NO_KEY = 'none';

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
  /** What attempts answered in provider batches saved against the same usage at the live price. */
  readonly batchSavingNanos: number;
  /** Batch lines the provider answered after their requests had gone live (billed, so counted in costNanos). */
  readonly duplicatedNanos: number;
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
    case 'key':
      return e.keyId ?? NO_KEY;
    case 'mode':
      return e.mode ?? 'live';
    default:
      return e[d];
  }
}

interface Group {
  readonly group: Partial<Record<ReportDimension, string>>;
  readonly workflowIds: Set<string>;
  attempts: number;
  costNanos: number;
  baselineNanos: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  batchSavingNanos: number;
  duplicatedNanos: number;
}

function emptyGroup(group: Partial<Record<ReportDimension, string>>): Group {
  return {
    group,
    workflowIds: new Set(),
    attempts: 0,
    costNanos: 0,
    baselineNanos: 0,
    inputTokens: 0,
    cachedInputTokens: 0,
    outputTokens: 0,
    batchSavingNanos: 0,
    duplicatedNanos: 0,
  };
}

function addTo(g: Group, e: LedgerEntry, baselineNanos: number): void {
  g.workflowIds.add(e.workflowId);
  g.attempts += 1;
  g.costNanos += e.costNanos;
  g.baselineNanos += baselineNanos;
  g.inputTokens += e.inputTokens;
  g.cachedInputTokens += e.cachedInputTokens;
  g.outputTokens += e.outputTokens;
  if (e.mode === 'batch') g.batchSavingNanos += Math.max(0, (e.liveNanos ?? e.costNanos) - e.costNanos);
  if (e.mode === 'duplicated') g.duplicatedNanos += e.costNanos;
}

function figuresOf(g: Group): ReportFigures {
  const { attempts, costNanos, baselineNanos, inputTokens, cachedInputTokens, outputTokens, batchSavingNanos, duplicatedNanos } = g;
  return {
    requests: g.workflowIds.size,
    attempts,
    costNanos,
    baselineNanos,
    savingNanos: baselineNanos - costNanos,
    inputTokens,
    cachedInputTokens,
    outputTokens,
    batchSavingNanos,
    duplicatedNanos,
  };
}

/**
 * A report folded one entry at a time (a ledger of any size is streamed through it, never held):
 * memory is the groups, the distinct request ids and, when asked to, the keys already counted, so
 * that entries read from several ledgers (a file per worker) count each settlement once.
 */
export class ReportAccumulator {
  private readonly groups = new Map<string, Group>();
  private readonly total = emptyGroup({});
  private readonly keys: Set<string> | undefined;
  /** Entries whose key was already counted (from another ledger, or repeated in one). */
  repeatedKeys = 0;

  constructor(
    private readonly opts: { by: readonly ReportDimension[]; since?: Date | undefined; until?: Date | undefined; dedupeKeys?: boolean },
    private readonly baselineOf: (e: LedgerEntry) => number,
  ) {
    this.keys = opts.dedupeKeys ? new Set() : undefined;
  }

  add(e: LedgerEntry): void {
    if (this.keys) {
      if (this.keys.has(e.key)) {
        this.repeatedKeys += 1;
        return;
      }
      this.keys.add(e.key);
    }
    const group = Object.fromEntries(this.opts.by.map((d) => [d, valueOf(e, d)])) as Partial<Record<ReportDimension, string>>;
    const key = JSON.stringify(this.opts.by.map((d) => group[d]));
    let g = this.groups.get(key);
    if (!g) {
      g = emptyGroup(group);
      this.groups.set(key, g);
    }
    const baseline = e.baselineNanos ?? this.baselineOf(e);
    addTo(g, e, baseline);
    addTo(this.total, e, baseline);
  }

  build(): Report {
    const { by } = this.opts;
    // Without dimensions the one group is the total: no row repeats it.
    const rows = by.length === 0 ? [] : [...this.groups.values()].map((g) => ({ group: g.group, ...figuresOf(g) }));
    return {
      since: this.opts.since?.toISOString() ?? null,
      until: this.opts.until?.toISOString() ?? null,
      by,
      rows: sortRows(rows, by),
      total: figuresOf(this.total),
    };
  }
}

/** Rows in the order of their group values, then by cost (highest first). */
export function sortRows(rows: ReportRow[], by: readonly ReportDimension[]): ReportRow[] {
  return rows.sort((a, b) => by.map((d) => (a.group[d] ?? '').localeCompare(b.group[d] ?? '')).find((c) => c !== 0) ?? b.costNanos - a.costNanos);
}

export function buildReport(
  entries: Iterable<LedgerEntry>,
  opts: { by: readonly ReportDimension[]; since?: Date | undefined; until?: Date | undefined },
  baselineOf: (e: LedgerEntry) => number,
): Report {
  const acc = new ReportAccumulator(opts, baselineOf);
  for (const e of entries) acc.add(e);
  return acc.build();
}

const usd = (n: number): string => `$${(n / 1e9).toFixed(6)}`;
const FIGURE_COLUMNS = [
  'requests',
  'attempts',
  'costNanos',
  'baselineNanos',
  'savingNanos',
  'inputTokens',
  'cachedInputTokens',
  'outputTokens',
  'batchSavingNanos',
  'duplicatedNanos',
] as const;

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
  // The deferred lane's columns appear once it has been used: what batches saved, and lines billed twice.
  const deferred = r.total.batchSavingNanos > 0 || r.total.duplicatedNanos > 0;
  const head = [
    ...r.by,
    'requests',
    'attempts',
    'cost',
    'premium baseline',
    'saved',
    'tokens in',
    'tokens out',
    ...(deferred ? ['batch saved', 'duplicated'] : []),
  ];
  const line = (g: string[], f: ReportFigures) => [
    ...g,
    String(f.requests),
    String(f.attempts),
    usd(f.costNanos),
    usd(f.baselineNanos),
    `${usd(f.savingNanos)}${f.baselineNanos > 0 ? ` (${((f.savingNanos / f.baselineNanos) * 100).toFixed(1)}%)` : ''}`,
    String(f.inputTokens),
    String(f.outputTokens),
    ...(deferred ? [usd(f.batchSavingNanos), usd(f.duplicatedNanos)] : []),
  ];
  return [
    head,
    ...r.rows.map((row) =>
      line(
        r.by.map((d) => row.group[d] ?? ''),
        row,
      ),
    ),
    line(
      r.by.map((_, i) => (i === 0 ? 'total' : '')),
      r.total,
    ),
  ];
}
