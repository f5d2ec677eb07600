/**
 * Budget entity throughput: reserve+settle pairs per second on one entity, at several levels of
 * concurrency, against a dev server started for the benchmark (or TEMPORAL_ADDRESS).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { settingsFromConfig } from '../../src/budget/settings.js';
import { loadConfig } from '../../src/config/config.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { startDevServer } from '../../src/temporal/devServer.js';
import { createSwitchyardWorker } from '../../src/workers/createWorker.js';
import { createLogger } from '../../src/util/logger.js';
import { reserveUpdate, settleUpdate } from '../../src/workflows/budget/contract.js';
import { homeShard, settingsForShard, shardWorkflowId } from '../../src/budget/shards.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

export interface BudgetBenchRow {
  shards: number;
  concurrency: number;
  pairsPerSec: number[];
  median: number;
  p50LatencyMs: number;
}

export async function benchBudget(opts: { seconds: number; concurrency: number[]; shards: number[]; rounds: number }): Promise<BudgetBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  const server = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ cliPath: await ensureTemporalCli(), stateDir: dir, port: 0, uiPort: 0 });
  const address = process.env.TEMPORAL_ADDRESS ?? server!.address;
  const taskQueue = `bench-${Date.now()}`;
  const config = loadConfig({ SWITCHYARD_LOG_LEVEL: 'error' }, { taskQueue, stateDir: dir, ledgerPath: join(dir, 'ledger.jsonl') });
  const sw = await createSwitchyardWorker({ config, address, log: createLogger('error') });
  const running = sw.run();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const out: BudgetBenchRow[] = [];
  try {
    // Rounds interleave the configurations, so that machine noise hits each of them alike.
    const configs = opts.shards.flatMap((n) => opts.concurrency.map((c) => ({ n, c })));
    const rates = new Map<string, number[]>();
    const latencies = new Map<string, number[]>();
    for (let round = 0; round < opts.rounds; round++) {
      for (const { n, c } of configs) {
        const key = `${n}/${c}`;
        const scope = `bench-${n}-${c}-${round}-${Date.now()}`;
        const settings = { ...settingsFromConfig(config.budget), totalNanos: 1e15 };
        const handles = await Promise.all(
          Array.from({ length: n }, async (_, k) => {
            await client.workflow.start('budgetEntity', {
              workflowId: shardWorkflowId(taskQueue, scope, k, n),
              taskQueue,
              args: [{ scope, settings: settingsForShard(settings, k, n) }],
            });
            return client.workflow.getHandle(shardWorkflowId(taskQueue, scope, k, n));
          }),
        );
        let pairs = 0;
        let seq = 0;
        const deadline = Date.now() + opts.seconds * 1000;
        const t0 = Date.now();
        await Promise.all(
          Array.from({ length: c }, async () => {
            while (Date.now() < deadline) {
              const id = `r${seq++}`;
              const h = handles[homeShard(id, n)]!;
              const s = Date.now();
              await h.executeUpdate(reserveUpdate, {
                args: [{ reservationId: id, category: 'batch', amountNanos: 1000, workflowId: 'bench' }],
                updateId: `reserve:${id}`,
              });
              await h.executeUpdate(settleUpdate, { args: [{ reservationId: id, category: 'batch', costNanos: 700 }], updateId: `settle:${id}` });
              (latencies.get(key) ?? latencies.set(key, []).get(key)!).push(Date.now() - s);
              pairs += 1;
            }
          }),
        );
        (rates.get(key) ?? rates.set(key, []).get(key)!).push(pairs / ((Date.now() - t0) / 1000));
        await Promise.all(handles.map((h) => h.terminate('benchmark done')));
      }
    }
    for (const { n, c } of configs) {
      const r = rates.get(`${n}/${c}`) ?? [];
      out.push({
        shards: n,
        concurrency: c,
        pairsPerSec: r.map((x) => Math.round(x)),
        median: Math.round(median(r)),
        p50LatencyMs: Math.round(median(latencies.get(`${n}/${c}`) ?? [])),
      });
    }
  } finally {
    sw.shutdown();
    await running;
    await sw.close();
    await connection.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
