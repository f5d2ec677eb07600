/**
 * The spend ledger in PostgreSQL (the `pg` driver): one row per charged provider attempt, its key
 * (the reservation id) the primary key, so a retried settlement from any worker inserts nothing
 * (`ON CONFLICT DO NOTHING`). The table is created on first use, under an advisory lock so that
 * workers starting together do not race. Money is a bigint of nanodollars.
 */
import pg from 'pg';
import type { LedgerEntry } from './fileLedger.js';
import type { LedgerQuery, LedgerReport, ReportOptions, SpendLedger } from './spendLedger.js';
import { NO_KEY, type ReportDimension, type ReportFigures, type ReportRow, sortRows } from './report.js';

/** A report is one aggregate query; it may scan a large table, so it has a longer bound than a settlement. */
const REPORT_TIMEOUT_MS = 300_000;

/** Each report dimension as SQL over the table (a day is the UTC date, as in the file ledger). */
const DIMENSION_SQL: Record<ReportDimension, string> = {
  day: `to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
  model: 'model',
  tier: 'tier',
  category: 'category',
  feature: 'feature',
  scope: 'scope',
  key: 'key_id',
  mode: 'mode',
};

interface AggregateRow {
  grouping: number;
  requests: string | null;
  attempts: string | null;
  cost: string | null;
  baseline: string | null;
  input: string | null;
  cached: string | null;
  output: string | null;
  batch_saving: string | null;
  duplicated: string | null;
  [dimension: `d${number}`]: string | null;
}

export const LEDGER_TABLE = 'switchyard_spend';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${LEDGER_TABLE} (
  key                 text PRIMARY KEY,
  workflow_id         text NOT NULL,
  attempt_id          text NOT NULL,
  scope               text NOT NULL DEFAULT 'default',
  model               text NOT NULL,
  provider            text NOT NULL,
  tier                text NOT NULL,
  category            text NOT NULL,
  feature             text NOT NULL DEFAULT 'unspecified',
  input_tokens        bigint NOT NULL CHECK (input_tokens >= 0),
  cached_input_tokens bigint NOT NULL CHECK (cached_input_tokens >= 0),
  output_tokens       bigint NOT NULL CHECK (output_tokens >= 0),
  cost_nanos          bigint NOT NULL CHECK (cost_nanos >= 0),
  baseline_nanos      bigint CHECK (baseline_nanos >= 0),
  at                  timestamptz NOT NULL,
  key_id              text NOT NULL DEFAULT 'none',
  mode                text NOT NULL DEFAULT 'live',
  live_nanos          bigint CHECK (live_nanos >= 0)
);
CREATE INDEX IF NOT EXISTS ${LEDGER_TABLE}_at ON ${LEDGER_TABLE} (at);
`;

/** What a table made before gateway keys needs (idempotent). */
const ADD_KEY_COLUMN = `ALTER TABLE ${LEDGER_TABLE} ADD COLUMN IF NOT EXISTS key_id text NOT NULL DEFAULT 'none'`;
/** What a table made before the deferred lane needs (idempotent): how each attempt was bought, and its live price. */
const ADD_MODE_COLUMNS = `ALTER TABLE ${LEDGER_TABLE} ADD COLUMN IF NOT EXISTS mode text NOT NULL DEFAULT 'live', ADD COLUMN IF NOT EXISTS live_nanos bigint CHECK (live_nanos >= 0)`;

const COLUMNS = [
  'key',
  'workflow_id',
  'attempt_id',
  'scope',
  'model',
  'provider',
  'tier',
  'category',
  'feature',
  'input_tokens',
  'cached_input_tokens',
  'output_tokens',
  'cost_nanos',
  'baseline_nanos',
  'at',
  'key_id',
  'mode',
  'live_nanos',
] as const;

interface Row {
  key: string;
  workflow_id: string;
  attempt_id: string;
  scope: string;
  model: string;
  provider: string;
  tier: string;
  category: string;
  feature: string;
  input_tokens: string;
  cached_input_tokens: string;
  output_tokens: string;
  cost_nanos: string;
  baseline_nanos: string | null;
  at: Date;
  key_id: string;
  mode: string;
  live_nanos: string | null;
}

/** A bigint column as a number (ledger values stay far below 2^53 nanodollars: ~$9 million). */
function num(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`ledger value ${v} is not a safe integer`);
  return n;
}

/** The URL without its password (in the user part or as a parameter), for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of ['password', 'sslpassword']) if (u.searchParams.has(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

export class PgLedger implements SpendLedger {
  readonly describe: string;
  private ready: Promise<void> | undefined;

  private constructor(
    private readonly pool: pg.Pool,
    url: string,
  ) {
    this.describe = redactUrl(url);
  }

  /**
   * Connects (a pool of `max` connections) and creates the table if it is not there. Every query
   * is bounded (a locked table or a dead connection fails the settlement, which is retried, instead
   * of holding it), and TCP keepalive notices a half-open connection.
   */
  static async open(url: string, opts: { max?: number; onError?: (e: Error) => void } = {}): Promise<PgLedger> {
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      connectionTimeoutMillis: 10_000,
      statement_timeout: 5_000,
      query_timeout: 6_000,
      lock_timeout: 5_000,
      keepAlive: true,
    });
    // An idle connection the server dropped must not crash the worker; it is reported.
    pool.on('error', (e) => opts.onError?.(e));
    const ledger = new PgLedger(pool, url);
    try {
      await ledger.ensureSchema();
    } catch (e) {
      await pool.end();
      throw new Error(`spend ledger ${ledger.describe}: ${(e as Error).message} (check SWITCHYARD_LEDGER_URL)`);
    }
    return ledger;
  }

  private ensureSchema(): Promise<void> {
    this.ready ??= (async () => {
      const c = await this.pool.connect();
      try {
        // A table that exists is used as it is (a role with only SELECT and INSERT on it works),
        // once it has every column: one made before gateway keys gains key_id.
        const found = await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [LEDGER_TABLE]);
        if (found.rows[0]?.t) {
          // One made before gateway keys gains key_id; one made before the deferred lane, mode and live_nanos.
          for (const [column, add] of [
            ['key_id', ADD_KEY_COLUMN],
            ['mode', ADD_MODE_COLUMNS],
          ] as const) {
            const cols = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM information_schema.columns WHERE table_name = $1 AND column_name = $2', [
              LEDGER_TABLE,
              column,
            ]);
            if (cols.rows[0]?.n !== '0') continue;
            try {
              await c.query(add);
            } catch (e) {
              throw new Error(
                `the ledger table ${LEDGER_TABLE} has no ${column} column and this role cannot add it (${(e as Error).message}); have its owner run: ${add}`,
              );
            }
          }
          return;
        }
        await c.query('BEGIN');
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [LEDGER_TABLE]);
        await c.query(SCHEMA);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        c.release();
      }
    })();
    return this.ready;
  }

  async record(e: LedgerEntry): Promise<boolean> {
    if (!Number.isSafeInteger(e.costNanos) || e.costNanos < 0) throw new RangeError(`costNanos must be a non-negative integer, got ${e.costNanos}`);
    const values = [
      e.key,
      e.workflowId,
      e.attemptId,
      e.scope ?? 'default',
      e.model,
      e.provider,
      e.tier,
      e.category,
      e.feature ?? 'unspecified',
      e.inputTokens,
      e.cachedInputTokens,
      e.outputTokens,
      e.costNanos,
      e.baselineNanos ?? null,
      e.at,
      e.keyId ?? NO_KEY,
      e.mode ?? 'live',
      e.liveNanos ?? null,
    ];
    const r = await this.pool.query(
      `INSERT INTO ${LEDGER_TABLE} (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (key) DO NOTHING`,
      values,
    );
    return r.rowCount === 1;
  }

  async entries(q: LedgerQuery = {}): Promise<LedgerEntry[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.since) where.push(`at >= $${args.push(q.since)}`);
    if (q.until) where.push(`at < $${args.push(q.until)}`);
    if (q.scope !== undefined) where.push(`scope = $${args.push(q.scope)}`);
    const r = await this.pool.query<Row>(
      `SELECT ${COLUMNS.join(', ')} FROM ${LEDGER_TABLE}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY at, key`,
      args,
    );
    return r.rows.map((x) => ({
      key: x.key,
      workflowId: x.workflow_id,
      attemptId: x.attempt_id,
      scope: x.scope,
      model: x.model,
      provider: x.provider,
      tier: x.tier,
      category: x.category,
      feature: x.feature,
      inputTokens: num(x.input_tokens),
      cachedInputTokens: num(x.cached_input_tokens),
      outputTokens: num(x.output_tokens),
      costNanos: num(x.cost_nanos),
      ...(x.baseline_nanos !== null ? { baselineNanos: num(x.baseline_nanos) } : {}),
      ...(x.key_id !== NO_KEY ? { keyId: x.key_id } : {}),
      ...(x.mode === 'batch' || x.mode === 'duplicated' ? { mode: x.mode } : {}),
      ...(x.live_nanos !== null ? { liveNanos: num(x.live_nanos) } : {}),
      at: x.at.toISOString(),
    }));
  }

  /**
   * The report in one aggregate query (GROUPING SETS: the groups and the total), never the rows:
   * sums are exact (numeric), entries written before baselines priced per row on the baseline model
   * with the same rounding as the workers (ceil to the nanodollar).
   */
  async report(q: LedgerQuery, opts: ReportOptions): Promise<LedgerReport> {
    const where: string[] = [];
    const p = opts.baseline.price;
    const args: unknown[] = [p.inputNanosPerMTok, p.cachedInputNanosPerMTok, p.outputNanosPerMTok];
    if (q.since) where.push(`at >= $${args.push(q.since)}`);
    if (q.until) where.push(`at < $${args.push(q.until)}`);
    if (q.scope !== undefined) where.push(`scope = $${args.push(q.scope)}`);
    const dims = opts.by.map((d) => DIMENSION_SQL[d]);
    const text = [
      'SELECT',
      [
        ...dims.map((x, i) => `${x} AS d${i}`),
        dims.length > 0 ? `GROUPING(${dims.join(', ')})::int AS grouping` : '0 AS grouping',
        'count(DISTINCT workflow_id)::text AS requests',
        'count(*)::text AS attempts',
        'sum(cost_nanos)::text AS cost',
        'sum(COALESCE(baseline_nanos, ceil((input_tokens::numeric * $1 + cached_input_tokens::numeric * $2 + output_tokens::numeric * $3) / 1000000)))::text AS baseline',
        'sum(input_tokens)::text AS input',
        'sum(cached_input_tokens)::text AS cached',
        'sum(output_tokens)::text AS output',
        "sum(CASE WHEN mode = 'batch' THEN GREATEST(COALESCE(live_nanos, cost_nanos) - cost_nanos, 0) ELSE 0 END)::text AS batch_saving",
        "sum(CASE WHEN mode = 'duplicated' THEN cost_nanos ELSE 0 END)::text AS duplicated",
      ].join(', '),
      `FROM ${LEDGER_TABLE}`,
      where.length > 0 ? `WHERE ${where.join(' AND ')}` : '',
      dims.length > 0 ? `GROUP BY GROUPING SETS ((${dims.join(', ')}), ())` : '',
    ].join(' ');
    const c = await this.pool.connect();
    let rows: AggregateRow[];
    try {
      await c.query('BEGIN READ ONLY');
      await c.query(`SET LOCAL statement_timeout = ${REPORT_TIMEOUT_MS}`);
      // query_timeout is honoured per query by pg (its types do not list it).
      const query: pg.QueryConfig = { text, values: args };
      rows = (await c.query<AggregateRow>(Object.assign(query, { query_timeout: REPORT_TIMEOUT_MS + 5_000 }))).rows;
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw new Error(`spend ledger ${this.describe}: the report query failed: ${(e as Error).message}`);
    } finally {
      c.release();
    }
    const figures = (r: AggregateRow | undefined): ReportFigures => {
      const n = (v: string | null | undefined): number => (v === null || v === undefined ? 0 : num(v));
      const costNanos = n(r?.cost);
      const baselineNanos = n(r?.baseline);
      return {
        requests: n(r?.requests),
        attempts: n(r?.attempts),
        costNanos,
        baselineNanos,
        savingNanos: baselineNanos - costNanos,
        inputTokens: n(r?.input),
        cachedInputTokens: n(r?.cached),
        outputTokens: n(r?.output),
        batchSavingNanos: n(r?.batch_saving),
        duplicatedNanos: n(r?.duplicated),
      };
    };
    const total = rows.find((r) => Number(r.grouping) !== 0 || dims.length === 0);
    const groups: ReportRow[] =
      dims.length === 0
        ? []
        : rows.filter((r) => Number(r.grouping) === 0).map((r) => ({ group: Object.fromEntries(opts.by.map((d, i) => [d, r[`d${i}`] ?? ''])), ...figures(r) }));
    return {
      ledger: this.describe,
      since: q.since?.toISOString() ?? null,
      until: q.until?.toISOString() ?? null,
      by: opts.by,
      rows: sortRows(groups, opts.by),
      total: figures(total),
      skippedLines: 0,
      repeatedKeys: 0,
    };
  }

  /** Closes the pool; a query still stuck is not waited for past 5 s. */
  async close(): Promise<void> {
    await Promise.race([this.pool.end(), new Promise<void>((r) => setTimeout(r, 5_000).unref())]);
  }
}
