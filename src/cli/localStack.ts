/**
 * The embedded local stack: Temporal dev server (unless TEMPORAL_ADDRESS), the provider simulator
 * (unless provider keys are set) and a worker, all in this process, stopped together.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { loadCatalog } from '../catalog/loadFile.js';
import { hasProviderKeys, type SwitchyardConfig } from '../config/config.js';
import { faultsFileSchema } from '../simulator/faults.js';
import { Simulator } from '../simulator/server.js';
import { ensureTemporalCli } from '../temporal/cli.js';
import { CodecServer } from '../security/codecServer.js';
import { type DevServer, startDevServer } from '../temporal/devServer.js';
import { parseOrThrow } from '../util/validation.js';
import { readStructuredFile } from '../util/structuredFile.js';
import { createSwitchyardWorker } from '../workers/createWorker.js';

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
  /** Port of the codec endpoint the embedded UI decodes through (encryption on; 0 picks one). */
  readonly codecPort?: number | undefined;
  /** The SDK's own metrics endpoint, served with the worker's. */
  readonly sdkMetricsUrl?: string | undefined;
}

export interface LocalStack {
  readonly address: string;
  readonly uiUrl: string | undefined;
  /** The remote codec endpoint for the UI and `temporal --codec-endpoint` (encryption on, embedded server). */
  readonly codecUrl: string | undefined;
  readonly simulatorUrl: string | undefined;
  readonly config: SwitchyardConfig;
  readonly simulator: Simulator | undefined;
  /** The worker's Prometheus endpoint (undefined when metrics are off or the port was taken). */
  readonly metricsUrl: string | undefined;
  stop(): Promise<void>;
}

export function loadFaultsFile(path: string): ReturnType<typeof faultsFileSchema.parse> {
  return parseOrThrow(faultsFileSchema, readStructuredFile(path, 'faults file'), path);
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
    let codecServer: CodecServer | undefined;
    let codecUrl: string | undefined;
    if (!address) {
      const cli = await ensureTemporalCli({ say });
      const codec = opts.config.access.codec;
      if (codec) {
        // Encryption on: the embedded UI decodes through a codec endpoint this stack runs.
        // On loopback and without a token: the embedded UI cannot send one (see README "Encryption").
        // Its URL carries a random path (a capability): a process that does not know it cannot
        // decode (the embedded UI cannot send a token; see README "Encryption").
        codecServer = new CodecServer({ codec, allowedOrigins: [], namespace: opts.config.namespace, pathSecret: randomBytes(16).toString('hex') });
        const cs = codecServer;
        codecUrl = await cs.start(opts.codecPort ?? 0);
        stops.push(() => cs.stop());
      }
      server = await startDevServer({ cliPath: cli, stateDir: opts.config.stateDir, port: opts.port, uiPort: opts.uiPort, namespace: opts.config.namespace, ...(codecUrl ? { uiCodecEndpoint: codecUrl } : {}) });
      if (codecServer && server.uiUrl) {
        const ui = new URL(server.uiUrl);
        codecServer.allowOrigin(ui.origin);
        codecServer.allowOrigin(`${ui.protocol}//localhost:${ui.port}`);
      }
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
    return { address, uiUrl: server?.uiUrl, codecUrl, simulatorUrl, config, simulator, metricsUrl: sw.metricsUrl, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
