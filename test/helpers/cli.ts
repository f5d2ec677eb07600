/** Running the `switchyard` CLI as a user does, in its own process, for end-to-end tests. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const bin = join(process.cwd(), 'bin', 'switchyard.js');

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env, ...(cwd ? { cwd } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `switchyard up` in its own process, as a user runs it: resolves with its banner once it is ready. */
export interface UpProcess {
  readonly banner: string;
  readonly address: string;
  readonly uiUrl: string;
  /** The gateway's OpenAI base URL (…/v1), when it started one. */
  readonly gatewayUrl: string;
  /** Settles with the exit code and everything printed, when the process exits. */
  readonly exited: Promise<{ code: number | null; output: string }>;
  stop(): Promise<void>;
}

export async function startUp(args: string[], env: NodeJS.ProcessEnv): Promise<UpProcess> {
  const up = spawn(process.execPath, [bin, 'up', ...args], { env: { ...env, TEMPORAL_ADDRESS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  up.stderr.on('data', (d: Buffer) => (output += d.toString()));
  up.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; output: string }>((r) => up.once('exit', (code) => r({ code, output })));
  const banner = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`switchyard up did not start:\n${buf}`)), 120_000);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      if (/Ctrl-C stops everything/.test(buf)) {
        clearTimeout(timer);
        resolve(buf);
      }
    };
    up.stderr.on('data', onData);
    up.stdout.on('data', onData);
    up.on('exit', (code) => reject(new Error(`switchyard up exited ${code}:\n${buf}`)));
  });
  return {
    banner,
    address: /Temporal\s+(\S+:\d+)/.exec(banner)?.[1] ?? '',
    uiUrl: /Temporal UI\s+(http\S+)/.exec(banner)?.[1] ?? '',
    gatewayUrl: /gateway\s+(http\S+\/v1)/.exec(banner)?.[1] ?? '',
    exited,
    async stop() {
      if (up.exitCode !== null) return;
      const exited = new Promise<void>((r) => up.once('exit', () => r()));
      up.kill('SIGTERM');
      await exited;
    },
  };
}
