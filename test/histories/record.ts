/**
 * Records the histories of representative runs into test/histories/, for the replay tests: a
 * fresh dev server, simulator and worker run each scenario, and each workflow's history is saved as
 * JSON. Run with `npm run record-histories` (writes only files that do not exist yet: a checked-in
 * history is the record of an older workflow version, and must keep replaying; never overwrite it).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { ApplicationFailure } from '@temporalio/activity';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { loadConfig } from '../../src/config/config.js';
import { settingsFromConfig } from '../../src/budget/settings.js';
import { RequestFailedError, SwitchyardClient } from '../../src/client/client.js';
import { shardWorkflowId } from '../../src/budget/shards.js';
import { Simulator } from '../../src/simulator/server.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { startDevServer } from '../../src/temporal/devServer.js';
import { createLogger } from '../../src/util/logger.js';
import { createSwitchyardWorker } from '../../src/workers/createWorker.js';
import { healthWorkflowId } from '../../src/workflows/health/contract.js';
import { batchWorkflowId } from '../../src/workflows/batch/contract.js';
import { prepareDetachedBatch } from '../../src/batch/detached.js';
import type { RequestInput } from '../../src/workflows/request/contract.js';
import { fileConfigSchema } from '../../src/config/config.js';
import { controlSettingsFrom } from '../../src/learning/worker/routingHandle.js';
import { experimentWorkflowId } from '../../src/workflows/experiment/contract.js';
import { routingWorkflowId } from '../../src/workflows/routing/contract.js';
import { keyRegistryWorkflowId } from '../../src/workflows/keys/contract.js';
import { budgetWorkflowId } from '../../src/workflows/budget/contract.js';
import { collectorWorkflowId, providerBatchWorkflowId } from '../../src/workflows/deferred/contract.js';
import { buildGateway } from '../../src/gateway/server.js';
import { faultSpecSchema } from '../../src/simulator/faults.js';
import type { AddressInfo } from 'node:net';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'histories');
const prefix = process.env.HISTORY_PREFIX ?? 'v1';

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const state = mkdtempSync(join(tmpdir(), 'switchyard-record-'));
  const cli = await ensureTemporalCli();
  const server = await startDevServer({ cliPath: cli, stateDir: state, port: 0, uiPort: 0 });
  const catalog = defaultCatalog();
  const simulator = new Simulator({ catalog, latencyScale: 0 });
  const simulatorUrl = await simulator.start();
  const config = loadConfig(
    { SWITCHYARD_LOG_LEVEL: 'warn' },
    {
      taskQueue: 'record',
      stateDir: state,
      ledgerPath: join(state, 'ledger.jsonl'),
      simulatorUrl,
      retry: {
        maximumAttempts: 2,
        initialIntervalMs: 100,
        backoffCoefficient: 2,
        maximumIntervalMs: 1_000,
        maxRetryAfterMs: 60_000,
        maxRateLimitWaitMs: 120_000,
      },
      learning: fileConfigSchema.parse({ learning: { reportEveryMs: 200, policyCacheMs: 200 } }).learning,
      deferred: { maxLines: 100, maxAgeMs: 300, pollMinMs: 100, pollMaxMs: 500, leaveMarginMs: 1_000, upgrade: 'no_dearer', categoryDeadlines: {} },
    },
  );
  // The scope whose budget entity is lost before its provider batch is delivered ('deferred-batch-entity-unsettled').
  let loseBudget: ((scope: string) => Promise<void>) | undefined;
  const sw = await createSwitchyardWorker({
    config,
    address: server.address,
    catalog,
    log: createLogger('warn'),
    activityOverrides: (real) => ({
      deliverProviderBatch: async (input: Parameters<typeof real.deliverProviderBatch>[0]) => {
        if (input.lines.some((l) => l.scope === 'hist-gone')) await loseBudget?.('hist-gone');
        if (!input.lines.some((l) => l.scope === 'hist-gone-fail')) return real.deliverProviderBatch(input);
        // 'deferred-batch-entity-unsettled-failed': a line whose request does not exist fails the
        // delivery after it handed the real line over (non-retryable here, to skip the retries' backoff).
        await loseBudget?.('hist-gone-fail');
        const ghost = { ...input.lines[0]!, id: 'ghost-line', workflowId: 'llm-hist-ghost', runId: '00000000-0000-4000-8000-000000000000' };
        try {
          return await real.deliverProviderBatch({ ...input, lines: [...input.lines, ghost] });
        } catch (e) {
          const f = e as ApplicationFailure;
          throw ApplicationFailure.create({ message: f.message, type: f.type ?? 'Error', nonRetryable: true, details: f.details ?? [] });
        }
      },
    }),
  });
  const running = sw.run();
  const client = await SwitchyardClient.connect({
    address: server.address,
    taskQueue: 'record',
    budgetDefaults: settingsFromConfig(config.budget),
    controlSettings: controlSettingsFrom(config),
  });
  const saved: string[] = [];
  // HISTORY_ONLY=a,b records only those scenarios (a new prefix for one new shape, not every file again).
  const only = process.env.HISTORY_ONLY?.split(',').filter(Boolean);
  const save = async (name: string, workflowId: string): Promise<void> => {
    if (only && !only.includes(name)) return;
    const file = join(outDir, `${prefix}-${name}.json`);
    if (existsSync(file)) {
      process.stderr.write(`kept ${file} (exists)\n`);
      return;
    }
    // The CLI writes the history as proto JSON, the format Worker.runReplayHistories reads.
    const json = execFileSync(cli, ['workflow', 'show', '--address', server.address, '--workflow-id', workflowId, '--output', 'json'], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    writeFileSync(file, json.endsWith('\n') ? json : `${json}\n`);
    saved.push(file);
  };
  const run = async (name: string, input: RequestInput): Promise<void> => {
    try {
      await client.ask(input);
    } catch (e) {
      if (!(e instanceof RequestFailedError)) throw e;
    }
    await save(name, `llm-${input.requestId}`);
  };
  const script = (model: string, outcomes: Array<number | string>): void =>
    simulator.setFaults({ [model]: { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: outcomes } } as never);
  try {
    await run('success', {
      requestId: 'hist-success',
      prompt: 'Summarise in two sentences: the quarterly report shows revenue up 12% and costs flat.',
      category: 'standard',
    });

    script('llama-3-70b', [503, 503]);
    await run('fallback', { requestId: 'hist-fallback', prompt: 'Classify this ticket as billing or technical: "I was charged twice."', category: 'batch' });

    script('gemini-2-flash', ['offformat']);
    const schema = { type: 'object', required: ['answer'], properties: { answer: { type: 'string' } } };
    await run('escalation', {
      requestId: 'hist-escalation',
      prompt: 'Extract the city as JSON: "I moved to Paris last spring."',
      category: 'batch',
      model: 'gemini-2-flash',
      quality: { jsonSchema: schema },
    });
    simulator.setFaults({});

    await client.setBudget('hist-tight', { totalNanos: 10, policies: { critical: 'reject', standard: 'reject', batch: 'reject' } });
    await run('budget-denied', { requestId: 'hist-budget-denied', prompt: 'Write a haiku about invoices.', category: 'batch', budgetScope: 'hist-tight' });

    // $0.005 a period: the critical share cannot cover a premium model's estimate, so it downgrades.
    await client.setBudget('hist-downgrade', { totalNanos: 5_000_000, policies: { critical: 'downgrade', standard: 'downgrade', batch: 'downgrade' } });
    await run('budget-downgrade', {
      requestId: 'hist-budget-downgrade',
      prompt: 'Explain step by step how to prove that the square root of 2 is irrational, then compare two proofs.',
      category: 'critical',
      budgetScope: 'hist-downgrade',
    });

    // A slow first model: the hedge to the next tier answers first.
    script('gemini-2-flash', ['hang']);
    await run('hedge', {
      requestId: 'hist-hedge',
      prompt: 'Explain why the sky is blue in two sentences.',
      category: 'standard',
      model: 'gemini-2-flash',
      hedgeAfterMs: 500,
    });
    simulator.setFaults({});

    // A detached batch of three requests (batchRun and its children).
    const f = join(state, 'hist-batch.jsonl');
    writeFileSync(
      f,
      ['billing', 'technical', 'billing']
        .map((c, i) => JSON.stringify({ id: `hist-batch-${i}`, prompt: `Classify ticket ${i} as billing or technical: "${c} problem".`, category: 'batch' }))
        .join('\n') + '\n',
    );
    const prepared = await prepareDetachedBatch(f, 'hist-batch', join(state, 'batches'), {});
    await client.startBatch({ batchId: 'hist-batch', source: prepared.source, concurrency: 2, pageSize: 2 });
    for (let i = 0; i < 120 && (await client.batchStatus('hist-batch')).state === 'running'; i++) await new Promise((r) => setTimeout(r, 500));
    await save('batch-run', batchWorkflowId('hist-batch'));

    // The learning loop: an experiment with one request and its feedback, the routing entity
    // (a tuning, anomaly buckets), a budget entity that reallocated on its schedule.
    await client.learning.createExperiment({
      name: 'hist-exp',
      arms: [
        { name: 'gpt-4o-mini', weight: 0.5, model: 'gpt-4o-mini' },
        { name: 'gemini-2-flash', weight: 0.5, model: 'gemini-2-flash' },
      ],
      filter: { feature: 'hist-ab' },
      minSamples: 50,
      confidence: 0.95,
    });
    for (let i = 0; i < 100 && !(await client.learning.policy()).experiments.length; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    await run('experiment-request', {
      requestId: 'hist-exp-req',
      prompt: 'Write one friendly sentence welcoming a new customer.',
      feature: 'hist-ab',
      unit: 'u1',
      category: 'standard',
    });
    // An experiment request re-routed by a quality escalation: it reports to its experiment (from
    // v9, patched('learning-kept-through-reroutes'); v7-experiment-escalation is the run before).
    simulator.setFaults(
      Object.fromEntries(
        ['gpt-4o-mini', 'gemini-2-flash'].map((m) => [m, { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: ['offformat', 'offformat'] }]),
      ) as never,
    );
    await run('experiment-escalation', {
      requestId: 'hist-exp-esc',
      prompt: 'Extract the city as JSON: "I moved to Paris last spring."',
      feature: 'hist-ab',
      unit: 'u2',
      category: 'batch',
      quality: { jsonSchema: schema },
    });
    simulator.setFaults({});
    await client.feedback('llm-hist-exp-req', 0.5, { comment: 'fine' });
    await client.learning.stopExperiment('hist-exp');
    await save('experiment-entity', experimentWorkflowId('record', 'hist-exp'));
    // An experiment that concluded (two samples an arm), then stopped: from v10 the stop waits for the
    // conclusion's "ended" to reach routing (patched('experiment-stop-awaits-ended')).
    await client.learning.createExperiment({
      name: 'hist-exp-done',
      arms: [
        { name: 'gpt-4o-mini', weight: 0.5, model: 'gpt-4o-mini' },
        { name: 'gemini-2-flash', weight: 0.5, model: 'gemini-2-flash' },
      ],
      filter: { feature: 'hist-done' },
      minSamples: 2,
      maxSamples: 2,
      confidence: 0.95,
    });
    for (let i = 0; i < 40 && (await client.learning.experimentStatus('hist-exp-done')).state === 'running'; i++) {
      await client.ask({ requestId: `hist-done-${i}`, prompt: 'Name a colour.', feature: 'hist-done', unit: `u-done-${i}`, category: 'standard' });
      await new Promise((r) => setTimeout(r, 200));
    }
    await client.learning.stopExperiment('hist-exp-done');
    await save('experiment-entity-concluded-stop', experimentWorkflowId('record', 'hist-exp-done'));
    await client.setBudget('hist-realloc', { totalNanos: 20_000_000, reallocation: { everyMs: 2_000, minElapsedShare: 0 } });
    await client.resetBudget('hist-realloc');
    await run('realloc-request', { requestId: 'hist-realloc-req', prompt: 'Write a haiku about the sea.', category: 'batch', budgetScope: 'hist-realloc' });
    for (let i = 0; i < 100 && (await client.reallocations('hist-realloc')).length === 0; i++) await new Promise((r) => setTimeout(r, 200));
    await save('budget-realloc-entity', shardWorkflowId('record', 'hist-realloc', 0, 1));
    await new Promise((r) => setTimeout(r, 500));
    await client.learning.tune();
    await save('routing-entity', routingWorkflowId('record'));

    await save('budget-entity', shardWorkflowId('record', 'hist-downgrade', 0, 1));
    await save('health-entity', healthWorkflowId('record'));

    // Streamed through a gateway (from v11, patched('request-stream')): a complete stream whose
    // checks fail but cannot escalate, and one the provider breaks off (StreamInterrupted).
    const gw = buildGateway({
      client,
      catalog,
      get relayUrl() {
        return `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}/switchyard/relay`;
      },
    });
    await gw.app.listen({ port: 0, host: '127.0.0.1' });
    const stream = async (name: string, key: string, body: Record<string, unknown>): Promise<void> => {
      const res = await fetch(`http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ ...body, stream: true }),
      });
      await res.text();
      await client.result(`llm-${key}`).catch(() => undefined);
      await save(name, `llm-${key}`);
    };
    script('gpt-4o-mini', ['offformat']);
    await stream('stream', 'hist-stream', {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Reply in JSON: the city in "I moved to Paris last spring."' }],
      response_format: { type: 'json_object' },
    });
    simulator.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ breakAfterChunks: 3 }) });
    await stream('stream-interrupted', 'hist-stream-broken', {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Explain queues in three sentences.' }],
    });
    simulator.setFaults({});
    await gw.close(1_000);

    // A tool call whose arguments miss the tool's schema escalates; the next tier's call is the answer.
    simulator.setFaults({ 'gemini-2-flash': faultSpecSchema.parse({ malformedToolArgsRate: 1 }) });
    await run('tool-calls', {
      requestId: 'hist-tool-calls',
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_time', arguments: '{"city":"Paris"}' }] },
        { role: 'tool', toolCallId: 'call_1', content: '{"time":"09:00"}' },
        { role: 'user', content: 'And the weather there now?' },
      ],
      tools: [
        { name: 'get_time', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
        {
          name: 'get_weather',
          description: 'Current weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      ],
      toolChoice: { name: 'get_weather' },
      category: 'batch',
      model: 'gemini-2-flash',
    });
    simulator.setFaults({});

    // Deferred requests: two answered in one provider batch; a batch that fails once, whose request is
    // answered in a second batch; then batches that keep failing, whose request goes live after two.
    await Promise.all([
      run('deferred-batch', { requestId: 'hist-deferred-batch', prompt: 'Summarise the memo on parking.', model: 'gpt-4o-mini', deadline: '1h' }),
      client.ask({ requestId: 'hist-deferred-other', prompt: 'Summarise the memo on lunch.', model: 'gpt-4o-mini', deadline: '1h' }),
    ]);
    simulator.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ batch: { outcome: 'failed', faultBatches: 1 } }) });
    await run('deferred-rebatch', { requestId: 'hist-deferred-rebatch', prompt: 'Summarise the memo on trains.', model: 'gpt-4o-mini', deadline: '1h' });
    simulator.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ batch: { outcome: 'failed' } }) });
    await run('deferred-live', { requestId: 'hist-deferred-live', prompt: 'Summarise the memo on bikes.', model: 'gpt-4o-mini', deadline: '1h' });
    simulator.setFaults({});
    await save('deferred-collector-entity', collectorWorkflowId('record', 'gpt-4o-mini'));
    // The first provider batch's own workflow (the collector's child): submitted, polled, delivered.
    const first = (await client.temporal.workflow.getHandle(collectorWorkflowId('record', 'gpt-4o-mini')).describe()).raw.workflowExecutionInfo?.firstRunId;
    if (!first) throw new Error("the collector's first run id is not in its description");
    await save('deferred-batch-entity', providerBatchWorkflowId(collectorWorkflowId('record', 'gpt-4o-mini'), first, 1));

    // A provider batch whose scope's budget entity was lost before it was delivered: it ends
    // `unsettled`, its result holding the settlement that `budget restore` applies.
    loseBudget = (scope) =>
      client.temporal.workflow
        .getHandle(budgetWorkflowId('record', scope))
        .terminate('lost before the delivery')
        .then(
          () => undefined,
          () => undefined,
        );
    client.temporal.workflow
      .getHandle(budgetWorkflowId('record', 'hist-gone'))
      .terminate('lost before the delivery')
      .then(
        () => undefined,
        () => undefined,
      );
    await run('deferred-unsettled', {
      requestId: 'hist-deferred-unsettled',
      prompt: 'Summarise the memo on ferries.',
      model: 'gpt-4o-mini',
      deadline: '1h',
      budgetScope: 'hist-gone',
    });
    const unsettledBatch = async (): Promise<string | undefined> => {
      for await (const w of client.temporal.workflow.list({ query: `WorkflowType = 'deferredBatch' AND DeferredState = 'unsettled'` })) return w.workflowId;
      return undefined;
    };
    let unsettledId: string | undefined;
    for (let i = 0; i < 100 && !(unsettledId = await unsettledBatch()); i += 1) await new Promise((r) => setTimeout(r, 200));
    if (!unsettledId) throw new Error('no provider batch ended unsettled');
    await save('deferred-batch-entity-unsettled', unsettledId);
    await run('deferred-unsettled-failed', {
      requestId: 'hist-deferred-unsettled-failed',
      prompt: 'Summarise the memo on buses.',
      model: 'gpt-4o-mini',
      deadline: '1h',
      budgetScope: 'hist-gone-fail',
    });
    let failedId: string | undefined;
    for (let i = 0; i < 100 && !failedId; i += 1) {
      for await (const w of client.temporal.workflow.list({ query: `WorkflowType = 'deferredBatch' AND DeferredState = 'unsettled'` }))
        if (w.workflowId !== unsettledId) failedId = w.workflowId;
      if (!failedId) await new Promise((r) => setTimeout(r, 200));
    }
    if (!failedId) throw new Error('no provider batch ended unsettled after a failed delivery');
    await save('deferred-batch-entity-unsettled-failed', failedId);

    // The key registry: a key made, rotated, revoked.
    const rotated = await client.keys().create('hist-team', { scope: 'hist-team', categories: ['batch'], rpm: 60 });
    await client.keys().rotate(rotated.key.id);
    await client.keys().revoke('hist-team');
    await save('key-registry-entity', keyRegistryWorkflowId('record'));
  } finally {
    await client.close();
    sw.shutdown();
    await running;
    await sw.close();
    await simulator.stop();
    await server.stop();
    rmSync(state, { recursive: true, force: true });
  }
  process.stderr.write(saved.length ? `recorded:\n${saved.map((f) => `  ${f}`).join('\n')}\n` : 'nothing new recorded\n');
}

await main();
