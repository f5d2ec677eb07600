/** The key registry's state: what each message does to the records (the workflow is a shell around it). */
import type { KeyRecord } from './contract.js';

const KEY_ID = /^[a-z0-9]{4,32}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export class KeyRegistryState {
  private readonly keys = new Map<string, KeyRecord>();

  constructor(keys: readonly KeyRecord[] = []) {
    for (const k of keys) this.keys.set(k.id, k);
  }

  list(): KeyRecord[] {
    return [...this.keys.values()];
  }

  /** Why a new key cannot be taken, or undefined. */
  refusal(k: Omit<KeyRecord, 'createdAt' | 'revokedAt'>): string | undefined {
    if (typeof k !== 'object' || k === null) return 'a key record object';
    if (typeof k.id !== 'string' || !KEY_ID.test(k.id)) return 'id: 4-32 lowercase letters and digits';
    if (this.keys.has(k.id)) return `id: key ${k.id} exists already`;
    if (typeof k.secretSha256 !== 'string' || !SHA256_HEX.test(k.secretSha256)) return "secretSha256: the secret's SHA-256 as 64 hex digits";
    if (typeof k.name !== 'string' || k.name.length === 0 || k.name.length > 100) return 'name: 1-100 characters';
    if (typeof k.scope !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(k.scope)) return 'scope: a budget scope (letters, digits, . _ -)';
    // A rotation's new key shares its name with the key it replaces.
    if ([...this.keys.values()].some((x) => x.name === k.name && x.revokedAt === undefined && x.id !== k.rotatedFrom))
      return `name: a live key named ${k.name} exists already (revoke or rotate it)`;
    return undefined;
  }

  create(k: Omit<KeyRecord, 'createdAt' | 'revokedAt'>, now: number): KeyRecord {
    const record: KeyRecord = { ...k, createdAt: new Date(now).toISOString() };
    this.keys.set(record.id, record);
    return record;
  }

  revocationRefusal(id: string): string | undefined {
    const k = typeof id === 'string' ? this.keys.get(id) : undefined;
    if (!k) return `no key ${String(id)}`;
    return undefined;
  }

  /** Revokes a key (again: no change; returns the record). */
  revoke(id: string, now: number): KeyRecord {
    const k = this.keys.get(id);
    if (!k) throw new Error(`no key ${id}`);
    if (k.revokedAt !== undefined) return k;
    const revoked: KeyRecord = { ...k, revokedAt: new Date(now).toISOString() };
    this.keys.set(id, revoked);
    return revoked;
  }
}
