/** Processes the benches start: a worker (or gateway) as its own process, its environment, and its memory from /proc (Linux). */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A process's resident memory with its children's, in MB (0 once it has gone). */
export function rssMb(pid: number): number {
  let kb = 0;
  try {
    kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean)) kb += rssMb(Number(child)) * 1024;
  } catch {
    // gone
  }
  return Math.round(kb / 1024);
}

/** Starts a process and resolves once its output matches `ready` (its output goes to `log`). */
export function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, log: string): Promise<ChildProcess> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const on = (d: Buffer) => {
      out += d.toString();
      writeFileSync(log, out);
      if (ready.test(out)) resolve(child);
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited (${code}):\n${out.slice(-2000)}`)));
  });
}

/** A `switchyard worker`'s environment on a bench's own dev server and simulator (no metrics port, errors only). */
export function workerEnv(
  at: { address: string; taskQueue: string; simulatorUrl: string; dir: string },
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TEMPORAL_ADDRESS: at.address,
    SWITCHYARD_TASK_QUEUE: at.taskQueue,
    SWITCHYARD_SIMULATOR_URL: at.simulatorUrl,
    SWITCHYARD_STATE_DIR: at.dir,
    SWITCHYARD_LEDGER: join(at.dir, 'ledger.jsonl'),
    SWITCHYARD_LOG_LEVEL: 'error',
    SWITCHYARD_METRICS_PORT: 'off',
    ...extra,
  };
}
