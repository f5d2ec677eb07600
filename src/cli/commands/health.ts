/** CLI commands about providers and models: health (circuits), models (the catalog and what the stack reaches). */
import { type Command } from 'commander';
import { loadCatalog } from '../../catalog/loadFile.js';
import { type PROVIDERS } from '../../catalog/schema.js';
import { providerEndpointsFor } from '../../workers/createWorker.js';
import { envHint, ProviderRegistry } from '../../providers/registry.js';
import { findStackRecord } from '../stackRecord.js';
import { type SwitchyardClient } from '../../client/client.js';
import { config, DEFAULT_ADDRESS, withClient } from '../shared.js';
import { formatTable } from '../../util/table.js';

export function registerHealthCommands(program: Command): void {
  program
    .command('health')
    .description('circuit breakers per model: closed, open (skipped by the router) or half-open')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withClient(async (client) => {
        const h = await client.health();
        if (o.json) process.stdout.write(`${JSON.stringify(h)}\n`);
        else if (h.length === 0) process.stdout.write('no provider failures reported yet: every circuit is closed\n');
        else
          for (const m of h)
            process.stdout.write(
              `${m.model.padEnd(20)} ${m.state.padEnd(9)} failures in a row ${m.consecutiveFailures}${m.openUntil && m.state === 'open' ? `, open until ${m.openUntil}` : ''}${m.lastError ? `, last error ${m.lastError}` : ''}, opened ${m.timesOpened}x\n`,
            );
      });
    });

  program
    .command('models')
    .description('the catalog: model, tier, provider, whether its provider is configured here, prices, circuit state')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const cfg = config();
      const catalog = loadCatalog(cfg.catalogPath);
      const providers = new ProviderRegistry(providerEndpointsFor(cfg), cfg.callTimeoutMs);
      // Whose configuration: the worker of the local stack this command reaches, else this shell's.
      const address = cfg.temporalAddress ?? DEFAULT_ADDRESS;
      const stack = findStackRecord(address);
      const isConfigured = (p: (typeof PROVIDERS)[number]): boolean => (stack ? (stack.providers[p] ?? 'no') !== 'no' : providers.isConfigured(p));
      const whose = stack
        ? `configured: as the worker of the local stack at ${stack.address} has it (\`switchyard up\`, pid ${stack.pid}${stack.simulatorUrl ? `; simulator ${stack.simulatorUrl}` : ''})`
        : `configured: as this shell's environment has it (workers elsewhere read their own; no local stack runs at ${address})`;
      // Circuit states need the server; without it the listing still says what is configured.
      let circuits: Awaited<ReturnType<SwitchyardClient['health']>> = [];
      let circuitsNote: string | undefined;
      try {
        await withClient(async (client) => {
          circuits = await client.health();
        });
      } catch (e) {
        circuitsNote = `circuit states unknown (${(e as Error).message.split('\n')[0]})`;
      }
      const rows = catalog.models.map((m) => {
        const c = circuits.find((x) => x.model === m.name);
        const configured = isConfigured(m.provider);
        return {
          model: m.name,
          tier: m.tier,
          provider: m.provider,
          configured,
          ...(stack ? { reach: stack.providers[m.provider] } : {}),
          ...(configured ? {} : { configure: envHint(m.provider) }),
          inputUsdPerMTok: m.price.inputNanosPerMTok / 1e9,
          outputUsdPerMTok: m.price.outputNanosPerMTok / 1e9,
          circuit: c?.state ?? (circuitsNote ? 'unknown' : 'closed'),
        };
      });
      if (o.json) {
        process.stdout.write(
          `${JSON.stringify({ models: rows, configuredBy: stack ? { stack: stack.address, pid: stack.pid } : 'environment', ...(circuitsNote ? { note: circuitsNote } : {}) })}\n`,
        );
        return;
      }
      const table = [['model', 'tier', 'provider', 'configured', 'in $/Mtok', 'out $/Mtok', 'circuit']];
      for (const r of rows)
        table.push([r.model, r.tier, r.provider, r.configured ? 'yes' : 'no', r.inputUsdPerMTok.toFixed(3), r.outputUsdPerMTok.toFixed(3), r.circuit]);
      process.stdout.write(`${formatTable(table, (i) => i === 4 || i === 5)}\n`);
      const missing = [...new Set(rows.filter((r) => !r.configured).map((r) => r.provider))];
      process.stdout.write(`\n${whose}\n`);
      if (missing.length > 0)
        process.stdout.write(
          `not configured (the router skips their models): ${missing.map((p) => `${p}: set ${envHint(p)}${stack ? ' where the worker runs' : ''}`).join('; ')}\n`,
        );
      if (circuitsNote) process.stdout.write(`${circuitsNote}\n`);
    });
}
