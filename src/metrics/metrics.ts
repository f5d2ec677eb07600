/**
 * Switchyard's Prometheus metrics (prom-client): the seed's five, with its names, labels and
 * buckets, plus budget gauges, provider attempts by error kind, circuit state and requests in
 * flight. Each is fed from one place that happens once per event (see docs/observability.md):
 * the settlement the budget entity applied for the first time (requests, cost, latency), the
 * workflow's end through a replay-aware sink (routing decisions, quality), a provider call
 * (attempts), a poll of the entities (budgets, circuits).
 *
 * Label values are bounded: models and tiers come from the catalog; features, categories and
 * scopes are validated names, and past `maxLabelValues` distinct values per label a metric
 * reports the rest as "other". No prompt text, ids or keys are ever labels.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestEnded } from '../workflows/sinks.js';

export type { RequestEnded, RoutingDecision, RoutingReason } from '../workflows/sinks.js';

export const QUALITY_BUCKETS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0];
export const LATENCY_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30];

/** A paid attempt the budget entity settled for the first time. */
export interface SettledAttempt {
  readonly model: string;
  readonly tier: string;
  readonly feature: string;
  readonly costNanos: number;
  readonly latencyMs?: number | undefined;
  /** The gateway key that sent the request (its id), when one did. */
  readonly keyId?: string | undefined;
  /** How it was bought (absent: live) and, from a provider batch, its live price. */
  readonly mode?: 'batch' | 'duplicated' | undefined;
  readonly liveNanos?: number | undefined;
}

export interface BudgetGaugeRow {
  readonly scope: string;
  readonly category: string;
  readonly allocatedNanos: number;
  readonly spentNanos: number;
  readonly reservedNanos: number;
}

export interface MetricsSources {
  /** Budget rows of these scopes (the ones this worker has charged; polled when scraped). */
  budgets?: (scopes: readonly string[]) => Promise<readonly BudgetGaugeRow[]>;
  /** Models whose circuit is open or half-open (the health entity's view, cached); undefined when unknown. */
  circuits?: () => Promise<{ open: readonly string[]; halfOpen: readonly string[] } | undefined>;
  /** Catalog models, so each has a circuit-state series (0) before anything fails. */
  models?: readonly string[];
  /**
   * The ledger outbox as the server sees it (running outbox runs of this task queue, from
   * visibility): the same for every worker, whichever deferred a line or wrote it. Without it (or
   * when it fails) a worker reports the lines it knows of itself.
   */
  ledgerBacklog?: () => Promise<{ pending: number; oldestDeferredAt: number | undefined }>;
}

export const OTHER = 'other';

/** The outbox backlog (a visibility count and list) is read at most this often per worker. */
const LEDGER_BACKLOG_TTL_MS = 10_000;
/** A scrape's budget rows are reused for this long: the three budget gauges of one scrape share one poll. */
const BUDGET_ROWS_TTL_MS = 1_000;
/** Runs whose end was reported, remembered so that a retried final workflow task does not report again. */
const ENDED_RUNS_MAX = 10_000;

/** Keeps a label's distinct values bounded: the first `max` are kept, the rest are "other". */
export class LabelCap {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}
  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return OTHER;
    this.seen.add(value);
    return value;
  }
}

const NANOS_PER_DOLLAR = 1e9;

/** A waiting ledger line not retried on this worker for this long was written elsewhere (outbox retries come every 10 s at most). */
const LEDGER_SEEN_MS = 45_000;

export class SwitchyardMetrics {
  readonly registry = new Registry();
  private readonly features: LabelCap;
  private readonly scopes: LabelCap;
  private readonly categories: LabelCap;
  /** Spend per (model, tier) in integer nanodollars: the cost counter is derived from it, never summed in floating point. */
  private readonly costNanos = new Map<string, { model: string; tier: string; nanos: number }>();
  private readonly requests: Counter<'model' | 'tier' | 'feature'>;
  /** Spend per gateway key id in integer nanodollars (up to maxLabelValues keys; the rest "other"). */
  private readonly keyNanos = new Map<string, number>();
  private readonly keys: LabelCap;
  private readonly quality: Histogram<'model'>;
  private readonly latency: Histogram<'model'>;
  private readonly routing: Counter<'from_tier' | 'to_tier' | 'reason'>;
  private readonly attempts: Counter<'model' | 'provider' | 'kind'>;
  private readonly inFlightGauge: Gauge;
  private readonly policyStaleCounter: Counter<'reason'>;
  private readonly anomalies: Counter<'scope' | 'category' | 'action'>;
  private readonly spendByMode: Counter<'mode'>;
  private readonly batchSaving: Counter;
  private inFlightCount = 0;
  private readonly endedRuns = new Set<string>();
  private budgetRows: { at: number; scopes: number; rows: Promise<readonly BudgetGaugeRow[]> } | undefined;
  /** Scopes this worker has charged: their budgets are reported. */
  private readonly knownScopes = new Set<string>();
  private readonly maxScopes: number;

  constructor(sources: MetricsSources = {}, opts: { maxLabelValues?: number } = {}) {
    const max = opts.maxLabelValues ?? 100;
    this.maxScopes = max;
    const known = this.knownScopes;
    this.features = new LabelCap(max);
    this.scopes = new LabelCap(max);
    this.categories = new LabelCap(max);
    this.keys = new LabelCap(max);
    const byKey = this.keyNanos;
    new Counter({
      name: 'switchyard_key_spend_dollars',
      help: 'Spend of requests sent through each gateway key, in dollars (from integer nanodollars); key is the key id, never the key',
      labelNames: ['key'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [key, nanos] of byKey) this.inc({ key }, nanos / NANOS_PER_DOLLAR);
      },
    });
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'llm_model_requests_total',
      help: 'Total requests per model (paid attempts the budget settled)',
      labelNames: ['model', 'tier', 'feature'],
      registers,
    });
    const costs = this.costNanos;
    new Counter({
      name: 'llm_model_cost_dollars',
      help: 'Cost per model, in dollars (from integer nanodollars)',
      labelNames: ['model', 'tier'],
      registers,
      collect() {
        this.reset();
        for (const c of costs.values()) this.inc({ model: c.model, tier: c.tier }, c.nanos / NANOS_PER_DOLLAR);
      },
    });
    this.quality = new Histogram({
      name: 'llm_model_quality_score',
      help: 'Quality scores per model (judge scores; 1 or 0 for checks passed or failed)',
      labelNames: ['model'],
      buckets: QUALITY_BUCKETS,
      registers,
    });
    this.latency = new Histogram({
      name: 'llm_model_latency_seconds',
      help: 'Latency per model (provider call, seconds)',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.routing = new Counter({
      name: 'llm_routing_decisions_total',
      help: 'Routing decisions: the tier a request preferred, the tier a paid call went to, and why',
      labelNames: ['from_tier', 'to_tier', 'reason'],
      registers,
    });
    this.attempts = new Counter({
      name: 'switchyard_provider_attempts_total',
      help: 'Provider calls by outcome (ok, or the error kind)',
      labelNames: ['model', 'provider', 'kind'],
      registers,
    });
    this.anomalies = new Counter({
      name: 'switchyard_spend_anomalies_total',
      help: 'Spend anomalies raised (a bucket of spend far above its learned baseline), and the action applied',
      labelNames: ['scope', 'category', 'action'],
      registers,
    });
    this.spendByMode = new Counter({
      name: 'switchyard_spend_by_mode_nanos_total',
      help: 'Spend settled, in nanodollars, by how it was bought: live, batch (a provider batch API), duplicated (a batch line the provider answered after its request went live)',
      labelNames: ['mode'],
      registers,
    });
    this.batchSaving = new Counter({
      name: 'switchyard_batch_saving_nanos_total',
      help: 'What answers from provider batches saved against the same usage at the live price, in nanodollars',
      registers,
    });
    this.inFlightGauge = new Gauge({ name: 'switchyard_provider_calls_in_flight', help: 'Provider calls in flight on this worker', registers });
    this.policyStaleCounter = new Counter({
      name: 'switchyard_policy_stale_total',
      help: 'Requests routed by the last routing policy read because a current one could not be had (the epoch unreadable, the policy query failed, or the policy stayed behind its epoch)',
      labelNames: ['reason'],
      registers,
    });
    this.ledgerDeferredCounter = new Counter({
      name: 'switchyard_ledger_deferred_total',
      help: 'Settlements whose ledger line could not be written at once and went to the ledger outbox',
      registers,
    });
    const ledgerView = (now: number) => this.ledgerBacklogView(now, sources.ledgerBacklog);
    new Gauge({
      name: 'switchyard_ledger_lag_seconds',
      help: 'Age of the oldest ledger line waiting in the outbox of this task queue (0: none; aggregate with max)',
      registers,
      async collect() {
        this.set((await ledgerView(Date.now())).lagSeconds);
      },
    });
    new Gauge({
      name: 'switchyard_ledger_outbox_pending',
      help: 'Ledger lines waiting in the outbox of this task queue',
      registers,
      async collect() {
        this.set((await ledgerView(Date.now())).pending);
      },
    });
    const budgets = sources.budgets;
    const scopes = this.scopes;
    const categories = this.categories;
    // One poll of the entities serves the three gauges of a scrape.
    const rows = (): Promise<readonly BudgetGaugeRow[]> => {
      if (!budgets) return Promise.resolve([]);
      let c = this.budgetRows;
      if (!c || c.scopes !== known.size || Date.now() - c.at > BUDGET_ROWS_TTL_MS) {
        c = { at: Date.now(), scopes: known.size, rows: budgets([...known]).catch(() => []) };
        this.budgetRows = c;
      }
      return c.rows;
    };
    const budgetGauge = (name: string, help: string, field: 'allocatedNanos' | 'spentNanos' | 'reservedNanos') =>
      new Gauge({
        name,
        help,
        labelNames: ['scope', 'category'],
        registers,
        async collect() {
          if (!budgets) return;
          this.reset();
          for (const r of await rows()) this.set({ scope: scopes.of(r.scope), category: categories.of(r.category) }, r[field] / NANOS_PER_DOLLAR);
        },
      });
    budgetGauge(
      'switchyard_budget_allocated_dollars',
      'Budget allocated this period, per scope and category (same value on every worker: aggregate with max)',
      'allocatedNanos',
    );
    budgetGauge('switchyard_budget_spent_dollars', 'Budget spent this period, per scope and category (aggregate with max)', 'spentNanos');
    budgetGauge('switchyard_budget_reserved_dollars', 'Budget reserved by calls in flight, per scope and category (aggregate with max)', 'reservedNanos');
    const circuits = sources.circuits;
    const models = sources.models ?? [];
    new Gauge({
      name: 'switchyard_circuit_state',
      help: 'Circuit breaker per model: 0 closed, 1 half-open, 2 open',
      labelNames: ['model'],
      registers,
      async collect() {
        if (!circuits) return;
        const c = await circuits();
        this.reset();
        // Unknown (the health entity did not answer): no series rather than a false "closed".
        if (!c) return;
        for (const m of new Set([...models, ...c.open, ...c.halfOpen])) this.set({ model: m }, c.open.includes(m) ? 2 : c.halfOpen.includes(m) ? 1 : 0);
      },
    });
  }

  /**
   * Ledger lines this worker knows to be waiting (deferred by it, or retried by its outbox
   * activities), by key: when the first write failed, and when this worker last saw it. A line
   * another worker wrote meanwhile is forgotten after LEDGER_SEEN_MS without a retry here.
   */
  private readonly ledgerWaiting = new Map<string, { deferredAt: number; seenAt: number }>();
  private ledgerDeferredCounter: Counter | undefined;

  /** A settlement's ledger line could not be written now and went to the outbox. */
  /** A request routed by a policy that may be stale (see learning/worker/policyCache.ts). */
  policyStale(reason: 'epoch_unreadable' | 'query_failed' | 'behind'): void {
    this.policyStaleCounter.inc({ reason });
  }

  ledgerDeferred(key: string, deferredAt: number): void {
    this.ledgerDeferredCounter?.inc();
    this.ledgerPending(key, deferredAt);
  }

  /** An outbox attempt for this line is running (it is still waiting). */
  ledgerPending(key: string, deferredAt: number): void {
    this.ledgerWaiting.set(key, { deferredAt: Math.min(deferredAt, this.ledgerWaiting.get(key)?.deferredAt ?? deferredAt), seenAt: Date.now() });
  }

  /** The line is in the ledger. */
  ledgerWritten(key: string): void {
    this.ledgerWaiting.delete(key);
  }

  private backlog: { at: number; view: Promise<{ pending: number; lagSeconds: number }> } | undefined;

  /** One visibility read serves both gauges, and every scrape of the next 10 s (visibility is rate-limited on Cloud). */
  private ledgerBacklogView(now: number, source: MetricsSources['ledgerBacklog']): Promise<{ pending: number; lagSeconds: number }> {
    if (!source) return Promise.resolve(this.ledgerView(now));
    if (this.backlog && now - this.backlog.at < LEDGER_BACKLOG_TTL_MS) return this.backlog.view;
    const view = source().then(
      (b) => ({ pending: b.pending, lagSeconds: b.oldestDeferredAt === undefined ? 0 : Math.max(0, now - b.oldestDeferredAt) / 1000 }),
      () => this.ledgerView(now),
    );
    this.backlog = { at: now, view };
    return view;
  }

  private ledgerView(now: number): { pending: number; lagSeconds: number } {
    let oldest = now;
    for (const [key, w] of this.ledgerWaiting) {
      if (now - w.seenAt > LEDGER_SEEN_MS) this.ledgerWaiting.delete(key);
      else oldest = Math.min(oldest, w.deferredAt);
    }
    return { pending: this.ledgerWaiting.size, lagSeconds: (now - oldest) / 1000 };
  }

  /** A paid attempt settled for the first time: one request, its cost and its latency. */
  settled(a: SettledAttempt): void {
    if (!Number.isSafeInteger(a.costNanos) || a.costNanos < 0) throw new RangeError(`costNanos must be a non-negative integer, got ${a.costNanos}`);
    this.requests.inc({ model: a.model, tier: a.tier, feature: this.features.of(a.feature) });
    const key = `${a.model}\u0000${a.tier}`;
    const c = this.costNanos.get(key) ?? { model: a.model, tier: a.tier, nanos: 0 };
    c.nanos += a.costNanos;
    this.costNanos.set(key, c);
    if (a.latencyMs !== undefined && Number.isFinite(a.latencyMs) && a.latencyMs >= 0) this.latency.observe({ model: a.model }, a.latencyMs / 1000);
    this.spendByMode.inc({ mode: a.mode ?? 'live' }, a.costNanos);
    if (a.mode === 'batch' && a.liveNanos !== undefined && a.liveNanos > a.costNanos) this.batchSaving.inc(a.liveNanos - a.costNanos);
    if (a.keyId !== undefined) {
      const k = this.keys.of(a.keyId);
      this.keyNanos.set(k, (this.keyNanos.get(k) ?? 0) + a.costNanos);
    }
  }

  /** A spend anomaly the routing entity raised (counted by the worker that delivered its alert). */
  anomaly(scope: string, category: string, action: string): void {
    this.anomalies.inc({ scope: this.scopes.of(scope), category: this.categories.of(category), action });
  }

  /** A scope this worker charged: its budget is reported from now on (up to maxLabelValues scopes). */
  sawBudget(scope: string): void {
    if (this.knownScopes.size < this.maxScopes) this.knownScopes.add(scope);
  }

  /**
   * A request ended: its routing decisions and quality scores, once per run on this worker (a
   * final workflow task that failed and ran again reports again; the run id is remembered).
   */
  requestEnded(runId: string, e: RequestEnded): boolean {
    if (this.endedRuns.has(runId)) return false;
    this.endedRuns.add(runId);
    if (this.endedRuns.size > ENDED_RUNS_MAX) this.endedRuns.delete(this.endedRuns.values().next().value ?? runId);
    for (const r of e.routing) this.routing.inc({ from_tier: r.fromTier, to_tier: r.toTier, reason: r.reason });
    for (const q of e.quality) if (Number.isFinite(q.score)) this.quality.observe({ model: q.model }, Math.min(1, Math.max(0, q.score)));
    return true;
  }

  /** A provider call ended: `ok`, or its error kind. */
  providerAttempt(model: string, provider: string, kind: string): void {
    this.attempts.inc({ model, provider, kind });
  }

  /** Counts a provider call in flight until the returned function is called. */
  callStarted(): () => void {
    this.inFlightCount += 1;
    this.inFlightGauge.set(this.inFlightCount);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlightCount -= 1;
      this.inFlightGauge.set(this.inFlightCount);
    };
  }
}
