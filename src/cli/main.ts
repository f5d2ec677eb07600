/** The `switchyard` command line. */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { formatUsd } from '../catalog/pricing.js';
import { loadCatalog } from '../catalog/loadFile.js';
import { PROVIDERS } from '../catalog/schema.js';
import { Simulator } from '../simulator/server.js';
import { createLogger } from '../util/logger.js';
import { ValidationError } from '../util/validation.js';
import { createSwitchyardWorker, providerEndpointsFor } from '../workers/createWorker.js';
import { envHint, ProviderRegistry } from '../providers/registry.js';
import { loadFaultsFile, startLocalStack } from './localStack.js';
import { signInUrl } from '../security/uiSignIn.js';
import { findStackRecord, providerReach, removeStackRecord, type StackRecord, writeStackRecord } from './stackRecord.js';
import { BudgetNotFoundError, type BudgetStatusView, RequestFailedError, SwitchyardClient } from '../client/client.js';
import { ExperimentNotFoundError } from '../client/learningClient.js';
import { isWebhookUrl, MAX_BUDGET_NANOS } from '../budget/book.js';
import { runDemo } from './demo.js';
import { formatSummary } from '../batch/summary.js';
import { config, DEFAULT_ADDRESS, duration, int, num, printTrace, quietTemporal, sdkMetricsAddress, untilSignal, withClient } from './shared.js';
import { registerPipelineCommands } from './pipelineCommands.js';
import { registerCodecCommands } from './codecCommands.js';
import { registerReportCommand } from './reportCommand.js';
import { registerRoutingCommands } from './routingCommands.js';
import { registerLearningCommands } from './learningCommands.js';
import { chatRequestFromFile } from './messagesFile.js';
import { formatTable } from '../util/table.js';
import { entityTaskQueue } from '../workflows/taskQueues.js';

const program = new Command();
program
  .name('switchyard')
  .description('Durable multi-model LLM router on Temporal')
  .showHelpAfterError()
  .configureOutput({ outputError: (s, write) => write(s) });

program
  .command('ask')
  .description('route one request through a workflow and print the answer and its trace')
  .argument('[prompt]', 'the prompt (or --messages)')
  .option(
    '--messages <file>',
    'a chat conversation instead of a prompt: a JSON array of {"role": "system"|"user"|"assistant", "content": "..."}, or an object with "messages" (an OpenAI chat request body)',
  )
  .option('--category <name>', 'budget category (critical, standard, batch, ...)', 'standard')
  .option('--feature <name>', 'the product feature this request serves (cost attribution in metrics, the ledger and reports)')
  .option('--unit <id>', 'the unit an A/B experiment assigns (a user, tenant or session; default: the request id)')
  .option('--max-latency-ms <n>', 'only models with typical latency at or under this', int('--max-latency-ms', 1))
  .option('--min-quality <q>', 'only models with quality at or above this (0..1)', num('--min-quality', 0, 1))
  .addOption(new Option('--provider <p>', 'only this provider').choices([...PROVIDERS]))
  .option('--model <name>', 'pin a catalog model (fallbacks still follow)')
  .option('--max-output-tokens <n>', 'output token budget', int('--max-output-tokens', 1))
  .option('--context-file <path>', 'a document the prompt refers to')
  .option('--request-id <id>', 'idempotency key (default: random)')
  .option('--json-schema <file>', 'the answer must be JSON matching this JSON Schema (else escalate a tier)')
  .option('--max-escalations <n>', 'quality escalations at most', int('--max-escalations'), 2)
  .option('--json', 'print the result as JSON')
  .action(
    async (
      prompt: string | undefined,
      o: {
        messages?: string;
        category: string;
        feature?: string;
        unit?: string;
        maxLatencyMs?: number;
        minQuality?: number;
        provider?: (typeof PROVIDERS)[number];
        model?: string;
        maxOutputTokens?: number;
        contextFile?: string;
        requestId?: string;
        jsonSchema?: string;
        maxEscalations: number;
        json?: boolean;
      },
    ) => {
      await withClient(async (client) => {
        const { readFileSync } = await import('node:fs');
        if (prompt !== undefined && o.messages !== undefined) throw new InvalidArgumentError('ask takes a prompt or --messages FILE, not both (put the prompt in the last user message)');
        if (prompt === undefined && o.messages === undefined) throw new InvalidArgumentError('ask needs a prompt or --messages FILE (one of them)');
        const r = await client.ask({
          ...(o.messages ? chatRequestFromFile(o.messages) : { prompt }),
          category: o.category,
          ...(o.feature !== undefined ? { feature: o.feature } : {}),
          ...(o.unit !== undefined ? { unit: o.unit } : {}),
          requestId: o.requestId ?? randomUUID(),
          ...(o.contextFile ? { context: readFileSync(o.contextFile, 'utf8') } : {}),
          ...(o.maxLatencyMs !== undefined ? { maxLatencyMs: o.maxLatencyMs } : {}),
          ...(o.minQuality !== undefined ? { minQuality: o.minQuality } : {}),
          ...(o.provider ? { provider: o.provider } : {}),
          ...(o.model ? { model: o.model } : {}),
          ...(o.maxOutputTokens !== undefined ? { maxOutputTokens: o.maxOutputTokens } : {}),
          ...(o.jsonSchema ? { quality: { jsonSchema: JSON.parse(readFileSync(o.jsonSchema, 'utf8')) as Record<string, unknown>, maxEscalations: o.maxEscalations } } : {}),
        });
        if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        else printTrace(r);
      });
    },
  );

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
    const sim = new Simulator({ catalog: loadCatalog(cfg.catalogPath), latencyScale: o.latencyScale, seed: o.seed, ...(o.faults ? { faults: loadFaultsFile(o.faults) } : {}) });
    const url = await sim.start(o.port, o.host);
    process.stderr.write(
      `simulator listening on ${url}\n  OpenAI:    ${url}/v1/chat/completions\n  Anthropic: ${url}/v1/messages\n  Gemini:    ${url}/v1beta/models/{model}:generateContent\n  Mistral:   ${url}/v1/chat/completions\nset SWITCHYARD_SIMULATOR_URL=${url} for workers; Ctrl-C to stop\n`,
    );
    await untilSignal(() => sim.stop());
  });

function stackOptions(cmd: Command): Command {
  return cmd
    .option('--state-dir <dir>', 'where the dev server database, ledger and logs live (default SWITCHYARD_STATE_DIR or ~/.local/state/switchyard)')
    .option('--faults <file>', 'simulator fault injection file')
    .option('--port <n>', 'Temporal gRPC port (0 picks a free one)', int('--port'), 7233)
    .option('--ui-port <n>', 'Temporal UI port (0 picks a free one)', int('--ui-port'), 8233)
    .option('--simulator-port <n>', 'simulator port (0 picks a free one)', int('--simulator-port'), 0)
    .option('--latency-scale <x>', 'simulated latency = catalog latency x this', num('--latency-scale', 0, 100), 0.1);
}

interface StackFlags {
  stateDir?: string;
  faults?: string;
  port: number;
  uiPort: number;
  simulatorPort: number;
  latencyScale: number;
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
    ...(s.signInSecret ? { uiSignInSecret: s.signInSecret } : {}),
    providers: Object.fromEntries(PROVIDERS.map((p) => [p, providerReach(endpoints[p], s.simulatorUrl)])),
    startedAt: new Date().toISOString(),
  };
}

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
    .option('--json', 'print a JSON summary and exit, stopping what it started'),
).action(async (o: StackFlags & { requests: number; concurrency: number; json?: boolean }) => {
  const stack = await bootStack(o);
  if (!o.json) process.stderr.write(`${describeStack(stack)}\n\n`);
  const client = await SwitchyardClient.connect({ address: stack.address, namespace: stack.config.namespace, taskQueue: stack.config.taskQueue, access: stack.config.access });
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
    if (o.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      await client.close();
      await stack.stop();
      return;
    }
    process.stdout.write(`${formatSummary(summary)}\n\n`);
    const ui = stack.uiUrl && stack.signInSecret ? `${signInUrl(stack.uiUrl, stack.signInSecret)} (sign-in link: once, 10 minutes)` : (stack.uiUrl ?? stack.address);
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

registerPipelineCommands(program);
registerCodecCommands(program);
registerReportCommand(program);
registerRoutingCommands(program);
registerLearningCommands(program);

program
  .command('escalate')
  .description('re-route a running request now (or re-run a finished one) one tier up, or on --model')
  .argument('<workflow-id>', 'the request workflow id, e.g. llm-<request id>')
  .option('--model <name>', 'a catalog model to use instead of the next tier')
  .option('--reason <text>', 'recorded in the trace')
  .action(async (workflowId: string, o: { model?: string; reason?: string }) => {
    await withClient(async (client, cfg) => {
      if (o.model) loadCatalog(cfg.catalogPath).require(o.model);
      const r = await client.escalate(workflowId, o);
      process.stdout.write(r.action === 'signalled' ? `escalated ${workflowId} (running: re-routing now)\n` : `${workflowId} had finished: re-run as ${r.workflowId}\n`);
    });
  });

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
      process.stdout.write(`${JSON.stringify({ models: rows, configuredBy: stack ? { stack: stack.address, pid: stack.pid } : 'environment', ...(circuitsNote ? { note: circuitsNote } : {}) })}\n`);
      return;
    }
    const table = [['model', 'tier', 'provider', 'configured', 'in $/Mtok', 'out $/Mtok', 'circuit']];
    for (const r of rows) table.push([r.model, r.tier, r.provider, r.configured ? 'yes' : 'no', r.inputUsdPerMTok.toFixed(3), r.outputUsdPerMTok.toFixed(3), r.circuit]);
    process.stdout.write(`${formatTable(table, (i) => i === 4 || i === 5)}\n`);
    const missing = [...new Set(rows.filter((r) => !r.configured).map((r) => r.provider))];
    process.stdout.write(`\n${whose}\n`);
    if (missing.length > 0)
      process.stdout.write(`not configured (the router skips their models): ${missing.map((p) => `${p}: set ${envHint(p)}${stack ? ' where the worker runs' : ''}`).join('; ')}\n`);
    if (circuitsNote) process.stdout.write(`${circuitsNote}\n`);
  });

program
  .command('cancel')
  .description('cancel a running request (its budget reservation is released)')
  .argument('<workflow-id>', 'the request workflow id')
  .action(async (workflowId: string) => {
    await withClient(async (client) => {
      await client.cancel(workflowId);
      process.stdout.write(`cancellation requested for ${workflowId}\n`);
    });
  });

/** A value parser for `name=value` pairs whose value must be one of `allowed`. */
function oneOf<T extends string>(flag: string, allowed: readonly T[]) {
  return (raw: string, key: string): T => {
    if (!(allowed as readonly string[]).includes(raw)) throw new InvalidArgumentError(`${flag} ${key} must be ${allowed.join(', ')}`);
    return raw as T;
  };
}

function parsePairs<T>(flag: string, v: string, parse: (raw: string, key: string) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const part of v.split(',')) {
    const [k, raw] = part.split('=');
    if (!k || raw === undefined) throw new InvalidArgumentError(`${flag} takes name=value pairs separated by commas, e.g. critical=0.4,standard=0.35,batch=0.25`);
    out[k.trim()] = parse(raw.trim(), k.trim());
  }
  return out;
}

function printBudget(st: BudgetStatusView, from?: string): void {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  process.stdout.write(`budget ${st.scope}: ${st.periodicity} period ${st.period.start} .. ${st.period.end} (${st.timeZone})\n`);
  const rows = [['category', 'allocated', 'spent', 'reserved', 'remaining', 'used', 'limit', 'when denied']];
  for (const [name, c] of Object.entries(st.categories)) {
    rows.push([name, formatUsd(c.allocatedNanos), formatUsd(c.spentNanos), formatUsd(c.reservedNanos), formatUsd(c.remainingNanos), pct(c.utilization), c.limit, c.policy]);
  }
  rows.push(['total', formatUsd(st.totalNanos), formatUsd(st.spentNanos), formatUsd(st.reservedNanos), formatUsd(st.remainingNanos), pct(st.utilization), '', '']);
  process.stdout.write(`${formatTable(rows, (i) => i > 0 && i < 6)}\n`);
  for (const u of st.unavailable ?? []) {
    process.stdout.write(
      `WARNING: entity ${u.workflowId} is ${u.status.toLowerCase()}${u.closeTime ? ` since ${u.closeTime}` : ''}: reservations are refused until \`switchyard budget restore --scope ${st.scope}\`\n`,
    );
  }
  if (from) process.stdout.write(`${from}\n`);
}

/** Whose budget a command shows: the entity on this server and task queue (and the local stack, when `up` runs it). */
function budgetSource(): string {
  const cfg = config();
  const address = cfg.temporalAddress ?? DEFAULT_ADDRESS;
  const stack = findStackRecord(address);
  return `from the budget entity on ${address}, task queue ${cfg.taskQueue}${stack ? ` (the local stack, pid ${stack.pid})` : ''}`;
}

const budget = program.command('budget').description('budgets: status, set, reset, history, realloc');
budget
  .command('status')
  .description('allocated, spent, reserved and remaining, per category and in total')
  .option('--scope <name>', 'budget scope', 'default')
  .option('--json', 'print JSON')
  .action(async (o: { scope: string; json?: boolean }) => {
    await withClient(async (client) => {
      const st = await client.budgetStatus(o.scope);
      if (o.json) {
        const categories = Object.fromEntries(
          Object.entries(st.categories).map(([k, c]) => [
            k,
            {
              allocatedNanos: c.allocatedNanos,
              spentNanos: c.spentNanos,
              reservedNanos: c.reservedNanos,
              remainingNanos: c.remainingNanos,
              utilization: c.utilization,
              limit: c.limit,
              policy: c.policy,
            },
          ]),
        );
        process.stdout.write(
          `${JSON.stringify({ scope: st.scope, period: st.period, totalNanos: st.totalNanos, spentNanos: st.spentNanos, reservedNanos: st.reservedNanos, remainingNanos: st.remainingNanos, categories, counters: st.counters, ...(st.unavailable ? { unavailable: st.unavailable } : {}) })}\n`,
        );
      } else printBudget(st, budgetSource());
    });
  });
budget
  .command('set')
  .description('change the budget mid-period (creates the scope if needed)')
  .option('--scope <name>', 'budget scope', 'default')
  .option('--monthly <usd>', 'budget per period in USD', num('--monthly', 0, Math.floor(MAX_BUDGET_NANOS / 1e9)))
  .option('--allocation <pairs>', 'category shares summing to 1, e.g. critical=0.4,standard=0.35,batch=0.25', (v: string) =>
    parsePairs('--allocation', v, (raw, k) => num(`--allocation ${k}`, 0, 1)(raw)),
  )
  .option('--limit <pairs>', 'hard or soft per category, e.g. batch=soft', (v: string) => parsePairs('--limit', v, oneOf('--limit', ['hard', 'soft'] as const)))
  .option('--policy <pairs>', 'when denied: downgrade, wait or reject per category, e.g. batch=wait', (v: string) =>
    parsePairs('--policy', v, oneOf('--policy', ['downgrade', 'wait', 'reject'] as const)),
  )
  .option('--webhook <url>', 'soft-limit alert webhook (POST JSON)', (v: string) => {
    if (!isWebhookUrl(v)) throw new InvalidArgumentError(`--webhook must be an http(s) URL such as https://hooks.example.com/budget, got "${v}"`);
    return v;
  })
  .option('--reallocate-every <duration>', 'move unused allocation between categories on this schedule (e.g. 1d, 6h), with the configured floors; "off" stops it', (v: string) =>
    v === 'off' ? ('off' as const) : duration('--reallocate-every')(v),
  )
  .option('--json', 'print the new status as JSON')
  .action(
    async (o: {
      scope: string;
      monthly?: number;
      allocation?: Record<string, number>;
      limit?: Record<string, 'hard' | 'soft'>;
      policy?: Record<string, 'downgrade' | 'wait' | 'reject'>;
      webhook?: string;
      reallocateEvery?: number | 'off';
      json?: boolean;
    }) => {
      await withClient(async (client, cfg) => {
        const st = await client.setBudget(o.scope, {
          ...(o.monthly !== undefined ? { totalNanos: Math.round(o.monthly * 1e9) } : {}),
          ...(o.allocation ? { allocations: o.allocation } : {}),
          ...(o.limit ? { limits: o.limit } : {}),
          ...(o.policy ? { policies: o.policy } : {}),
          ...(o.webhook ? { webhookUrl: o.webhook } : {}),
          ...(o.reallocateEvery === 'off' ? { reallocation: null } : o.reallocateEvery !== undefined ? { reallocation: { ...cfg.budget.reallocation, everyMs: o.reallocateEvery } } : {}),
        });
        if (o.json) process.stdout.write(`${JSON.stringify(st)}\n`);
        else printBudget(st);
      });
    },
  );
budget
  .command('restore')
  .description('bring back a budget entity that failed or was terminated, from its last state')
  .option('--scope <name>', 'budget scope', 'default')
  .action(async (o: { scope: string }) => {
    await withClient(async (client) => {
      const r = await client.restoreBudget(o.scope);
      for (const e of r.entities) process.stdout.write(`${e.workflowId}: ${e.restored ? `restored (was ${e.was.toLowerCase()})` : `left alone (${e.reason ?? e.was})`}\n`);
      const applied = r.settled.filter((s) => !s.duplicate);
      if (r.settled.length > 0)
        process.stdout.write(
          `settled ${applied.length} spend(s) that requests paid while it was down (${formatUsd(applied.reduce((s, x) => s + x.costNanos, 0))})${r.settled.length > applied.length ? `; ${r.settled.length - applied.length} already settled` : ''}\n`,
        );
    });
  });
budget
  .command('reset')
  .description('close the current period now (its summary is kept) and start from zero')
  .option('--scope <name>', 'budget scope', 'default')
  .action(async (o: { scope: string }) => {
    await withClient(async (client) => {
      const s = await client.resetBudget(o.scope);
      process.stdout.write(`budget ${o.scope} reset; the closed period spent ${formatUsd(s.spentNanos)}\n`);
    });
  });
budget
  .command('history')
  .description('summaries of past periods')
  .option('--scope <name>', 'budget scope', 'default')
  .option('--json', 'print JSON')
  .action(async (o: { scope: string; json?: boolean }) => {
    await withClient(async (client) => {
      const h = await client.budgetHistory(o.scope);
      const moves = await client.reallocations(o.scope);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ periods: h, reallocations: moves })}\n`);
        return;
      }
      if (h.length === 0) process.stdout.write(`budget ${o.scope}: no closed periods yet\n`);
      else
        for (const p of h)
          process.stdout.write(`${new Date(p.start).toISOString()} .. ${new Date(p.end).toISOString()}  spent ${formatUsd(p.spentNanos)} of ${formatUsd(p.totalNanos)}  (${p.closedBy})\n`);
      for (const r of moves)
        process.stdout.write(`${new Date(r.at).toISOString()}  reallocated (${r.by}): ${r.moves.map((m) => `${formatUsd(m.nanos)} ${m.from} -> ${m.to}`).join(', ')}  (${r.why})\n`);
    });
  });
budget
  .command('realloc')
  .description('move unused allocation from categories that will not use it to those forecast to run out (the schedule does this when budget.reallocation is configured)')
  .option('--scope <name>', 'budget scope', 'default')
  .option('--dry-run', 'show the forecast and the moves, change nothing')
  .option('--json', 'print JSON')
  .action(async (o: { scope: string; dryRun?: boolean; json?: boolean }) => {
    await withClient(async (client) => {
      const plans = o.dryRun ? await client.reallocationPlan(o.scope) : await client.reallocate(o.scope);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ scope: o.scope, dryRun: o.dryRun === true, shards: plans })}\n`);
        return;
      }
      for (const p of plans) {
        process.stdout.write(
          `forecast at period end: ${Object.entries(p.forecastNanos)
            .map(([c, n]) => `${c} ${formatUsd(n)}`)
            .join(', ')}\n`,
        );
        if (p.moves.length === 0) process.stdout.write(`nothing to move: ${p.why}\n`);
        else for (const m of p.moves) process.stdout.write(`${o.dryRun ? 'would move' : 'moved'} ${formatUsd(m.nanos)} from ${m.from} to ${m.to}\n`);
      }
    });
  });

function reportError(e: unknown): number {
  if (e instanceof ValidationError) {
    process.stderr.write(`error: ${e.source} is invalid:\n${e.fields.map((f) => `  - ${f}`).join('\n')}\n`);
    return 2;
  }
  if (e instanceof BudgetNotFoundError || e instanceof ExperimentNotFoundError) {
    process.stderr.write(`error: ${e.message}\n`);
    return 1;
  }
  if (e instanceof RequestFailedError) {
    process.stderr.write(`request ${e.workflowId} failed (${e.failureType ?? 'failed'}): ${e.message}\n`);
    for (const a of e.details?.attempts ?? []) process.stderr.write(`  ${a.attemptId} ${a.model}: ${a.outcome}${a.status ? ` ${a.status}` : ''} -> ${a.decision ?? ''}\n`);
    return 1;
  }
  const err = e as Error;
  if (/Unknown encoding: binary\/encrypted/.test(`${err?.message ?? ''} ${(err?.cause as Error | undefined)?.message ?? ''}`)) {
    process.stderr.write(
      "error: these runs' payloads are encrypted and this process has no key: set SWITCHYARD_ENCRYPTION_KEY and SWITCHYARD_ENCRYPTION_KEY_ID as the workers have them (docs/security.md). Every client needs the key: one without it also sends its own requests in plaintext.\n",
    );
    return 1;
  }
  if (/ECONNREFUSED|Failed to connect|connect error|transport error/i.test(err?.message ?? '')) {
    const tlsVars = ['TEMPORAL_TLS', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_API_KEY', 'TEMPORAL_PROFILE'].filter(
      (k) => (process.env[k] ?? '') !== '',
    );
    const address = process.env.TEMPORAL_ADDRESS ?? DEFAULT_ADDRESS;
    const hint = tlsVars.length
      ? `The connection to ${address} uses TLS (${tlsVars.join(', ')} set): check that the CA (TEMPORAL_TLS_CA) signed the server's certificate, that TEMPORAL_TLS_SERVER_NAME matches it, that the cluster accepts your client certificate (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY) or API key, and that the address is right; a server without TLS needs TEMPORAL_TLS=false (an API key turns TLS on).`
      : 'Start the local stack with `switchyard up`, or set TEMPORAL_ADDRESS to your cluster.';
    process.stderr.write(`error: cannot reach Temporal at ${address} (${err.message}).\n${hint}\n`);
    return 1;
  }
  // SDK errors such as "Failed to start Workflow" carry the server's reason as their cause.
  const cause = (err?.cause as Error | undefined)?.message;
  process.stderr.write(`error: ${err?.message ?? String(e)}${cause && cause !== err?.message ? ` (${cause})` : ''}\n`);
  return 1;
}

program.parseAsync(process.argv).then(
  () => process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0),
  (e: unknown) => process.exit(reportError(e)),
);
