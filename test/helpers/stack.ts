/**
 * A per-file test stack on the shared dev server: its own simulator (real HTTP), ledger file, task
 * queue and worker, running until the file's tests are done.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, inject } from 'vitest';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { defaultCatalog, type Catalog } from '../../src/catalog/catalog.js';
import { loadConfig, type SwitchyardConfig } from '../../src/config/config.js';
import type { ActivityParts as Activities } from '../../src/workers/activities.js';
import { SwitchyardClient } from '../../src/client/client.js';
import { settingsFromConfig } from '../../src/budget/settings.js';
import { FileLedger } from '../../src/ledger/fileLedger.js';
import type { ClassifyPool } from '../../src/activities/request/classifyPool.js';
import { Simulator } from '../../src/simulator/server.js';
import type { FaultsFile } from '../../src/simulator/faults.js';
import type { ProviderEndpoints } from '../../src/providers/registry.js';
import { createSwitchyardWorker } from '../../src/workers/createWorker.js';
import { createLogger } from '../../src/util/logger.js';
import { controlSettingsFrom } from '../../src/learning/worker/routingHandle.js';
import { bin } from './cli.js';

export interface TestStack {
  readonly client: SwitchyardClient;
  readonly simulator: Simulator;
  readonly ledger: FileLedger;
  readonly config: SwitchyardConfig;
  readonly catalog: Catalog;
  readonly address: string;
  readonly worker: Worker;
  /** Where the worker classifies large prompts. */
  readonly classifier: ClassifyPool;
  /** The worker's /metrics URL. */
  readonly metricsUrl: string;
  /** Stops the worker and starts a fresh one (empty workflow cache) on the same task queue. */
  restartWorker(activityOverrides?: (real: Activities) => Record<string, unknown>): Promise<void>;
  /** Stops the worker (another process serves the task queue until restartWorker). */
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

let counter = 0;
let runtimeInstalled = false;

function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Already installed by another helper in this process.
  }
}

export interface TestStackOptions {
  faults?: FaultsFile;
  config?: Partial<SwitchyardConfig>;
  latencyScale?: number;
  /**
   * Configure providers as a user with real keys would (the simulator's URL standing in for each
   * provider's), instead of the simulator for every provider.
   */
  providers?: (simulatorUrl: string) => ProviderEndpoints;
}

export async function startTestStack(opts: TestStackOptions = {}): Promise<TestStack> {
  quietRuntime();
  const address = inject('temporalAddress');
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-stack-'));
  const catalog = defaultCatalog();
  const simulator = new Simulator({ catalog, latencyScale: opts.latencyScale ?? 0, recordRequests: true, ...(opts.faults ? { faults: opts.faults } : {}) });
  const simulatorUrl = await simulator.start();
  counter += 1;
  const taskQueue = `test-${process.pid}-${counter}-${Date.now()}`;
  const config = loadConfig(
    { SWITCHYARD_LOG_LEVEL: 'warn' },
    {
      taskQueue,
      stateDir: dir,
      ledgerPath: join(dir, 'ledger.jsonl'),
      simulatorUrl: opts.providers ? undefined : simulatorUrl,
      ...(opts.providers ? { providers: opts.providers(simulatorUrl) } : {}),
      retry: {
        maximumAttempts: 3,
        initialIntervalMs: 100,
        backoffCoefficient: 2,
        maximumIntervalMs: 1_000,
        maxRetryAfterMs: 60_000,
        maxRateLimitWaitMs: 120_000,
      },
      callTimeoutMs: 10_000,
      // Any free port: test files run side by side.
      metrics: { enabled: true, port: 0, host: '127.0.0.1', maxLabelValues: 100, finalScrapeMs: 0 },
      ...opts.config,
    },
  );
  const ledger = new FileLedger(config.ledgerPath);
  const makeWorker = (overrides?: (real: Activities) => Record<string, unknown>) =>
    createSwitchyardWorker({
      config,
      address,
      catalog,
      ...(config.ledgerUrl ? {} : { ledger }),
      workflowBundlePath: inject('workflowBundlePath'),
      log: createLogger('error'),
      ...(overrides ? { activityOverrides: overrides } : {}),
    });
  let sw: Awaited<ReturnType<typeof makeWorker>> | undefined = await makeWorker();
  let running = sw.run();
  const stopWorker = async (): Promise<void> => {
    if (!sw) return;
    sw.shutdown();
    await running;
    await sw.close();
    sw = undefined;
  };
  const client = await SwitchyardClient.connect({
    address,
    taskQueue,
    budgetDefaults: settingsFromConfig(config.budget),
    budgetShards: config.budget.shards,
    access: config.access,
    controlSettings: controlSettingsFrom(config),
    categoryDeadlines: config.deferred.categoryDeadlines,
  });
  return {
    client,
    simulator,
    ledger,
    config,
    catalog,
    address,
    get worker() {
      if (!sw) throw new Error("the test stack's worker is stopped");
      return sw.worker;
    },
    get classifier() {
      if (!sw) throw new Error("the test stack's worker is stopped");
      return sw.classifier;
    },
    get metricsUrl() {
      if (!sw?.metricsUrl) throw new Error("the test stack's worker serves no metrics");
      return sw.metricsUrl;
    },
    stopWorker,
    async restartWorker(overrides) {
      await stopWorker();
      sw = await makeWorker(overrides);
      running = sw.run();
    },
    async stop() {
      await stopWorker();
      await client.close();
      await simulator.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A test stack for the enclosing `describe` (or the file): started before its tests, stopped after
 * them. The returned object stands for the stack; reading it before the start (at collection time)
 * throws. Options may be a function, read when the stack starts (after earlier hooks ran).
 */
export function useTestStack(opts: TestStackOptions | (() => TestStackOptions) = {}, startTimeoutMs?: number): TestStack {
  let current: TestStack | undefined;
  beforeAll(async () => {
    current = await startTestStack(typeof opts === 'function' ? opts() : opts);
  }, startTimeoutMs);
  afterAll(async () => {
    await current?.stop();
    current = undefined;
  });
  return new Proxy({} as TestStack, {
    get(_target, key) {
      if (!current) throw new Error(`the test stack was read (${String(key)}) before it started or after it stopped: read it inside a test or a later hook`);
      const v: unknown = Reflect.get(current, key);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(current) : v;
    },
  });
}

/**
 * A worker in its own process on the stack's task queue (the stack's own worker stopped first), so
 * a test can SIGKILL it; resolves once it polls. `env` adds to its environment (a config file, say).
 */
export async function spawnWorker(stack: TestStack, env: Record<string, string> = {}): Promise<ChildProcess> {
  await stack.stopWorker();
  const worker = spawn(process.execPath, [bin, 'worker'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: stack.address,
      SWITCHYARD_TASK_QUEUE: stack.config.taskQueue,
      SWITCHYARD_SIMULATOR_URL: stack.simulator.url,
      SWITCHYARD_STATE_DIR: stack.config.stateDir,
      SWITCHYARD_LEDGER: stack.config.ledgerPath,
      SWITCHYARD_METRICS_PORT: 'off',
      SWITCHYARD_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    worker.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (/Ctrl-C to stop/.test(err)) resolve();
    });
    worker.once('exit', (code) => reject(new Error(`worker exited (${code}): ${err}`)));
  });
  return worker;
}

/** SIGKILLs a worker process and waits for it to be gone. */
export async function killWorker(worker: ChildProcess): Promise<void> {
  if (worker.exitCode !== null || worker.signalCode !== null) return;
  const gone = new Promise((r) => worker.once('exit', r));
  worker.kill('SIGKILL');
  await gone;
}
