/**
 * A ledger outage stalls nothing (issue 21, item 9): PostgreSQL (Debian's, a throwaway cluster)
 * is stopped for 60 s in the middle of steady traffic. Every request completes meanwhile (their
 * ledger lines wait in the ledger outbox, durable in Temporal), the ledger catches up to equal the
 * results and the budget exactly once it is back, and the alert on the ledger's lag, evaluated by
 * a real Prometheus scraping the worker with the shipped rules, fires during the outage and clears.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEDGER_TABLE } from '../../src/ledger/pgLedger.js';
import { freePort } from '../../src/temporal/devServer.js';
import type { RequestResult } from '../../src/workflows/request/contract.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { useTestStack } from '../helpers/stack.js';
import { sleep, until } from '../helpers/wait.js';

const OUTAGE_MS = 60_000;
let db: TestPostgres;
let prometheus: ChildProcess | undefined;
let promUrl = '';
const promDir = mkdtempSync(join(tmpdir(), 'switchyard-prom-'));

function requirePrometheus(): void {
  try {
    execFileSync('prometheus', ['--version'], { stdio: 'pipe' });
  } catch {
    throw new Error('prometheus is not installed: `apt-get install prometheus` (Debian; scripts/test-tools.sh, run by npm test, does it)');
  }
}

beforeAll(async () => {
  requirePrometheus();
  db = await startPostgres();
}, 120_000);
afterAll(async () => {
  await db?.stop();
});
const stack = useTestStack(() => ({ config: { ledgerUrl: db.url }, latencyScale: 0.02 }));
beforeAll(async () => {
  const target = new URL(stack.metricsUrl).host;
  const port = await freePort();
  writeFileSync(
    join(promDir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: ['${join(process.cwd(), 'monitoring', 'prometheus', 'alerts.yml')}']`,
      `scrape_configs: [{ job_name: switchyard, static_configs: [{ targets: ['${target}'] }] }]`,
    ].join('\n'),
  );
  prometheus = spawn(
    'prometheus',
    [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: 'ignore' },
  );
  promUrl = `http://127.0.0.1:${port}`;
  await until('Prometheus ready', async () => ((await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.ok ? true : undefined), 30_000);
}, 120_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise<void>((r) => prometheus!.once('exit', () => r()));
    prometheus.kill('SIGTERM');
    await exited;
  }
  rmSync(promDir, { recursive: true, force: true });
});

async function ledgerAlert(): Promise<string | undefined> {
  const body = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: { alertname: string }; state: string }> } };
  return body.data.alerts.find((a) => a.labels.alertname === 'SwitchyardLedgerBehind')?.state;
}

describe('PostgreSQL down for 60 s in the middle of traffic', () => {
  it('answers every request meanwhile; the ledger catches up exactly; the lag alert fires and clears', async () => {
    const scope = `outage-${Date.now()}`;
    const results: Array<{ r: RequestResult; at: number }> = [];
    const failures: unknown[] = [];
    let n = 0;
    let stopAt = Number.POSITIVE_INFINITY;
    const lane = async (): Promise<void> => {
      while (Date.now() < stopAt) {
        try {
          const r = await stack.client.ask({
            requestId: `${scope}-${++n}`,
            budgetScope: scope,
            category: 'batch',
            prompt: `Summarise item ${n} in five words.`,
          });
          results.push({ r, at: Date.now() });
        } catch (e) {
          failures.push(e);
        }
      }
    };
    const traffic = Promise.all(Array.from({ length: 4 }, lane));
    await until('traffic flowing', async () => (results.length >= 20 ? true : undefined), 30_000);

    db.pause();
    const downAt = Date.now();
    let fired = false;
    while (Date.now() - downAt < OUTAGE_MS) {
      await sleep(2_000);
      if ((await ledgerAlert()) === 'firing') fired = true;
    }
    const answeredWhileDown = results.filter((x) => x.at > downAt + 5_000).length;
    db.resume();
    const upAt = Date.now();
    stopAt = upAt + 5_000;
    await traffic;

    expect(failures).toEqual([]);
    // Requests kept answering while the ledger was down (not one stalled waiting for it).
    expect(answeredWhileDown).toBeGreaterThan(50);
    expect(fired).toBe(true);

    // The ledger catches up: one row per paid attempt, the same money as the results and the budget.
    const paid = results.flatMap((x) => x.r.attempts.filter((a) => a.outcome === 'ok'));
    const total = results.reduce((t, x) => t + x.r.costNanos, 0);
    const pool = new pg.Pool({ connectionString: db.url });
    try {
      const row = await until(
        'the ledger caught up',
        async () => {
          const q = (
            await pool.query<{ n: string; cost: string | null }>(`SELECT count(*) AS n, sum(cost_nanos) AS cost FROM ${LEDGER_TABLE} WHERE scope = $1`, [scope])
          ).rows[0]!;
          return Number(q.n) === paid.length ? q : undefined;
        },
        60_000,
      );
      expect(Number(row.cost)).toBe(total);
    } finally {
      await pool.end();
    }
    expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(total);
    // And the alert clears once nothing waits.
    await until('the alert cleared', async () => ((await ledgerAlert()) === undefined ? true : undefined), 60_000);
    const metrics = await (await fetch(stack.metricsUrl)).text();
    expect(metrics).toMatch(/^switchyard_ledger_lag_seconds 0$/m);
    expect(Number(/^switchyard_ledger_deferred_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
  }, 300_000);
});
