import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { defaultPayloadConverter } from '@temporalio/common';
import { encryptionKeysFromEnv } from '../../src/security/encryptionKeys.js';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, PayloadDecryptionError, payloadKeyId } from '../../src/security/payloadCodec.js';

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
    expect(() => encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_KEY_ID: 'a', SWITCHYARD_ENCRYPTION_OLD_KEYS: `a:${k()}` })).toThrow(/appears twice/);
    const keys = encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: k(), SWITCHYARD_ENCRYPTION_OLD_KEYS: `old1:${k()}, old2:${k()}` });
    expect(keys?.active.id).toBe('k1');
    expect([...(keys?.byId.keys() ?? [])]).toEqual(['k1', 'old1', 'old2']);
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
});
