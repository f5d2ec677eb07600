/** `switchyard report`: spend, requests, tokens and the premium-baseline saving, from the spend ledger. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { costNanos } from '../catalog/pricing.js';
import { loadCatalog } from '../catalog/loadFile.js';
import { openSpendLedger } from '../ledger/open.js';
import { buildReport, REPORT_DIMENSIONS, type ReportDimension, reportCsv, reportTable } from '../ledger/report.js';
import { formatTable } from '../util/table.js';
import { config, duration } from './shared.js';

/** An instant: an ISO date or time (2026-12-01, 2026-12-01T08:00:00Z), or a duration ago (7d, 12h). */
export function instant(name: string, now: () => number = Date.now) {
  const ago = duration(name);
  return (v: string): Date => {
    if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
      // A date is UTC midnight; a time without an offset is UTC too (not this machine's zone).
      const iso = /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(v) ? `${v}Z` : v;
      const t = Date.parse(iso);
      if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== v.slice(0, 10)) throw new InvalidArgumentError(`${name}: "${v}" is not a date or time (use 2026-12-01 or 2026-12-01T08:00:00Z)`);
      return new Date(t);
    }
    // A bare number is refused: "7" could mean days or milliseconds.
    if (/^\d+(\.\d+)?$/.test(v.trim())) throw new InvalidArgumentError(`${name} must be an ISO date or time (2026-12-01, 2026-12-01T08:00:00Z) or a duration ago with its unit (7d, 12h), got "${v}"`);
    try {
      return new Date(now() - ago(v));
    } catch {
      throw new InvalidArgumentError(`${name} must be an ISO date or time (2026-12-01, 2026-12-01T08:00:00Z) or a duration ago (7d, 12h), got "${v}"`);
    }
  };
}

function dimensions(v: string, previous: ReportDimension[] = []): ReportDimension[] {
  const out = [...previous];
  for (const d of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(REPORT_DIMENSIONS as readonly string[]).includes(d)) throw new InvalidArgumentError(`--by must be one or more of ${REPORT_DIMENSIONS.join(', ')}, got "${d}"`);
    if (!out.includes(d as ReportDimension)) out.push(d as ReportDimension);
  }
  return out;
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('spend, requests, tokens and the saving against the premium model, from the spend ledger (SWITCHYARD_LEDGER_URL, else the ledger file)')
    .option('--since <when>', 'from this instant: an ISO date or time, or a duration ago (7d, 12h)', instant('--since'))
    .option('--until <when>', 'before this instant: an ISO date or time, or a duration ago', instant('--until'))
    .option('--by <dims>', `group by ${REPORT_DIMENSIONS.join(', ')} (repeat or comma-separate)`, dimensions)
    .option('--scope <name>', 'one budget scope only')
    .addOption(new Option('--json', 'print JSON (money in integer nanodollars)').conflicts('csv'))
    .option('--csv', 'print CSV (money in integer nanodollars)')
    .action(async (o: { since?: Date; until?: Date; by?: ReportDimension[]; scope?: string; json?: boolean; csv?: boolean }) => {
      if (o.since && o.until && o.since >= o.until) throw new InvalidArgumentError('--since must be before --until');
      const cfg = config();
      const catalog = loadCatalog(cfg.catalogPath);
      const baseline = catalog.premiumBaseline();
      const ledger = await openSpendLedger(cfg);
      try {
        const entries = await ledger.entries({ since: o.since, until: o.until, scope: o.scope });
        // Entries written before baselines were recorded: priced now, on the catalog's premium model.
        const report = buildReport(entries, { by: o.by ?? [], since: o.since, until: o.until }, (e) => costNanos(baseline, { inputTokens: e.inputTokens, cachedInputTokens: e.cachedInputTokens, outputTokens: e.outputTokens }));
        if (o.json) process.stdout.write(`${JSON.stringify({ ledger: ledger.describe, ...report })}\n`);
        else if (o.csv) process.stdout.write(reportCsv(report));
        else process.stdout.write(`${formatTable(reportTable(report), (i) => i >= (o.by?.length ?? 0))}\nledger: ${ledger.describe}\n`);
      } finally {
        await ledger.close();
      }
    });
}
