/** Builds a Switchyard worker: activities wired to the catalog, providers and ledger. */
import { existsSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { settingsFromConfig } from '../budget/settings.js';
import { HealthTracker } from '../health/tracker.js';
import type { Logger } from 'pino';
import { type ActivityParts, composeActivities, createActivityParts } from '../activities/index.js';
import type { Catalog } from '../catalog/catalog.js';
import { loadCatalog } from '../catalog/loadFile.js';
import type { SwitchyardConfig } from '../config/config.js';
import { FileLedger } from '../ledger/fileLedger.js';
import { type ProviderEndpoints, ProviderRegistry } from '../providers/registry.js';
import { simulatorEndpoints } from '../simulator/server.js';
import { createLogger } from '../util/logger.js';
import { connectionOptions, dataConverterFor } from '../temporal/connection.js';
import { defaultBundlePath, workflowsSourcePath } from './bundle.js';
import { entityTaskQueue } from '../workflows/taskQueues.js';

export interface WorkerOptions {
  readonly config: SwitchyardConfig;
  readonly address: string;
  readonly catalog?: Catalog;
  readonly log?: Logger;
  /** Prebuilt bundle; defaults to dist/workflow-bundle.js, else bundles the sources at start. */
  readonly workflowBundlePath?: string;
  readonly ledger?: FileLedger;
  /** Replace or wrap activities (fault-injection tests); merged over the real ones. */
  readonly activityOverrides?: (real: ActivityParts) => Record<string, unknown>;
}

export interface SwitchyardWorker {
  /** Serves the request task queue. */
  readonly worker: Worker;
  /** Serves the entities' task queue (budget books, provider health; see workflows/taskQueues.ts). */
  readonly entityWorker: Worker;
  /** Runs both workers until shutdown(); rejects as soon as either fails (the other is then stopped). */
  run(): Promise<void>;
  /** Starts a graceful shutdown: the request worker, then (once it has drained) the entity worker. */
  shutdown(): void;
  /** Closes the worker's connections; call after the worker has stopped. */
  close(): Promise<void>;
  readonly ledger: FileLedger;
  readonly catalog: Catalog;
}

/** The provider endpoints a worker with this configuration uses: the simulator's, or the real keys. */
export function providerEndpointsFor(config: Pick<SwitchyardConfig, 'simulatorUrl' | 'providers'>): ProviderEndpoints {
  return config.simulatorUrl ? simulatorEndpoints(config.simulatorUrl) : config.providers;
}

export async function createSwitchyardWorker(opts: WorkerOptions): Promise<SwitchyardWorker> {
  const { config } = opts;
  const log = opts.log ?? createLogger(config.logLevel);
  const catalog = opts.catalog ?? loadCatalog(config.catalogPath);
  const providers = new ProviderRegistry(providerEndpointsFor(config), config.callTimeoutMs);
  const ledger = opts.ledger ?? new FileLedger(config.ledgerPath, (line) => log.warn({ path: config.ledgerPath, line: line.slice(0, 200) }, "ledger: unreadable line skipped (torn write?)"));
  const clientConnection = await Connection.connect(connectionOptions(opts.address, config.access));
  const dataConverter = dataConverterFor(config.access);
  const temporal = new Client({ connection: clientConnection, namespace: config.namespace, dataConverter });
  const parts = createActivityParts({
    temporal,
    taskQueue: config.taskQueue,
    budgetDefaults: settingsFromConfig(config.budget),
    budgetShards: config.budget.shards,
    catalog,
    providers,
    ledger,
    routing: config.routing,
    retry: config.retry,
    modelRetry: config.modelRetry,
    health: config.health.enabled ? new HealthTracker(temporal, config.taskQueue, config.health, log) : undefined,
    tierFallbacks: config.fallbacks,
    callTimeoutMs: config.callTimeoutMs,
    reservationMargin: config.budget.reservationMargin,
    redactProviderMessages: config.access.codec !== undefined,
    log,
  });
  const nativeConnection = await NativeConnection.connect(connectionOptions(opts.address, config.access));
  const bundlePath = opts.workflowBundlePath ?? defaultBundlePath();
  // A test's overrides replace parts by name (same signatures); the paid call is composed of the result.
  const activities = composeActivities({ ...parts, ...opts.activityOverrides?.(parts) });
  const workflows = existsSync(bundlePath) ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: workflowsSourcePath() };
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: config.namespace,
    dataConverter,
    taskQueue: config.taskQueue,
    activities,
    ...workflows,
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    maxCachedWorkflows: config.workflowCacheSize,
    shutdownGraceTime: '5 seconds',
  });
  // Entities are few and long-lived: a small cache holds them all; their alerts are activities.
  const entityWorker = await Worker.create({
    connection: nativeConnection,
    namespace: config.namespace,
    dataConverter,
    taskQueue: entityTaskQueue(config.taskQueue),
    activities,
    ...workflows,
    maxCachedWorkflows: 100,
    shutdownGraceTime: '5 seconds',
  });
  log.info({ taskQueue: config.taskQueue, namespace: config.namespace, address: opts.address, models: catalog.names().length }, 'worker ready');
  if (config.access.codec) log.info({ keyId: config.access.encryptionKeyId }, 'payload encryption on');
  // The request worker stops first: its shutdown waits for running local activities (settlements),
  // which need the entity worker still serving the entities; run() stops that one after it.
  const shutdown = (): void => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  return {
    worker,
    entityWorker,
    shutdown,
    async run() {
      const requests = worker.run().finally(() => {
        if (entityWorker.getState() === 'RUNNING') entityWorker.shutdown();
      });
      const entities = entityWorker.run().catch((e: unknown) => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        throw e;
      });
      // Rejects at the first failure of either (the other is then shutting down).
      await Promise.all([requests, entities]);
    },
    ledger,
    catalog,
    async close() {
      await nativeConnection.close();
      await clientConnection.close();
    },
  };
}
