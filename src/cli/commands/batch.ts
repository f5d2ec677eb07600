/** `switchyard batch`: batch files through the client or as a detached batch workflow; its status and results. */
import { existsSync } from 'node:fs';
import { RESULT_FORMATS, type ResultFormat, resultsWriter } from '../../batch/resultsFile.js';
import { basename, join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { countRequestLines, readBatchFile } from '../../batch/inputFile.js';
import { describeWaiting, progressReporter } from '../../batch/progress.js';
import { runBatch, type RunBatchOptions } from '../../batch/runBatch.js';
import { type BatchSummary, formatSummary } from '../../batch/summary.js';
import { defaultBatchId, prepareDetachedBatch } from '../../batch/detached.js';
import { deadlineArg, duration, int, withClient } from '../shared.js';
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
  run: (hooks: Required<Pick<RunBatchOptions, 'onResult' | 'onProgress' | 'onInvalid'>>) => Promise<BatchSummary>,
  adjust: (s: BatchSummary) => BatchSummary = (s) => s,
  /** With --json: count the requests' billable Temporal actions into the summary. */
  countActions?: (workflowIds: string[]) => Promise<BatchSummary['temporalActions']>,
): Promise<void> {
  const writer = resultsWriter(out, format);
  const bar = progressReporter(label, total);
  const ids: string[] = [];
  let summary: BatchSummary;
  try {
    summary = adjust(
      await run({
        onResult: (r) => (ids.push(r.workflowId), writer.write(r)),
        onProgress: (p) => bar.update(p),
        onInvalid: (bad) => writer.refused(bad),
      }),
    );
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

/** Fields every line of a batch gets unless it sets them: a budget wait bound, a deadline. */
function requestDefaultsOf(o: { maxBudgetWait?: number; defer?: string }): { requestDefaults?: { maxBudgetWaitMs?: number; deadline?: string } } {
  if (o.maxBudgetWait === undefined && o.defer === undefined) return {};
  return {
    requestDefaults: {
      ...(o.maxBudgetWait !== undefined ? { maxBudgetWaitMs: o.maxBudgetWait } : {}),
      ...(o.defer !== undefined ? { deadline: o.defer } : {}),
    },
  };
}

export function registerBatchCommands(program: Command): void {
  program.enablePositionalOptions();
  const batch = program
    .command('batch')
    .enablePositionalOptions()
    .description('run a JSONL file of requests (one {"id", "prompt", ...} per line); or status/results of a detached batch')
    .argument('[file]', 'input JSONL: one request per line with a unique "id"')
    .option('--out <path>', 'results JSONL, in input order (default <file>.results.jsonl)')
    .addOption(
      new Option('--output-format <format>', "result lines: Switchyard's, or the OpenAI Batch API output format")
        .choices([...RESULT_FORMATS])
        .default('switchyard'),
    )
    .option('--concurrency <n>', 'requests in flight', int('--concurrency', 1), 16)
    .option('--category <name>', 'category for lines that do not name one')
    .option('--feature <name>', 'feature (for cost attribution) for lines that do not name one')
    .option('--json', 'print the summary as one JSON object')
    .option('--detach', 'run server-side as a batch workflow and return at once')
    .option('--batch-id <id>', 'batch name, set on each request as LlmBatch (default: the file name; detached: file name and time)')
    .option('--children-per-run <n>', 'detached: child workflows per run before continue-as-new', int('--children-per-run', 1), 1000)
    .addOption(new Option('--order <order>', 'results in input order, or each as soon as it finishes').choices(['input', 'finish']).default('input'))
    .option(
      '--defer <deadline>',
      "lines may wait this long (e.g. 6h) or until this ISO time: their models' batch APIs at about half price (docs/deferred.md)",
      deadlineArg('--defer'),
    )
    .option(
      '--max-budget-wait <duration>',
      'a request denied by a `wait` budget waits at most this long in all (e.g. 10m), then fails',
      duration('--max-budget-wait'),
    )
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
          defer?: string;
        },
      ) => {
        if (!file)
          throw new InvalidArgumentError(
            'batch needs an input file: `switchyard batch requests.jsonl --out results.jsonl` (or `batch status <id>`, `batch results <id>`)',
          );
        if (!existsSync(file)) throw new InvalidArgumentError(`batch input ${file} does not exist`);
        if (o.batchId !== undefined && !/^[A-Za-z0-9._-]{1,100}$/.test(o.batchId))
          throw new InvalidArgumentError('--batch-id may contain only letters, digits and . _ -');
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
            if (await client.batchExists(batchId))
              throw new InvalidArgumentError(`batch "${batchId}" already exists: see \`switchyard batch status ${batchId}\`, or pass another --batch-id`);
            const prepared = await prepareDetachedBatch(file, batchId, process.env.SWITCHYARD_BATCH_DIR ?? join(cfg.stateDir, 'batches'), {
              category: o.category,
              feature: o.feature,
            });
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
                ...requestDefaultsOf(o),
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
                ...requestDefaultsOf(o),
                batchId: o.batchId ?? basename(file).replace(/\.[^.]*$/, ''),
                onInvalid: (bad) => {
                  hooks.onInvalid(bad);
                  process.stderr.write(`${bad.error} (skipped)\n`);
                },
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
    .addOption(
      new Option('--output-format <format>', "result lines: Switchyard's, or the OpenAI Batch API output format")
        .choices([...RESULT_FORMATS])
        .default('switchyard'),
    )
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
}
