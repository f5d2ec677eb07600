/** Builds a Switchyard worker: activities wired to the catalog, providers and ledger. */
import { providerEndpointsFor } from '../providers/endpoints.js';
import { PolicyCache } from '../learning/worker/policyCache.js';
import { ClassifyPool } from '../activities/request/classifyPool.js';
import { OutcomeReporter } from '../learning/worker/outcomeReporter.js';
import { controlSettingsFrom, signalRouting } from '../learning/worker/routingHandle.js';
import { configureSignal } from '../workflows/routing/contract.js';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { settingsFromConfig } from '../budget/settings.js';
import { HealthTracker } from '../health/tracker.js';
import type { Logger } from 'pino';
import { type ActivityParts, composeActivities, createActivityParts } from './activities.js';
import type { Catalog } from '../catalog/catalog.js';
import { loadCatalog } from '../catalog/loadFile.js';
import type { SwitchyardConfig } from '../config/config.js';
import type { FileLedger } from '../ledger/fileLedger.js';
import { openSpendLedger } from '../ledger/open.js';
import { fileSpendLedger, type SpendLedger } from '../ledger/spendLedger.js';
import { ProviderRegistry } from '../providers/registry.js';
import { createLogger } from '../util/logger.js';
import { requireNoPlaintextRuns, requireReadableHistories } from '../temporal/keyCheck.js';
import { connectionOptions, dataConverterFor } from '../temporal/connection.js';
import { workflowCode } from './bundle.js';
import { entityTaskQueue } from '../workflows/taskQueues.js';
import { SEARCH_ATTRIBUTES } from '../workflows/request/contract.js';
import { type BudgetGaugeRow, SwitchyardMetrics } from '../metrics/metrics.js';
import { type MetricsServer, startMetricsServer } from '../metrics/server.js';
import { combineStatuses, shardWorkflowId } from '../budget/shards.js';
import type { BudgetStatus } from '../budget/book.js';
import { statusQuery } from '../workflows/budget/contract.js';
import type { SwitchyardSinks } from '../workflows/sinks.js';
import type { InjectedSinks } from '@temporalio/worker';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';

export interface WorkerOptions {
  readonly config: SwitchyardConfig;
  readonly address: string;
  readonly catalog?: Catalog;
  readonly log?: Logger;
  /** Prebuilt bundle; defaults to dist/workflow-bundle.js, else bundles the sources at start. */
  readonly workflowBundlePath?: string;
  readonly ledger?: FileLedger;
  /** The SDK's own metrics endpoint (Runtime telemetry), served with the worker's at /metrics. */
  readonly sdkMetricsUrl?: string;
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
  /** The spend ledger (closed by close()). */
  readonly ledger: SpendLedger;
  readonly catalog: Catalog;
  readonly metrics: SwitchyardMetrics;
  /** The cached routing policy, and the reporter of outcomes to the routing entity. */
  readonly policy: PolicyCache;
  /** Where large prompts are classified (worker threads). */
  readonly classifier: ClassifyPool;
  readonly reporter: OutcomeReporter;
  /** Where Prometheus scrapes this worker (undefined when metrics are off or the port was taken). */
  readonly metricsUrl: string | undefined;
}

/** The provider endpoints a worker with this configuration uses: the simulator's, or the real keys. */
/**
 * How long a workflow task waits on a worker's own (sticky) queue before any worker may take it.
 * The SDK's default, 10 s, is what a stopped worker's runs waited before another worker carried
 * them on (the cluster test's slow mode, traced: one WorkflowTaskTimedOut after 10,003 ms). Request
 * histories are small, so a task that moves to another worker replays quickly.
 */
const STICKY_TIMEOUT = '3 seconds';

export { providerEndpointsFor };

/**
 * A request upserts its search attributes when it ends: one the namespace lacks would fail that
 * workflow task again and again. A worker refuses to start instead, naming the commands to run.
 */
async function requireSearchAttributes(connection: Connection, namespace: string, log: Logger): Promise<void> {
  let have: Record<string, unknown>;
  try {
    have = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  } catch (e) {
    // Some clusters do not let a worker's credentials list them: say so, and go on.
    log.warn(
      { err: (e as Error).message },
      "could not list the namespace's search attributes; make sure these exist: " + SEARCH_ATTRIBUTES.map((k) => k.name).join(', '),
    );
    return;
  }
  const kind = (t: string): string => ({ KEYWORD: 'Keyword', INT: 'Int', DOUBLE: 'Double' })[t] ?? t;
  const missing = SEARCH_ATTRIBUTES.filter((k) => !(k.name in have));
  const mistyped = SEARCH_ATTRIBUTES.filter((k) => k.name in have && have[k.name] !== encodeSearchAttributeIndexedValueType(k.type));
  if (mistyped.length > 0) {
    throw new Error(
      `namespace "${namespace}" has the search attributes ${mistyped.map((k) => `${k.name} (must be ${kind(k.type)})`).join(', ')} with another type; Switchyard's workflows could not set them: remove them and create them with these types, or use another namespace`,
    );
  }
  if (missing.length === 0) return;
  throw new Error(
    `namespace "${namespace}" lacks the search attributes ${missing.map((k) => k.name).join(', ')} that Switchyard's workflows set; create them first (once per namespace), then start the worker:\n` +
      missing.map((k) => `  temporal operator search-attribute create --namespace ${namespace} --name ${k.name} --type ${kind(k.type)}`).join('\n'),
  );
}

/** How long a scrape waits for a budget entity's status (an entity that does not answer is left out). */
const BUDGET_POLL_MS = 2_000;
/** Outbox runs listed at most, per metrics read (see ledgerBacklog). */
const LEDGER_BACKLOG_LIST = 5_000;

export async function createSwitchyardWorker(opts: WorkerOptions): Promise<SwitchyardWorker> {
  const { config } = opts;
  const log = opts.log ?? createLogger(config.logLevel);
  const catalog = opts.catalog ?? loadCatalog(config.catalogPath);
  const providers = new ProviderRegistry(providerEndpointsFor(config), config.callTimeoutMs);
  const clientConnection = await Connection.connect(connectionOptions(opts.address, config.access));
  const dataConverter = dataConverterFor(config.access);
  const temporal = new Client({ connection: clientConnection, namespace: config.namespace, dataConverter });
  try {
    await requireSearchAttributes(clientConnection, config.namespace, log);
    if (config.access.encryptionKeys)
      await requireReadableHistories(
        clientConnection,
        config.namespace,
        [config.taskQueue, entityTaskQueue(config.taskQueue)],
        config.access.encryptionKeys,
        log,
      );
    if (config.access.encryptionRequired)
      await requireNoPlaintextRuns(clientConnection, config.namespace, [config.taskQueue, entityTaskQueue(config.taskQueue)], log);
  } catch (e) {
    await clientConnection.close();
    throw e;
  }
  let ledger: SpendLedger;
  try {
    ledger = opts.ledger ? fileSpendLedger(opts.ledger) : await openSpendLedger(config, log);
  } catch (e) {
    await clientConnection.close();
    throw e;
  }
  const health = config.health.enabled ? new HealthTracker(temporal, config.taskQueue, config.health, log) : undefined;
  const shards = Math.max(1, config.budget.shards);
  /** The budgets of the scopes this worker charged, all shards at once; a scrape waits at most BUDGET_POLL_MS. */
  const budgets = async (scopes: readonly string[]): Promise<BudgetGaugeRow[]> => {
    const status = async (scope: string): Promise<BudgetStatus | undefined> => {
      const ids = Array.from({ length: shards }, (_, shard) => shardWorkflowId(config.taskQueue, scope, shard, shards));
      const found = (
        await Promise.all(
          ids.map((id) => temporal.withDeadline(Date.now() + BUDGET_POLL_MS, () => temporal.workflow.getHandle(id).query(statusQuery)).catch(() => undefined)),
        )
      ).filter((s) => s !== undefined);
      return found.length > 0 ? combineStatuses(found) : undefined;
    };
    const statuses = await Promise.all(scopes.map(async (scope) => ({ scope, st: await status(scope) })));
    return statuses.flatMap(({ scope, st }) =>
      Object.entries(st?.categories ?? {}).map(([category, c]) => ({
        scope,
        category,
        allocatedNanos: c.allocatedNanos,
        spentNanos: c.spentNanos,
        reservedNanos: c.reservedNanos,
      })),
    );
  };
  const controlSettings = controlSettingsFrom(config);
  // The outbox as the server sees it: every worker reports the same backlog, whichever deferred a
  // line or wrote it. Listing stops at LEDGER_BACKLOG_LIST (newest first: in a longer outage the
  // count is exact and the lag is that of the oldest listed, still far over the alert's bound).
  const ledgerBacklog = async (): Promise<{ pending: number; oldestDeferredAt: number | undefined }> => {
    const query = `WorkflowType = 'ledgerOutbox' AND ExecutionStatus = 'Running' AND TaskQueue = '${config.taskQueue.replace(/['\\]/g, '\\$&')}'`;
    return temporal.withDeadline(Date.now() + BUDGET_POLL_MS, async () => {
      const { count } = await temporal.workflow.count(query);
      let oldest: number | undefined;
      let listed = 0;
      if (count > 0) {
        for await (const w of temporal.workflow.list({ query, pageSize: 1_000 })) {
          oldest = Math.min(oldest ?? Number.POSITIVE_INFINITY, w.startTime.getTime());
          if (++listed >= LEDGER_BACKLOG_LIST) break;
        }
      }
      return { pending: count, oldestDeferredAt: oldest };
    });
  };
  const metrics = new SwitchyardMetrics(
    { budgets, ledgerBacklog, ...(health ? { circuits: () => health.knownCircuits() } : {}), models: catalog.names() },
    { maxLabelValues: config.metrics.maxLabelValues },
  );
  const policy = new PolicyCache(temporal, config.taskQueue, config.learning.policyCacheMs, log, (reason) => metrics.policyStale(reason));
  const reporter = new OutcomeReporter(temporal, config.taskQueue, () => controlSettings, config.learning.reportEveryMs, log);
  const classifier = new ClassifyPool(log);
  const parts = createActivityParts({
    temporal,
    classifier,
    taskQueue: config.taskQueue,
    budgetDefaults: settingsFromConfig(config.budget),
    budgetShards: config.budget.shards,
    catalog,
    providers,
    ledger,
    routing: config.routing,
    retry: config.retry,
    modelRetry: config.modelRetry,
    health,
    policy,
    controlSettings: () => controlSettings,
    metrics,
    tierFallbacks: config.fallbacks,
    callTimeoutMs: config.callTimeoutMs,
    reservationMargin: config.budget.reservationMargin,
    deferred: config.deferred,
    redactProviderMessages: config.access.codec !== undefined,
    log,
  });
  const nativeConnection = await NativeConnection.connect(connectionOptions(opts.address, config.access));
  // A test's overrides replace parts by name (same signatures); the paid call is composed of the result.
  const activities = composeActivities({ ...parts, ...opts.activityOverrides?.(parts) });
  // With encryption on, the bundle whose failure converter matches dataConverter's (encoded failures).
  const workflows = workflowCode({
    encodedFailures: config.access.codec !== undefined,
    ...(opts.workflowBundlePath ? { bundlePath: opts.workflowBundlePath } : {}),
  });
  // What a request reports when it ends, counted once: the SDK skips sinks in replay.
  const sinks: InjectedSinks<SwitchyardSinks> = {
    metrics: {
      requestEnded: {
        fn: (info, e) => {
          if (!metrics.requestEnded(info.runId, e)) return;
          if (e.learning) reporter.record(e.learning);
        },
        callDuringReplay: false,
      },
    },
  };
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: config.namespace,
    dataConverter,
    taskQueue: config.taskQueue,
    activities,
    sinks,
    ...workflows,
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    maxCachedWorkflows: config.workflowCacheSize,
    shutdownGraceTime: '5 seconds',
    stickyQueueScheduleToStartTimeout: STICKY_TIMEOUT,
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
    stickyQueueScheduleToStartTimeout: STICKY_TIMEOUT,
  });
  let metricsServer: MetricsServer | undefined;
  if (config.metrics.enabled) {
    try {
      metricsServer = await startMetricsServer(metrics.registry, config.metrics.port, config.metrics.host, opts.sdkMetricsUrl);
    } catch (e) {
      // Requests matter more than metrics: the worker serves on, and says how to fix it.
      log.error({ err: (e as Error).message }, 'metrics not served');
    }
  }
  reporter.start();
  policy.start();
  // The routing entity takes this worker's tuner and detector settings (the last worker started sets them).
  await signalRouting(temporal, config.taskQueue, controlSettings, configureSignal, [controlSettings]).catch((e: unknown) =>
    log.warn({ err: (e as Error).message }, 'routing entity not configured; it keeps its settings'),
  );
  log.info(
    { taskQueue: config.taskQueue, namespace: config.namespace, address: opts.address, models: catalog.names().length, metrics: metricsServer?.url ?? 'off' },
    'worker ready',
  );
  if (config.access.codec)
    log.info({ keyId: config.access.encryptionKeyId, fingerprint: config.access.encryptionKeys?.active.fingerprint }, 'payload encryption on');
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
    metrics,
    metricsUrl: metricsServer?.url,
    policy,
    reporter,
    classifier,
    async close() {
      policy.stop();
      await reporter.close();
      await classifier.close();
      await metricsServer?.close({ awaitScrapeMs: config.metrics.finalScrapeMs });
      await ledger.close();
      await nativeConnection.close();
      await clientConnection.close();
    },
  };
}
