/**
 * Connecting to a cluster through TLS: the dev server has no TLS, so nghttpx (Debian's
 * nghttp2-proxy) terminates mutual TLS in front of it with certificates this test makes with
 * openssl. The worker (`switchyard worker`) and the CLI (`switchyard ask`) connect through it with
 * the Temporal CLI's variable names (TEMPORAL_TLS_CERT/KEY/CA, TEMPORAL_TLS_SERVER_NAME) and an
 * API key (TEMPORAL_API_KEY, sent as a bearer token, as Temporal Cloud expects; the proxy's access
 * log shows what it received). Without a client certificate the proxy refuses the connection.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { loadConfig } from '../../src/config/config.js';
import { Simulator } from '../../src/simulator/server.js';
import { bin, runCli } from '../helpers/cli.js';

const SERVER_NAME = 'temporal.switchyard.test';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** A CA, a server certificate for SERVER_NAME and a client certificate, all signed by the CA. */
function makeCertificates(dir: string): void {
  const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=switchyard test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  for (const [name, cn, ext] of [
    [
      'server',
      SERVER_NAME,
      `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n`,
    ],
    ['client', 'switchyard-worker', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n'],
  ] as const) {
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
    ssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ]);
  }
}

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('TLS and API key to a Temporal cluster', () => {
  let dir: string;
  let proxy: ChildProcess | undefined;
  let worker: ChildProcess | undefined;
  let workerErr = '';
  let simulator: Simulator;
  let env: NodeJS.ProcessEnv;
  let accessLog: string;
  const apiKey = `test-api-key-${Date.now()}`;

  beforeAll(async () => {
    try {
      execFileSync('nghttpx', ['--version'], { stdio: 'pipe' });
    } catch {
      throw new Error('nghttpx is not installed: `apt-get install nghttp2-proxy` (Debian; scripts/test-tools.sh, run by npm test, does it)');
    }
    dir = mkdtempSync(join(tmpdir(), 'switchyard-tls-'));
    makeCertificates(dir);
    const port = await freePort();
    accessLog = join(dir, 'access.log');
    const [host, backendPort] = inject('temporalAddress').split(':');
    proxy = spawn(
      'nghttpx',
      [
        `--frontend=127.0.0.1,${port}`,
        `--backend=${host},${backendPort};;proto=h2`,
        '--verify-client',
        `--verify-client-cacert=${join(dir, 'ca.pem')}`,
        '--workers=1',
        '--no-ocsp',
        '--frontend-http2-read-timeout=10m',
        '--frontend-read-timeout=10m',
        '--backend-read-timeout=10m',
        '--stream-read-timeout=10m',
        `--accesslog-file=${accessLog}`,
        '--accesslog-format=$method $path $status auth=[$http_authorization]',
        `--errorlog-file=${join(dir, 'error.log')}`,
        join(dir, 'server.key'),
        join(dir, 'server.pem'),
      ],
      { stdio: 'ignore' },
    );
    await waitFor(
      'nghttpx to listen',
      () =>
        new Promise((resolve) => {
          const s = createServer();
          s.once('error', () => resolve(true));
          s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
        }),
    );
    simulator = new Simulator({ catalog: defaultCatalog(), latencyScale: 0 });
    const simulatorUrl = await simulator.start();
    env = { ...process.env, SWITCHYARD_LOG_LEVEL: 'warn' };
    for (const k of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'MISTRAL_API_KEY', 'SELF_HOSTED_BASE_URL', 'TEMPORAL_NAMESPACE']) delete env[k];
    Object.assign(env, {
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      TEMPORAL_TLS_CERT: join(dir, 'client.pem'),
      TEMPORAL_TLS_KEY: join(dir, 'client.key'),
      TEMPORAL_TLS_CA: join(dir, 'ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      TEMPORAL_API_KEY: apiKey,
      SWITCHYARD_TASK_QUEUE: `tls-${Date.now()}`,
      SWITCHYARD_SIMULATOR_URL: simulatorUrl,
      SWITCHYARD_STATE_DIR: dir,
      TEMPORAL_CONFIG_FILE: join(dir, 'no-such-temporal.toml'),
    });
  });

  afterAll(async () => {
    worker?.kill('SIGINT');
    if (worker && worker.exitCode === null) await new Promise((r) => worker?.once('exit', r));
    proxy?.kill('SIGTERM');
    await simulator?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads the Temporal CLI variable names into TLS and API-key options', () => {
    const cfg = loadConfig(env);
    expect(cfg.temporalAddress).toBe(env.TEMPORAL_ADDRESS);
    const tls = cfg.access.tls;
    expect(typeof tls === 'object' && tls.serverNameOverride).toBe(SERVER_NAME);
    expect(typeof tls === 'object' && tls.clientCertPair?.crt.length).toBeGreaterThan(100);
    expect(cfg.access.apiKey).toBe(apiKey);
    expect(() => loadConfig({ ...env, TEMPORAL_ADDRESS: '' })).toThrow(/TEMPORAL_ADDRESS is not/);
    expect(() => loadConfig({ ...env, TEMPORAL_TLS_KEY: '' })).toThrow(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together/);
  });

  it('a worker and the CLI work through mutual TLS with an API key', async () => {
    worker = spawn(process.execPath, [bin, 'worker'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    worker.stderr?.on('data', (d: Buffer) => (workerErr += d.toString()));
    await waitFor('the worker to connect', () => workerErr.includes('worker on') || worker?.exitCode !== null);
    expect(worker.exitCode, workerErr).toBeNull();
    const r = await runCli(['ask', '--json', 'Classify the sentiment: the TLS handshake went fine.'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { text: string; model: string };
    expect(out.text.length).toBeGreaterThan(0);
    const log = readFileSync(accessLog, 'utf8');
    // Worker polls and the CLI's start both crossed the proxy, each with the API key.
    expect(log).toMatch(/POST \/temporal\.api\.workflowservice\.v1\.WorkflowService\/PollWorkflowTaskQueue \d+ auth=\[Bearer test-api-key-/);
    expect(log).toMatch(/POST \/temporal\.api\.workflowservice\.v1\.WorkflowService\/StartWorkflowExecution 200 auth=\[Bearer test-api-key-/);
    expect(log).not.toMatch(/auth=\[\]/);
  });

  it('without a client certificate the cluster refuses the CLI, which says so', async () => {
    const r = await runCli(['ask', 'Say hi.'], { ...env, TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach Temporal at 127\.0\.0\.1:\d+ .*\n.*uses TLS .*TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY/);
    expect(r.stderr).not.toContain(apiKey);
  });
});
