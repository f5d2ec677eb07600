import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { defaultPayloadConverter } from '@temporalio/common';
import { encryptionKeysFromEnv, keyFingerprint } from '../../src/security/encryptionKeys.js';
import { CODE_TTL_MS, mintSignInCode, newSignInSecret, SignInCodes, signInUrl } from '../../src/security/uiSignIn.js';
import {
  AesGcmPayloadCodec,
  ENCRYPTED_ENCODING,
  KEY_FINGERPRINT_METADATA,
  PayloadDecryptionError,
  payloadKeyFingerprint,
  payloadKeyId,
} from '../../src/security/payloadCodec.js';

const k = () => randomBytes(32).toString('base64');

function codec(env: Record<string, string>): AesGcmPayloadCodec {
  const keys = encryptionKeysFromEnv(env);
  if (!keys) throw new Error('expected keys');
  return new AesGcmPayloadCodec(keys);
}

describe('encryption keys from the environment', () => {
  it('is off without a key, and names the variable for every mistake', () => {
    expect(encryptionKeysFromEnv({})).toBeUndefined();
    expect(() => encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: 'c2hvcnQ=' })).toThrow(/SWITCHYARD_ENCRYPTION_KEY: decodes to 5 bytes.*keygen/);
    expect(() => encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: 'not base64!' })).toThrow(/SWITCHYARD_ENCRYPTION_KEY: not base64/);
    expect(() => encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_KEY_ID: 'has space' })).toThrow(/SWITCHYARD_ENCRYPTION_KEY_ID/);
    expect(() => encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_OLD_KEYS: `a:${k()}` })).toThrow(/SWITCHYARD_ENCRYPTION_KEY is not set/);
    expect(() => encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_OLD_KEYS: 'nocolon' })).toThrow(/id:base64key/);
    expect(() => encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_OLD_KEYS: `a:${k()},a:${k()}` })).toThrow(
      /entry 2 of 2\): key id "a" appears twice/,
    );
    const same = k();
    expect(() => encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: same, SWITCHYARD_ENCRYPTION_OLD_KEYS: `old:${same}` })).toThrow(/same key as "k1"/);
    const keys = encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_OLD_KEYS: `old1:${k()}, old2:${k()}` });
    expect(keys?.active.id).toBe('k1');
    expect(keys?.all.map((x) => x.id)).toEqual(['k1', 'old1', 'old2']);
    expect(new Set(keys?.all.map((x) => x.fingerprint)).size).toBe(3);
  });

  it('never prints a key, whatever is mistyped', () => {
    const secret = k();
    const attempts: Array<Record<string, string>> = [
      { SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_OLD_KEYS: `${secret}:k0` }, // reversed
      { SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_OLD_KEYS: `k0=${secret}` }, // wrong separator
      { SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_OLD_KEYS: `k0 ${secret}:x` },
      { SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_OLD_KEYS: `k0:${secret}!` },
      { SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_KEY_ID: secret },
      { SWITCHYARD_ENCRYPTION_KEY: `${secret}x` },
    ];
    for (const env of attempts) {
      let message = '';
      try {
        encryptionKeysFromEnv(env);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain(secret.slice(0, 12));
    }
  });

  it('fingerprints identify a key without revealing it', () => {
    const key = randomBytes(32);
    expect(keyFingerprint(key)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyFingerprint(key)).toBe(keyFingerprint(Buffer.from(key)));
    expect(keyFingerprint(randomBytes(32))).not.toBe(keyFingerprint(key));
    expect(key.toString('hex')).not.toContain(keyFingerprint(key));
  });
});

describe('AES-256-GCM payload codec', () => {
  const plain = defaultPayloadConverter.toPayload({ prompt: 'the secret prompt', n: 1 });

  it('round-trips, names its key id, and hides the plaintext', async () => {
    const c = codec({ SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_KEY_ID: 'prod-2026-11' });
    const [enc] = await c.encode([plain]);
    expect(enc && payloadKeyId(enc)).toBe('prod-2026-11');
    expect(Buffer.from(enc?.metadata?.encoding ?? []).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(enc?.data ?? []).includes('secret')).toBe(false);
    const [again] = await c.encode([plain]);
    expect(Buffer.from(again?.data ?? []).equals(Buffer.from(enc?.data ?? []))).toBe(false); // fresh nonce
    const [dec] = await c.decode([enc!]);
    expect(defaultPayloadConverter.fromPayload(dec!)).toEqual({ prompt: 'the secret prompt', n: 1 });
  });

  it('passes unencrypted payloads through decode (runs from before encryption was on)', async () => {
    const c = codec({ SWITCHYARD_ENCRYPTION_KEY: k() });
    const [dec] = await c.decode([plain]);
    expect(defaultPayloadConverter.fromPayload(dec!)).toEqual({ prompt: 'the secret prompt', n: 1 });
  });

  it('refuses a tampered payload, a relabelled key id and an unknown key, saying what to do', async () => {
    const key = k();
    const c = codec({ SWITCHYARD_ENCRYPTION_KEY: key, SWITCHYARD_ENCRYPTION_KEY_ID: 'a' });
    const [enc] = await c.encode([plain]);
    const data = Buffer.from(enc!.data!);
    data[20] = (data[20] ?? 0) ^ 1;
    await expect(c.decode([{ ...enc!, data }])).rejects.toThrow(/failed authentication/);
    // The same key under another id: the id is authenticated, so this fails too.
    const other = codec({ SWITCHYARD_ENCRYPTION_KEY: key, SWITCHYARD_ENCRYPTION_KEY_ID: 'b' });
    const relabelled = { ...enc!, metadata: { ...enc!.metadata, 'encryption-key-id': Buffer.from('b') } };
    await expect(other.decode([relabelled])).rejects.toThrow(PayloadDecryptionError);
    await expect(other.decode([enc!])).rejects.toThrow(/key id "a".*SWITCHYARD_ENCRYPTION_OLD_KEYS/);
    await expect(c.decode([{ ...enc!, data: new Uint8Array(5) }])).rejects.toThrow(/too short/);
  });

  it('a key replaced under the same id is named as such, and the old key can be listed under that id', async () => {
    const oldKey = k();
    const newKey = k();
    const before = codec({ SWITCHYARD_ENCRYPTION_KEY: oldKey });
    const [enc] = await before.encode([plain]);
    expect(enc && payloadKeyFingerprint(enc)).toMatch(/^[0-9a-f]{16}$/);
    const replaced = codec({ SWITCHYARD_ENCRYPTION_KEY: newKey });
    await expect(replaced.decode([enc!])).rejects.toThrow(
      /key id "k1" fingerprint [0-9a-f]{16}.*replaced.*SWITCHYARD_ENCRYPTION_OLD_KEYS k1:<that key>.*new SWITCHYARD_ENCRYPTION_KEY_ID/,
    );
    // A payload from before fingerprints (none in its metadata): every key under the id is tried.
    const legacy = { ...enc!, metadata: Object.fromEntries(Object.entries(enc!.metadata ?? {}).filter(([name]) => name !== KEY_FINGERPRINT_METADATA)) };
    await expect(replaced.decode([legacy])).rejects.toThrow(/failed authentication.*fingerprint.*replaced/);
    const both = codec({ SWITCHYARD_ENCRYPTION_KEY: newKey, SWITCHYARD_ENCRYPTION_OLD_KEYS: `k1:${oldKey}` });
    for (const p of [enc!, legacy]) {
      const [dec] = await both.decode([p]);
      expect(defaultPayloadConverter.fromPayload(dec!)).toEqual({ prompt: 'the secret prompt', n: 1 });
    }
    const [fresh] = await both.encode([plain]);
    expect(payloadKeyFingerprint(fresh!)).toBe(keyFingerprint(Buffer.from(newKey, 'base64')));
  });
});

describe('sign-in links for the embedded UI (security/uiSignIn.ts)', () => {
  const secret = newSignInSecret();
  it("a code works once, only before it expires, only with the stack's secret", () => {
    const t0 = 1_800_000_000_000;
    const codes = new SignInCodes(secret);
    const code = mintSignInCode(secret, t0);
    expect(codes.redeem(code, t0 + 1_000)).toEqual({ ok: true });
    expect(codes.redeem(code, t0 + 2_000)).toEqual({ ok: false, why: 'used' });
    expect(codes.redeem(mintSignInCode(secret, t0), t0 + CODE_TTL_MS + 1)).toEqual({ ok: false, why: 'expired' });
    expect(codes.redeem(mintSignInCode(newSignInSecret(), t0), t0)).toEqual({ ok: false, why: 'forged' });
    // A later expiry written into a real code breaks its signature.
    const [exp = '', nonce = '', mac = ''] = mintSignInCode(secret, t0).split('.');
    expect(codes.redeem(`${Number(exp) + 3_600_000}.${nonce}.${mac}`, t0)).toEqual({ ok: false, why: 'forged' });
    for (const bad of ['', 'x', `${exp}.${nonce}`, `${exp}.${nonce}.${mac}.x`, `-1.${nonce}.${mac}`])
      expect(codes.redeem(bad, t0)).toEqual({ ok: false, why: 'malformed' });
  });
  it('links point at the sign-in path of the UI', () => {
    expect(signInUrl('http://127.0.0.1:8233/', secret)).toMatch(/^http:\/\/127\.0\.0\.1:8233\/switchyard\/sign-in\?code=\d+\.[\w-]{16}\.[\w-]{43}$/);
  });
});
