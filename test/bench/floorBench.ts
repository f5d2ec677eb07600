/**
 * The `floor` bench: a Switchyard request against the floor of any Temporal design (a workflow
 * with no activity, and one with one activity) on the same dev server, in interleaved rounds:
 * throughput at 64 in flight, latency at concurrency 1, and billable Temporal actions per request
 * (the request's history plus its share of the budget entity's updates).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { SwitchyardClient } from '../../src/client/client.js';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { loadConfig } from '../../src/config/config.js';
import { Simulator } from '../../src/simulator/server.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { startDevServer } from '../../src/temporal/devServer.js';
import { createLogger } from '../../src/util/logger.js';
import { createSwitchyardWorker } from '../../src/workers/createWorker.js';

export interface FloorRow {
  readonly kind: 'floorZero' | 'floorOne' | 'switchyard';
  readonly perSec: number[];
  readonly p50Ms: number[];
}

export interface FloorBench {
  readonly rows: FloorRow[];
  /** Billable actions per Switchyard request: its history, plus the entity's updates shared out. */
  readonly actions: { readonly requests: number; readonly inHistories: number; readonly entityUpdates: number; readonly perRequest: number };
}

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? 0;

export async function benchFloor(opts: { requests: number; concurrency: number; rounds: number; latencySamples: number }): Promise<FloorBench> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-floor-'));
  const server = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ cliPath: await ensureTemporalCli(), stateDir: dir, port: 0, uiPort: 0 });
  const address = process.env.TEMPORAL_ADDRESS ?? server!.address;
  const catalog = defaultCatalog();
  const sim = new Simulator({ catalog, latencyScale: 0 });
  const simulatorUrl = await sim.start();
  const taskQueue = `floor-sy-${Date.now()}`;
  const config = loadConfig({ SWITCHYARD_LOG_LEVEL: 'error' }, { taskQueue, stateDir: dir, ledgerPath: join(dir, 'ledger.jsonl'), simulatorUrl });
  const sw = await createSwitchyardWorker({ config, address, catalog, log: createLogger('error') });
  const swRunning = sw.run();
  const floorQueue = `floor-${Date.now()}`;
  const floorConn = await NativeConnection.connect({ address });
  const floor = await Worker.create({
    connection: floorConn,
    taskQueue: floorQueue,
    workflowsPath: fileURLToPath(new URL('./floorWorkflows.js', import.meta.url)),
    activities: { echo: async (x: number) => x },
    maxConcurrentActivityTaskExecutions: 200,
  });
  const floorRunning = floor.run();
  const connection = await Connection.connect({ address });
  const tc = new Client({ connection });
  const sy = await SwitchyardClient.connect({ address, taskQueue });
  const scope = `floor-${Date.now()}`;
  let seq = 0;
  const ids: string[] = [];
  const kinds: Record<FloorRow['kind'], (i: number) => Promise<unknown>> = {
    floorZero: (i) => tc.workflow.execute('floorZero', { taskQueue: floorQueue, workflowId: `fz-${seq++}`, args: [i] }),
    floorOne: (i) => tc.workflow.execute('floorOne', { taskQueue: floorQueue, workflowId: `fo-${seq++}`, args: [i] }),
    switchyard: async (i) => {
      const r = await sy.ask({
        requestId: `fs-${seq++}`,
        prompt: `Classify ticket ${i} as billing or technical: "I was charged twice."`,
        category: 'batch',
        budgetScope: scope,
      });
      ids.push(r.workflowId);
      return r;
    },
  };
  const rows = new Map<FloorRow['kind'], FloorRow>();
  try {
    for (const fn of Object.values(kinds)) await fn(0); // warm up (bundles, entity start)
    ids.length = 0;
    for (let round = 0; round < opts.rounds; round++) {
      for (const [kind, fn] of Object.entries(kinds) as Array<[FloorRow['kind'], (i: number) => Promise<unknown>]>) {
        let next = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: opts.concurrency }, async () => {
            while (next < opts.requests) await fn(next++);
          }),
        );
        const perSec = opts.requests / ((performance.now() - t0) / 1000);
        const lat: number[] = [];
        for (let i = 0; i < opts.latencySamples; i++) {
          const t = performance.now();
          await fn(i);
          lat.push(performance.now() - t);
        }
        const row = rows.get(kind) ?? { kind, perSec: [], p50Ms: [] };
        row.perSec.push(Math.round(perSec * 10) / 10);
        row.p50Ms.push(Math.round(percentile(lat, 0.5) * 10) / 10);
        rows.set(kind, row);
      }
    }
    const actions = await sy.temporalActions(ids, config.temporalActionUsdPerMillion, { scopes: [scope] });
    return {
      rows: [...rows.values()],
      actions: {
        requests: actions.requests,
        inHistories: actions.inHistories ?? actions.actions,
        entityUpdates: actions.entityUpdates ?? 0,
        perRequest: actions.perRequest,
      },
    };
  } finally {
    await sy.close();
    await connection.close();
    floor.shutdown();
    await floorRunning;
    await floorConn.close();
    sw.shutdown();
    await swRunning;
    await sw.close();
    await sim.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
