/** CLI commands that run parts of the stack: worker, simulator, up (the local stack), demo. */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { type Command } from 'commander';
import { loadCatalog } from '../../catalog/loadFile.js';
import { PROVIDERS } from '../../catalog/schema.js';
import { Simulator } from '../../simulator/server.js';
import { createLogger } from '../../util/logger.js';
import { createSwitchyardWorker, providerEndpointsFor } from '../../workers/createWorker.js';
import { loadFaultsFile, startLocalStack } from '../localStack.js';
import { signInUrl } from '../../security/uiSignIn.js';
import { providerReach, removeStackRecord, type StackRecord, writeStackRecord } from '../stackRecord.js';
import { SwitchyardClient } from '../../client/client.js';
import { runDemo } from '../demo.js';
import { type BatchSummary, formatSummary } from '../../batch/summary.js';
import { formatUsd } from '../../catalog/pricing.js';
import { config, deadlineArg, DEFAULT_ADDRESS, int, num, sdkMetricsAddress, untilSignal } from '../shared.js';
import { quietTemporal } from '../temporalRuntime.js';
import { entityTaskQueue } from '../../workflows/taskQueues.js';

function stackOptions(cmd: Command): Command {
  return cmd
    .option('--state-dir <dir>', 'where the dev server database, ledger and logs live (default SWITCHYARD_STATE_DIR or ~/.local/state/switchyard)')
    .option('--faults <file>', 'simulator fault injection file')
    .option('--port <n>', 'Temporal gRPC port (0 picks a free one)', int('--port'), 7233)
    .option('--ui-port <n>', 'Temporal UI port (0 picks a free one)', int('--ui-port'), 8233)
    .option('--simulator-port <n>', 'simulator port (0 picks a free one)', int('--simulator-port'), 0)
    .option('--latency-scale <x>', 'simulated latency = catalog latency x this', num('--latency-scale', 0, 100), 0.1)
    .option('--gateway-port <n>', 'the OpenAI-compatible gateway on 127.0.0.1 (taken: a free one; 0 picks one)', int('--gateway-port'), 8080)
    .option('--no-gateway', 'do not start the gateway');
}

interface StackFlags {
  stateDir?: string;
  faults?: string;
  port: number;
  uiPort: number;
  simulatorPort: number;
  latencyScale: number;
  gatewayPort: number;
  gateway: boolean;
}

async function bootStack(o: StackFlags) {
  const cfg = config();
  const sdkMetrics = await sdkMetricsAddress(cfg);
  quietTemporal(sdkMetrics);
  const stateDir = o.stateDir ?? cfg.stateDir;
  const log = createLogger(process.env.SWITCHYARD_LOG_LEVEL ?? 'warn');
  const started: { stack?: Awaited<ReturnType<typeof startLocalStack>> } = {};
  // Without its dev server the stack can do nothing: say so and stop, rather than a worker that
  // polls a dead server (and a UI gate in front of a port anyone could take).
  const onServerDied = (code: number | null): void => {
    process.stderr.write(`error: the Temporal dev server exited on its own (code ${code}); its log: ${stateDir}/temporal-server.log. Stopping the stack.\n`);
    void (async () => {
      if (started.stack) removeStackRecord(started.stack.address);
      await started.stack?.stop();
      process.exit(1);
    })();
  };
  started.stack = await startLocalStack({
    config: { ...cfg, stateDir, ledgerPath: process.env.SWITCHYARD_LEDGER ?? `${stateDir}/ledger.jsonl` },
    log,
    onServerDied,
    faultsPath: o.faults,
    port: o.port,
    uiPort: o.uiPort,
    simulatorPort: o.simulatorPort,
    latencyScale: o.latencyScale,
    gatewayPort: o.gateway ? o.gatewayPort : null,
    ...(sdkMetrics ? { sdkMetricsUrl: `http://${sdkMetrics}/metrics` } : {}),
  });
  return started.stack;
}

function describeStack(s: Awaited<ReturnType<typeof bootStack>>): string {
  return [
    `Temporal      ${s.address}${s.uiUrl ? '' : ' (TEMPORAL_ADDRESS)'}`,
    ...(s.uiUrl ? [`Temporal UI   ${s.signInSecret ? signInUrl(s.uiUrl, s.signInSecret) : s.uiUrl}`] : []),
    ...(s.codecUrl
      ? [
          `codec         ${s.codecUrl} (payloads encrypted with key ${s.config.access.encryptionKeyId ?? '?'}; the UI decodes through it for a browser signed in`,
          `              with the link above: it works once, for 10 minutes; \`switchyard ui\` makes another)`,
        ]
      : []),
    `simulator     ${s.simulatorUrl ?? '(off: provider keys set)'}`,
    `worker        task queue ${s.config.taskQueue}`,
    `ledger        ${s.config.ledgerPath}`,
    `metrics       ${s.metricsUrl ?? '(off)'}`,
    `gateway       ${s.gateway ? `${s.gateway.url} (OpenAI API: set an OpenAI client's base URL to it; ${s.gateway.keys ? 'keys required' : 'open on this machine until keys exist: `switchyard keys create`'})` : '(off)'}`,
  ].join('\n');
}

/** What `up` tells the commands of other shells about its stack (see stackRecord.ts). */
function recordOf(s: Awaited<ReturnType<typeof bootStack>>): StackRecord {
  const endpoints = providerEndpointsFor(s.config);
  return {
    pid: process.pid,
    address: s.address,
    namespace: s.config.namespace,
    taskQueue: s.config.taskQueue,
    // Absolute: another shell's working directory is not this one's.
    ledger: s.config.ledgerUrl ? 'postgres (SWITCHYARD_LEDGER_URL)' : resolve(s.config.ledgerPath),
    ledgerKind: s.config.ledgerUrl ? 'postgres' : 'file',
    ...(s.simulatorUrl ? { simulatorUrl: s.simulatorUrl } : {}),
    ...(s.metricsUrl ? { metricsUrl: s.metricsUrl } : {}),
    ...(s.uiUrl ? { uiUrl: s.uiUrl } : {}),
    ...(s.gateway ? { gatewayUrl: s.gateway.url } : {}),
    ...(s.signInSecret ? { uiSignInSecret: s.signInSecret } : {}),
    providers: Object.fromEntries(PROVIDERS.map((p) => [p, providerReach(endpoints[p], s.simulatorUrl)])),
    startedAt: new Date().toISOString(),
  };
}

export function registerStackCommands(program: Command): void {
  program
    .command('worker')
    .description('run a worker (connects to TEMPORAL_ADDRESS, default 127.0.0.1:7233)')
    .option('--task-queue <name>', 'task queue (default SWITCHYARD_TASK_QUEUE or "switchyard")')
    .action(async (o: { taskQueue?: string }) => {
      const cfg = config(o.taskQueue ? { taskQueue: o.taskQueue } : {});
      const sdkMetrics = await sdkMetricsAddress(cfg);
      quietTemporal(sdkMetrics);
      const log = createLogger(cfg.logLevel);
      const address = cfg.temporalAddress ?? DEFAULT_ADDRESS;
      const sw = await createSwitchyardWorker({ config: cfg, address, log, ...(sdkMetrics ? { sdkMetricsUrl: `http://${sdkMetrics}/metrics` } : {}) });
      const running = sw.run();
      process.stderr.write(
        `worker on ${address}, task queue ${cfg.taskQueue} (entities: ${entityTaskQueue(cfg.taskQueue)})${cfg.simulatorUrl ? `, providers simulated at ${cfg.simulatorUrl}` : ''}, metrics ${sw.metricsUrl ?? 'off'}; Ctrl-C to stop\n`,
      );
      await Promise.race([
        running,
        untilSignal(async () => {
          sw.shutdown();
          await running;
        }),
      ]);
      await sw.close();
    });

  program
    .command('simulator')
    .description('run the provider simulator (OpenAI, Anthropic, Gemini, Mistral wire formats)')
    .option('--port <n>', 'port (0 picks one)', int('--port'), 8089)
    .option('--host <ip>', 'address to bind', '127.0.0.1')
    .option('--latency-scale <x>', 'multiplies catalog latency (0 = instant)', num('--latency-scale', 0, 100), 1)
    .option('--faults <file>', 'fault injection file (JSON or YAML), keyed by model or "*"')
    .option('--seed <n>', 'seed for fault draws', int('--seed'), 42)
    .action(async (o: { port: number; host: string; latencyScale: number; faults?: string; seed: number }) => {
      const cfg = config();
      const sim = new Simulator({
        catalog: loadCatalog(cfg.catalogPath),
        latencyScale: o.latencyScale,
        seed: o.seed,
        ...(o.faults ? { faults: loadFaultsFile(o.faults) } : {}),
      });
      const url = await sim.start(o.port, o.host);
      process.stderr.write(
        `simulator listening on ${url}\n  OpenAI:    ${url}/v1/chat/completions\n  Anthropic: ${url}/v1/messages\n  Gemini:    ${url}/v1beta/models/{model}:generateContent\n  Mistral:   ${url}/v1/chat/completions\nset SWITCHYARD_SIMULATOR_URL=${url} for workers; Ctrl-C to stop\n`,
      );
      await untilSignal(() => sim.stop());
    });

  stackOptions(program.command('up').description('run the local stack in the foreground: dev server, simulator, worker')).action(async (o: StackFlags) => {
    const stack = await bootStack(o);
    writeStackRecord(recordOf(stack));
    const reach =
      stack.address === DEFAULT_ADDRESS
        ? `Other commands reach it as they are (TEMPORAL_ADDRESS=${stack.address}).`
        : `For other commands: export TEMPORAL_ADDRESS=${stack.address} (not the default port).`;
    process.stderr.write(`${describeStack(stack)}\n\n${reach} Ctrl-C stops everything.\n`);
    await untilSignal(async () => {
      removeStackRecord(stack.address);
      await stack.stop();
    });
  });

  stackOptions(
    program
      .command('demo')
      .description('start the local stack, route a bundled batch of realistic prompts, print the bill')
      .option('--requests <n>', 'how many requests (the bundled set repeats past 110)', int('--requests', 1), 110)
      .option('--concurrency <n>', 'requests in flight', int('--concurrency', 1), 16)
      .option(
        '--defer [deadline]',
        "then run the same requests again with this deadline (default 1h) through the providers' batch APIs, and print both bills (docs/deferred.md)",
      )
      .option('--json', 'print a JSON summary and exit, stopping what it started'),
  ).action(async (o: StackFlags & { requests: number; concurrency: number; json?: boolean; defer?: string | boolean }) => {
    const deadline = o.defer === undefined || o.defer === false ? undefined : o.defer === true ? '1h' : deadlineArg('--defer')(o.defer);
    const stack = await bootStack(o);
    if (!o.json) process.stderr.write(`${describeStack(stack)}\n\n`);
    const client = await SwitchyardClient.connect({
      address: stack.address,
      namespace: stack.config.namespace,
      taskQueue: stack.config.taskQueue,
      access: stack.config.access,
    });
    try {
      const runId =
        new Date()
          .toISOString()
          .replace(/[-:.TZ]/g, '')
          .slice(0, 14) +
        '-' +
        randomUUID().slice(0, 4);
      const ran = await runDemo(client, { requests: o.requests, concurrency: o.concurrency, runId, progress: !o.json && process.stderr.isTTY === true });
      const summary = { ...ran.summary, temporalActions: await client.temporalActions(ran.workflowIds, stack.config.temporalActionUsdPerMillion) };
      const deferred = deadline === undefined ? undefined : await runDeferredDemo(client, o, runId, deadline);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(deferred ? { ...summary, deferred } : summary)}\n`);
        await client.close();
        await stack.stop();
        return;
      }
      process.stdout.write(`${formatSummary(summary)}\n\n`);
      if (deferred) {
        process.stdout.write(`The same requests with deadline ${deadline} (provider batch APIs where the model has one):\n${formatSummary(deferred)}\n`);
        const live = summary.costNanos;
        process.stdout.write(
          `\nBoth bills: live ${formatUsd(live)}, deferred ${formatUsd(deferred.costNanos)} (${live > 0 ? ((deferred.costNanos / live) * 100).toFixed(1) : '0'}% of live); ${deferred.answeredInBatch} of ${o.requests} answered in a provider batch\n\n`,
        );
      }
      const ui =
        stack.uiUrl && stack.signInSecret ? `${signInUrl(stack.uiUrl, stack.signInSecret)} (sign-in link: once, 10 minutes)` : (stack.uiUrl ?? stack.address);
      process.stdout.write(`See the runs in the Temporal UI: ${ui}  (e.g. filter: LlmTier="economy")\nThe stack stays up for inspection; Ctrl-C to stop.\n`);
      await untilSignal(async () => {
        await client.close();
        await stack.stop();
      });
    } catch (e) {
      await client.close().catch(() => undefined);
      await stack.stop();
      throw e;
    }
  });
}

/**
 * The demo's requests again with a deadline: the collectors are flushed every second so that the
 * demo does not wait out maxAgeMs (a pipeline would let them fill); the result counts the requests
 * a provider batch answered.
 */
async function runDeferredDemo(
  client: SwitchyardClient,
  o: { requests: number; concurrency: number; json?: boolean },
  runId: string,
  deadline: string,
): Promise<BatchSummary & { answeredInBatch: number }> {
  const flusher = setInterval(() => {
    void (async () => {
      for (const c of await client.deferred().status()) if (c.pending > 0) await client.deferred().flush(c.model);
    })().catch(() => undefined);
  }, 1_000);
  try {
    const ran = await runDemo(client, {
      requests: o.requests,
      concurrency: o.concurrency,
      runId: `${runId}-defer`,
      progress: !o.json && process.stderr.isTTY === true,
      deadline,
    });
    let answeredInBatch = 0;
    for (const id of ran.workflowIds) if ((await client.result(id).catch(() => undefined))?.deferred?.outcome === 'answered') answeredInBatch += 1;
    return { ...ran.summary, answeredInBatch };
  } finally {
    clearInterval(flusher);
  }
}
