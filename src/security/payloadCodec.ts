/**
 * AES-256-GCM payload codec: every payload a worker, client or the CLI sends to Temporal (workflow
 * and activity inputs and results, query and update results, memos, failures' details) is stored
 * encrypted; only holders of the key read it.
 *
 * Wire format of an encrypted payload: metadata `encoding: binary/encrypted` and
 * `encryption-key-id: <id>` and `encryption-key-fingerprint: <fingerprint>` (payloads written before
 * fingerprints have none; every key under their id is tried); data = 12-byte nonce || ciphertext || 16-byte tag, where the plaintext
 * is the original Payload serialised as protobuf and the key id is authenticated as associated data
 * (moving a payload to another key id fails to decrypt). Payloads without that encoding pass
 * through decode unchanged, so runs started before encryption was turned on stay readable.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { keysFor, type EncryptionKey, type EncryptionKeys } from './encryptionKeys.js';

import { PLAINTEXT_REFUSED } from './plaintextMarker.js';

// @temporalio/proto is CommonJS: its namespaces come through the default export under Node's ESM.
const { temporal } = proto;

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const KEY_FINGERPRINT_METADATA = 'encryption-key-fingerprint';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
}

/** The key id an encrypted payload names, or undefined for a payload that is not encrypted. */
export function payloadKeyId(p: Payload): string | undefined {
  const enc = p.metadata?.encoding;
  if (!enc || fromUtf8.decode(enc) !== ENCRYPTED_ENCODING) return undefined;
  const id = p.metadata?.[KEY_ID_METADATA];
  return id ? fromUtf8.decode(id) : '';
}

/** The key fingerprint an encrypted payload names (undefined when it has none, or is not encrypted). */
export function payloadKeyFingerprint(p: Payload): string | undefined {
  const fp = p.metadata?.[KEY_FINGERPRINT_METADATA];
  return fp ? fromUtf8.decode(fp) : undefined;
}

/** Runs synchronous crypto and reports its error as a rejection, as callers of a codec expect. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(
    private readonly keys: EncryptionKeys,
    private readonly opts: { refusePlaintext?: boolean } = {},
  ) {}

  get activeKeyId(): string {
    return this.keys.active.id;
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    return settle(() => payloads.map((p) => this.encryptOne(p)));
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return settle(() => payloads.map((p) => this.decryptOne(p)));
  }

  private encryptOne(p: Payload): Payload {
    const { id, key, fingerprint } = this.keys.active;
    const plain = temporal.api.common.v1.Payload.encode(p).finish();
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(utf8.encode(id));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
      metadata: { encoding: utf8.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8.encode(id), [KEY_FINGERPRINT_METADATA]: utf8.encode(fingerprint) },
      data: new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()])),
    };
  }

  private decryptOne(p: Payload): Payload {
    const id = payloadKeyId(p);
    if (id === undefined) return this.opts.refusePlaintext ? refusedMarker() : p;
    const fingerprint = payloadKeyFingerprint(p);
    const candidates = keysFor(this.keys, id, fingerprint);
    if (candidates.length === 0) {
      const mine = this.keys.all.filter((k) => k.id === id);
      if (mine.length > 0 && fingerprint !== undefined) {
        throw new PayloadDecryptionError(
          `payload is encrypted with key id "${id}" fingerprint ${fingerprint}, but this process's key "${id}" has fingerprint ${mine.map((k) => k.fingerprint).join(', ')}: the key under that id was replaced. ` +
            `Put the key that had fingerprint ${fingerprint} back: as SWITCHYARD_ENCRYPTION_OLD_KEYS ${id}:<that key>, and give the new key a new SWITCHYARD_ENCRYPTION_KEY_ID`,
        );
      }
      throw new PayloadDecryptionError(
        `payload is encrypted with key id "${id}", which this process does not have: add it to SWITCHYARD_ENCRYPTION_OLD_KEYS as ${id}:<base64 key> (or make it the active SWITCHYARD_ENCRYPTION_KEY)`,
      );
    }
    const data = p.data ?? new Uint8Array();
    if (data.length < NONCE_BYTES + TAG_BYTES)
      throw new PayloadDecryptionError(
        `encrypted payload (key id "${id}") is ${data.length} bytes: too short to be one; it was truncated or not written by this codec`,
      );
    for (const key of candidates) {
      const plain = tryDecrypt(key, data);
      if (plain) return temporal.api.common.v1.Payload.decode(plain);
    }
    throw new PayloadDecryptionError(
      `encrypted payload (key id "${id}") failed authentication: the key under that id (fingerprint ${candidates.map((k) => k.fingerprint).join(', ')}) is not the one that encrypted it, or the payload was altered. ` +
        `If the key under "${id}" was replaced, list the earlier one as SWITCHYARD_ENCRYPTION_OLD_KEYS ${id}:<that key> and give the new key a new SWITCHYARD_ENCRYPTION_KEY_ID`,
    );
  }
}

function refusedMarker(): Payload {
  return { metadata: { encoding: utf8.encode('json/plain') }, data: utf8.encode(JSON.stringify({ [PLAINTEXT_REFUSED]: true })) };
}

/** AES-GCM open with one key; undefined when the tag does not verify. */
function tryDecrypt(k: EncryptionKey, data: Uint8Array): Buffer | undefined {
  const decipher = createDecipheriv('aes-256-gcm', k.key, data.subarray(0, NONCE_BYTES));
  decipher.setAAD(utf8.encode(k.id));
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}
