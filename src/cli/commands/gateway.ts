/** `switchyard gateway`: the OpenAI-compatible HTTP gateway (src/gateway), in front of the stack TEMPORAL_ADDRESS points at. */
import type { Command } from 'commander';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { loadCatalog } from '../../catalog/loadFile.js';
import { ProviderRegistry } from '../../providers/registry.js';
import { providerEndpointsFor } from '../../providers/endpoints.js';
import { assertBindable, buildGateway } from '../../gateway/server.js';
import { KeyStore } from '../../gateway/keys.js';
import { createLogger } from '../../util/logger.js';
import { int, untilSignal, withClient } from '../shared.js';

/** The relay's URL as workers reach it: this host as bound (a wildcard bind: the machine's name). */
export function defaultRelayUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}/switchyard/relay`;
}

export function registerGatewayCommands(program: Command): void {
  program
    .command('gateway')
    .description(
      'serve the OpenAI API (POST /v1/chat/completions with streaming and tools, GET /v1/models, /v1/files and /v1/batches): each request runs as a Switchyard request workflow',
    )
    .option('--port <n>', 'port (0 picks a free one)', int('--port'), 8080)
    .option('--host <ip>', 'address to bind (beyond loopback only once keys exist: `switchyard keys create`)', '127.0.0.1')
    .option('--relay-url <url>', 'where workers reach this gateway to stream answers (default: http://<host>:<port>/switchyard/relay)')
    .option('--grace <ms>', 'on Ctrl-C/SIGTERM, how long open requests and streams may finish', int('--grace'), 30_000)
    .option('--idle-timeout <ms>', 'a client must send its headers, and may not pause its body, for longer than this', int('--idle-timeout', 100), 30_000)
    .option('--max-streams-per-key <n>', 'streams open at once per key (per gateway instance)', int('--max-streams-per-key', 1), 100)
    .option(
      '--files-dir <dir>',
      "where /v1/files and /v1/batches keep files and batches: a directory every gateway instance and every worker reads (default: the state directory's files/)",
    )
    .option('--batch-concurrency <n>', 'requests of one batch in flight at once', int('--batch-concurrency', 1), 32)
    .action(
      async (o: {
        port: number;
        host: string;
        relayUrl?: string;
        grace: number;
        idleTimeout: number;
        maxStreamsPerKey: number;
        filesDir?: string;
        batchConcurrency: number;
      }) => {
        await withClient(async (client, cfg) => {
          const log = createLogger(cfg.logLevel);
          const keys = new KeyStore(client.temporal, cfg.taskQueue, cfg.gateway.keyRefreshMs, log);
          await keys.start();
          const adminKey = process.env.SWITCHYARD_ADMIN_KEY || undefined;
          assertBindable(o.host, keys.hasKeys || adminKey !== undefined);
          // Whether a model's provider is configured, as this process's environment says (workers read their own).
          const providers = new ProviderRegistry(providerEndpointsFor(cfg), cfg.callTimeoutMs);
          let relayUrl = o.relayUrl;
          const gw = buildGateway({
            client,
            catalog: loadCatalog(cfg.catalogPath),
            configured: (p) => providers.isConfigured(p),
            // Known once listening (a port of 0 is picked then): read per request.
            get relayUrl() {
              return relayUrl ?? '';
            },
            waitMs: cfg.gateway.waitMs,
            aliases: cfg.gateway.aliases,
            keys,
            ...(adminKey ? { adminKey } : {}),
            idleTimeoutMs: o.idleTimeout,
            maxStreamsPerKey: o.maxStreamsPerKey,
            files: { dir: o.filesDir ?? join(cfg.stateDir, 'files'), concurrency: o.batchConcurrency },
            log,
          });
          const url = await gw.app.listen({ port: o.port, host: o.host });
          relayUrl ??= defaultRelayUrl(o.host, new URL(url).port ? Number(new URL(url).port) : o.port);
          process.stderr.write(
            `gateway listening on ${url}/v1 (task queue ${cfg.taskQueue}; ${keys.hasKeys ? 'keys required' : adminKey ? 'admin key set' : keys.loaded ? 'open: no keys yet' : 'the key registry cannot be read yet: 503 until it can'}); point an OpenAI client's base URL there. Ctrl-C to stop\n`,
          );
          await untilSignal(async () => {
            keys.stop();
            await gw.close(o.grace);
          });
        });
      },
    );
}
