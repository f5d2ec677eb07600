/**
 * The production shape, for real, without Docker (`npm run test:cluster`): the Temporal server
 * built from Go on Debian's PostgreSQL (store and visibility), set up by deploy/temporal/setup.sh
 * with deploy/temporal/dynamicconfig.yaml; two `switchyard worker` processes on the PostgreSQL
 * ledger; Debian's Prometheus scraping them; a batch through `switchyard batch` while one worker
 * is stopped (SIGTERM, mid-batch), while two `switchyard gateway` processes serve part of the
 * traffic (a team key; JSON and streamed answers through the official openai client). Then the
 * seed's PromQL, asked of Prometheus's HTTP API, and its exact counterparts agree with `switchyard
 * report`, `budget status` and the results.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startTemporalCluster, type TemporalCluster } from './temporalServer.js';
import { Simulator } from '../../src/simulator/server.js';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { freePort } from '../../src/temporal/devServer.js';
import { SwitchyardClient } from '../../src/client/client.js';
import OpenAI from 'openai';

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'bin', 'switchyard.js');
const run = promisify(execFile);
const REQUESTS = 80;
const QUEUE = 'cluster';
const SCOPE = 'cluster-scope';

let dir: string;
let db: TestPostgres;
let temporal: TemporalCluster;
let simulator: Simulator;
let prometheus: ChildProcess | undefined;
let batch: ChildProcess | undefined;
let promUrl: string;
const workers: Array<{ proc: ChildProcess; metricsPort: number }> = [];
const gateways: Array<{ proc: ChildProcess; url: string }> = [];
let teamKey = '';
/** Requests sent through the gateways during the batch (every 4th streamed). */
const GATEWAY_REQUESTS = 16;

async function startGateway(name: string): Promise<{ proc: ChildProcess; url: string }> {
  const out = createWriteStream(join(dir, `${name}.log`));
  const proc = spawn(process.execPath, [cli, 'gateway', '--port', String(await freePort())], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.pipe(out, { end: false });
  let said = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stderr?.on('data', (d: Buffer) => {
      said += d.toString();
      out.write(d);
      const m = /gateway listening on (http:\/\/\S+\/v1)/.exec(said);
      if (m?.[1]) resolve(m[1]);
    });
    proc.once('exit', (code) => reject(new Error(`${name} exited (${code}): ${said}`)));
  });
  return { proc, url };
}
let env: NodeJS.ProcessEnv;

function startWorker(metricsPort: number, name: string): { proc: ChildProcess; metricsPort: number } {
  const out = createWriteStream(join(dir, `${name}.log`));
  const proc = spawn(process.execPath, [cli, 'worker'], {
    env: { ...env, SWITCHYARD_METRICS_PORT: String(metricsPort), SWITCHYARD_METRICS_FINAL_SCRAPE_MS: '5000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.pipe(out, { end: false });
  proc.stderr?.pipe(out, { end: false });
  return { proc, metricsPort };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function promql(q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> }; error?: string };
  if (body.status !== 'success') throw new Error(`PromQL ${q}: ${body.error ?? res.status}`);
  return body.data.result;
}
const scalar = async (q: string): Promise<number> => (await promql(q)).reduce((t, r) => t + Number(r.value[1]), 0);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-cluster-'));
  db = await startPostgres();
  const u = new URL(db.url);
  temporal = await startTemporalCluster({
    dir,
    pg: { host: u.hostname, port: Number(u.port), user: u.username },
    dynamicConfig: join(root, 'deploy', 'temporal', 'dynamicconfig.yaml'),
  });
  const temporalCli = await ensureTemporalCli();
  // The compose file's one-shot setup, run for real: namespace and search attributes.
  await until(
    'the Temporal cluster',
    async () => (
      execFileSync('sh', [join(root, 'deploy', 'temporal', 'setup.sh')], {
        env: { ...process.env, PATH: `${dirname(temporalCli)}:${process.env.PATH ?? ''}`, TEMPORAL_ADDRESS: temporal.address },
        stdio: 'pipe',
        timeout: 60_000,
      }),
      true
    ),
    120_000,
  );
  const pool = new pg.Pool({ connectionString: db.url });
  await pool.query('CREATE DATABASE switchyard');
  await pool.end();
  simulator = new Simulator({ catalog: defaultCatalog(), latencyScale: 0.05 });
  const simulatorUrl = await simulator.start();
  env = {
    ...process.env,
    TEMPORAL_ADDRESS: temporal.address,
    SWITCHYARD_TASK_QUEUE: QUEUE,
    SWITCHYARD_LEDGER_URL: db.url.replace(/\/postgres$/, '/switchyard'),
    SWITCHYARD_SIMULATOR_URL: simulatorUrl,
    SWITCHYARD_STATE_DIR: join(dir, 'state'),
    SWITCHYARD_LOG_LEVEL: 'warn',
  };
  for (const name of ['worker-1', 'worker-2']) workers.push(startWorker(await freePort(), name));
  for (const w of workers)
    await until(`worker metrics on ${w.metricsPort}`, async () => ((await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).ok ? true : undefined));
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  writeFileSync(
    join(dir, 'prometheus.yml'),
    JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [join(root, 'monitoring', 'prometheus', 'alerts.yml')],
      scrape_configs: [
        { job_name: 'switchyard', static_configs: [{ targets: workers.map((w) => `127.0.0.1:${w.metricsPort}`) }] },
        { job_name: 'temporal', static_configs: [{ targets: [new URL(temporal.metricsUrl).host] }] },
      ],
    }),
  );
  const promLog = createWriteStream(join(dir, 'prometheus.log'));
  prometheus = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  prometheus.stdout?.pipe(promLog, { end: false });
  prometheus.stderr?.pipe(promLog, { end: false });
  await until('Prometheus', async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined));
  // A team's key (its scope is the batch's), and two gateways in front of the cluster.
  const made = await run(process.execPath, [cli, 'keys', 'create', 'cluster-team', '--scope', SCOPE, '--categories', 'batch', '--json'], { env });
  teamKey = (JSON.parse(made.stdout) as { key: string }).key;
  for (const name of ['gateway-1', 'gateway-2']) gateways.push(await startGateway(name));
  await until('both workers scraped', async () => ((await scalar('sum(up{job="switchyard"})')) === 2 ? true : undefined));
}, 900_000);

afterAll(async () => {
  if (batch && batch.exitCode === null) batch.kill('SIGKILL');
  for (const w of workers) if (w.proc.exitCode === null) w.proc.kill('SIGKILL');
  for (const g of gateways) if (g.proc.exitCode === null) g.proc.kill('SIGKILL');
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus?.once('exit', r));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await simulator?.stop();
  await temporal?.stop();
  await db?.stop();
  // SWITCHYARD_KEEP_CLUSTER_DIR=1 keeps the logs (server, workers, Prometheus) for a look.
  if (dir && existsSync(dir) && !process.env.SWITCHYARD_KEEP_CLUSTER_DIR) rmSync(dir, { recursive: true, force: true });
});

describe('the production shape on a real cluster', () => {
  it('a batch survives a worker stopped mid-batch; the seed PromQL, report, budget status and the results agree', async () => {
    const features = ['search', 'summarise', 'support-chat'];
    const lines = Array.from({ length: REQUESTS }, (_, i) =>
      JSON.stringify({
        id: `c-${i}`,
        prompt: i % 4 === 0 ? `Prove that the sum of the first ${i + 2} odd numbers is a square, step by step.` : `Name a colour, ${i}.`,
        category: 'batch',
        feature: features[i % 3],
        budgetScope: SCOPE,
      }),
    );
    const input = join(dir, 'batch.jsonl');
    const output = join(dir, 'results.jsonl');
    writeFileSync(input, `${lines.join('\n')}\n`);
    const t0 = Date.now();
    const b = spawn(process.execPath, [cli, 'batch', input, '--out', output, '--concurrency', '8', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    batch = b;
    let stdout = '';
    b.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    const done = new Promise<number | null>((r) => b.once('exit', r));
    // Meanwhile, a team's traffic through the gateways, four at a time, alternating between them.
    const viaGateways = (async () => {
      const costs: number[] = [];
      for (let i = 0; i < GATEWAY_REQUESTS; i += 4) {
        const four = Array.from({ length: 4 }, async (_, j) => {
          const n = i + j;
          const openai = new OpenAI({ apiKey: teamKey, baseURL: gateways[n % 2]!.url, maxRetries: 0, timeout: 120_000 });
          const messages = [{ role: 'user' as const, content: `Summarise in one line: gateway request ${n} of the cluster run.` }];
          if (n % 4 !== 0) {
            const { response } = await openai.chat.completions
              .create({ model: 'auto', messages }, { headers: { 'Idempotency-Key': `gw-${n}` } })
              .withResponse();
            return Number(response.headers.get('x-switchyard-cost-nanos'));
          }
          const stream = await openai.chat.completions.create({ model: 'auto', messages, stream: true, stream_options: { include_usage: true } });
          let cost = 0;
          for await (const c of stream) cost = (c as unknown as { switchyard?: { costNanos: number } }).switchyard?.costNanos ?? cost;
          return cost;
        });
        costs.push(...(await Promise.all(four)));
      }
      return costs;
    })();
    // Stop worker-2 once a quarter of the batch is done: its requests finish on worker-1.
    const stopped = await until(
      'a quarter of the batch',
      async () => {
        const n = existsSync(output) ? readFileSync(output, 'utf8').split('\n').filter(Boolean).length : 0;
        return n >= REQUESTS / 4 ? n : undefined;
      },
      300_000,
    );
    const w2 = workers[1]!;
    // Worker-2 took its share before it was stopped.
    const w2text = await (await fetch(`http://127.0.0.1:${w2.metricsPort}/metrics`)).text();
    expect([...w2text.matchAll(/^llm_model_requests_total\{[^}]*\} (\d+)$/gm)].reduce((t, m) => t + Number(m[1]), 0)).toBeGreaterThan(0);
    const w2exit = new Promise((r) => w2.proc.once('exit', r));
    w2.proc.kill('SIGTERM');
    expect(await done).toBe(0);
    await w2exit;
    const wallMs = Date.now() - t0;
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { completed: number; failed: number; costNanos: number };
    const results = readFileSync(output, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; status: string; costNanos: number; tier: string });
    expect(summary).toMatchObject({ completed: REQUESTS, failed: 0 });
    expect(results.filter((r) => r.status === 'completed')).toHaveLength(REQUESTS);
    const gatewayCosts = await viaGateways;
    expect(gatewayCosts).toHaveLength(GATEWAY_REQUESTS);
    for (const c of gatewayCosts) expect(c).toBeGreaterThan(0);
    const total = results.reduce((t, r) => t + r.costNanos, 0) + gatewayCosts.reduce((t, c) => t + c, 0);

    // The ledger and its report; the budget entity.
    const report = JSON.parse((await run(process.execPath, [cli, 'report', '--scope', SCOPE, '--by', 'tier', '--json'], { env })).stdout) as {
      total: { costNanos: number; attempts: number; requests: number };
      rows: Array<{ group: { tier: string }; costNanos: number }>;
    };
    const client = await SwitchyardClient.connect({ address: temporal.address, taskQueue: QUEUE });
    const status = await client.budgetStatus(SCOPE);
    await client.close();
    expect(report.total).toMatchObject({ costNanos: total, requests: REQUESTS + GATEWAY_REQUESTS });
    expect(status.spentNanos).toBe(total);
    // Charged attempts: one per request, more where a request fell back or escalated.
    const attempts = report.total.attempts;
    expect(attempts).toBeGreaterThanOrEqual(REQUESTS + GATEWAY_REQUESTS);

    // Prometheus: wait for worker-1's last settlements to be scraped, then ask.
    const exactCost = 'sum(max_over_time(llm_model_cost_dollars[30m]))';
    await until('Prometheus to have every settlement', async () => (Math.round((await scalar(exactCost)) * 1e9) === total ? true : undefined), 30_000);
    expect(await scalar('sum(max_over_time(llm_model_requests_total[30m]))')).toBe(attempts);
    // By tier, as the seed's cost panel groups it, exactly: each worker's counter at its last value.
    const byTier = await promql('sum by (tier) (max_over_time(llm_model_cost_dollars[30m]))');
    for (const row of report.rows) expect(Math.round(Number(byTier.find((r) => r.metric.tier === row.group.tier)?.value[1] ?? 0) * 1e9)).toBe(row.costNanos);
    // The budget gauge (every worker reports the same budget: max).
    // The gauge is a reading of the entity at each scrape: wait for a scrape after the last settlement.
    await until(
      'the budget gauge to read the final spend',
      async () => (Math.round((await scalar(`max(switchyard_budget_spent_dollars{scope="${SCOPE}"})`)) * 1e9) === total ? true : undefined),
      30_000,
    );
    // The seed's three queries, verbatim: they answer, grouped as the seed groups them.
    const seedCost = await promql('sum(rate(llm_model_cost_dollars[1h])) by (tier) * 3600');
    // (rate() needs two samples of a series: a tier that only the stopped worker counted, in its
    // last scrape, has one; so the seed's rates cover the report's tiers, not always all of them.)
    expect(seedCost.length).toBeGreaterThan(0);
    for (const r of seedCost) expect(report.rows.map((x) => x.group.tier)).toContain(r.metric.tier);
    expect(seedCost.every((r) => Number(r.value[1]) > 0)).toBe(true);
    const routing = await promql('sum(rate(llm_routing_decisions_total[1h])) by (from_tier, to_tier)');
    expect(routing.length).toBeGreaterThan(0);
    expect(await scalar('sum(max_over_time(llm_routing_decisions_total[30m]))')).toBeGreaterThanOrEqual(attempts);
    await promql('avg(llm_model_quality_score) by (model)\n/\n(sum(rate(llm_model_cost_dollars[1h])) by (model) * 3600 + 0.001)');
    // Each worker's /metrics also serves the SDK's own worker metrics (its runtime telemetry).
    const w1 = await (await fetch(`http://127.0.0.1:${workers[0]!.metricsPort}/metrics`)).text();
    expect(w1).toMatch(/^temporal_worker_task_slots_available\{/m);
    expect(await scalar('count(temporal_worker_task_slots_available{job="switchyard"})')).toBeGreaterThan(0);
    // The Temporal server's own metrics are scraped too.
    expect(await scalar('up{job="temporal"}')).toBe(1);
    // What the stop cost, traced in the histories: workflow tasks that timed out (a sticky queue
    // whose worker is gone waits for its schedule-to-start timeout) and activities that timed out
    // (a call in flight on the stopped worker waits for its heartbeat timeout).
    const traced = await SwitchyardClient.connect({ address: temporal.address, taskQueue: QUEUE });
    const timeouts = { workflowTask: 0, activity: 0, slowestWaitMs: 0 };
    try {
      for await (const w of traced.temporal.workflow.list({ query: `WorkflowType = 'llmRequest'` })) {
        const events = (await traced.temporal.workflow.getHandle(w.workflowId).fetchHistory()).events ?? [];
        for (const e of events) {
          if (e.workflowTaskTimedOutEventAttributes) timeouts.workflowTask += 1;
          if (e.activityTaskTimedOutEventAttributes) timeouts.activity += 1;
        }
        const ms = (e: (typeof events)[number] | undefined): number => Number(e?.eventTime?.seconds ?? 0) * 1000 + Math.round((e?.eventTime?.nanos ?? 0) / 1e6);
        for (let i = 1; i < events.length; i++) timeouts.slowestWaitMs = Math.max(timeouts.slowestWaitMs, ms(events[i]) - ms(events[i - 1]));
      }
    } finally {
      await traced.close();
    }
    // The run's figures (BENCHMARKS.md "Cluster run").
    process.stdout.write(
      `cluster run: ${JSON.stringify({ requests: REQUESTS, stoppedAfter: stopped, wallMs, requestsPerSecond: Math.round((REQUESTS / (wallMs / 1000)) * 10) / 10, costNanos: total, attempts, timeouts })}\n`,
    );
  });
});
