/**
 * Runs `temporal server start-dev` as a child process with the project's search attributes,
 * persisted to a SQLite file under the state directory, and waits until it accepts connections.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTES } from '../workflows/request/contract.js';

export interface DevServerOptions {
  /** The UI decodes payloads through this remote codec endpoint (payload encryption on). */
  readonly uiCodecEndpoint?: string;
  readonly cliPath: string;
  readonly stateDir: string;
  readonly ip?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly uiPort?: number;
  readonly namespace?: string;
  readonly readyTimeoutMs?: number;
  /** SQLite pragmas for the dev server's database (default DEFAULT_SQLITE_PRAGMAS; `[]` for SQLite's own). */
  readonly sqlitePragmas?: readonly string[];
}

/**
 * Write-ahead logging without an fsync per commit: 25-40% more requests/s from the local stack on
 * a small machine (BENCHMARKS.md). A crash of the server process loses nothing; a power cut can
 * lose the last moments of a dev database. SWITCHYARD_DEV_SQLITE_PRAGMAS overrides it
 * (comma-separated `name=value`, or `none` for the CLI's defaults).
 */
export const DEFAULT_SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

export function sqlitePragmas(explicit: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): readonly string[] {
  if (explicit) return explicit;
  const v = env.SWITCHYARD_DEV_SQLITE_PRAGMAS;
  if (v === undefined || v.trim() === '') return DEFAULT_SQLITE_PRAGMAS;
  if (v.trim() === 'none') return [];
  const list = v
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of list) {
    if (!/^[a-z_]+=[A-Za-z0-9_-]+$/.test(p))
      throw new Error(`SWITCHYARD_DEV_SQLITE_PRAGMAS: "${p}" is not name=value (e.g. journal_mode=wal,synchronous=normal, or none)`);
  }
  return list;
}

export interface DevServer {
  readonly address: string;
  readonly uiUrl: string;
  readonly logPath: string;
  /** The server process (benchmarks read its CPU time). */
  readonly pid: number | undefined;
  /** Settles with the exit code when the server exits on its own (not after stop()). */
  readonly died: Promise<number | null>;
  stop(): Promise<void>;
}

export async function freePort(ip = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, ip, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function portInUse(port: number, ip = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(true));
    s.listen(port, ip, () => s.close(() => resolve(false)));
  });
}

/** How many times a server whose ports were picked here is started again after losing a port race. */
const PORT_RACE_ATTEMPTS = 3;

/**
 * True when the log of a server that exited before it was ready says a port was taken. Free ports
 * are picked by binding and releasing them (here, and inside the CLI for its internal services), so
 * another process can take one in between; on a busy machine (parallel tests) that happens.
 */
export function lostPortRace(log: string): boolean {
  return /address already in use|bind: address|EADDRINUSE/i.test(log);
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const picked = opts.port === 0 || opts.uiPort === 0;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port === 0 || opts.port === undefined ? (opts.port === 0 ? await freePort(ip) : 7233) : opts.port;
    const uiPort = opts.uiPort === 0 || opts.uiPort === undefined ? (opts.uiPort === 0 ? await freePort(ip) : 8233) : opts.uiPort;
    try {
      return await launch(opts, ip, port, uiPort);
    } catch (e) {
      if (!(e instanceof EarlyExit) || !picked || attempt >= PORT_RACE_ATTEMPTS || !lostPortRace(e.logTail)) throw e;
    }
  }
}

class EarlyExit extends Error {
  constructor(
    message: string,
    readonly logTail: string,
  ) {
    super(message);
  }
}

async function launch(opts: DevServerOptions, ip: string, port: number, uiPort: number): Promise<DevServer> {
  for (const [what, p] of [
    ['gRPC', port],
    ['UI', uiPort],
  ] as const) {
    if (await portInUse(p, ip)) {
      throw new Error(
        `port ${p} (${what}) on ${ip} is already in use: is another Temporal server (or \`switchyard up\`) running? Stop it, pass other ports, or set TEMPORAL_ADDRESS=${ip}:${port} to use it.`,
      );
    }
  }
  mkdirSync(opts.stateDir, { recursive: true });
  const logPath = join(opts.stateDir, 'temporal-server.log');
  const log = createWriteStream(logPath, { flags: 'a' });
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--db-filename',
    join(opts.stateDir, 'temporal.sqlite'),
    '--namespace',
    opts.namespace ?? 'default',
    '--log-level',
    'warn',
    ...sqlitePragmas(opts.sqlitePragmas).flatMap((p) => ['--sqlite-pragma', p]),
    ...searchAttributeFlags(),
    ...dynamicConfigFlags(),
    ...(opts.uiCodecEndpoint ? ['--ui-codec-endpoint', opts.uiCodecEndpoint] : []),
  ];
  const child: ChildProcess = spawn(opts.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) watchOver(child.pid);
  // The last output is kept to tell a lost port race from other failures.
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-8_192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // Both streams into one log, which ends once the process and both streams have closed (with the
  // default end: true, whichever stream closed first ended the log under the other's late output:
  // an unhandled 'write after end').
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let exited: number | null | undefined;
  let stopping = false;
  let reportDeath: (code: number | null) => void = () => undefined;
  const died = new Promise<number | null>((resolve) => (reportDeath = resolve));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  void closed.then(() => log.end());
  child.on('exit', (code) => {
    exited = code;
    if (!stopping) reportDeath(code);
  });
  const address = `${ip}:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exited !== undefined) {
      await closed; // all output read (and the log ended)
      throw new EarlyExit(`temporal server start-dev exited with code ${exited}; see ${logPath}`, tail);
    }
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1_000 });
      await conn.workflowService.getSystemInfo({});
      // Ready means the namespace answers too, not just the frontend.
      await conn.workflowService.describeNamespace({ namespace: opts.namespace ?? 'default' });
      await conn.close();
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        child.kill('SIGTERM');
        throw new Error(`Temporal dev server did not become ready at ${address} in time (${(e as Error).message}); see ${logPath}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  child.stdout?.off('data', keep);
  child.stderr?.off('data', keep);
  return {
    address,
    uiUrl: `http://${ip}:${uiPort}`,
    logPath,
    pid: child.pid,
    died,
    async stop() {
      stopping = true;
      if (exited !== undefined) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
      await closed; // the log ends once the last output is in
    },
  };
}

/**
 * The dev server must not outlive the process that started it, even one killed with SIGKILL (which
 * runs no handler). Linux would do this with PR_SET_PDEATHSIG, which Node cannot set; so a small
 * detached watchdog polls both: when the starter is gone it stops the server (SIGTERM, then SIGKILL
 * after 10 s), and it exits as soon as the server has (no pid of another process is ever signalled).
 */
const WATCHDOG = `
const [starter, server] = process.argv.slice(1).map(Number);
const alive = (p) => { try { process.kill(p, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const tick = setInterval(() => {
  if (!alive(server)) process.exit(0);
  if (alive(starter)) return;
  clearInterval(tick);
  try { process.kill(server, 'SIGTERM'); } catch {}
  const hard = setTimeout(() => { try { process.kill(server, 'SIGKILL'); } catch {} process.exit(0); }, 10000);
  setInterval(() => { if (!alive(server)) { clearTimeout(hard); process.exit(0); } }, 200);
}, 500);
`;

function watchOver(serverPid: number): void {
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), String(serverPid)], { detached: true, stdio: 'ignore' });
  watchdog.unref();
}

/** `--search-attribute` flags for `temporal server start-dev` and `temporal operator search-attribute create`. */
export function searchAttributeFlags(): string[] {
  const type = (t: SearchAttributeType): string =>
    t === SearchAttributeType.KEYWORD ? 'Keyword' : t === SearchAttributeType.INT ? 'Int' : t === SearchAttributeType.DOUBLE ? 'Double' : 'Text';
  return SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${type(k.type)}`]);
}

/**
 * Dynamic config the dev server starts with. The budget entity receives an update per reservation
 * and settlement: the default of 10 in-flight updates per workflow is far too low for it. A
 * production cluster needs the same setting (see docs/deployment.md).
 */
export const DEV_SERVER_DYNAMIC_CONFIG = ['history.maxInFlightUpdates=2000'];

export function dynamicConfigFlags(): string[] {
  return DEV_SERVER_DYNAMIC_CONFIG.flatMap((kv) => ['--dynamic-config-value', kv]);
}
