/**
 * Budget entity throughput: reserve+settle pairs per second on one entity, at several levels of
 * concurrency, against a dev server started for the benchmark (or TEMPORAL_ADDRESS).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { settingsFromConfig } from '../../src/budget/settings.js';
import { loadConfig } from '../../src/config/config.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { startDevServer } from '../../src/temporal/devServer.js';
import { createSwitchyardWorker } from '../../src/workers/createWorker.js';
import { createLogger } from '../../src/util/logger.js';
import { budgetWorkflowId, reserveUpdate, settleUpdate } from '../../src/workflows/budgetMessages.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

export async function benchBudget(opts: { seconds: number; concurrency: number[]; rounds: number }): Promise<Array<{ concurrency: number; pairsPerSec: number[]; median: number; p50LatencyMs: number }>> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  const server = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ cliPath: await ensureTemporalCli(), stateDir: dir, port: 0, uiPort: 0 });
  const address = process.env.TEMPORAL_ADDRESS ?? server!.address;
  const taskQueue = `bench-${Date.now()}`;
  const config = loadConfig({ SWITCHYARD_LOG_LEVEL: 'error' }, { taskQueue, stateDir: dir, ledgerPath: join(dir, 'ledger.jsonl') });
  const sw = await createSwitchyardWorker({ config, address, log: createLogger('error') });
  const running = sw.worker.run();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const out: Array<{ concurrency: number; pairsPerSec: number[]; median: number; p50LatencyMs: number }> = [];
  try {
    for (const c of opts.concurrency) {
      const rates: number[] = [];
      const latencies: number[] = [];
      for (let round = 0; round < opts.rounds; round++) {
        const scope = `bench-${c}-${round}-${Date.now()}`;
        const settings = { ...settingsFromConfig(config.budget), totalNanos: 1e15 };
        await client.workflow.start('budgetEntity', { workflowId: budgetWorkflowId(scope), taskQueue, args: [{ scope, settings }] });
        const h = client.workflow.getHandle(budgetWorkflowId(scope));
        let pairs = 0;
        let seq = 0;
        const deadline = Date.now() + opts.seconds * 1000;
        const t0 = Date.now();
        await Promise.all(
          Array.from({ length: c }, async () => {
            while (Date.now() < deadline) {
              const id = `r${seq++}`;
              const s = Date.now();
              await h.executeUpdate(reserveUpdate, { args: [{ reservationId: id, category: 'batch', amountNanos: 1000, workflowId: 'bench' }], updateId: `reserve:${id}` });
              await h.executeUpdate(settleUpdate, { args: [{ reservationId: id, category: 'batch', costNanos: 700 }], updateId: `settle:${id}` });
              latencies.push(Date.now() - s);
              pairs += 1;
            }
          }),
        );
        rates.push(pairs / ((Date.now() - t0) / 1000));
        await h.terminate('benchmark done');
      }
      out.push({ concurrency: c, pairsPerSec: rates.map((r) => Math.round(r)), median: Math.round(median(rates)), p50LatencyMs: Math.round(median(latencies)) });
    }
  } finally {
    sw.worker.shutdown();
    await running;
    await sw.close();
    await connection.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
