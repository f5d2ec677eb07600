/** What several benches share: one local stack (embedded dev server, simulator at catalog latency x 0.1, one worker), and actions counted over a sample of request histories. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalStack } from '../../src/cli/localStack.js';
import type { SwitchyardClient } from '../../src/client/client.js';
import { fileConfigSchema, loadConfig } from '../../src/config/config.js';
import { billableActions } from '../../src/temporal/billableActions.js';
import { createLogger } from '../../src/util/logger.js';

/** A stack in a new directory (`prefix` names it), with these deferred-lane settings, and no gateway. */
export async function benchStack(prefix: string, deferred: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const cfg = loadConfig(
    { SWITCHYARD_LOG_LEVEL: 'error' },
    { stateDir: dir, ledgerPath: join(dir, 'ledger.jsonl'), deferred: fileConfigSchema.parse({ deferred }).deferred },
  );
  const stack = await startLocalStack({
    config: { ...cfg, temporalAddress: undefined, simulatorUrl: undefined },
    log: createLogger('error'),
    port: 0,
    uiPort: 0,
    latencyScale: 0.1,
    forceSimulator: true,
    gatewayPort: null,
    say: () => undefined,
  });
  return { dir, stack };
}

/** The mean billable actions of these requests' own histories, in all and by kind. */
export async function meanActions(client: SwitchyardClient, ids: readonly string[]): Promise<{ total: number; byKind: Record<string, number> }> {
  let total = 0;
  const byKind: Record<string, number> = {};
  for (const id of ids) {
    const a = billableActions(await client.temporal.workflow.getHandle(id).fetchHistory());
    total += a.total / ids.length;
    for (const [k, n] of Object.entries(a.byKind)) byKind[k] = (byKind[k] ?? 0) + n / ids.length;
  }
  return { total, byKind };
}
