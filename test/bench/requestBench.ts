/** End-to-end request throughput on one machine: requests/s through the whole workflow. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwitchyardClient } from '../../src/client/client.js';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { loadConfig } from '../../src/config/config.js';
import { Simulator } from '../../src/simulator/server.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { startDevServer } from '../../src/temporal/devServer.js';
import { createLogger } from '../../src/util/logger.js';
import { createSwitchyardWorker } from '../../src/workers/createWorker.js';

export interface RequestBenchRow {
  shards: number;
  requests: number;
  concurrency: number;
  perSec: number[];
}

export async function benchRequests(opts: { requests: number; concurrency: number; shards: number[]; rounds: number }): Promise<RequestBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-rbench-'));
  const server = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ cliPath: await ensureTemporalCli(), stateDir: dir, port: 0, uiPort: 0 });
  const address = process.env.TEMPORAL_ADDRESS ?? server!.address;
  const catalog = defaultCatalog();
  const sim = new Simulator({ catalog, latencyScale: 0 });
  const simulatorUrl = await sim.start();
  const rows = new Map<number, number[]>();
  try {
    for (let round = 0; round < opts.rounds; round++) {
      for (const shards of opts.shards) {
        const taskQueue = `rbench-${shards}-${round}-${Date.now()}`;
        const base = loadConfig({ SWITCHYARD_LOG_LEVEL: 'error' });
        const config = loadConfig(
          { SWITCHYARD_LOG_LEVEL: 'error' },
          { taskQueue, stateDir: dir, ledgerPath: join(dir, `${taskQueue}.jsonl`), simulatorUrl, budget: { ...base.budget, shards } },
        );
        const sw = await createSwitchyardWorker({ config, address, catalog, log: createLogger('error') });
        const running = sw.run();
        const client = await SwitchyardClient.connect({ address, taskQueue });
        const scope = `rb-${taskQueue}`;
        let next = 0;
        const t0 = Date.now();
        await Promise.all(
          Array.from({ length: opts.concurrency }, async () => {
            while (next < opts.requests) {
              const i = next++;
              await client.ask({
                requestId: `${taskQueue}-${i}`,
                prompt: `Classify ticket ${i} as billing or technical: "I was charged twice."`,
                category: 'batch',
                budgetScope: scope,
              });
            }
          }),
        );
        const rate = opts.requests / ((Date.now() - t0) / 1000);
        (rows.get(shards) ?? rows.set(shards, []).get(shards)!).push(Math.round(rate));
        await client.close();
        sw.shutdown();
        await running;
        await sw.close();
      }
    }
  } finally {
    await sim.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return opts.shards.map((shards) => ({ shards, requests: opts.requests, concurrency: opts.concurrency, perSec: rows.get(shards) ?? [] }));
}
