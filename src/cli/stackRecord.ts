/**
 * What a running `switchyard up` (or `demo`) stack is, for the commands run in other shells: its
 * worker's providers, its ledger, its task queue. `up` writes one record per Temporal address under
 * the home state directory and removes it when it stops; a command that talks to that address
 * reads it, so `models` and `report` describe the stack they reach, not this shell's environment.
 * A record whose process is gone (SIGKILL) is ignored and removed. Providers are named with how
 * they are reached (simulator, key, base URL), never the key. One secret is written, in a file only
 * its owner reads (0600): with encryption on, the one that signs the UI's sign-in links, so that
 * `switchyard ui` in another shell can make one (the owner's processes can read the worker's key
 * from its environment anyway).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { defaultStateDir } from '../config/config.js';

const recordSchema = z.object({
  pid: z.number().int().positive(),
  address: z.string(),
  namespace: z.string(),
  taskQueue: z.string(),
  /** The file ledger's path, or `postgres` when the worker writes SWITCHYARD_LEDGER_URL. */
  ledger: z.string(),
  ledgerKind: z.enum(['file', 'postgres']),
  simulatorUrl: z.string().optional(),
  metricsUrl: z.string().optional(),
  uiUrl: z.string().optional(),
  /** The gateway's OpenAI base URL (…/v1). */
  gatewayUrl: z.string().optional(),
  /** Encryption on: signs the UI's one-time sign-in links (security/uiSignIn.ts). */
  uiSignInSecret: z.string().optional(),
  /** provider -> how the stack's worker reaches it ('no': not configured there). */
  providers: z.record(z.string(), z.enum(['simulator', 'key', 'base-url', 'no'])),
  startedAt: z.string(),
});

export type StackRecord = z.infer<typeof recordSchema>;
export type ProviderReach = 'simulator' | 'key' | 'base-url' | 'no';

/** 127.0.0.1, localhost and ::1 are one machine: the record is found whichever the command used. */
function normalAddress(address: string): string {
  return address.replace(/^(localhost|\[::1\]|::1)(?=:)/, '127.0.0.1');
}

export function stackRecordPath(address: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(defaultStateDir(env), 'stacks', `${normalAddress(address).replace(/[^A-Za-z0-9.-]/g, '_')}.json`);
}

export function writeStackRecord(record: StackRecord, env: NodeJS.ProcessEnv = process.env): string {
  const path = stackRecordPath(record.address, env);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(`${path}.tmp`, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return path;
}

/** Removes the record, only if it is this process's (a newer stack on the same address keeps its own). */
export function removeStackRecord(address: string, env: NodeJS.ProcessEnv = process.env): void {
  const found = readRecord(stackRecordPath(address, env));
  if (found?.pid === process.pid) rmSync(stackRecordPath(address, env), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readRecord(path: string): StackRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = recordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The live local stack at this address, if `switchyard up` runs one on this machine. */
export function findStackRecord(address: string, env: NodeJS.ProcessEnv = process.env): StackRecord | undefined {
  const path = stackRecordPath(address, env);
  const record = readRecord(path);
  if (!record) return undefined;
  if (!alive(record.pid)) {
    rmSync(path, { force: true });
    return undefined;
  }
  return record;
}

/** How one provider is reached by a worker with these endpoints (never the key itself). */
export function providerReach(
  endpoint: { apiKey?: string | undefined; baseURL?: string | undefined } | undefined,
  simulatorUrl: string | undefined,
): ProviderReach {
  if (!endpoint || !(endpoint.apiKey || endpoint.baseURL)) return 'no';
  if (simulatorUrl && endpoint.baseURL?.startsWith(simulatorUrl)) return 'simulator';
  return endpoint.apiKey ? 'key' : 'base-url';
}
