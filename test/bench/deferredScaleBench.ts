/**
 * Many deferred requests queued at once on one collector (one model): every request is started
 * before the first batch is submitted, so they all wait together. What it measures: the largest
 * collector run (events and bytes: the collector's history must stay under a fixed size however
 * many lines are queued), the largest provider-batch workflow, the worker's resident memory while
 * the lines queue, wait and are answered, and the Temporal actions per request (a sample of request
 * histories, plus every collector run and batch workflow shared out over the requests). The worker
 * is its own process (`switchyard worker`), so its memory is measured alone (from /proc: Linux);
 * the dev server is another, and the client and the simulator share the bench's.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { SwitchyardClient } from '../../src/client/client.js';
import { Simulator } from '../../src/simulator/server.js';
import { billableActions } from '../../src/temporal/billableActions.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { startDevServer } from '../../src/temporal/devServer.js';
import { COLLECTOR_TYPE, PROVIDER_BATCH_TYPE } from '../../src/workflows/deferred/contract.js';
import { meanActions } from './benchStack.js';
import { rssMb, startProcess, workerEnv } from './processes.js';

export interface DeferredScaleResult {
  readonly requests: number;
  readonly answeredInBatch: number;
  readonly seconds: number;
  readonly providerBatches: number;
  readonly collectorRuns: number;
  readonly collectorEventsMax: number;
  readonly collectorBytesMax: number;
  readonly batchEventsMax: number;
  /** Resident memory (MB) after the stack started, its highest, and when every request had been started (all queued) / half answered / all answered. */
  readonly rssMb: { readonly start: number; readonly max: number; readonly queued: number; readonly half: number; readonly end: number };
  readonly actionsPerRequest: number;
  readonly ownActionsByKind: Readonly<Record<string, number>>;
  /** The ledger's lines by mode once every batch workflow has ended: one `batch` line per request, none `duplicated`. */
  readonly ledgerByMode: Readonly<Record<string, number>>;
}

const MODEL = 'gpt-4o-mini';

export async function benchDeferredScale(opts: { requests: number }): Promise<DeferredScaleResult> {
  const maxLines = 2_000;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-dscale-'));
  const server = await startDevServer({ cliPath: await ensureTemporalCli({ say: () => undefined }), stateDir: dir, port: 0, uiPort: 0 });
  const simulator = new Simulator({ catalog: defaultCatalog(), latencyScale: 0.1 });
  const simulatorUrl = await simulator.start(0);
  // A long maxAgeMs: lines queue until a batch is full (or the last ones age out).
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify({ deferred: { maxLines, maxAgeMs: 60_000, pollMinMs: 1_000, pollMaxMs: 4_000 } }));
  const taskQueue = 'dscale';
  const worker = await startProcess(
    process.execPath,
    [join(process.cwd(), 'bin', 'switchyard.js'), 'worker'],
    workerEnv({ address: server.address, taskQueue, simulatorUrl, dir }, { SWITCHYARD_CONFIG: configPath }),
    /Ctrl-C to stop/,
    join(dir, 'worker.log'),
  );
  const pid = worker.pid ?? 0;
  const client = await SwitchyardClient.connect({ address: server.address, taskQueue });
  const mb = () => rssMb(pid);
  const rss = { start: mb(), max: mb(), queued: 0, half: 0, end: 0 };
  const sampler = setInterval(() => (rss.max = Math.max(rss.max, mb())), 500);
  try {
    // Every request started first (64 starts at a time), so all of them queue together; then their results, 64 at a time.
    const ids: string[] = [];
    let inBatch = 0;
    const t0 = Date.now();
    const inLanes = async (n: number, f: (i: number) => Promise<void>): Promise<void> => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          for (let i = next++; i < n; i = next++) await f(i);
        }),
      );
    };
    await inLanes(opts.requests, async (i) => {
      const { handle } = await client.submit({
        requestId: `scale-${i}`,
        prompt: `Classify support ticket ${i}: the customer cannot log in after a password reset.`,
        model: MODEL,
        deadline: '2h',
      });
      ids[i] = handle.workflowId;
    });
    rss.queued = mb();
    let done = 0;
    await inLanes(opts.requests, async (i) => {
      const r = await client.result(ids[i] ?? '');
      if (r.deferred?.outcome === 'answered') inBatch += 1;
      done += 1;
      if (done === Math.floor(opts.requests / 2)) rss.half = mb();
    });
    const seconds = (Date.now() - t0) / 1000;
    rss.end = mb();
    // A request's result comes as its answer is handed over; the batch workflow settles it just after.
    const running = `WorkflowType = '${PROVIDER_BATCH_TYPE}' AND ExecutionStatus = 'Running'`;
    while ((await client.temporal.workflow.count(running)).count > 0) await new Promise((r) => setTimeout(r, 1_000));
    const ledger = readFileSync(join(dir, 'ledger.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { mode?: string });
    const ledgerByMode: Record<string, number> = {};
    for (const e of ledger) ledgerByMode[e.mode ?? 'live'] = (ledgerByMode[e.mode ?? 'live'] ?? 0) + 1;

    const own = await meanActions(client, ids.slice(0, 100));
    let shared = 0;
    let collectorRuns = 0;
    let collectorEventsMax = 0;
    let collectorBytesMax = 0;
    let batchEventsMax = 0;
    for await (const w of client.temporal.workflow.list({ query: `WorkflowType IN ('${COLLECTOR_TYPE}', '${PROVIDER_BATCH_TYPE}')` })) {
      const handle = client.temporal.workflow.getHandle(w.workflowId, w.runId);
      const h = await handle.fetchHistory();
      shared += billableActions(h).total;
      const events = h.events?.length ?? 0;
      if (w.type === COLLECTOR_TYPE) {
        collectorRuns += 1;
        collectorEventsMax = Math.max(collectorEventsMax, events);
        const bytes = Number((await handle.describe()).raw.workflowExecutionInfo?.historySizeBytes ?? 0);
        collectorBytesMax = Math.max(collectorBytesMax, bytes);
      } else batchEventsMax = Math.max(batchEventsMax, events);
    }
    return {
      requests: opts.requests,
      answeredInBatch: inBatch,
      seconds,
      providerBatches: simulator.batches().length,
      collectorRuns,
      collectorEventsMax,
      collectorBytesMax,
      batchEventsMax,
      rssMb: rss,
      actionsPerRequest: own.total + shared / opts.requests,
      ownActionsByKind: own.byKind,
      ledgerByMode,
    };
  } catch (e) {
    process.stderr.write(`deferred-scale failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    throw e;
  } finally {
    clearInterval(sampler);
    await client.close();
    if (worker.exitCode === null && worker.signalCode === null) {
      const gone = new Promise((r) => worker.once('exit', r));
      worker.kill('SIGINT');
      await gone;
    }
    await simulator.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
