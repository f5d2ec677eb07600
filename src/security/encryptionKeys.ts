/**
 * Payload encryption keys from the environment. Pure (zod only).
 *
 *   SWITCHYARD_ENCRYPTION_KEY      base64 of 32 random bytes (`switchyard codec keygen` makes one)
 *   SWITCHYARD_ENCRYPTION_KEY_ID   the key's name, stored beside every payload it encrypts (default k1)
 *   SWITCHYARD_ENCRYPTION_OLD_KEYS earlier keys, still needed to read runs they encrypted:
 *                                  `id:base64[,id:base64...]`
 *
 * Rotation: make a new key, give it a new id, and move the current one to the old keys. New payloads
 * use the new key; histories written under an old key stay readable for as long as it is listed.
 *
 * Every key also has a fingerprint (a one-way digest of it: it says which key, never the key), stored
 * beside the id in each payload, so that a key replaced under the same id is told apart from the one
 * that wrote a payload (and a worker refuses to start with it: src/temporal/keyCheck.ts). An old key
 * may even be listed under the active key's id, when that is how it was rotated: the fingerprint says
 * which of the two wrote a payload. No message here ever prints a key's material.
 */
import { createHmac } from 'node:crypto';
import { z } from 'zod';

export interface EncryptionKey {
  readonly id: string;
  /** 32 bytes (AES-256). */
  readonly key: Uint8Array;
  /** 16 hex digits: HMAC-SHA-256 of a fixed label under the key, truncated. Safe to show and store. */
  readonly fingerprint: string;
}

export interface EncryptionKeys {
  /** Encrypts every new payload. */
  readonly active: EncryptionKey;
  /** Every key this process can decrypt with, the active one first. Ids may repeat (fingerprints differ). */
  readonly all: readonly EncryptionKey[];
}

/** The fingerprint of a key: identifies it without revealing it. */
export function keyFingerprint(key: Uint8Array): string {
  return createHmac('sha256', key).update('switchyard-encryption-key-fingerprint-v1').digest('hex').slice(0, 16);
}

/** The keys that may have written a payload with this id (and fingerprint, when the payload has one). */
export function keysFor(keys: EncryptionKeys, id: string, fingerprint: string | undefined): EncryptionKey[] {
  return keys.all.filter((k) => k.id === id && (fingerprint === undefined || k.fingerprint === fingerprint));
}

const KEY_BYTES = 32;
const keyIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, . _ or -');

/** Parses one base64 key; the message names the variable and how to make a good key. */
function parseKey(b64: string, where: string): Uint8Array {
  const trimmed = b64.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) throw new Error(`${where}: not base64; make a key with \`switchyard codec keygen\``);
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length !== KEY_BYTES)
    throw new Error(
      `${where}: decodes to ${bytes.length} bytes; an AES-256 key is ${KEY_BYTES} bytes (base64 of 32 random bytes: \`switchyard codec keygen\`)`,
    );
  return new Uint8Array(bytes);
}

/** A bad id is never echoed: a key pasted where an id belongs must not reach a log. */
function parseId(id: string, where: string): string {
  const r = keyIdSchema.safeParse(id);
  if (!r.success)
    throw new Error(`${where}: a key id (${id.length} characters) ${r.error.issues[0]?.message ?? 'is invalid'}; the form is id:base64key, e.g. k1:<the key>`);
  return id;
}

function makeKey(id: string, key: Uint8Array): EncryptionKey {
  return { id, key, fingerprint: keyFingerprint(key) };
}

/** The keys the environment configures, or undefined when encryption is off. Throws on a bad value. */
export function encryptionKeysFromEnv(env: Readonly<Record<string, string | undefined>>): EncryptionKeys | undefined {
  const keyB64 = env.SWITCHYARD_ENCRYPTION_KEY ?? '';
  const oldKeys = env.SWITCHYARD_ENCRYPTION_OLD_KEYS ?? '';
  if (keyB64 === '') {
    if (oldKeys !== '' || (env.SWITCHYARD_ENCRYPTION_KEY_ID ?? '') !== '') {
      throw new Error(
        'SWITCHYARD_ENCRYPTION_KEY is not set but SWITCHYARD_ENCRYPTION_KEY_ID or SWITCHYARD_ENCRYPTION_OLD_KEYS is: set the active key too (`switchyard codec keygen` makes one)',
      );
    }
    return undefined;
  }
  const active = makeKey(parseId(env.SWITCHYARD_ENCRYPTION_KEY_ID || 'k1', 'SWITCHYARD_ENCRYPTION_KEY_ID'), parseKey(keyB64, 'SWITCHYARD_ENCRYPTION_KEY'));
  const all: EncryptionKey[] = [active];
  const entries = oldKeys
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  entries.forEach((entry, i) => {
    const where = `SWITCHYARD_ENCRYPTION_OLD_KEYS (entry ${i + 1} of ${entries.length})`;
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new Error(`${where}: each entry is id:base64key, separated by commas`);
    const id = parseId(entry.slice(0, colon), where);
    const k = makeKey(id, parseKey(entry.slice(colon + 1), `${where}, key ${id}`));
    const same = all.find((o) => o.fingerprint === k.fingerprint);
    if (same)
      throw new Error(
        `${where}: the key listed as "${id}" is the same key as "${same.id}" (fingerprint ${k.fingerprint}); list each key once, under the id it was used with`,
      );
    if (all.some((o) => o.id === id && o !== active)) throw new Error(`${where}: key id "${id}" appears twice; every old key needs its own id`);
    all.push(k);
  });
  return { active, all };
}
