/** `switchyard runs`: find request runs, show one, replay histories, re-drive failed runs. */
import { type Command, InvalidArgumentError } from 'commander';
import { formatUsd } from '../../catalog/pricing.js';
import { historiesFromFiles, historiesFromServer, type ReplayOutcome, replayHistories } from '../../replay/replay.js';
import { workflowCode } from '../../workers/bundle.js';
import type { RunInspection, RunSummary } from '../../client/client.js';
import { config, int, withClient } from '../shared.js';
import { quietTemporal } from '../temporalRuntime.js';
import { dataConverterFor } from '../../temporal/connection.js';
import { formatTable } from '../../util/table.js';

const usd = (n: number | null): string => (n === null ? '-' : formatUsd(n));

function printRuns(runs: RunSummary[]): void {
  if (runs.length === 0) {
    process.stdout.write('no matching runs\n');
    return;
  }
  const rows = [['workflow id', 'status', 'category', 'tier', 'model', 'cost', 'started', 'title']];
  for (const r of runs)
    rows.push([
      r.workflowId,
      r.status.toLowerCase(),
      r.category ?? '-',
      r.tier ?? '-',
      r.model ?? '-',
      usd(r.costNanos),
      r.startTime.replace('T', ' ').slice(0, 19),
      r.title ?? '',
    ]);
  process.stdout.write(`${formatTable(rows)}\n`);
}

function printInspection(r: RunInspection): void {
  const out = process.stdout;
  out.write(`${r.workflowId}  run ${r.runId}\n`);
  out.write(
    `status ${r.status.toLowerCase()}${r.outcome && r.outcome !== r.status.toLowerCase() ? ` (${r.outcome})` : ''}, category ${r.category ?? '-'}, started ${r.startTime}${r.closeTime ? `, closed ${r.closeTime}` : ''}\n`,
  );
  if (r.title) out.write(`title: ${r.title}\n`);
  if (r.batchId) out.write(`batch: ${r.batchId}\n`);
  if (r.redriveOf) out.write(`re-drive of run ${r.redriveOf}\n`);
  const c = r.result?.classification ?? r.trace?.classification;
  if (c)
    out.write(
      `classified: complexity ${c.complexity.toFixed(2)}${r.result ? ` -> ${r.result.classification.preferredTier}` : ''}; ${c.inputTokens} input tokens; capabilities [${c.capabilities.join(', ')}]; signals ${c.signals.join(' ') || '-'}\n`,
    );
  const candidates = r.result?.candidates ?? r.failure?.details?.candidates ?? r.trace?.candidates ?? [];
  if (candidates.length) {
    out.write('candidates:\n');
    candidates.forEach((x, i) => out.write(`  ${i + 1}. ${x.model} (${x.tier}, ${x.provider}) est ${formatUsd(x.estimatedCostNanos)}: ${x.reason}\n`));
  }
  const attempts = r.result?.attempts ?? r.failure?.details?.attempts ?? r.trace?.attempts ?? [];
  if (attempts.length) {
    out.write('attempts:\n');
    for (const a of attempts) {
      out.write(
        `  ${a.attemptId} ${a.model}: ${a.outcome}${a.qualityFailures ? ` (quality: ${a.qualityFailures.join('; ')})` : ''}${a.status ? ` ${a.status}` : ''}${a.waitBeforeMs ? ` after ${a.waitBeforeMs} ms wait` : ''}, ${a.durationMs} ms, ${formatUsd(a.costNanos)}${a.decision ? ` -> ${a.decision}` : ''}\n`,
      );
    }
  }
  for (const e of r.result?.escalations ?? r.trace?.escalations ?? []) out.write(`escalated ${e.from} -> ${e.to}: ${e.reason}\n`);
  if (r.result) {
    out.write(
      `answered by ${r.result.model} (${r.result.tier}); cost ${formatUsd(r.result.costNanos)} (premium baseline ${formatUsd(r.result.premiumBaselineCostNanos)}); ${r.result.durationMs} ms\n\n${r.result.text}\n`,
    );
  } else if (r.failure) {
    out.write(`failed (${r.failure.type}): ${r.failure.message}\ncost ${formatUsd(r.failure.details?.costNanos ?? 0)}\n`);
  } else if (r.trace) {
    out.write(`running: ${r.trace.phase}; spent so far ${formatUsd(r.trace.costNanos)}\n`);
  }
}

export function registerRunsCommands(program: Command): void {
  const runs = program.command('runs').description('find request runs (Temporal visibility queries)');
  runs
    .command('list')
    .description('request runs on this task queue, newest first')
    .option('--query <q>', `visibility query, e.g. "LlmCategory = 'batch' AND ExecutionStatus = 'Failed'"`)
    .option('--limit <n>', 'at most this many', int('--limit', 1), 50)
    .option('--batches', 'list server-side batches instead of requests')
    .option('--json', 'print JSON lines')
    .action(async (o: { query?: string; limit: number; json?: boolean; batches?: boolean }) => {
      await withClient(async (client) => {
        if (o.batches) {
          const bs = await client.listBatches(o.limit);
          if (o.json) for (const b of bs) process.stdout.write(`${JSON.stringify(b)}\n`);
          else if (bs.length === 0) process.stdout.write('no batches\n');
          else
            process.stdout.write(
              `${formatTable([['batch id', 'status', 'started', 'title'], ...bs.map((b) => [b.batchId, b.status.toLowerCase(), b.startTime.replace('T', ' ').slice(0, 19), b.title ?? ''])])}\n`,
            );
          return;
        }
        const list = await client.listRuns({ ...(o.query ? { query: o.query } : {}), limit: o.limit });
        if (o.json) for (const r of list) process.stdout.write(`${JSON.stringify(r)}\n`);
        else printRuns(list);
      });
    });

  program
    .command('show')
    .description('the trace of one request: classification, candidates, attempts, fallbacks, escalations, cost')
    .argument('<workflow-id>', 'e.g. llm-<request id>')
    .option('--run-id <id>', 'a specific run (default: the latest)')
    .option('--json', 'print JSON')
    .action(async (workflowId: string, o: { runId?: string; json?: boolean }) => {
      await withClient(async (client) => {
        const r = await client.inspect(workflowId, o.runId);
        if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else printInspection(r);
      });
    });

  program
    .command('replay')
    .description('replay histories against the current workflow code and report determinism errors by run')
    .option('--workflow-id <id>', 'one workflow (its latest run, or --run-id)')
    .option('--run-id <id>', 'with --workflow-id: this run')
    .option('--query <q>', "every run a visibility query matches, e.g. \"WorkflowType = 'llmRequest' AND StartTime > '2026-11-01T00:00:00Z'\"")
    .option('--file <paths...>', 'history JSON files (temporal workflow show --output json)')
    .option('--limit <n>', 'at most this many runs', int('--limit', 1))
    .option('--json', 'print one JSON line per run')
    .action(async (o: { workflowId?: string; runId?: string; query?: string; file?: string[]; limit?: number; json?: boolean }) => {
      const chosen = [o.workflowId, o.query, o.file].filter((x) => x !== undefined).length;
      if (chosen !== 1) throw new InvalidArgumentError('replay needs exactly one of --workflow-id, --query or --file');
      quietTemporal();
      const access = config().access;
      const built = workflowCode({ encodedFailures: access.codec !== undefined });
      const code = 'workflowBundle' in built ? { bundlePath: built.workflowBundle.codePath } : built;
      const report = async (histories: Parameters<typeof replayHistories>[0]): Promise<void> => {
        let ok = 0;
        const bad: ReplayOutcome[] = [];
        for await (const r of replayHistories(histories, code, {
          ...(o.limit !== undefined ? { limit: o.limit } : {}),
          dataConverter: dataConverterFor(access),
        })) {
          if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
          else
            process.stdout.write(
              r.ok
                ? `ok              ${r.workflowId} ${r.runId}\n`
                : `${r.kind === 'nondeterminism' ? 'NONDETERMINISM' : 'ERROR         '}  ${r.workflowId} ${r.runId}: ${r.error}\n`,
            );
          if (r.ok) ok += 1;
          else bad.push(r);
        }
        if (!o.json) process.stdout.write(`replayed ${ok + bad.length} run(s): ${ok} ok, ${bad.length} failed\n`);
        if (ok + bad.length === 0) {
          process.stderr.write('no histories matched\n');
          process.exitCode = 1;
        }
        if (bad.length) process.exitCode = 1;
      };
      if (o.file) {
        await report(historiesFromFiles(o.file));
        return;
      }
      await withClient(async (client) => {
        await report(
          historiesFromServer(
            client.temporal,
            o.workflowId
              ? { workflowId: o.workflowId, ...(o.runId ? { runId: o.runId } : {}) }
              : { query: o.query ?? '', ...(o.limit ? { limit: o.limit } : {}) },
          ),
        );
      });
    });

  program
    .command('redrive')
    .description('start a new run of each failed request a query matches (same request id; settled spend is not charged again)')
    .requiredOption('--query <q>', `visibility query narrowing the failed runs, e.g. "LlmCategory = 'batch' AND CloseTime > '2026-11-27T00:00:00Z'"`)
    .option('--limit <n>', 'restart at most this many', int('--limit', 1), 1000)
    .option('--dry-run', 'list what would be restarted')
    .option('--wait', 'wait for the new runs and report how they ended')
    .option('--json', 'print JSON')
    .action(async (o: { query: string; limit: number; dryRun?: boolean; wait?: boolean; json?: boolean }) => {
      await withClient(async (client) => {
        const rep = await client.redrive({ query: o.query, limit: o.limit, ...(o.dryRun ? { dryRun: true } : {}) });
        const outcomes: Record<string, string> = {};
        if (o.wait && !o.dryRun) {
          for (const r of rep.restarted) {
            const i = await client.inspect(r.workflowId, r.runId).catch(() => undefined);
            let end = i;
            if (i?.status === 'RUNNING') {
              await client.result(r.workflowId).catch(() => undefined);
              end = await client.inspect(r.workflowId, r.runId);
            }
            outcomes[r.workflowId] = end?.status.toLowerCase() ?? 'unknown';
          }
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ ...rep, ...(o.wait ? { outcomes } : {}) })}\n`);
          return;
        }
        for (const r of rep.restarted)
          process.stdout.write(
            `${o.dryRun ? 'would restart' : 'restarted'} ${r.workflowId}: run ${r.previousRunId} (spent ${formatUsd(r.previousCostNanos)}) -> ${r.runId}${outcomes[r.workflowId] ? ` ${outcomes[r.workflowId]}` : ''}\n`,
          );
        for (const s of rep.skipped) process.stdout.write(`skipped ${s.workflowId} (${s.runId}): ${s.reason}\n`);
        process.stdout.write(`${rep.restarted.length} ${o.dryRun ? 'to restart' : 'restarted'}, ${rep.skipped.length} skipped\n`);
      });
    });
}
