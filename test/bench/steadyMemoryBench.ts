/**
 * The `steady-memory` bench: does a worker's memory grow under steady traffic? One local stack
 * (dev server, simulator at latency 0, worker and client in this process), waves of requests at 64
 * in flight; after each wave a full GC, then the process's RSS and the main thread's live heap. A
 * heap that stays flat across waves is no leak on the main thread; RSS also holds the workflow
 * thread's isolate (the workflow cache) and native memory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SwitchyardClient } from '../../src/client/client.js';
import { startLocalStack } from '../../src/cli/localStack.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/util/logger.js';

export interface SteadyMemoryWave {
  readonly label: string;
  readonly rssMb: number;
  readonly heapUsedMb: number;
}

export async function benchSteadyMemory(opts: { waves: number; perWave: number }): Promise<SteadyMemoryWave[]> {
  // A full collection before each reading: what is left is live, not garbage V8 has not collected yet.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const state = mkdtempSync(join(tmpdir(), 'switchyard-steady-'));
  const base = loadConfig({ ...process.env, SWITCHYARD_STATE_DIR: state });
  const stack = await startLocalStack({
    config: { ...base, stateDir: state, ledgerPath: join(state, 'ledger.jsonl') },
    log: createLogger('error'),
    port: 0,
    uiPort: 0,
    latencyScale: 0,
    forceSimulator: true,
  });
  const client = await SwitchyardClient.connect({
    address: stack.address,
    namespace: stack.config.namespace,
    taskQueue: stack.config.taskQueue,
    access: stack.config.access,
  });
  const out: SteadyMemoryWave[] = [];
  const read = (label: string): void => {
    gc();
    gc();
    const m = process.memoryUsage();
    out.push({ label, rssMb: Math.round(m.rss / 1048576), heapUsedMb: Math.round(m.heapUsed / 1048576) });
  };
  try {
    read('start');
    for (let w = 0; w < opts.waves; w++) {
      const lines = Array.from({ length: opts.perWave }, (_, i) => ({
        requestId: `steady-${w}-${i}`,
        category: ['batch', 'standard', 'critical'][i % 3]!,
        prompt: `Summarise item ${w * opts.perWave + i} of the report in one line: revenue rose ${i}% while costs were flat.`,
      }));
      const { summary } = await client.batch(lines, { concurrency: 64 });
      read(`after ${(w + 1) * opts.perWave} requests (${summary.completed}/${opts.perWave} completed)`);
    }
    await new Promise((r) => setTimeout(r, 15_000));
    read('after 15 s idle');
  } finally {
    await client.close();
    await stack.stop();
    rmSync(state, { recursive: true, force: true });
  }
  return out;
}
