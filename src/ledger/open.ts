/** The spend ledger a configuration names: PostgreSQL when SWITCHYARD_LEDGER_URL is set, else the JSONL file. */
import type { Logger } from 'pino';
import { FileLedger } from './fileLedger.js';
import { PgLedger } from './pgLedger.js';
import { fileSpendLedger, type SpendLedger } from './spendLedger.js';

export async function openSpendLedger(config: { readonly ledgerUrl: string | undefined; readonly ledgerPath: string }, log?: Logger): Promise<SpendLedger> {
  if (config.ledgerUrl)
    return PgLedger.open(config.ledgerUrl, { onError: (e) => log?.warn({ err: e.message }, 'spend ledger: a PostgreSQL connection failed') });
  return fileSpendLedger(
    new FileLedger(config.ledgerPath, (line) =>
      log?.warn({ path: config.ledgerPath, line: line.slice(0, 200) }, 'ledger: unreadable line skipped (torn write?)'),
    ),
  );
}
