/**
 * The ledger outbox: a settlement whose ledger line could not be written (the ledger's database is
 * down) is handed to a `ledgerOutbox` workflow, one per settlement, which writes it when the ledger
 * is back. The request that paid answers at once; the line is durable in the outbox run's input.
 */
import type { LedgerEntry } from '../../ledger/entry.js';

export interface LedgerOutboxInput {
  readonly entry: LedgerEntry;
  /** When the first write failed (epoch ms): the ledger's lag is measured from it. */
  readonly deferredAt: number;
}

/** One outbox run per settlement (its ledger key): deferring the same line twice starts one run. */
export function ledgerOutboxWorkflowId(key: string): string {
  return `ledger-outbox:${key}`;
}

/** The activity an outbox run calls, retried until the ledger takes the line (idempotent by key). */
export interface LedgerOutboxActivities {
  writeLedgerEntry(input: LedgerOutboxInput): Promise<void>;
}

/** The outbox's workflow type and signature, for starting it without importing its code. */
export const LEDGER_OUTBOX_TYPE = 'ledgerOutbox';
export type LedgerOutboxWorkflow = (input: LedgerOutboxInput) => Promise<void>;
