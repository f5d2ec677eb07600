/**
 * The key registry entity: the gateway's virtual keys (./contract.ts), created and revoked by
 * updates (the CLI's `switchyard keys`), read by every gateway (a query). Durable and shared by
 * every gateway instance without another store; it continues as new when its history grows.
 */
import { ApplicationFailure, condition, setHandler, workflowInfo } from '@temporalio/workflow';
import { continueAsNewWhenDrained } from '../entity.js';
import { refusePlaintext } from '../messages.js';
import { createKeyUpdate, type KeyRecord, type KeyRegistryInput, type KeyRegistryWorkflow, keysQuery, revokeKeyUpdate } from './contract.js';
import { KeyRegistryState } from './state.js';

/** An update refused before it is recorded (nothing in history): its reason names the field. */
function refuse(update: string, why: string | undefined): void {
  if (why !== undefined) throw ApplicationFailure.create({ type: 'InvalidMessage', nonRetryable: true, message: `${update}: ${why}` });
}

export async function keyRegistry(input: KeyRegistryInput): Promise<void> {
  refusePlaintext([input], 'keyRegistry');
  const state = new KeyRegistryState(input.keys ?? []);
  let changes = 0;
  setHandler(keysQuery, () => state.list());
  setHandler(
    createKeyUpdate,
    (k) => {
      changes += 1;
      return state.create(k, Date.now());
    },
    {
      validator: (k: Omit<KeyRecord, 'createdAt' | 'revokedAt'>) => {
        refuse('createKey', state.refusal(k));
      },
    },
  );
  setHandler(
    revokeKeyUpdate,
    ({ id }) => {
      changes += 1;
      return state.revoke(id, Date.now());
    },
    {
      validator: (a: { id: string }) => {
        refuse('revokeKey', typeof a === 'object' && a !== null ? state.revocationRefusal(a.id) : 'expected {"id": "..."}');
      },
    },
  );
  await condition(() => workflowInfo().continueAsNewSuggested || changes >= 1000);
  await continueAsNewWhenDrained<typeof keyRegistry>(() => [{ keys: state.list() }]);
}

keyRegistry satisfies KeyRegistryWorkflow;
