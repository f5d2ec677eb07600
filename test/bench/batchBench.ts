/**
 * A 1,000-request batch on the demo stack (embedded dev server with its SQLite file, simulator at
 * catalog latency x 0.1, one worker): client-side `runBatch` (what `switchyard batch` does), the
 * same file again (collect only), and a detached batch workflow; with the dev server's SQLite in
 * WAL mode (the default) and with the Temporal CLI's own settings. Configurations interleave.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBatchFile } from '../../src/batch/inputFile.js';
import { runBatch } from '../../src/batch/runBatch.js';
import { prepareDetachedBatch } from '../../src/batch/detached.js';
import { demoEntries } from '../../src/cli/demo.js';
import { SwitchyardClient } from '../../src/client/client.js';
import { benchStack } from './benchStack.js';

export interface BatchBenchRow {
  readonly pragmas: string;
  readonly mode: 'client' | 'collect' | 'detached';
  readonly seconds: number[];
}

export async function benchBatch(opts: { requests: number; concurrency: number; rounds: number }): Promise<BatchBenchRow[]> {
  const configs: Array<{ label: string; env: string }> = [
    { label: 'wal', env: '' },
    { label: 'cli-default', env: 'none' },
  ];
  const rows = new Map<string, BatchBenchRow>();
  const row = (pragmas: string, mode: BatchBenchRow['mode']): BatchBenchRow => {
    const key = `${pragmas}/${mode}`;
    let r = rows.get(key);
    if (!r) rows.set(key, (r = { pragmas, mode, seconds: [] }));
    return r;
  };
  for (let round = 0; round < opts.rounds; round++) {
    for (const c of configs) {
      process.env.SWITCHYARD_DEV_SQLITE_PRAGMAS = c.env;
      const { dir, stack } = await benchStack('switchyard-bbench-');
      const client = await SwitchyardClient.connect({ address: stack.address, taskQueue: stack.config.taskQueue });
      try {
        const file = join(dir, 'batch.jsonl');
        writeFileSync(
          file,
          `${demoEntries(opts.requests, `b${round}`)
            .map((e) => (e.ok ? JSON.stringify({ id: e.item.id, ...e.item.request, requestId: undefined }) : ''))
            .join('\n')}\n`,
        );
        let t0 = Date.now();
        const s = await runBatch(client, readBatchFile(file), { concurrency: opts.concurrency, total: opts.requests, batchId: 'bench' });
        if (s.completed !== opts.requests) throw new Error(`client batch: ${s.completed} of ${opts.requests} completed`);
        row(c.label, 'client').seconds.push((Date.now() - t0) / 1000);
        t0 = Date.now();
        const again = await runBatch(client, readBatchFile(file), { concurrency: opts.concurrency, total: opts.requests });
        if (again.alreadyStarted !== opts.requests) throw new Error('re-run started requests again');
        row(c.label, 'collect').seconds.push((Date.now() - t0) / 1000);

        const detachedFile = join(dir, 'detached.jsonl');
        writeFileSync(
          detachedFile,
          `${demoEntries(opts.requests, `d${round}`)
            .map((e) => (e.ok ? JSON.stringify({ id: e.item.id, ...e.item.request, requestId: undefined }) : ''))
            .join('\n')}\n`,
        );
        t0 = Date.now();
        const prepared = await prepareDetachedBatch(detachedFile, `bench-${round}`, join(dir, 'batches'), {});
        await client.startBatch({ batchId: `bench-${round}`, source: prepared.source, concurrency: opts.concurrency });
        for (;;) {
          const st = await client.batchStatus(`bench-${round}`);
          if (st.state === 'completed') {
            if (st.summary.completed !== opts.requests) throw new Error(`detached: ${st.summary.completed} completed`);
            break;
          }
          await new Promise((r) => setTimeout(r, 250));
        }
        row(c.label, 'detached').seconds.push((Date.now() - t0) / 1000);
      } finally {
        await client.close();
        await stack.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return [...rows.values()];
}
