/**
 * `npm run bench soak` (issue 21, item 12): the production shape under faults, for about twenty
 * minutes. The Temporal server built from Go on PostgreSQL (store and visibility), two
 * `switchyard worker` processes on the PostgreSQL ledger, the simulator with provider faults, and
 * SOAK_REQUESTS (20,000) requests from a client at SOAK_CONCURRENCY (32). During it: SIGKILL a
 * worker three times (restarted 5 s later), restart PostgreSQL once (down 10 s) and the Temporal
 * server once (down 10 s). It reports requests completed, failed and stuck, money charged twice,
 * the ledger against the results against the budget (exactly), p50/p99 latency per phase, and
 * each worker's RSS over time. Not in CI: it is a measurement (BENCHMARKS.md "Soak").
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { RequestFailedError, SwitchyardClient } from '../../src/client/client.js';
import { LEDGER_TABLE } from '../../src/ledger/pgLedger.js';
import { Simulator } from '../../src/simulator/server.js';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { freePort } from '../../src/temporal/devServer.js';
import type { RequestResult } from '../../src/workflows/request/contract.js';
import { startTemporalCluster } from '../cluster/temporalServer.js';
import { startPostgres } from '../helpers/postgres.js';
import { loadConfig } from '../../src/config/config.js';
import { settingsFromConfig } from '../../src/budget/settings.js';

const root = join(import.meta.dirname, '..', '..', '..');
const cli = join(root, 'bin', 'switchyard.js');
const QUEUE = 'soak';
const SCOPE = 'soak';

export interface SoakReport {
  requests: number;
  /** Errors the client retried (the same request id), by message. */
  clientErrors: Record<string, number>;
  /** Completed requests whose ledger rows do not sum to their result's cost (first 10). */
  mismatches: Array<{ workflowId: string; result: number; ledger: number }>;
  /** Ledger rows of requests the client never got an answer for (first 10). */
  ledgerOnly: string[];
  completed: number;
  failed: number;
  failures: Record<string, number>;
  stuck: number;
  runningAfter: number;
  chargedTwice: number;
  paidAttempts: number;
  ledger: { rows: number; costNanos: number };
  resultsCostNanos: number;
  budgetSpentNanos: number;
  exact: boolean;
  ledgerCatchUpMs: number;
  wallMs: number;
  phases: Array<{ phase: string; requests: number; p50Ms: number; p99Ms: number }>;
  rss: Array<{ atS: number; workerMb: Array<number | null> }>;
  events: Array<{ atS: number; event: string }>;
}

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

function rssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

export async function benchSoak(opts: { requests: number; concurrency: number; maxMs: number; say: (l: string) => void }): Promise<SoakReport> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-soak-'));
  const say = opts.say;
  const db = await startPostgres();
  const cleanups: Array<() => Promise<void> | void> = [() => db.stop()];
  try {
    return await soak(opts, dir, db, cleanups);
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch((e: unknown) => say(`cleanup: ${(e as Error).message}`));
    if (!process.env.SWITCHYARD_KEEP_SOAK_DIR) rmSync(dir, { recursive: true, force: true });
    else say(`logs kept in ${dir}`);
  }
}

async function soak(
  opts: { requests: number; concurrency: number; maxMs: number; say: (l: string) => void },
  dir: string,
  db: Awaited<ReturnType<typeof startPostgres>>,
  cleanups: Array<() => Promise<void> | void>,
): Promise<SoakReport> {
  const say = opts.say;
  const u = new URL(db.url);
  const temporal = await startTemporalCluster({
    dir,
    pg: { host: u.hostname, port: Number(u.port), user: u.username },
    dynamicConfig: join(root, 'deploy', 'temporal', 'dynamicconfig.yaml'),
  });
  cleanups.push(() => temporal.stop());
  const temporalCli = await ensureTemporalCli();
  const setup = (): void =>
    void execFileSync('sh', [join(root, 'deploy', 'temporal', 'setup.sh')], {
      env: { ...process.env, PATH: `${dirname(temporalCli)}:${process.env.PATH ?? ''}`, TEMPORAL_ADDRESS: temporal.address },
      stdio: 'pipe',
      timeout: 300_000,
    });
  for (let i = 0; ; i++) {
    try {
      setup();
      break;
    } catch (e) {
      if (i >= 5) throw e;
      await new Promise((r) => setTimeout(r, 5_000));
    }
  }
  const admin = new pg.Pool({ connectionString: db.url });
  await admin.query('CREATE DATABASE switchyard');
  await admin.end();
  const ledgerUrl = db.url.replace(/\/postgres$/, '/switchyard');
  // Provider faults: 5% server errors and 3% rate limits on the cheap models, 2% on the others.
  const faults = Object.fromEntries(
    defaultCatalog().models.map((m) => [
      m.name,
      { errorRates: m.tier === 'economy' ? { '500': 0.05, '429': 0.03 } : { '503': 0.02 }, hangRate: 0, malformedRate: 0.005, dropRate: 0, script: [] },
    ]),
  );
  const simulator = new Simulator({ catalog: defaultCatalog(), latencyScale: 0.02, faults: faults as never });
  const simulatorUrl = await simulator.start();
  cleanups.push(() => simulator.stop());
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: temporal.address,
    SWITCHYARD_TASK_QUEUE: QUEUE,
    SWITCHYARD_LEDGER_URL: ledgerUrl,
    SWITCHYARD_SIMULATOR_URL: simulatorUrl,
    SWITCHYARD_STATE_DIR: join(dir, 'state'),
    SWITCHYARD_LOG_LEVEL: 'warn',
  };
  const workers: Array<ChildProcess | undefined> = [undefined, undefined];
  const startWorker = async (i: number): Promise<void> => {
    const out = createWriteStream(join(dir, `worker-${i + 1}.log`), { flags: 'a' });
    const proc = spawn(process.execPath, [cli, 'worker'], {
      env: { ...env, SWITCHYARD_METRICS_PORT: String(await freePort()) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout?.pipe(out, { end: false });
    proc.stderr?.pipe(out, { end: false });
    workers[i] = proc;
  };
  cleanups.push(async () => {
    for (const w of workers) if (w && w.exitCode === null) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => (w && w.exitCode === null ? new Promise((r) => w.once('exit', r)) : Promise.resolve())));
  });
  await startWorker(0);
  await startWorker(1);
  const client = await SwitchyardClient.connect({ address: temporal.address, taskQueue: QUEUE, budgetDefaults: settingsFromConfig(loadConfig({}).budget) });
  cleanups.push(() => client.close());
  await client.setBudget(SCOPE, { totalNanos: 1_000_000_000_000 });

  const t0 = Date.now();
  const events: SoakReport['events'] = [];
  let phase = 'steady';
  const mark = (event: string, nextPhase?: string): void => {
    events.push({ atS: Math.round((Date.now() - t0) / 1000), event });
    say(`${Math.round((Date.now() - t0) / 1000)} s: ${event}`);
    if (nextPhase) phase = nextPhase;
  };
  const latencies = new Map<string, number[]>();
  const results: RequestResult[] = [];
  const failures: Record<string, number> = {};
  // What failed requests paid (their attempts before failing): in the ledger and the budget too.
  let failedCost = 0;
  let failedPaid = 0;
  const failedIds: string[] = [];
  const clientErrors: Record<string, number> = {};
  let next = 0;
  let done = 0;
  const inflight = new Set<number>();
  const rss: SoakReport['rss'] = [];
  const rssTimer = setInterval(() => rss.push({ atS: Math.round((Date.now() - t0) / 1000), workerMb: workers.map((w) => rssMb(w?.pid)) }), 10_000);
  const prompts = [
    'Name a colour.',
    'Classify this ticket as billing or technical: "I was charged twice."',
    'Summarise in one sentence: the meeting moved to Tuesday.',
    'Explain step by step why the sum of two odd numbers is even.',
  ];
  const deadline = t0 + opts.maxMs;
  const lane = async (): Promise<void> => {
    while (next < opts.requests && Date.now() < deadline) {
      const i = next++;
      inflight.add(i);
      const started = Date.now();
      const at = phase;
      const input = {
        requestId: `soak-${t0}-${i}`,
        budgetScope: SCOPE,
        category: i % 5 === 0 ? 'critical' : i % 2 ? 'batch' : 'standard',
        prompt: `${prompts[i % prompts.length]} (${i})`,
      };
      // As a pipeline does: an error that is not the request's own answer is retried with the same id.
      for (let tries = 1; ; tries++) {
        try {
          const r = await client.ask(input);
          results.push(r);
          (latencies.get(at) ?? latencies.set(at, []).get(at)!).push(Date.now() - started);
          break;
        } catch (e) {
          if (!(e instanceof RequestFailedError) && tries < 10) {
            clientErrors[(e as Error).message.slice(0, 120)] = (clientErrors[(e as Error).message.slice(0, 120)] ?? 0) + 1;
            await new Promise((r) => setTimeout(r, 2_000));
            continue;
          }
          const type = e instanceof RequestFailedError ? (e.failureType ?? 'Failed') : (e as Error).name;
          failures[type] = (failures[type] ?? 0) + 1;
          if (e instanceof RequestFailedError && e.details) {
            failedCost += e.details.costNanos;
            failedPaid += e.details.attempts.filter((a) => a.outcome === 'ok').length;
            failedIds.push(e.workflowId);
          }
          break;
        }
      }
      inflight.delete(i);
      done += 1;
    }
  };
  // The chaos, by progress: three worker kills, PostgreSQL, the Temporal server.
  const chaos = (async (): Promise<void> => {
    // By progress or by time, whichever comes first (the soak is bounded in time).
    const at = async (share: number): Promise<void> => {
      while (done < share * opts.requests && Date.now() < t0 + share * opts.maxMs) await new Promise((r) => setTimeout(r, 250));
    };
    for (const [k, share] of [
      [0, 0.1],
      [1, 0.25],
      [0, 0.4],
    ] as const) {
      await at(share);
      workers[k]?.kill('SIGKILL');
      mark(`SIGKILL worker-${k + 1}`, `after kill ${events.filter((e) => e.event.startsWith('SIGKILL')).length + 1}`);
      await new Promise((r) => setTimeout(r, 5_000));
      await startWorker(k);
      mark(`worker-${k + 1} restarted`);
    }
    await at(0.55);
    db.pause();
    mark('PostgreSQL stopped', 'PostgreSQL down');
    await new Promise((r) => setTimeout(r, 10_000));
    db.resume();
    mark('PostgreSQL started', 'after PostgreSQL');
    await at(0.75);
    mark('Temporal server stopping', 'Temporal restart');
    await temporal.restart(10_000);
    mark('Temporal server started', 'after Temporal restart');
  })();
  await Promise.all(Array.from({ length: opts.concurrency }, lane));
  await chaos;
  const wallMs = Date.now() - t0;
  clearInterval(rssTimer);
  mark('load done');

  // Nothing left running; the ledger catches up (its outbox) to the results and the budget.
  const running = Number((await client.temporal.workflow.count(`WorkflowType = 'llmRequest' AND ExecutionStatus = 'Running'`)).count);
  const paid = results.flatMap((r) => r.attempts.filter((a) => a.outcome === 'ok')).length + failedPaid;
  const resultsCost = results.reduce((t, r) => t + r.costNanos, 0) + failedCost;
  const pool = new pg.Pool({ connectionString: ledgerUrl });
  const catchUpStart = Date.now();
  let ledger = { rows: 0, costNanos: 0 };
  for (;;) {
    const q = (
      await pool.query<{ n: string; cost: string | null }>(`SELECT count(*) AS n, sum(cost_nanos) AS cost FROM ${LEDGER_TABLE} WHERE scope = $1`, [SCOPE])
    ).rows[0]!;
    ledger = { rows: Number(q.n), costNanos: Number(q.cost ?? 0) };
    if (ledger.rows >= paid || Date.now() - catchUpStart > 300_000) break;
    await new Promise((r) => setTimeout(r, 2_000));
  }
  const ledgerCatchUpMs = Date.now() - catchUpStart;
  const byWorkflow = new Map(
    (
      await pool.query<{ w: string; cost: string }>(`SELECT workflow_id AS w, sum(cost_nanos) AS cost FROM ${LEDGER_TABLE} WHERE scope = $1 GROUP BY 1`, [
        SCOPE,
      ])
    ).rows.map((r) => [r.w, Number(r.cost)]),
  );
  const mismatches = results
    .filter((r) => (byWorkflow.get(r.workflowId) ?? 0) !== r.costNanos)
    .map((r) => ({ workflowId: r.workflowId, result: r.costNanos, ledger: byWorkflow.get(r.workflowId) ?? 0 }));
  const known = new Set([...results.map((r) => r.workflowId), ...failedIds]);
  const ledgerOnly = [...byWorkflow.keys()].filter((w) => !known.has(w));
  const twice = (
    await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT workflow_id, attempt_id FROM ${LEDGER_TABLE} WHERE scope = $1 GROUP BY 1, 2 HAVING count(*) > 1) d`,
      [SCOPE],
    )
  ).rows[0]!;
  await pool.end();
  const budget = await client.budgetStatus(SCOPE);

  const phases = [...latencies].map(([p, xs]) => ({ phase: p, requests: xs.length, p50Ms: pct(xs, 50), p99Ms: pct(xs, 99) }));
  return {
    requests: next,
    clientErrors,
    mismatches: mismatches.slice(0, 10),
    ledgerOnly: ledgerOnly.slice(0, 10),
    completed: results.length,
    failed: Object.values(failures).reduce((a, b) => a + b, 0),
    failures,
    stuck: inflight.size,
    runningAfter: running,
    chargedTwice: Number(twice.n),
    paidAttempts: paid,
    ledger,
    resultsCostNanos: resultsCost,
    budgetSpentNanos: budget.spentNanos,
    exact: ledger.costNanos === resultsCost && budget.spentNanos === resultsCost && ledger.rows === paid,
    ledgerCatchUpMs,
    wallMs,
    phases,
    rss,
    events,
  };
}
