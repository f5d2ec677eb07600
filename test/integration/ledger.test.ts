/**
 * The spend ledger in a real PostgreSQL (Debian's, a throwaway cluster) and `switchyard report`:
 * one row per charged attempt however often a settlement is retried, from any worker, and report
 * totals that equal the results and `budget status` to the nanodollar.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { useTestStack } from '../helpers/stack.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { LEDGER_TABLE, PgLedger } from '../../src/ledger/pgLedger.js';
import type { LedgerEntry } from '../../src/ledger/fileLedger.js';
import { buildReport, type ReportDimension } from '../../src/ledger/report.js';
import { baselineOf } from '../../src/ledger/spendLedger.js';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import type { RequestResult } from '../../src/workflows/request/contract.js';

const run = promisify(execFile);
const cli = join(import.meta.dirname, '..', '..', 'bin', 'switchyard.js');
let db: TestPostgres;
let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

beforeAll(async () => {
  db = await startPostgres();
}, 120_000);
afterAll(async () => {
  await db?.stop();
});
const stack = useTestStack(() => ({ config: { ledgerUrl: db.url } }));

async function report(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [cli, 'report', ...args], {
    env: { ...process.env, SWITCHYARD_LEDGER_URL: db.url, SWITCHYARD_LOG_LEVEL: 'warn' },
  });
  return stdout;
}

const entry = (key: string, costNanos: number): LedgerEntry => ({
  key,
  workflowId: `wf-${key}`,
  attemptId: 'a1',
  scope: 'idem',
  model: 'gpt-4o-mini',
  provider: 'openai',
  tier: 'standard',
  category: 'batch',
  feature: 'unspecified',
  inputTokens: 10,
  cachedInputTokens: 0,
  outputTokens: 5,
  costNanos,
  at: new Date().toISOString(),
});

describe('PostgreSQL ledger', () => {
  it('records each charged attempt once, with its scope, feature and baseline; report totals equal the results and budget status', async () => {
    const scope = rid('pg-scope');
    const results: RequestResult[] = [];
    for (let i = 0; i < 3; i++)
      results.push(await stack.client.ask({ requestId: rid('pg'), prompt: `Name a planet, ${i}.`, category: 'batch', feature: 'search', budgetScope: scope }));
    stack.simulator.setFaults({ 'gpt-4o-mini': { errorRates: { '500': 1 }, hangRate: 0, malformedRate: 0, dropRate: 0, script: [] } });
    results.push(
      await stack.client.ask({ requestId: rid('pg-fb'), prompt: 'Name a moon.', model: 'gpt-4o-mini', fallbacks: ['claude-3-5-haiku'], budgetScope: scope }),
    );
    stack.simulator.setFaults({});
    const paid = results.flatMap((r) => r.attempts.filter((a) => a.outcome === 'ok'));
    const total = results.reduce((t, r) => t + r.costNanos, 0);

    const pool = new pg.Pool({ connectionString: db.url });
    try {
      const rows = (
        await pool.query<{ n: string; cost: string; features: string[] }>(
          `SELECT count(*) AS n, sum(cost_nanos) AS cost, array_agg(DISTINCT feature) AS features FROM ${LEDGER_TABLE} WHERE scope = $1`,
          [scope],
        )
      ).rows[0];
      expect(Number(rows?.n)).toBe(paid.length);
      expect(Number(rows?.cost)).toBe(total);
      expect(rows?.features.sort()).toEqual(['search', 'unspecified']);
    } finally {
      await pool.end();
    }

    const status = await stack.client.budgetStatus(scope);
    const json = JSON.parse(await report(['--scope', scope, '--by', 'feature', '--json'])) as {
      total: { costNanos: number; requests: number; attempts: number; baselineNanos: number; savingNanos: number };
      rows: Array<{ group: { feature: string }; costNanos: number; requests: number }>;
      ledger: string;
    };
    expect(json.total.costNanos).toBe(total);
    expect(json.total.costNanos).toBe(status.spentNanos);
    expect(json.total).toMatchObject({ requests: results.length, attempts: paid.length });
    expect(json.total.baselineNanos).toBe(results.reduce((t, r) => t + r.premiumBaselineCostNanos, 0));
    expect(json.total.savingNanos).toBe(json.total.baselineNanos - total);
    expect(json.rows.map((r) => [r.group.feature, r.requests])).toEqual([
      ['search', 3],
      ['unspecified', 1],
    ]);
    expect(json.ledger).not.toMatch(/password/);

    // CSV: the same figures, exact nanodollars, and a total line.
    const csv = (await report(['--scope', scope, '--by', 'model', '--csv'])).trim().split('\n');
    expect(csv[0]).toBe(
      'model,requests,attempts,costNanos,baselineNanos,savingNanos,inputTokens,cachedInputTokens,outputTokens,batchSavingNanos,duplicatedNanos',
    );
    expect(csv.at(-1)?.split(',')[3]).toBe(String(total));
    const byModel = csv.slice(1, -1).reduce((t, l) => t + Number(l.split(',')[3]), 0);
    expect(byModel).toBe(total);
    // The table for people names the ledger without a password.
    expect(await report(['--scope', scope, '--by', 'day,tier'])).toMatch(/^day\s+tier\s+requests/);
  });

  it('a settlement recorded by two workers at once inserts one row; the table is created once by many at once', async () => {
    const ledgers = await Promise.all([PgLedger.open(db.url), PgLedger.open(db.url), PgLedger.open(db.url)]);
    try {
      const key = rid('idem');
      const inserted = await Promise.all(ledgers.map((l) => l.record(entry(key, 1234))));
      expect(inserted.filter(Boolean)).toHaveLength(1);
      const rows = (await ledgers[0].entries({ scope: 'idem' })).filter((e) => e.key === key);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ costNanos: 1234, feature: 'unspecified', scope: 'idem' });
      await expect(ledgers[0].record(entry(rid('neg'), -1))).rejects.toThrow(/non-negative integer/);
    } finally {
      await Promise.all(ledgers.map((l) => l.close()));
    }
  });

  it('the report is aggregated in SQL and equals the same entries folded one by one (legacy rows priced per row)', async () => {
    const scope = rid('agg');
    const baseline = defaultCatalog().premiumBaseline();
    const models = ['gpt-4o-mini', 'claude-3-5-haiku', 'gpt-4o'];
    const made: LedgerEntry[] = Array.from({ length: 500 }, (_, i) => ({
      ...entry(`${scope}-${i}`, 1_000 + ((i * 7919) % 100_003)),
      workflowId: `wf-${scope}-${i % 170}`,
      scope,
      model: models[i % 3] ?? 'gpt-4o',
      tier: i % 5 === 0 ? 'premium' : 'standard',
      feature: i % 4 === 0 ? 'search' : 'unspecified',
      ...(i % 6 === 1 ? { keyId: `k${i % 4}key` } : {}),
      inputTokens: 1 + ((i * 31) % 4_001),
      cachedInputTokens: (i * 13) % 97,
      outputTokens: 1 + ((i * 17) % 999),
      // Every third row predates recorded baselines: priced on the baseline model, per row.
      ...(i % 3 === 0 ? {} : { baselineNanos: 50_000 + i }),
      at: new Date(Date.UTC(2026, 10, 28 + (i % 5), i % 24)).toISOString(),
    }));
    expect(made.filter((e) => e.baselineNanos === undefined)).toHaveLength(167);
    const ledger = await PgLedger.open(db.url);
    try {
      for (const e of made) await ledger.record(e);
      for (const by of [[], ['day', 'model'], ['tier', 'feature', 'scope'], ['key']] as ReportDimension[][]) {
        const sql = await ledger.report({ scope }, { by, baseline });
        const folded = buildReport(made, { by }, baselineOf(baseline));
        expect(sql.rows).toEqual(folded.rows);
        expect(sql.total).toEqual(folded.total);
      }
      const window = { scope, since: new Date('2026-11-29T00:00:00Z'), until: new Date('2026-12-01T00:00:00Z') };
      const sql = await ledger.report(window, { by: ['day'], baseline });
      expect(sql.rows.map((r) => r.group.day)).toEqual(['2026-11-29', '2026-11-30']);
      expect(sql.total).toEqual(
        buildReport(
          made.filter((e) => e.at >= '2026-11-29' && e.at < '2026-12-01'),
          { by: [] },
          baselineOf(baseline),
        ).total,
      );
      const none = await ledger.report({ scope: rid('empty') }, { by: ['model'], baseline });
      expect(none.rows).toEqual([]);
      expect(none.total).toMatchObject({ requests: 0, attempts: 0, costNanos: 0 });
    } finally {
      await ledger.close();
    }
  });

  it('a table made before gateway keys gains key_id when opened; its old rows report as key "none"', async () => {
    const name = `legacy_${Date.now()}`;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    const url = new URL(db.url);
    url.pathname = `/${name}`;
    const old = new pg.Client({ connectionString: url.toString() });
    await old.connect();
    try {
      // The table as it was made before keys: no key_id.
      await old.query(`CREATE TABLE ${LEDGER_TABLE} (key text PRIMARY KEY, workflow_id text NOT NULL, attempt_id text NOT NULL, scope text NOT NULL DEFAULT 'default',
        model text NOT NULL, provider text NOT NULL, tier text NOT NULL, category text NOT NULL, feature text NOT NULL DEFAULT 'unspecified',
        input_tokens bigint NOT NULL, cached_input_tokens bigint NOT NULL, output_tokens bigint NOT NULL, cost_nanos bigint NOT NULL, baseline_nanos bigint, at timestamptz NOT NULL)`);
      await old.query(
        `INSERT INTO ${LEDGER_TABLE} VALUES ('old-1', 'wf-old', 'a1', 'legacy', 'gpt-4o-mini', 'openai', 'standard', 'batch', 'unspecified', 10, 0, 5, 700, 900, now())`,
      );
    } finally {
      await old.end();
    }
    const ledger = await PgLedger.open(url.toString());
    try {
      await ledger.record({ ...entry('new-1', 300), scope: 'legacy', keyId: 'abc123def456' });
      const r = await ledger.report({ scope: 'legacy' }, { by: ['key'], baseline: defaultCatalog().premiumBaseline() });
      expect(r.rows.map((x) => [x.group.key, x.costNanos])).toEqual([
        ['abc123def456', 300],
        ['none', 700],
      ]);
      expect((await ledger.entries({ scope: 'legacy' })).find((e) => e.key === 'new-1')?.keyId).toBe('abc123def456');
    } finally {
      await ledger.close();
    }
  });

  it('a wrong ledger URL fails at start naming the variable, without the password', async () => {
    await expect(PgLedger.open('postgres://switchyard:secret-pw@127.0.0.1:1/none')).rejects.toThrow(/SWITCHYARD_LEDGER_URL/);
    await expect(PgLedger.open('postgres://switchyard:secret-pw@127.0.0.1:1/none')).rejects.not.toThrow(/secret-pw/);
  });
});
