/**
 * The `memory` bench: resident memory of a `switchyard worker` process and of a `switchyard
 * simulator` process (each its own process, as in production the worker never hosts the
 * simulator), idle and while N requests are in flight at once (simulated latency x1, so they stay
 * in flight). RSS is read from /proc/<pid>/status every 250 ms.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwitchyardClient } from '../../src/client/client.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { freePort, startDevServer } from '../../src/temporal/devServer.js';

export interface MemoryBench {
  readonly requests: number;
  readonly completed: number;
  readonly wallMs: number;
  readonly worker: { readonly idleMb: number; readonly peakMb: number };
  readonly simulator: { readonly idleMb: number; readonly peakMb: number };
}

const bin = fileURLToPath(new URL('../../../bin/switchyard.js', import.meta.url));

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

function waitForLine(p: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const on = (b: Buffer) => {
      seen += b.toString();
      if (pattern.test(seen)) resolve();
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
    p.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready: ${seen.slice(-500)}`)));
  });
}

export async function benchMemory(opts: { requests: number; nodeOptions?: string }): Promise<MemoryBench> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-mem-'));
  const server = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ cliPath: await ensureTemporalCli(), stateDir: dir, port: 0, uiPort: 0 });
  const address = process.env.TEMPORAL_ADDRESS ?? server!.address;
  const simPort = await freePort();
  const taskQueue = `mem-${Date.now()}`;
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    SWITCHYARD_LOG_LEVEL: 'warn',
    SWITCHYARD_STATE_DIR: dir,
    ...(opts.nodeOptions ? { NODE_OPTIONS: opts.nodeOptions } : {}),
  };
  const sim = spawn(process.execPath, [bin, 'simulator', '--port', String(simPort), '--latency-scale', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const worker = spawn(process.execPath, [bin, 'worker', '--task-queue', taskQueue], {
    env: { ...env, SWITCHYARD_SIMULATOR_URL: `http://127.0.0.1:${simPort}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const peak = { worker: 0, simulator: 0 };
  let sampler: NodeJS.Timeout | undefined;
  try {
    await Promise.all([waitForLine(sim, /listening on/, 'simulator'), waitForLine(worker, /Ctrl-C to stop/, 'worker')]);
    const client = await SwitchyardClient.connect({ address, taskQueue });
    // Warm up (bundle load, entity start), then settle for idle figures.
    await client.ask({ requestId: `warm-${taskQueue}`, prompt: 'Classify: I was charged twice.', category: 'batch' });
    await new Promise((r) => setTimeout(r, 2_000));
    const idle = { worker: rssMb(worker.pid), simulator: rssMb(sim.pid) };
    sampler = setInterval(() => {
      peak.worker = Math.max(peak.worker, rssMb(worker.pid));
      peak.simulator = Math.max(peak.simulator, rssMb(sim.pid));
    }, 250);
    const t0 = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: opts.requests }, (_, i) =>
        client.ask({ requestId: `m-${taskQueue}-${i}`, prompt: `Classify ticket ${i} as billing or technical: "I was charged twice."`, category: 'batch' }),
      ),
    );
    const wallMs = Math.round(performance.now() - t0);
    await client.close();
    return {
      requests: opts.requests,
      completed: results.filter((r) => r.status === 'fulfilled').length,
      wallMs,
      worker: { idleMb: idle.worker, peakMb: peak.worker },
      simulator: { idleMb: idle.simulator, peakMb: peak.simulator },
    };
  } finally {
    if (sampler) clearInterval(sampler);
    worker.kill('SIGTERM');
    sim.kill('SIGTERM');
    await Promise.all([worker, sim].map((p) => (p.exitCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r)))));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
