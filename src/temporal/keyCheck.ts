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
  const firsts = await Promise.all(runs.map((execution) => connection.workflowService.getWorkflowExecutionHistory({ namespace, execution, maximumPageSize: 1 })));
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
export async function requireReadableHistories(connection: ConnectionLike, namespace: string, taskQueues: readonly string[], keys: EncryptionKeys, log: Logger): Promise<void> {
  let found: Awaited<ReturnType<typeof findKeyMismatches>>;
  try {
    found = await findKeyMismatches(connection, namespace, taskQueues, keys);
  } catch (e) {
    // Some clusters do not let a worker's credentials list or read histories: say so, and go on.
    log.warn({ err: (e as Error).message }, 'could not sample the namespace\'s runs to check the encryption keys against them');
    return;
  }
  if (found.unknownIds.size > 0) {
    log.warn({ keyIds: [...found.unknownIds] }, 'recent runs are encrypted with key ids this worker does not have: list them in SWITCHYARD_ENCRYPTION_OLD_KEYS to read those runs');
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
