/**
 * A real Temporal cluster for the cluster test: the server built from Go
 * (`go install go.temporal.io/server/cmd/server@v1.29.1`, its SQL schema tool beside it; cached
 * in ~/.cache/switchyard/temporal-server), on a PostgreSQL database (store and visibility), all
 * four services in one process on free ports, the dynamic config of deploy/temporal/.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { freePort } from '../../src/temporal/devServer.js';
import { cacheDir } from '../../src/temporal/cli.js';

export const SERVER_VERSION = 'v1.29.1';

/** The server and sql-tool binaries, built once (a few minutes) and cached. */
export function ensureServerBinaries(say: (l: string) => void = () => undefined): { server: string; sql: string; schemaDir: string } {
  const bin = join(cacheDir(), 'temporal-server', SERVER_VERSION);
  const server = join(bin, 'server');
  const sql = join(bin, 'sql');
  if (!existsSync(server) || !existsSync(sql)) {
    say(`building the Temporal server ${SERVER_VERSION} with Go (once; cached in ${bin})`);
    mkdirSync(bin, { recursive: true });
    execFileSync('go', ['install', `go.temporal.io/server/cmd/server@${SERVER_VERSION}`, `go.temporal.io/server/cmd/tools/sql@${SERVER_VERSION}`], {
      env: { ...process.env, GOBIN: bin, GOFLAGS: '-mod=mod' },
      stdio: 'inherit',
      timeout: 1_200_000,
    });
  }
  const modCache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
  const schemaDir = join(modCache, 'go.temporal.io', `server@${SERVER_VERSION}`, 'schema', 'postgresql', 'v12');
  if (!existsSync(schemaDir))
    execFileSync('go', ['mod', 'download', `go.temporal.io/server@${SERVER_VERSION}`], {
      stdio: 'inherit',
      cwd: bin,
      env: { ...process.env, GOFLAGS: '-mod=mod' },
    });
  return { server, sql, schemaDir };
}

/** A free port in 20000-32000 (outside the ephemeral range, which starts at 32768). */
async function lowPort(): Promise<number> {
  for (;;) {
    const p = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(p, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return p;
  }
}

export interface TemporalCluster {
  readonly address: string;
  readonly metricsUrl: string;
  readonly log: string;
  stop(): Promise<void>;
  /** Stops the server (SIGTERM) and starts it again on the same ports and databases (an outage). */
  restart(downMs?: number): Promise<void>;
}

/** Creates Temporal's two databases and their schemas, then starts the server. */
export async function startTemporalCluster(opts: {
  dir: string;
  pg: { host: string; port: number; user: string };
  dynamicConfig: string;
}): Promise<TemporalCluster> {
  const { server, sql, schemaDir } = ensureServerBinaries((l) => process.stderr.write(`${l}\n`));
  const base = ['--plugin', 'postgres12', '--ep', opts.pg.host, '-p', String(opts.pg.port), '-u', opts.pg.user];
  for (const [db, schema] of [
    ['temporal', 'temporal'],
    ['temporal_visibility', 'visibility'],
  ] as const) {
    execFileSync(sql, [...base, '--db', db, 'create-database', '--defaultdb', 'postgres'], { stdio: 'pipe' });
    execFileSync(sql, [...base, '--db', db, 'setup-schema', '-v', '0.0'], { stdio: 'pipe' });
    execFileSync(sql, [...base, '--db', db, 'update-schema', '-d', join(schemaDir, schema, 'versioned')], { stdio: 'pipe' });
  }
  const port = async (): Promise<number> => freePort();
  const [frontend, frontendHttp, history, matching, worker, metrics] = [await port(), await port(), await port(), await port(), await port(), await port()];
  // The server stores membership ports as a smallint: they must be below 32768.
  const membership = [await lowPort(), await lowPort(), await lowPort(), await lowPort()];
  const store = (db: string, conns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName: db,
      connectAddr: `${opts.pg.host}:${opts.pg.port}`,
      connectProtocol: 'tcp',
      user: opts.pg.user,
      password: '',
      maxConns: conns,
      maxIdleConns: conns,
      maxConnLifetime: '1h',
    },
  });
  const rpc = (grpcPort: number, membershipPort: number, extra: Record<string, unknown> = {}) => ({
    rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...extra },
  });
  const config = {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: 4,
      datastores: { default: store('temporal', 20), visibility: store('temporal_visibility', 4) },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `127.0.0.1:${metrics}` } },
    },
    services: {
      frontend: rpc(frontend, membership[0] ?? 0, { httpPort: frontendHttp }),
      history: rpc(history, membership[1] ?? 0),
      matching: rpc(matching, membership[2] ?? 0),
      worker: rpc(worker, membership[3] ?? 0),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `127.0.0.1:${frontend}` } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: opts.dynamicConfig, pollInterval: '10s' },
  };
  const configDir = join(opts.dir, 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'cluster.yaml'), JSON.stringify(config, null, 2));
  const log = join(opts.dir, 'temporal-server.log');
  const out = createWriteStream(log);
  const spawnServer = (): ChildProcess => {
    const p = spawn(server, ['--root', opts.dir, '--config', 'config', '--env', 'cluster', '--allow-no-auth', 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout?.pipe(out, { end: false });
    p.stderr?.pipe(out, { end: false });
    return p;
  };
  let proc = spawnServer();
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  };
  return {
    address: `127.0.0.1:${frontend}`,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    log,
    stop,
    async restart(downMs = 0) {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      proc = spawnServer();
    },
  };
}
