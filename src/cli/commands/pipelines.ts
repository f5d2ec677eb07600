/** CLI commands for pipelines and operators: batch, runs, show, replay, redrive. */
import { existsSync } from 'node:fs';
import { RESULT_FORMATS, type ResultFormat, resultsWriter } from '../../batch/resultsFile.js';
import { basename, join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { formatUsd } from '../../catalog/pricing.js';
import { countRequestLines, readBatchFile } from '../../batch/inputFile.js';
import { describeWaiting, progressReporter } from '../../batch/progress.js';
import { runBatch, type RunBatchOptions } from '../../batch/runBatch.js';
import { type BatchSummary, formatSummary } from '../../batch/summary.js';
import { defaultBatchId, prepareDetachedBatch } from '../../batch/detached.js';
import { historiesFromFiles, historiesFromServer, type ReplayOutcome, replayHistories } from '../../replay/replay.js';
import { workflowCode } from '../../workers/bundle.js';
import type { RunInspection, RunSummary } from '../../client/client.js';
import { config, duration, int, quietTemporal, withClient } from '../shared.js';
import { dataConverterFor } from '../../temporal/connection.js';
import { formatTable } from '../../util/table.js';
import { requestInputBaseSchema } from '../../contracts/requestInput.js';

/** Exit code when a batch ran to its end but some requests failed or lines were malformed. */
export const EXIT_PARTIAL = 3;

function finish(summary: BatchSummary, json: boolean | undefined, extra: Record<string, unknown> = {}): void {
  if (json) process.stdout.write(`${JSON.stringify({ ...summary, ...extra })}\n`);
  else process.stdout.write(`${formatSummary(summary)}\n`);
  if (summary.failed > 0 || summary.invalid > 0) process.exitCode = EXIT_PARTIAL;
}

/** Streams results to `out` in input order with a progress display, then prints the summary. */
async function writeResults(
  out: string,
  format: ResultFormat,
  label: string,
  total: number,
  json: boolean | undefined,
  run: (hooks: Required<Pick<RunBatchOptions, 'onResult' | 'onProgress'>>) => Promise<BatchSummary>,
  adjust: (s: BatchSummary) => BatchSummary = (s) => s,
  /** With --json: count the requests' billable Temporal actions into the summary. */
  countActions?: (workflowIds: string[]) => Promise<BatchSummary['temporalActions']>,
): Promise<void> {
  const writer = resultsWriter(out, format);
  const bar = progressReporter(label, total);
  const ids: string[] = [];
  let summary: BatchSummary;
  try {
    summary = adjust(await run({ onResult: (r) => (ids.push(r.workflowId), writer.write(r)), onProgress: (p) => bar.update(p) }));
  } finally {
    bar.stop();
    await writer.close();
  }
  if (json && countActions) summary = { ...summary, temporalActions: await countActions(ids) };
  if (!json) process.stderr.write(`results: ${out}\n`);
  finish(summary, json, { out });
}

function defaultOut(file: string): string {
  return file.replace(/(\.jsonl|\.json|\.ndjson)?$/i, '.results.jsonl');
}

const usd = (n: number | null): string => (n === null ? '-' : formatUsd(n));

function printRuns(runs: RunSummary[]): void {
  if (runs.length === 0) {
    process.stdout.write('no matching runs\n');
    return;
  }
  const rows = [['workflow id', 'status', 'category', 'tier', 'model', 'cost', 'started', 'title']];
  for (const r of runs)
    rows.push([r.workflowId, r.status.toLowerCase(), r.category ?? '-', r.tier ?? '-', r.model ?? '-', usd(r.costNanos), r.startTime.replace('T', ' ').slice(0, 19), r.title ?? '']);
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

export function registerPipelineCommands(program: Command): void {
  program.enablePositionalOptions();
  const batch = program
    .command('batch')
    .enablePositionalOptions()
    .description('run a JSONL file of requests (one {"id", "prompt", ...} per line); or status/results of a detached batch')
    .argument('[file]', 'input JSONL: one request per line with a unique "id"')
    .option('--out <path>', 'results JSONL, in input order (default <file>.results.jsonl)')
    .addOption(new Option('--output-format <format>', "result lines: Switchyard's, or the OpenAI Batch API output format").choices([...RESULT_FORMATS]).default('switchyard'))
    .option('--concurrency <n>', 'requests in flight', int('--concurrency', 1), 16)
    .option('--category <name>', 'category for lines that do not name one')
    .option('--feature <name>', 'feature (for cost attribution) for lines that do not name one')
    .option('--json', 'print the summary as one JSON object')
    .option('--detach', 'run server-side as a batch workflow and return at once')
    .option('--batch-id <id>', 'batch name, set on each request as LlmBatch (default: the file name; detached: file name and time)')
    .option('--children-per-run <n>', 'detached: child workflows per run before continue-as-new', int('--children-per-run', 1), 1000)
    .addOption(new Option('--order <order>', 'results in input order, or each as soon as it finishes').choices(['input', 'finish']).default('input'))
    .option('--max-budget-wait <duration>', 'a request denied by a `wait` budget waits at most this long in all (e.g. 10m), then fails', duration('--max-budget-wait'))
    .action(
      async (
        file: string | undefined,
        o: {
          out?: string;
          outputFormat: ResultFormat;
          concurrency: number;
          category?: string;
          feature?: string;
          json?: boolean;
          detach?: boolean;
          batchId?: string;
          childrenPerRun: number;
          order: 'input' | 'finish';
          maxBudgetWait?: number;
        },
      ) => {
        if (!file) throw new InvalidArgumentError('batch needs an input file: `switchyard batch requests.jsonl --out results.jsonl` (or `batch status <id>`, `batch results <id>`)');
        if (!existsSync(file)) throw new InvalidArgumentError(`batch input ${file} does not exist`);
        if (o.batchId !== undefined && !/^[A-Za-z0-9._-]{1,100}$/.test(o.batchId)) throw new InvalidArgumentError('--batch-id may contain only letters, digits and . _ -');
        // Defaults for every line: refused once here rather than on each line.
        for (const [flag, field, value] of [
          ['--category', 'category', o.category],
          ['--feature', 'feature', o.feature],
        ] as const) {
          const r = value === undefined ? undefined : requestInputBaseSchema.shape[field].safeParse(value);
          if (r && !r.success) throw new InvalidArgumentError(`${flag}: ${r.error.issues[0]?.message ?? 'invalid'}`);
        }
        await withClient(async (client, cfg) => {
          if (o.detach) {
            const batchId = o.batchId ?? defaultBatchId(file);
            // A batch id that exists is refused before anything is copied or started.
            if (await client.batchExists(batchId)) throw new InvalidArgumentError(`batch "${batchId}" already exists: see \`switchyard batch status ${batchId}\`, or pass another --batch-id`);
            const prepared = await prepareDetachedBatch(file, batchId, process.env.SWITCHYARD_BATCH_DIR ?? join(cfg.stateDir, 'batches'), { category: o.category, feature: o.feature });
            for (const bad of prepared.invalid) process.stderr.write(`${bad.error} (skipped)\n`);
            let workflowId: string;
            try {
              workflowId = await client.startBatch({
                batchId,
                source: prepared.source,
                concurrency: o.concurrency,
                category: o.category,
                feature: o.feature,
                childrenPerRun: o.childrenPerRun,
                ...(prepared.duplicates.length > 0 ? { duplicates: prepared.duplicates.map((d) => d.line) } : {}),
                ...(o.maxBudgetWait !== undefined ? { requestDefaults: { maxBudgetWaitMs: o.maxBudgetWait } } : {}),
              });
            } catch (e) {
              if (!(await client.batchExists(batchId))) prepared.discard();
              throw e;
            }
            if (o.json) process.stdout.write(`${JSON.stringify({ batchId, workflowId, requests: prepared.requests, invalid: prepared.invalid.length })}\n`);
            else
              process.stdout.write(
                `started batch ${batchId} (${prepared.requests} requests${prepared.invalid.length ? `, ${prepared.invalid.length} malformed line(s) skipped` : ''}) as workflow ${workflowId}\n  switchyard batch status ${batchId}\n  switchyard batch results ${batchId} --out results.jsonl\n`,
              );
            return;
          }
          const total = await countRequestLines(file);
          await writeResults(
            o.out ?? defaultOut(file),
            o.outputFormat,
            'batch',
            total,
            o.json,
            (hooks) =>
              runBatch(client, readBatchFile(file, { category: o.category, feature: o.feature }), {
                ...hooks,
                concurrency: o.concurrency,
                total,
                order: o.order,
                ...(o.maxBudgetWait !== undefined ? { requestDefaults: { maxBudgetWaitMs: o.maxBudgetWait } } : {}),
                batchId: o.batchId ?? basename(file).replace(/\.[^.]*$/, ''),
                onInvalid: (bad) => process.stderr.write(`${bad.error} (skipped)\n`),
              }),
            undefined,
            (ids) => client.temporalActions(ids, cfg.temporalActionUsdPerMillion),
          );
        });
      },
    );

  batch
    .command('status')
    .description('progress and summary of a detached batch')
    .argument('<batch-id>')
    .option('--json', 'print JSON')
    .option('--wait', 'follow the batch until it finishes')
    .action(async (batchId: string, o: { json?: boolean; wait?: boolean }) => {
      await withClient(async (client) => {
        let st = await client.batchStatus(batchId, { sampleWaits: true });
        if (o.wait) {
          const bar = progressReporter(`batch ${batchId}`, st.source.lines - st.summary.invalid);
          // What requests wait on is sampled every 5th poll (each sample queries up to 50 requests).
          let waiting = st.waiting;
          for (let poll = 1; st.state === 'running'; poll++) {
            bar.update({
              total: st.source.lines,
              done: st.done,
              invalid: st.summary.invalid,
              completed: st.summary.completed,
              failed: st.summary.failed,
              inFlight: st.inFlight,
              costNanos: st.summary.costNanos,
              ...(waiting ? { waiting } : {}),
            });
            await new Promise((r) => setTimeout(r, 1_000));
            const sample = poll % 5 === 0;
            st = await client.batchStatus(batchId, { sampleWaits: sample });
            if (sample) waiting = st.waiting;
          }
          bar.stop();
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify(st)}\n`);
          return;
        }
        const waits = describeWaiting(st.waiting);
        process.stdout.write(
          `batch ${st.batchId}: ${st.state}, ${st.done} of ${st.source.lines - st.summary.invalid} done, ${st.inFlight} in flight${waits ? ` (${waits})` : ''}, ${st.runs} run(s), started ${st.startedAt}\n\n${formatSummary(st.summary)}\n`,
        );
      });
    });

  batch
    .command('results')
    .description('results of a detached batch, in input order, as JSONL')
    .argument('<batch-id>')
    .option('--out <path>', 'results JSONL (default <batch-id>.results.jsonl)')
    .addOption(new Option('--output-format <format>', "result lines: Switchyard's, or the OpenAI Batch API output format").choices([...RESULT_FORMATS]).default('switchyard'))
    .option('--json', 'print the summary as JSON')
    .action(async (batchId: string, o: { out?: string; outputFormat: ResultFormat; json?: boolean }) => {
      await withClient(async (client) => {
        const st = await client.batchStatus(batchId);
        if (st.state !== 'completed') process.stderr.write(`batch ${batchId} is still running (${st.done} done): waiting for the rest\n`);
        await writeResults(
          o.out ?? `${batchId}.results.jsonl`,
          o.outputFormat,
          'collect',
          st.source.lines - st.summary.invalid,
          o.json,
          (hooks) => client.batchResults(batchId, hooks),
          (s) => ({ ...s, invalid: st.summary.invalid, invalidLines: st.summary.invalidLines, wallMs: st.summary.wallMs }),
        );
      });
    });

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
        for await (const r of replayHistories(histories, code, { ...(o.limit !== undefined ? { limit: o.limit } : {}), dataConverter: dataConverterFor(access) })) {
          if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
          else
            process.stdout.write(
              r.ok ? `ok              ${r.workflowId} ${r.runId}\n` : `${r.kind === 'nondeterminism' ? 'NONDETERMINISM' : 'ERROR         '}  ${r.workflowId} ${r.runId}: ${r.error}\n`,
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
          historiesFromServer(client.temporal, o.workflowId ? { workflowId: o.workflowId, ...(o.runId ? { runId: o.runId } : {}) } : { query: o.query ?? '', ...(o.limit ? { limit: o.limit } : {}) }),
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
