/** The ledger outbox's activity: one deferred ledger line written (see workflows/ledger). */
import type { Logger } from 'pino';
import type { LedgerEntry } from '../../ledger/entry.js';
import type { SwitchyardMetrics } from '../../metrics/metrics.js';
import type { LedgerOutboxActivities, LedgerOutboxInput } from '../../workflows/ledger/contract.js';

export interface LedgerActivityDeps {
  readonly ledger: { record(entry: LedgerEntry): boolean | Promise<boolean> };
  readonly log: Logger;
  readonly metrics?: SwitchyardMetrics | undefined;
}

export function createLedgerActivities(deps: LedgerActivityDeps) {
  const { log } = deps;
  return {
    /** The ledger outbox's write (see workflows/ledger): retried by its run until the ledger takes the line. */
    async writeLedgerEntry(input: LedgerOutboxInput): Promise<void> {
      deps.metrics?.ledgerPending(input.entry.key, input.deferredAt);
      await deps.ledger.record(input.entry);
      deps.metrics?.ledgerWritten(input.entry.key);
      log.info({ key: input.entry.key, lagMs: Date.now() - input.deferredAt }, 'deferred ledger line written');
    },
  } satisfies LedgerOutboxActivities;
}
