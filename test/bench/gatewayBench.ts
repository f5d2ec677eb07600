/**
 * The `gateway` bench (`npm run bench gateway`): Switchyard's OpenAI-compatible gateway side by
 * side with LiteLLM's proxy (`litellm[proxy]` from PyPI in a cached venv: one worker, no database)
 * and with the SwitchyardClient path, on one simulator (latency 0) and the same prompts, in
 * interleaved rounds: requests/s at 64 in flight, P50 at concurrency 1, CPU time per 1,000
 * requests of the serving processes (gateway + worker for Switchyard, the proxy for LiteLLM; the
 * Temporal server reported apart, as LiteLLM's database would be), time to first token of a stream
 * against the simulator's own, and each server's RSS idle and with 1,000 requests open.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { SwitchyardClient } from '../../src/client/client.js';
import { GATEWAY_NODE_OPTIONS } from '../../src/gateway/server.js';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { Simulator } from '../../src/simulator/server.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { freePort, startDevServer } from '../../src/temporal/devServer.js';
import { pythonWith } from '../helpers/python.js';
import { rssMb, startProcess, workerEnv } from './processes.js';

// The newest release whose proxy extras the package registry here serves (1.108.8 and later need extras it lacks).
export const LITELLM = 'litellm[proxy]==1.108.7';
const MODEL = 'gpt-4o-mini';
const bin = join(process.cwd(), 'bin', 'switchyard.js');

export interface PathFigures {
  readonly perSec: number[];
  readonly p50Ms: number[];
  /** CPU seconds of the serving processes per 1,000 requests, per round. */
  readonly cpuPer1000: number[];
}

export interface GatewayBench {
  readonly paths: Record<'client' | 'gateway' | 'litellm', PathFigures>;
  /** The Temporal server's CPU seconds per 1,000 gateway requests (the part LiteLLM's database would play). */
  readonly temporalCpuPer1000: number[];
  /** Time to first token at concurrency 1: the simulator itself, through the gateway, through LiteLLM (medians per round, ms). */
  readonly ttftMs: Record<'provider' | 'gateway' | 'litellm', number[]>;
  /** Resident memory, MB: idle, and with 1,000 requests open. */
  readonly rssMb: Record<'gateway' | 'worker' | 'litellm', { idle: number; open1000: number }>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

/** utime + stime of a process, in seconds (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A process and its children's CPU (LiteLLM's uvicorn runs under its launcher). */
function treeCpu(pid: number): number {
  let total = cpuSeconds(pid);
  try {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean)) total += treeCpu(Number(child));
  } catch {
    // gone
  }
  return total;
}

async function until(what: string, f: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function benchGateway(opts: { requests: number; concurrency: number; rounds: number; latencySamples: number }): Promise<GatewayBench> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-gwbench-'));
  const python = pythonWith([LITELLM]);
  const server = await startDevServer({ cliPath: await ensureTemporalCli(), stateDir: dir, port: 0, uiPort: 0 });
  const sim = new Simulator({ catalog: defaultCatalog(), latencyScale: 0 });
  const simulatorUrl = await sim.start();
  const taskQueue = `gwbench-${Date.now()}`;
  const env = workerEnv({ address: server.address, taskQueue, simulatorUrl, dir });
  const procs: ChildProcess[] = [];
  try {
    const worker = await startProcess(process.execPath, [bin, 'worker'], env, /Ctrl-C to stop/, join(dir, 'worker.log'));
    procs.push(worker);
    const gwPort = await freePort();
    // As docker-compose runs it (GATEWAY_NODE_OPTIONS).
    const gateway = await startProcess(
      process.execPath,
      [bin, 'gateway', '--port', String(gwPort)],
      { ...env, NODE_OPTIONS: [process.env.NODE_OPTIONS, GATEWAY_NODE_OPTIONS].filter(Boolean).join(' ') },
      /gateway listening/,
      join(dir, 'gateway.log'),
    );
    procs.push(gateway);
    const llPort = await freePort();
    writeFileSync(
      join(dir, 'litellm.yaml'),
      JSON.stringify({ model_list: [{ model_name: MODEL, litellm_params: { model: `openai/${MODEL}`, api_base: `${simulatorUrl}/v1`, api_key: 'sk-sim' } }] }),
    );
    // Both with a key, as a team would call them: LiteLLM's master key, and a Switchyard key.
    const masterKey = `sk-bench-${Date.now()}`;
    const litellm = spawn(join(python, '..', 'litellm'), ['--config', join(dir, 'litellm.yaml'), '--port', String(llPort), '--num_workers', '1'], {
      env: { ...process.env, LITELLM_LOG: 'ERROR', LITELLM_MASTER_KEY: masterKey },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let llErr = '';
    litellm.stderr?.on('data', (d: Buffer) => (llErr = (llErr + d.toString()).slice(-4000)));
    procs.push(litellm);
    await until('LiteLLM', async () => {
      if (litellm.exitCode !== null) return true;
      return (await fetch(`http://127.0.0.1:${llPort}/health/liveliness`)).ok;
    }).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; its stderr:\n${llErr}`);
    });
    if (litellm.exitCode !== null) throw new Error(`LiteLLM exited (${litellm.exitCode}):\n${llErr}`);
    const made = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, [bin, 'keys', 'create', 'bench', '--scope', 'bench', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.once('exit', (code) => (code === 0 ? resolve((JSON.parse(out) as { key: string }).key) : reject(new Error(`keys create exited ${code}`))));
    });
    const client = await SwitchyardClient.connect({ address: server.address, taskQueue });
    const clients = {
      gateway: new OpenAI({ apiKey: made, baseURL: `http://127.0.0.1:${gwPort}/v1`, maxRetries: 0, timeout: 600_000 }),
      litellm: new OpenAI({ apiKey: masterKey, baseURL: `http://127.0.0.1:${llPort}`, maxRetries: 0, timeout: 600_000 }),
      provider: new OpenAI({ apiKey: 'sk-sim', baseURL: `${simulatorUrl}/v1`, maxRetries: 0 }),
    };
    let seq = 0;
    const prompt = (i: number) => `Classify ticket ${i} as billing or technical: "I was charged twice."`;
    const one: Record<'client' | 'gateway' | 'litellm', () => Promise<unknown>> = {
      client: () => client.ask({ requestId: `c-${seq++}`, prompt: prompt(seq), category: 'batch' }),
      gateway: () => clients.gateway.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: prompt(seq++) }] }),
      litellm: () => clients.litellm.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: prompt(seq++) }] }),
    };
    const serving: Record<'client' | 'gateway' | 'litellm', number[]> = {
      client: [worker.pid ?? 0],
      gateway: [gateway.pid ?? 0, worker.pid ?? 0],
      litellm: [litellm.pid ?? 0],
    };
    const serverPid = server.pid;
    for (const f of Object.values(one)) for (let i = 0; i < 5; i++) await f(); // warm up
    const paths = {
      client: { perSec: [], p50Ms: [], cpuPer1000: [] },
      gateway: { perSec: [], p50Ms: [], cpuPer1000: [] },
      litellm: { perSec: [], p50Ms: [], cpuPer1000: [] },
    } as Record<'client' | 'gateway' | 'litellm', { perSec: number[]; p50Ms: number[]; cpuPer1000: number[] }>;
    const temporalCpuPer1000: number[] = [];
    const ttftMs: GatewayBench['ttftMs'] = { provider: [], gateway: [], litellm: [] };
    const firstToken = async (c: OpenAI, model: string): Promise<number> => {
      const t0 = performance.now();
      const stream = await c.chat.completions.create({ model, messages: [{ role: 'user', content: `Explain retries, ${seq++}.` }], stream: true });
      let at = 0;
      for await (const chunk of stream) if (!at && chunk.choices[0]?.delta.content) at = performance.now() - t0;
      return at;
    };
    for (let round = 0; round < opts.rounds; round++) {
      for (const kind of ['client', 'gateway', 'litellm'] as const) {
        const cpu0 = serving[kind].reduce((t, pid) => t + treeCpu(pid), 0);
        const tcpu0 = serverPid ? treeCpu(serverPid) : 0;
        const t0 = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: opts.concurrency }, async () => {
            while (next < opts.requests) {
              next += 1;
              await one[kind]();
            }
          }),
        );
        const secs = (performance.now() - t0) / 1000;
        const cpu = serving[kind].reduce((t, pid) => t + treeCpu(pid), 0) - cpu0;
        paths[kind].perSec.push(Math.round((opts.requests / secs) * 10) / 10);
        paths[kind].cpuPer1000.push(Math.round((cpu / opts.requests) * 1000 * 10) / 10);
        if (kind === 'gateway' && serverPid) temporalCpuPer1000.push(Math.round(((treeCpu(serverPid) - tcpu0) / opts.requests) * 1000 * 10) / 10);
        const lat: number[] = [];
        for (let i = 0; i < opts.latencySamples; i++) {
          const s = performance.now();
          await one[kind]();
          lat.push(performance.now() - s);
        }
        paths[kind].p50Ms.push(Math.round(median(lat) * 10) / 10);
      }
      for (const [kind, c, model] of [
        ['provider', clients.provider, MODEL],
        ['gateway', clients.gateway, MODEL],
        ['litellm', clients.litellm, MODEL],
      ] as const) {
        const xs: number[] = [];
        for (let i = 0; i < opts.latencySamples; i++) xs.push(await firstToken(c, model));
        ttftMs[kind].push(Math.round(median(xs) * 10) / 10);
      }
    }
    // Memory: idle, then with 1,000 requests held open at the provider.
    const rss: GatewayBench['rssMb'] = {
      gateway: { idle: rssMb(gateway.pid ?? 0), open1000: 0 },
      worker: { idle: rssMb(worker.pid ?? 0), open1000: 0 },
      litellm: { idle: rssMb(litellm.pid ?? 0), open1000: 0 },
    };
    for (const kind of ['gateway', 'litellm'] as const) {
      const release = sim.hold(MODEL);
      const open = Array.from({ length: 1000 }, (_, i) =>
        (kind === 'gateway' ? clients.gateway : clients.litellm).chat.completions
          .create({ model: MODEL, messages: [{ role: 'user', content: prompt(i) }] })
          .catch(() => undefined),
      );
      if (kind === 'gateway')
        await until(
          '1,000 calls open at the gateway',
          async () => ((await (await fetch(`http://127.0.0.1:${gwPort}/health`)).json()) as { calls: number }).calls >= 1000,
        );
      // LiteLLM's own connection pool may hold some of them back: 20 s at most for the rest to arrive.
      else await until('LiteLLM to send its calls on', async () => sim.heldCount(MODEL) >= 1000, 20_000).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1_000));
      rss[kind].open1000 = rssMb((kind === 'gateway' ? gateway : litellm).pid ?? 0);
      if (kind === 'gateway') rss.worker.open1000 = rssMb(worker.pid ?? 0);
      release();
      await Promise.all(open);
    }
    await client.close();
    return { paths, temporalCpuPer1000, ttftMs, rssMb: rss };
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await sim.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
