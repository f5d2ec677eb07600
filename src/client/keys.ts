/**
 * The key registry's part of the client (`switchyard keys`): make a key (the secret is drawn here,
 * shown once, and only its SHA-256 is sent), list, show, revoke and rotate keys. The registry
 * entity is started by the first key made.
 */
import { type Client, WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import { newKey } from '../security/apiKeys.js';
import { ValidationError } from '../util/validation.js';
import {
  createKeyUpdate,
  KEY_REGISTRY_TYPE,
  type KeyGrant,
  type KeyRecord,
  type KeyRegistryWorkflow,
  keyRegistryWorkflowId,
  keysQuery,
  revokeKeyUpdate,
} from '../workflows/keys/contract.js';
import { entityTaskQueue } from '../workflows/taskQueues.js';
import { updateMessage } from './routing.js';

/** A key as listed: everything but the secret's digest. */
export type KeyView = Omit<KeyRecord, 'secretSha256'> & { readonly state: 'live' | 'revoked' | 'expired' };

export function viewOf(k: KeyRecord, now = Date.now()): KeyView {
  const { secretSha256: _s, ...rest } = k;
  const state = k.revokedAt !== undefined ? 'revoked' : k.expiresAt !== undefined && Date.parse(k.expiresAt) <= now ? 'expired' : 'live';
  return { ...rest, state };
}

export class KeysClient {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
  ) {}

  private start(): WithStartWorkflowOperation<KeyRegistryWorkflow> {
    return new WithStartWorkflowOperation<KeyRegistryWorkflow>(KEY_REGISTRY_TYPE, {
      workflowId: keyRegistryWorkflowId(this.taskQueue),
      taskQueue: entityTaskQueue(this.taskQueue),
      args: [{}],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
  }

  /** Makes a key; returns its record and the key itself (shown once: only its digest is kept). */
  async create(name: string, grant: KeyGrant & { readonly expiresAt?: string; readonly rotatedFrom?: string }): Promise<{ key: KeyView; token: string }> {
    const material = newKey();
    const record = {
      id: material.id,
      name,
      secretSha256: material.secretSha256,
      ...grant,
    };
    const made = await this.temporal.workflow
      .executeUpdateWithStart(createKeyUpdate, { args: [record], startWorkflowOperation: this.start() })
      .catch((e: unknown) => updateMessage(e));
    return { key: viewOf(made), token: material.token };
  }

  async list(): Promise<KeyView[]> {
    try {
      const keys = await this.temporal.workflow.getHandle(keyRegistryWorkflowId(this.taskQueue)).query(keysQuery);
      return keys.map((k) => viewOf(k));
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return [];
      throw e;
    }
  }

  /** A key by id, or by name (the live one, else the latest). */
  async find(idOrName: string): Promise<KeyView> {
    const keys = await this.list();
    const byId = keys.find((k) => k.id === idOrName);
    const named = keys
      .filter((k) => k.name === idOrName)
      .sort((a, b) => (a.state === 'live' ? -1 : b.state === 'live' ? 1 : b.createdAt.localeCompare(a.createdAt)));
    const k = byId ?? named[0];
    if (!k) throw new ValidationError('keys', [`${idOrName}: no key with this id or name (\`switchyard keys list\`)`]);
    return k;
  }

  async revoke(idOrName: string): Promise<KeyView> {
    const k = await this.find(idOrName);
    const revoked = await this.temporal.workflow
      .getHandle(keyRegistryWorkflowId(this.taskQueue))
      .executeUpdate(revokeKeyUpdate, { args: [{ id: k.id }] })
      .catch((e: unknown) => updateMessage(e));
    return viewOf(revoked);
  }

  /** A new key with the same name and grant; the old one is revoked once the new one exists. */
  async rotate(idOrName: string): Promise<{ key: KeyView; token: string; revoked: KeyView }> {
    const old = await this.find(idOrName);
    if (old.state !== 'live') throw new ValidationError('keys rotate', [`${idOrName}: key ${old.id} is ${old.state}; make a new one with \`keys create\``]);
    const { id, name, createdAt: _c, revokedAt: _r, rotatedFrom: _f, state: _s, ...grant } = old;
    const made = await this.create(name, { ...grant, rotatedFrom: id });
    const revoked = await this.revoke(id);
    return { ...made, revoked };
  }
}
