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
 */
import { z } from 'zod';

export interface EncryptionKey {
  readonly id: string;
  /** 32 bytes (AES-256). */
  readonly key: Uint8Array;
}

export interface EncryptionKeys {
  /** Encrypts every new payload. */
  readonly active: EncryptionKey;
  /** Decrypt-only keys, by id (the active key is also here). */
  readonly byId: ReadonlyMap<string, Uint8Array>;
}

const KEY_BYTES = 32;
const keyIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, . _ or -');

/** Parses one base64 key; the message names the variable and how to make a good key. */
function parseKey(b64: string, where: string): Uint8Array {
  const trimmed = b64.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) throw new Error(`${where}: not base64; make a key with \`switchyard codec keygen\``);
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length !== KEY_BYTES) throw new Error(`${where}: decodes to ${bytes.length} bytes; an AES-256 key is ${KEY_BYTES} bytes (base64 of 32 random bytes: \`switchyard codec keygen\`)`);
  return new Uint8Array(bytes);
}

function parseId(id: string, where: string): string {
  const r = keyIdSchema.safeParse(id);
  if (!r.success) throw new Error(`${where}: key id "${id.slice(0, 80)}" ${r.error.issues[0]?.message ?? 'is invalid'}`);
  return id;
}

/** The keys the environment configures, or undefined when encryption is off. Throws on a bad value. */
export function encryptionKeysFromEnv(env: Readonly<Record<string, string | undefined>>): EncryptionKeys | undefined {
  const keyB64 = env.SWITCHYARD_ENCRYPTION_KEY ?? '';
  const oldKeys = env.SWITCHYARD_ENCRYPTION_OLD_KEYS ?? '';
  if (keyB64 === '') {
    if (oldKeys !== '' || (env.SWITCHYARD_ENCRYPTION_KEY_ID ?? '') !== '') {
      throw new Error('SWITCHYARD_ENCRYPTION_KEY is not set but SWITCHYARD_ENCRYPTION_KEY_ID or SWITCHYARD_ENCRYPTION_OLD_KEYS is: set the active key too (`switchyard codec keygen` makes one)');
    }
    return undefined;
  }
  const active: EncryptionKey = {
    id: parseId(env.SWITCHYARD_ENCRYPTION_KEY_ID || 'k1', 'SWITCHYARD_ENCRYPTION_KEY_ID'),
    key: parseKey(keyB64, 'SWITCHYARD_ENCRYPTION_KEY'),
  };
  const byId = new Map<string, Uint8Array>([[active.id, active.key]]);
  for (const entry of oldKeys.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new Error('SWITCHYARD_ENCRYPTION_OLD_KEYS: each entry is id:base64key, separated by commas');
    const id = parseId(entry.slice(0, colon), 'SWITCHYARD_ENCRYPTION_OLD_KEYS');
    if (byId.has(id)) throw new Error(`SWITCHYARD_ENCRYPTION_OLD_KEYS: key id "${id}" appears twice (or is the active key's id); every key needs its own id`);
    byId.set(id, parseKey(entry.slice(colon + 1), `SWITCHYARD_ENCRYPTION_OLD_KEYS (key ${id})`));
  }
  return { active, byId };
}
