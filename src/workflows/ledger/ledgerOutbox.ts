/**
 * Writes one deferred ledger line, retrying on durable timers until the ledger takes it (backoff
 * to 10 s). Nothing else: the budget was settled before the line was deferred, so this never
 * charges; the write is idempotent by the settlement's key.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { LedgerOutboxActivities, LedgerOutboxInput } from './contract.js';
import { refusePlaintext } from '../messages.js';
import type { LedgerOutboxWorkflow } from './contract.js';

const ledger = proxyActivities<LedgerOutboxActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds' },
});

export async function ledgerOutbox(input: LedgerOutboxInput): Promise<void> {
  refusePlaintext([input], 'ledgerOutbox');
  await ledger.writeLedgerEntry(input);
}

// The signature its contract publishes for callers that start it by name.
ledgerOutbox satisfies LedgerOutboxWorkflow;
