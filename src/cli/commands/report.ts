/** `switchyard report`: spend, requests, tokens and the premium-baseline saving, from the spend ledger. */
import { existsSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { loadCatalog } from '../../catalog/loadFile.js';
import { FileLedger } from '../../ledger/fileLedger.js';
import { openSpendLedger } from '../../ledger/open.js';
import { REPORT_DIMENSIONS, type ReportDimension, reportCsv, reportTable } from '../../ledger/report.js';
import { type LedgerReport, reportOverFiles } from '../../ledger/spendLedger.js';
import { formatTable } from '../../util/table.js';
import { config, DEFAULT_ADDRESS, duration } from '../shared.js';
import { findStackRecord } from '../stackRecord.js';

/** An instant: an ISO date or time (2026-12-01, 2026-12-01T08:00:00Z), or a duration ago (7d, 12h). */
export function instant(name: string, now: () => number = Date.now) {
  const ago = duration(name);
  return (v: string): Date => {
    if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
      // A date is UTC midnight; a time without an offset is UTC too (not this machine's zone).
      const iso = /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(v) ? `${v}Z` : v;
      const t = Date.parse(iso);
      if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== v.slice(0, 10))
        throw new InvalidArgumentError(`${name}: "${v}" is not a date or time (use 2026-12-01 or 2026-12-01T08:00:00Z)`);
      return new Date(t);
    }
    // A bare number is refused: "7" could mean days or milliseconds.
    if (/^\d+(\.\d+)?$/.test(v.trim()))
      throw new InvalidArgumentError(
        `${name} must be an ISO date or time (2026-12-01, 2026-12-01T08:00:00Z) or a duration ago with its unit (7d, 12h), got "${v}"`,
      );
    try {
      return new Date(now() - ago(v));
    } catch {
      throw new InvalidArgumentError(`${name} must be an ISO date or time (2026-12-01, 2026-12-01T08:00:00Z) or a duration ago (7d, 12h), got "${v}"`);
    }
  };
}

function dimensions(v: string, previous: ReportDimension[] = []): ReportDimension[] {
  const out = [...previous];
  for (const d of v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (!(REPORT_DIMENSIONS as readonly string[]).includes(d))
      throw new InvalidArgumentError(`--by must be one or more of ${REPORT_DIMENSIONS.join(', ')}, got "${d}"`);
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
    .option(
      '--ledger <file>',
      'read this JSONL ledger file instead (repeat for a file per worker: each settlement counts once)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .addOption(new Option('--json', 'print JSON (money in integer nanodollars)').conflicts('csv'))
    .option('--csv', 'print CSV (money in integer nanodollars)')
    .action(async (o: { since?: Date; until?: Date; by?: ReportDimension[]; scope?: string; ledger?: string[]; json?: boolean; csv?: boolean }) => {
      if (o.since && o.until && o.since >= o.until) throw new InvalidArgumentError('--since must be before --until');
      const cfg = config();
      const catalog = loadCatalog(cfg.catalogPath);
      // Entries written before baselines were recorded are priced now, on the catalog's premium model.
      const opts = { by: o.by ?? [], baseline: catalog.premiumBaseline() };
      const query = { since: o.since, until: o.until, scope: o.scope };
      let report: LedgerReport;
      // Whose ledger: --ledger, else this shell's SWITCHYARD_LEDGER(_URL), else the ledger of the
      // local stack this shell reaches (`switchyard up`), else the default file. Always said.
      const stack = findStackRecord(cfg.temporalAddress ?? DEFAULT_ADDRESS);
      const explicit = process.env.SWITCHYARD_LEDGER !== undefined || process.env.SWITCHYARD_LEDGER_URL !== undefined;
      let whose = '';
      if (o.ledger && o.ledger.length > 0) {
        // A file named by hand that is not there is a mistake, never a report of zero spend.
        const missing = o.ledger.filter((path) => !existsSync(path));
        if (missing.length > 0)
          throw new InvalidArgumentError(
            `--ledger: no file at ${missing.join(', ')} (a worker's ledger is where its SWITCHYARD_LEDGER points, or $SWITCHYARD_STATE_DIR/ledger.jsonl)`,
          );
        report = reportOverFiles(
          o.ledger.map((path) => new FileLedger(path)),
          query,
          opts,
        );
      } else if (stack && !explicit && stack.ledgerKind === 'file') {
        report = reportOverFiles([new FileLedger(stack.ledger)], query, opts);
        whose = ` (the ledger of the local stack at ${stack.address}, pid ${stack.pid})`;
      } else {
        if (stack && !explicit && stack.ledgerKind === 'postgres')
          throw new InvalidArgumentError(
            `the local stack at ${stack.address} (pid ${stack.pid}) writes its ledger to PostgreSQL: set SWITCHYARD_LEDGER_URL here as it is set there, or pass --ledger FILE`,
          );
        if (stack && explicit && stack.ledger !== (cfg.ledgerUrl ? 'postgres (SWITCHYARD_LEDGER_URL)' : cfg.ledgerPath))
          process.stderr.write(
            `note: reporting ${cfg.ledgerUrl ? 'SWITCHYARD_LEDGER_URL' : cfg.ledgerPath} as this shell's environment says; the local stack at ${stack.address} writes ${stack.ledger}\n`,
          );
        if (!stack && !explicit) whose = ' (the default ledger of this machine; no local stack runs at this address)';
        const ledger = await openSpendLedger(cfg);
        try {
          report = await ledger.report(query, opts);
        } finally {
          await ledger.close();
        }
      }
      // What was left out or folded is said, never silent.
      if (report.skippedLines > 0)
        process.stderr.write(
          `warning: ${report.skippedLines} unreadable line(s) in ${report.ledger} left out of the report (torn writes, or not ledger entries)\n`,
        );
      if (report.repeatedKeys > 0) process.stderr.write(`note: ${report.repeatedKeys} settlement(s) found in more than one ledger file, counted once\n`);
      if (o.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else if (o.csv) process.stdout.write(reportCsv(report));
      else process.stdout.write(`${formatTable(reportTable(report), (i) => i >= (o.by?.length ?? 0))}\nledger: ${report.ledger}${whose}\n`);
    });
}
