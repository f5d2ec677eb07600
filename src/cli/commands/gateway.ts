/** `switchyard gateway`: the OpenAI-compatible HTTP gateway (src/gateway), in front of the stack TEMPORAL_ADDRESS points at. */
import type { Command } from 'commander';
import { loadCatalog } from '../../catalog/loadFile.js';
import { ProviderRegistry } from '../../providers/registry.js';
import { providerEndpointsFor } from '../../workers/createWorker.js';
import { assertLoopback, buildGateway } from '../../gateway/server.js';
import { int, untilSignal, withClient } from '../shared.js';

export function registerGatewayCommands(program: Command): void {
  program
    .command('gateway')
    .description('serve the OpenAI API (POST /v1/chat/completions, GET /v1/models): each request runs as a Switchyard request workflow')
    .option('--port <n>', 'port (0 picks a free one)', int('--port'), 8080)
    .option('--host <ip>', 'address to bind (loopback only until keys exist)', '127.0.0.1')
    .action(async (o: { port: number; host: string }) => {
      assertLoopback(o.host);
      await withClient(async (client, cfg) => {
        // Whether a model's provider is configured, as this process's environment says (workers read their own).
        const providers = new ProviderRegistry(providerEndpointsFor(cfg), cfg.callTimeoutMs);
        const app = buildGateway({ client, catalog: loadCatalog(cfg.catalogPath), configured: (p) => providers.isConfigured(p) });
        const url = await app.listen({ port: o.port, host: o.host });
        process.stderr.write(`gateway listening on ${url}/v1 (task queue ${cfg.taskQueue}); point an OpenAI client's base URL there. Ctrl-C to stop\n`);
        await untilSignal(() => app.close());
      });
    });
}
