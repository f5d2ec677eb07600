/**
 * At start, a worker makes sure its encryption keys can read what the namespace already holds:
 * a key replaced under the same id (rotation done by changing the key but not the id) would make
 * every history unreadable, long-lived entities included, so the worker refuses to start and says
 * how to rotate instead.
 *
 * It reads the first event (the start, with its input) of the most recent runs on this deployment's
 * task queues (the request queue and its entities' queue), running ones first (the entities carry their state there), without decoding them: each encrypted payload
 * names its key id and, since fingerprints, the key's fingerprint. A payload under one of our ids
 * whose fingerprint none of our keys under that id has, or (written before fingerprints) which none
 * of them decrypts, is the mismatch. A payload under an id we do not have is only warned about: the
 * worker may never need to read that run.
 */
import type { ConnectionLike } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import type { Logger } from 'pino';
import type { EncryptionKeys } from '../security/encryptionKeys.js';
import { AesGcmPayloadCodec, payloadKeyFingerprint, payloadKeyId, PayloadDecryptionError } from '../security/payloadCodec.js';

/** How many runs of each kind (running, most recent) are sampled. */
const SAMPLE = 10;

export interface KeyMismatch {
  readonly workflowId: string;
  readonly keyId: string;
  /** The fingerprint the payload names (undefined for a payload from before fingerprints). */
  readonly fingerprint: string | undefined;
}

/** The sampled runs whose payloads our keys under the same id cannot read; unknown ids reported apart. */
export async function findKeyMismatches(
  connection: ConnectionLike,
  namespace: string,
  taskQueues: readonly string[],
  keys: EncryptionKeys,
): Promise<{ mismatches: KeyMismatch[]; unknownIds: Set<string> }> {
  const codec = new AesGcmPayloadCodec(keys);
  const seen = new Set<string>();
  const runs: Array<{ workflowId: string; runId: string }> = [];
  // This deployment's runs only: another deployment sharing the namespace may have keys of its own.
  const ofOurs = `(${taskQueues.map((q) => `TaskQueue=${JSON.stringify(q)}`).join(' OR ')})`;
  for (const query of [`${ofOurs} AND ExecutionStatus="Running"`, ofOurs]) {
    const page = await connection.workflowService.listWorkflowExecutions({ namespace, pageSize: SAMPLE, query });
    for (const e of page.executions ?? []) {
      const workflowId = e.execution?.workflowId ?? '';
      const runId = e.execution?.runId ?? '';
      if (workflowId && runId && !seen.has(runId)) {
        seen.add(runId);
        runs.push({ workflowId, runId });
      }
    }
  }
  const ours = new Set(keys.all.map((k) => k.id));
  const mismatches: KeyMismatch[] = [];
  const unknownIds = new Set<string>();
  // The sampled runs' first events, read together (at most 2 x SAMPLE small reads).
  const firsts = await Promise.all(
    runs.map((execution) => connection.workflowService.getWorkflowExecutionHistory({ namespace, execution, maximumPageSize: 1 })),
  );
  for (const [i, run] of runs.entries()) {
    const payloads = (firsts[i]?.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? []) as Payload[];
    for (const p of payloads) {
      const keyId = payloadKeyId(p);
      if (keyId === undefined) continue;
      if (!ours.has(keyId)) {
        unknownIds.add(keyId);
        continue;
      }
      try {
        await codec.decode([p]);
      } catch (e) {
        if (!(e instanceof PayloadDecryptionError)) throw e;
        mismatches.push({ workflowId: run.workflowId, keyId, fingerprint: payloadKeyFingerprint(p) });
      }
    }
  }
  return { mismatches, unknownIds };
}

/** Throws, naming the fix, when the keys cannot read the namespace's recent runs; warns for unknown key ids. */
export async function requireReadableHistories(
  connection: ConnectionLike,
  namespace: string,
  taskQueues: readonly string[],
  keys: EncryptionKeys,
  log: Logger,
): Promise<void> {
  let found: Awaited<ReturnType<typeof findKeyMismatches>>;
  try {
    found = await findKeyMismatches(connection, namespace, taskQueues, keys);
  } catch (e) {
    // Some clusters do not let a worker's credentials list or read histories: say so, and go on.
    log.warn({ err: (e as Error).message }, "could not sample the namespace's runs to check the encryption keys against them");
    return;
  }
  if (found.unknownIds.size > 0) {
    log.warn(
      { keyIds: [...found.unknownIds] },
      'recent runs are encrypted with key ids this worker does not have: list them in SWITCHYARD_ENCRYPTION_OLD_KEYS to read those runs',
    );
  }
  const first = found.mismatches[0];
  if (!first) return;
  const mine = keys.all.filter((k) => k.id === first.keyId).map((k) => k.fingerprint);
  throw new Error(
    `encryption key "${first.keyId}" (fingerprint ${mine.join(', ')}) is not the key that encrypted ${found.mismatches.length} recent run(s) under that id ` +
      `(e.g. ${first.workflowId}${first.fingerprint ? `, fingerprint ${first.fingerprint}` : ''}): the key was replaced without a new id, which would leave those runs unreadable. ` +
      `To rotate: give the new key a new id (SWITCHYARD_ENCRYPTION_KEY_ID, e.g. ${first.keyId}-2) and list the earlier key as SWITCHYARD_ENCRYPTION_OLD_KEYS=${first.keyId}:<earlier key>; ` +
      `or, to keep the id, list the earlier key under it (SWITCHYARD_ENCRYPTION_OLD_KEYS=${first.keyId}:<earlier key>)`,
  );
}

/** How many running runs a worker that requires encryption reads in full at start (entities first come to mind; requests are short). */
const PLAINTEXT_SCAN_MAX = 500;

/**
 * The running runs on these task queues whose histories hold a plaintext payload. A worker that
 * requires encryption reads every payload of a run it replays as the codec's refusal marker, so
 * such a run (an entity started before encryption was turned on) would fail every workflow task:
 * the worker must not take it on. Reads each history in full (entities are few; at most
 * PLAINTEXT_SCAN_MAX runs, 8 at a time).
 */
export async function findPlaintextRuns(connection: ConnectionLike, namespace: string, taskQueues: readonly string[]): Promise<string[]> {
  const ofOurs = `(${taskQueues.map((q) => `TaskQueue=${JSON.stringify(q)}`).join(' OR ')}) AND ExecutionStatus="Running"`;
  const runs: Array<{ workflowId: string; runId: string }> = [];
  let token: Uint8Array | undefined;
  do {
    const page = await connection.workflowService.listWorkflowExecutions({
      namespace,
      pageSize: 100,
      query: ofOurs,
      ...(token ? { nextPageToken: token } : {}),
    });
    for (const e of page.executions ?? [])
      if (e.execution?.workflowId && e.execution.runId) runs.push({ workflowId: e.execution.workflowId, runId: e.execution.runId });
    token = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (token && runs.length < PLAINTEXT_SCAN_MAX);
  const plain: string[] = [];
  // Search attributes and memos are never encrypted (the server indexes them; workflows do not read
  // them back through the codec), nor are patch markers (the SDK's core writes and reads them):
  // only the payloads a replay decodes count.
  const SKIP = new Set(['searchAttributes', 'memo', 'upsertedMemo', 'header', 'patch-data']);
  /** The path of the first plaintext payload under v (e.g. "workflowExecutionStartedEventAttributes.input"), or undefined. */
  const plaintextAt = (v: unknown, path: string): string | undefined => {
    if (Array.isArray(v)) {
      for (const x of v) {
        const found = plaintextAt(x, path);
        if (found) return found;
      }
      return undefined;
    }
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return undefined;
    const o = v as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && 'data' in o) return payloadKeyId(o) === undefined ? path : undefined;
    for (const [k, x] of Object.entries(o)) {
      if (SKIP.has(k)) continue;
      const found = plaintextAt(x, path ? `${path}.${k}` : k);
      if (found) return found;
    }
    return undefined;
  };
  for (let i = 0; i < runs.length; i += 8) {
    await Promise.all(
      runs.slice(i, i + 8).map(async (execution) => {
        let next: Uint8Array | undefined;
        do {
          const page = await connection.workflowService.getWorkflowExecutionHistory({ namespace, execution, ...(next ? { nextPageToken: next } : {}) });
          for (const e of page.history?.events ?? []) {
            const at = plaintextAt(e, '');
            if (at) {
              plain.push(`${execution.workflowId} (event ${String(e.eventId)}: ${at})`);
              return;
            }
          }
          next = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
        } while (next);
      }),
    );
  }
  return plain;
}

/** For SWITCHYARD_ENCRYPTION_REQUIRED: refuses to start, naming them, while running runs hold plaintext. */
export async function requireNoPlaintextRuns(connection: ConnectionLike, namespace: string, taskQueues: readonly string[], log: Logger): Promise<void> {
  let plain: string[];
  try {
    plain = await findPlaintextRuns(connection, namespace, taskQueues);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'could not read the running runs to check them for plaintext payloads');
    return;
  }
  if (plain.length === 0) return;
  throw new Error(
    `SWITCHYARD_ENCRYPTION_REQUIRED: ${plain.length} running run(s) on task queues ${taskQueues.join(', ')} hold plaintext payloads (${plain.slice(0, 5).join(', ')}${plain.length > 5 ? ', ...' : ''}), ` +
      'which a worker that refuses plaintext could not replay. Run the workers with the key but without SWITCHYARD_ENCRYPTION_REQUIRED until those runs have ended or continued as new ' +
      '(requests end on their own; entities roll over after 1,500 messages), or terminate them (a budget entity is brought back with `switchyard budget restore --scope S`)',
  );
}
