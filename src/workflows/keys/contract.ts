/**
 * The key registry's contract: the gateway's virtual keys (docs/gateway-keys.md). One entity
 * workflow per task queue holds every key's record: its id, name, budget scope, limits and the
 * SHA-256 of its secret, never the secret itself (the CLI draws it, prints it once, and sends only
 * the digest). Gateways read the records (a query) every `gateway.keyRefreshMs`.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Tier } from '../../catalog/tiers.js';

export function keyRegistryWorkflowId(taskQueue: string): string {
  return `gateway-keys-${taskQueue}`;
}

export const KEY_REGISTRY_TYPE = 'keyRegistry';

/** What a key may do and how much. */
export interface KeyGrant {
  /** Its budget scope: every request it sends is charged there. */
  readonly scope: string;
  /** Categories it may use (the first is its default); absent: any. */
  readonly categories?: readonly string[];
  /** Catalog models it may use; absent: any. */
  readonly models?: readonly string[];
  /** Tiers it may use; absent: any. */
  readonly tiers?: readonly Tier[];
  /** Requests per minute, tokens (input, counted) per minute, requests at once; absent: unlimited. */
  readonly rpm?: number;
  readonly tpm?: number;
  readonly maxConcurrency?: number;
}

export interface KeyRecord extends KeyGrant {
  /** Public id: the key's first part, in logs, metrics and the ledger. */
  readonly id: string;
  readonly name: string;
  /** SHA-256 of the secret, hex. */
  readonly secretSha256: string;
  readonly createdAt: string;
  readonly expiresAt?: string;
  readonly revokedAt?: string;
  /** Set on a key made by `keys rotate`: the key it replaced. */
  readonly rotatedFrom?: string;
}

export interface KeyRegistryInput {
  readonly keys?: readonly KeyRecord[];
}

export const keysQuery = defineQuery<KeyRecord[]>('keys');
export const createKeyUpdate = defineUpdate<KeyRecord, [Omit<KeyRecord, 'createdAt' | 'revokedAt'>]>('createKey');
export const revokeKeyUpdate = defineUpdate<KeyRecord, [{ id: string }]>('revokeKey');

export type KeyRegistryWorkflow = (input: KeyRegistryInput) => Promise<void>;

/** The registry calls no activities. */
export type KeyRegistryActivities = Record<never, never>;
