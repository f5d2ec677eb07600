/**
 * A gateway key's material: `sk-sy-<id>-<secret>`, the id 12 lowercase letters and digits (public:
 * logs, metrics, the ledger), the secret 256 random bits (base64url). Only the secret's SHA-256 is
 * stored; a presented key is checked by comparing digests in constant time.
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const TOKEN = /^sk-sy-([a-z0-9]{12})-([A-Za-z0-9_-]{43})$/;

export interface NewKey {
  readonly id: string;
  /** The whole key, shown once. */
  readonly token: string;
  readonly secretSha256: string;
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export function newKey(): NewKey {
  let id = '';
  for (let i = 0; i < 12; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `sk-sy-${id}-${secret}`, secretSha256: sha256Hex(secret) };
}

/** A presented key's id and secret, or undefined when it is not shaped as a Switchyard key. */
export function parseKey(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN.exec(token);
  return m?.[1] && m[2] ? { id: m[1], secret: m[2] } : undefined;
}

/** Whether `secret` hashes to `sha256` (hex), in constant time. */
export function secretMatches(secret: string, sha256: string): boolean {
  const a = createHash('sha256').update(secret).digest();
  const b = Buffer.from(sha256, 'hex');
  return b.length === a.length && timingSafeEqual(a, b);
}

/** Whether a presented string equals the admin key, in constant time (both hashed first: lengths may differ). */
export function adminMatches(presented: string, adminKey: string): boolean {
  return timingSafeEqual(createHash('sha256').update(presented).digest(), createHash('sha256').update(adminKey).digest());
}
