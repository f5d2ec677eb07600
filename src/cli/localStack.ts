/**
 * The embedded local stack: Temporal dev server (unless TEMPORAL_ADDRESS), the provider simulator
 * (unless provider keys are set) and a worker, all in this process, stopped together.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadCatalog } from '../catalog/loadFile.js';
import { hasProviderKeys, type SwitchyardConfig } from '../config/config.js';
import { faultsFileSchema } from '../simulator/faults.js';
import { Simulator } from '../simulator/server.js';
import { ensureTemporalCli } from '../temporal/cli.js';
import { CODEC_PATH, UiGate } from '../security/uiGate.js';
import { newSignInSecret } from '../security/uiSignIn.js';
import { type DevServer, startDevServer } from '../temporal/devServer.js';
import { parseOrThrow } from '../util/validation.js';
import { readStructuredFile } from '../util/structuredFile.js';
import { createSwitchyardWorker, providerEndpointsFor } from '../workers/createWorker.js';
import type { Catalog } from '../catalog/catalog.js';
import { SwitchyardClient } from '../client/client.js';
import { KeyStore } from '../gateway/keys.js';
import { buildGateway } from '../gateway/server.js';
import { ProviderRegistry } from '../providers/registry.js';

export interface LocalStackOptions {
  readonly config: SwitchyardConfig;
  readonly log: Logger;
  readonly faultsPath?: string | undefined;
  readonly port?: number | undefined;
  readonly uiPort?: number | undefined;
  readonly simulatorPort?: number | undefined;
  readonly latencyScale?: number | undefined;
  /** Start the simulator even when provider keys are set. */
  readonly forceSimulator?: boolean | undefined;
  readonly say?: (line: string) => void;
  /** Called when the embedded dev server exits on its own (the stack cannot go on without it). */
  readonly onServerDied?: (code: number | null) => void;
  /** The SDK's own metrics endpoint, served with the worker's. */
  readonly sdkMetricsUrl?: string | undefined;
  /** The OpenAI-compatible gateway's port on 127.0.0.1 (taken: a free one); null: no gateway. */
  readonly gatewayPort?: number | null | undefined;
}

export interface LocalStack {
  readonly address: string;
  readonly uiUrl: string | undefined;
  /**
   * Encryption on, embedded server: the codec endpoint the UI decodes through (`{uiUrl}/codec`), and
   * the secret that signs the UI's one-time sign-in links (security/uiSignIn.ts).
   */
  readonly codecUrl: string | undefined;
  readonly signInSecret: string | undefined;
  readonly simulatorUrl: string | undefined;
  readonly config: SwitchyardConfig;
  readonly simulator: Simulator | undefined;
  /** The worker's Prometheus endpoint (undefined when metrics are off or the port was taken). */
  readonly metricsUrl: string | undefined;
  /** The gateway's OpenAI base URL (…/v1), and whether it asks for keys. */
  readonly gateway: { readonly url: string; readonly keys: boolean } | undefined;
  stop(): Promise<void>;
}

/** The dev server's UI answers at `uiUrl` with this codec endpoint in its settings, or this throws. */
async function ensureOwnUi(uiUrl: string, codecUrl: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      const settings = (await (await fetch(`${uiUrl}/api/v1/settings`, { signal: AbortSignal.timeout(2_000) })).json()) as { Codec?: { Endpoint?: string } };
      if (settings.Codec?.Endpoint === codecUrl) return;
      throw new Error(`another server answers at ${uiUrl} (its codec endpoint is ${settings.Codec?.Endpoint ?? 'none'})`);
    } catch (e) {
      if (i >= 20 || (e as Error).message.startsWith('another server'))
        throw new Error(`the Temporal UI is not where the dev server was told to put it: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export function loadFaultsFile(path: string): ReturnType<typeof faultsFileSchema.parse> {
  return parseOrThrow(faultsFileSchema, readStructuredFile(path, 'faults file'), path);
}

/** The gateway on loopback, in front of the stack (its port taken: a free one). */
async function startGateway(
  config: SwitchyardConfig,
  address: string,
  catalog: Catalog,
  port: number,
  log: Logger,
  stops: Array<() => Promise<void>>,
): Promise<{ url: string; keys: boolean }> {
  const client = await SwitchyardClient.connect({
    address,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    access: config.access,
    categoryDeadlines: config.deferred.categoryDeadlines,
  });
  stops.push(() => client.close());
  const keys = new KeyStore(client.temporal, config.taskQueue, config.gateway.keyRefreshMs, log);
  await keys.start();
  stops.push(async () => keys.stop());
  const adminKey = process.env.SWITCHYARD_ADMIN_KEY || undefined;
  const providers = new ProviderRegistry(providerEndpointsFor(config), config.callTimeoutMs);
  let relayUrl = '';
  const gw = buildGateway({
    client,
    catalog,
    configured: (p) => providers.isConfigured(p),
    get relayUrl() {
      return relayUrl;
    },
    waitMs: config.gateway.waitMs,
    aliases: config.gateway.aliases,
    keys,
    ...(adminKey ? { adminKey } : {}),
    // Files and batches in the state directory: this machine's workers read batch inputs there.
    files: { dir: join(config.stateDir, 'files') },
    log,
  });
  let url: string;
  try {
    url = await gw.app.listen({ port, host: '127.0.0.1' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    url = await gw.app.listen({ port: 0, host: '127.0.0.1' });
  }
  relayUrl = `${url}/switchyard/relay`;
  stops.push(() => gw.close(5_000));
  return { url: `${url}/v1`, keys: keys.hasKeys || adminKey !== undefined };
}

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const say = opts.say ?? ((l: string) => process.stderr.write(`${l}\n`));
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (e) {
        opts.log.warn({ err: (e as Error).message }, 'error while stopping');
      }
    }
  };
  try {
    const faults = opts.faultsPath ? loadFaultsFile(opts.faultsPath) : undefined;
    const catalog = loadCatalog(opts.config.catalogPath);
    for (const w of catalog.tierWarnings()) opts.log.info({ catalog: w }, 'catalog note');

    let address = opts.config.temporalAddress;
    let server: DevServer | undefined;
    let codecUrl: string | undefined;
    let uiUrl: string | undefined;
    let signInSecret: string | undefined;
    if (!address) {
      const cli = await ensureTemporalCli({ say });
      const codec = opts.config.access.codec;
      let gate: UiGate | undefined;
      if (codec) {
        // Encryption on: the UI is served through a gate on its public port, with the codec
        // endpoint on the same origin; only a signed-in browser decodes (security/uiGate.ts).
        signInSecret = newSignInSecret();
        const g = new UiGate({ codec, namespace: opts.config.namespace, signInSecret });
        gate = g;
        uiUrl = await g.start(opts.uiPort ?? 8233);
        stops.push(() => g.stop());
        codecUrl = `${uiUrl}${CODEC_PATH}`;
      }
      // Behind the gate, the dev server's own UI takes a private port.
      server = await startDevServer({
        cliPath: cli,
        stateDir: opts.config.stateDir,
        port: opts.port,
        uiPort: gate ? 0 : opts.uiPort,
        namespace: opts.config.namespace,
        ...(codecUrl ? { uiCodecEndpoint: codecUrl } : {}),
      });
      if (gate) {
        // Pass through only to our own dev server's UI: its private port was free a moment ago, so
        // check that what answers there is the UI configured with this gate's codec endpoint.
        await ensureOwnUi(server.uiUrl, codecUrl ?? '');
        gate.forwardTo(server.uiUrl);
        const g = gate;
        void server.died.then((code) => {
          g.detach(`its dev server exited (code ${code}); restart \`switchyard up\``);
          opts.onServerDied?.(code);
        });
      } else uiUrl = server.uiUrl;
      const s = server;
      stops.push(() => s.stop());
      address = server.address;
    }

    let simulator: Simulator | undefined;
    let simulatorUrl = opts.config.simulatorUrl;
    if (!simulatorUrl && (opts.forceSimulator || !hasProviderKeys())) {
      simulator = new Simulator({ catalog, latencyScale: opts.latencyScale ?? 0.1, ...(faults ? { faults } : {}) });
      simulatorUrl = await simulator.start(opts.simulatorPort ?? 0);
      const sim = simulator;
      stops.push(() => sim.stop());
    }
    const config: SwitchyardConfig = { ...opts.config, temporalAddress: address, simulatorUrl };
    const sw = await createSwitchyardWorker({ config, address, catalog, log: opts.log, ...(opts.sdkMetricsUrl ? { sdkMetricsUrl: opts.sdkMetricsUrl } : {}) });
    const running = sw.run();
    stops.push(async () => {
      sw.shutdown();
      await running;
      await sw.close();
    });
    // A worker that dies on its own (lost server) should not leave a half-stack running silently.
    running.catch((e: unknown) => opts.log.error({ err: (e as Error).message }, 'worker stopped with an error'));
    const gateway = opts.gatewayPort === null ? undefined : await startGateway(config, address, catalog, opts.gatewayPort ?? 8080, opts.log, stops);
    return { address, uiUrl, codecUrl, signInSecret, simulatorUrl, config, simulator, metricsUrl: sw.metricsUrl, gateway, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
