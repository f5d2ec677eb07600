/**
 * Configuration, validated once at start-up: environment variables, plus an optional YAML/JSON
 * file (SWITCHYARD_CONFIG) for routing thresholds and retry policy. Secrets stay here, in the
 * worker's process; nothing in this module is ever sent to a workflow.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { BATCH_UPGRADES, DEFAULT_COLLECTOR, parseDeadline } from '../deferred/deadline.js';
import type { ProviderEndpoints } from '../providers/registry.js';
import { DEFAULT_ROUTING_POLICY } from '../routing/router.js';
import { DEFAULT_REALLOCATION_EVERY_MS, validateReallocation } from '../budget/reallocation.js';
import { DEFAULT_TUNER } from '../learning/tuner.js';
import { DEFAULT_ANOMALY } from '../learning/anomalies.js';
import { parseOrThrow } from '../util/validation.js';
import { isReservedName, RESERVED_MESSAGE } from '../util/names.js';
import { validTimeZone } from '../budget/periods.js';
import { DENIAL_POLICIES, MAX_BUDGET_NANOS } from '../budget/book.js';
import { PROVIDERS } from '../catalog/schema.js';
import { readStructuredFile } from '../util/structuredFile.js';
import { AesGcmPayloadCodec } from '../security/payloadCodec.js';
import { encryptionKeysFromEnv } from '../security/encryptionKeys.js';
import { clusterSettingsFromEnv, type TemporalAccess } from '../temporal/connection.js';
import { ENTITY_QUEUE_SUFFIX } from '../workflows/taskQueues.js';

/** Request workflows a worker caches by default (see workflowCacheSize). */
export const DEFAULT_WORKFLOW_CACHE = 250;

/** A category name: lowercase word, not a reserved name. */
export const categoryName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,63}$/, 'must be a lowercase name such as critical, standard or batch')
  .refine((s) => !isReservedName(s), { message: RESERVED_MESSAGE });

export const retryPolicySchema = z
  .object({
    /** Attempts per candidate model, including the first. */
    maximumAttempts: z.number().int().min(1).max(20).default(3),
    initialIntervalMs: z.number().int().min(0).default(500),
    backoffCoefficient: z.number().min(1).max(10).default(2),
    maximumIntervalMs: z.number().int().min(0).default(30_000),
    /** A Retry-After longer than this moves on to the next candidate instead of waiting. */
    maxRetryAfterMs: z.number().int().min(0).default(10_000),
    /** When every candidate is rate-limited: the longest durable wait for the earliest reset. */
    maxRateLimitWaitMs: z.number().int().min(0).default(900_000),
  })
  .strict();
export type RetryPolicyConfig = z.output<typeof retryPolicySchema>;

/** A record keyed by category name; a bad key is reported with the key and the rule. */
function byCategory<V extends z.ZodType>(value: V) {
  return z.record(z.string(), value).superRefine((rec, ctx) => {
    for (const k of Object.keys(rec)) {
      const r = categoryName.safeParse(k);
      if (!r.success) ctx.addIssue({ code: 'custom', path: [k], message: `category name ${r.error.issues[0]?.message ?? 'is invalid'}` });
    }
  });
}

/**
 * Default reservation margins on counted input tokens: the o200k tokenizer is OpenAI's own; the
 * others' tokenizers are not published and count differently (often more tokens for the same text).
 */
export const DEFAULT_RESERVATION_MARGIN = { openai: 0, anthropic: 0.25, google: 0.2, mistral: 0.25, 'self-hosted': 0.3 } as const;

export const budgetConfigSchema = z
  .object({
    /** The budget per period, in USD (converted once to integer nanodollars). */
    amountUsd: z
      .number()
      .nonnegative()
      .max(
        Math.floor(MAX_BUDGET_NANOS / 1e9),
        `must be at most ${Math.floor(MAX_BUDGET_NANOS / 1e9)} (integer nanodollars hold about $9 million per scope; split larger budgets into scopes)`,
      )
      .default(1000),
    periodicity: z.enum(['daily', 'weekly', 'monthly', 'fixed']).default('monthly'),
    /** Length of a `fixed` period, e.g. 3600000 for hourly budgets. */
    periodMs: z.number().int().min(1000).optional(),
    timeZone: z.string().min(1).refine(validTimeZone, { message: 'must be an IANA time zone such as UTC, Europe/Berlin or America/New_York' }).default('UTC'),
    allocations: byCategory(z.number().min(0).max(1)).default({ critical: 0.4, standard: 0.35, batch: 0.25 }),
    limits: byCategory(z.enum(['hard', 'soft'])).default({}),
    policies: byCategory(z.enum(DENIAL_POLICIES)).default({ critical: 'downgrade', standard: 'downgrade', batch: 'wait' }),
    alertThresholds: z.array(z.number().gt(0).max(10)).default([0.5, 0.8, 1]),
    webhookUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://hooks.example.com/budget' }).optional(),
    maxWaitMs: z.number().int().min(0).default(3_600_000),
    reservationTtlMs: z
      .number()
      .int()
      .min(1000)
      .default(6 * 3_600_000),
    /** Safety margin on counted input tokens in reservations, per provider (0.25 = +25%). */
    reservationMargin: z.partialRecord(z.enum(PROVIDERS), z.number().min(0).max(10)).default({ ...DEFAULT_RESERVATION_MARGIN }),
    /** Entity workflows the budget is split across (set once per scope; see docs/budgets.md, Scaling). */
    shards: z.number().int().min(1).max(64).default(1),
    /** Move unused allocation between categories on a schedule (off unless set; see docs/learning.md, Budget reallocation). */
    reallocation: z
      .object({
        everyMs: z.number().int().min(1000).default(DEFAULT_REALLOCATION_EVERY_MS),
        floors: byCategory(z.number().min(0).max(1)).optional(),
        minElapsedShare: z.number().min(0).lt(1).optional(),
        margin: z.number().min(0).max(10).optional(),
        idleUntilShare: z.number().min(0).max(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((b) => Math.abs(Object.values(b.allocations).reduce((a, x) => a + x, 0) - 1) <= 1e-9, { message: 'allocations must sum to 1', path: ['allocations'] })
  .refine((b) => b.periodicity !== 'fixed' || b.periodMs !== undefined, { message: 'periodMs is required when periodicity is fixed', path: ['periodMs'] })
  .superRefine((b, ctx) => {
    // Refused here, where it is made, not by every new budget entity at its start.
    if (!b.reallocation) return;
    for (const e of validateReallocation(b.reallocation, Object.keys(b.allocations)))
      ctx.addIssue({ code: 'custom', message: e.replace(/^reallocation\.[\w.]+: /, ''), path: e.split(':')[0]!.split('.') });
  });
export type BudgetConfig = z.output<typeof budgetConfigSchema>;

export const fileConfigSchema = z
  .object({
    routing: z
      .object({
        thresholds: z
          .object({ standard: z.number().min(0).max(1), premium: z.number().min(0).max(1) })
          .strict()
          .refine((t) => t.standard <= t.premium, { message: 'standard must be <= premium' })
          .default(DEFAULT_ROUTING_POLICY.thresholds),
        defaultMaxOutputTokens: z.number().int().positive().default(DEFAULT_ROUTING_POLICY.defaultMaxOutputTokens),
        maxCandidates: z.number().int().min(1).max(10).default(DEFAULT_ROUTING_POLICY.maxCandidates),
      })
      .strict()
      .default({ ...DEFAULT_ROUTING_POLICY }),
    retry: retryPolicySchema.default(retryPolicySchema.parse({})),
    /** Retry policy overrides per catalog model (merged over `retry`). */
    modelRetry: z.record(z.string(), retryPolicySchema.partial()).default({}),
    /** Fallback chains per preferred tier: model names tried, in order, after the primary. */
    fallbacks: z
      .object({ economy: z.array(z.string()).optional(), standard: z.array(z.string()).optional(), premium: z.array(z.string()).optional() })
      .strict()
      .default({}),
    budget: budgetConfigSchema.default(budgetConfigSchema.parse({})),
    /** The deferred lane (docs/deferred.md): when a collector submits a provider batch, how it polls, when a request leaves for a live call. */
    deferred: z
      .object({
        // A collector carries its lines' references (about 250 bytes each) in its state and activity inputs, under Temporal's 2 MB payload limit.
        maxLines: z.number().int().min(1).max(2_000).default(DEFAULT_COLLECTOR.maxLines),
        maxAgeMs: z.number().int().min(0).max(86_400_000).default(DEFAULT_COLLECTOR.maxAgeMs),
        pollMinMs: z.number().int().min(10).max(3_600_000).default(DEFAULT_COLLECTOR.pollMinMs),
        pollMaxMs: z.number().int().min(10).max(3_600_000).default(DEFAULT_COLLECTOR.pollMaxMs),
        leaveMarginMs: z.number().int().min(0).max(86_400_000).default(DEFAULT_COLLECTOR.leaveMarginMs),
        /** May a deferred request go to a stronger model whose batch price is at or below the routed model's price (docs/deferred.md)? */
        upgrade: z.enum(BATCH_UPGRADES).default('no_dearer'),
        /** A deadline for requests of these categories that name none, e.g. {"batch": "12h"} (applied where requests start: the CLI, the gateway, the client). */
        categoryDeadlines: z
          .record(
            z.string(),
            z.string().superRefine((v, ctx) => {
              const p = parseDeadline(v);
              if ('error' in p) ctx.addIssue({ code: 'custom', message: p.error });
            }),
          )
          .default({}),
      })
      .strict()
      .refine((d) => d.pollMinMs <= d.pollMaxMs, { message: 'pollMinMs must be <= pollMaxMs', path: ['pollMinMs'] })
      .prefault({}),
    health: z
      .object({
        /** Consecutive transient failures (5xx, timeouts, rate limits) that open a model's circuit. */
        failureThreshold: z.number().int().min(1).default(5),
        cooldownMs: z.number().int().min(100).default(30_000),
        enabled: z.boolean().default(true),
      })
      .strict()
      .default({ failureThreshold: 5, cooldownMs: 30_000, enabled: true }),
    /** The learning loop: outcome reports, the routing tuner, spend anomaly detection (docs/learning.md, Routing that tunes itself). */
    learning: z
      .object({
        /** How often a worker sends its outcome counts and spend to the routing entity. */
        reportEveryMs: z.number().int().min(100).max(600_000).default(5_000),
        /** How long a worker routes by a cached policy before reading it again. */
        policyCacheMs: z.number().int().min(100).max(600_000).default(5_000),
        tuner: z
          .object({
            enabled: z.boolean().default(true),
            intervalMs: z.number().int().min(1_000).default(3_600_000),
            qualityTarget: z.number().gt(0).max(1).default(DEFAULT_TUNER.qualityTarget),
            minSamples: z.number().int().min(1).default(DEFAULT_TUNER.minSamples),
            step: z.number().gt(0).max(1).default(DEFAULT_TUNER.step),
            minThreshold: z.number().min(0).max(1).default(DEFAULT_TUNER.minThreshold),
            explore: z.number().min(0).max(0.5).default(DEFAULT_TUNER.explore),
          })
          .strict()
          .prefault({}),
        anomaly: z
          .object({
            enabled: z.boolean().default(true),
            bucketMs: z.number().int().min(1_000).default(DEFAULT_ANOMALY.bucketMs),
            alpha: z.number().gt(0).max(1).default(DEFAULT_ANOMALY.alpha),
            k: z.number().gt(0).max(100).default(DEFAULT_ANOMALY.k),
            warmupBuckets: z.number().int().min(1).default(DEFAULT_ANOMALY.warmupBuckets),
            minSpendUsd: z
              .number()
              .min(0)
              .default(DEFAULT_ANOMALY.minSpendNanos / 1e9),
            action: z.enum(['none', 'downgrade', 'pause']).default(DEFAULT_ANOMALY.action),
            webhookUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://hooks.example.com/anomaly' }).optional(),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Prometheus metrics: each worker serves /metrics on this port (0 = any free port). */
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        port: z.number().int().min(0).max(65_535).default(9464),
        host: z.string().min(1).default('0.0.0.0'),
        /** Distinct values per label (features, scopes, categories) before the rest count as "other". */
        maxLabelValues: z.number().int().min(1).max(10_000).default(100),
        /** On a graceful stop, wait this long at most for a last scrape (set it to about the scrape interval). */
        finalScrapeMs: z.number().int().min(0).max(600_000).default(0),
      })
      .strict()
      .default({ enabled: true, port: 9464, host: '0.0.0.0', maxLabelValues: 100, finalScrapeMs: 0 }),
    /** The OpenAI-compatible gateway (docs/openai-clients.md). */
    gateway: z
      .object({
        /** Model names clients may send, each standing for a catalog model or a tier (`switchyard/economy`), e.g. {"gpt-4": "switchyard/premium"}. */
        aliases: z.record(z.string().min(1).max(200), z.string().min(1).max(200)).default({}),
        /** How long a call waits for its answer before answering 504 (or 429 while it waits on a budget) with its workflow id. */
        waitMs: z.number().int().min(1_000).max(3_600_000).default(600_000),
        /** How often a gateway reads the key registry: a revoked key is refused within this (and the query's own time). */
        keyRefreshMs: z.number().int().min(200).max(4_000).default(2_000),
      })
      .strict()
      .prefault({}),
    /** Per provider call: the SDK's own timeout. */
    callTimeoutMs: z.number().int().min(100).max(3_600_000).default(120_000),
    /** What a billable Temporal action costs (Temporal Cloud lists about $50 per million), for the bill. */
    temporalActionUsdPerMillion: z.number().min(0).max(10_000).default(50),
    /**
     * Request workflows a worker keeps in memory between their tasks (Temporal's sticky cache). A
     * request waits in its paid call, so a small cache costs one history replay per evicted
     * request and bounds memory with many requests in flight (BENCHMARKS "Worker memory").
     */
    workflowCacheSize: z.number().int().min(0).max(100_000).default(DEFAULT_WORKFLOW_CACHE),
  })
  .strict()
  .superRefine((c, ctx) => {
    // A reservation covers one provider call: its activity may run twice (a lost worker) for up to
    // callTimeoutMs + 30 s each. An abandoned-reservation TTL shorter than that would free budget
    // that a live call still holds.
    const need = minReservationTtlMs(c.callTimeoutMs);
    if (c.budget.reservationTtlMs < need) {
      ctx.addIssue({
        code: 'custom',
        path: ['budget', 'reservationTtlMs'],
        message: `must be at least ${need} ms: 2 x (callTimeoutMs ${c.callTimeoutMs} + 30000) + 60000, the longest a call's reservation can be open; raise it or lower callTimeoutMs`,
      });
    }
  });

/** The shortest reservation TTL that outlives any call it covers. */
export function minReservationTtlMs(callTimeoutMs: number): number {
  return 2 * (callTimeoutMs + 30_000) + 60_000;
}
export type FileConfig = z.output<typeof fileConfigSchema>;

export interface SwitchyardConfig extends FileConfig {
  readonly temporalAddress: string | undefined;
  readonly namespace: string;
  readonly taskQueue: string;
  readonly stateDir: string;
  readonly ledgerPath: string;
  /** PostgreSQL ledger (`SWITCHYARD_LEDGER_URL`, a secret: it may hold a password); else the file at ledgerPath. */
  readonly ledgerUrl: string | undefined;
  readonly catalogPath: string | undefined;
  readonly simulatorUrl: string | undefined;
  readonly providers: ProviderEndpoints;
  readonly logLevel: string;
  /**
   * TLS, API key and payload codec for the Temporal connection (secrets: never log this). Empty
   * when talking to the embedded dev server without encryption.
   */
  readonly access: TemporalAccess;
}

/** An optional http(s) base URL; the message shows a good one. */
function providerBaseUrl(example: string) {
  return z.url({ protocol: /^https?$/, error: `must be an http(s) URL such as ${example}` }).optional();
}

const envSchema = z.object({
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'must be host:port, e.g. 127.0.0.1:7233')
    .optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).optional(),
  SWITCHYARD_TASK_QUEUE: z.string().min(1).default('switchyard'),
  SWITCHYARD_STATE_DIR: z.string().min(1).optional(),
  SWITCHYARD_LEDGER: z.string().min(1).optional(),
  SWITCHYARD_LEDGER_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a PostgreSQL URL such as postgres://user:password@db:5432/switchyard')
    .optional(),
  SWITCHYARD_CATALOG: z.string().min(1).optional(),
  SWITCHYARD_CONFIG: z.string().min(1).optional(),
  SWITCHYARD_SIMULATOR_URL: z.url('must be a URL such as http://127.0.0.1:8089').optional(),
  // Providers' base URLs, checked at start like the simulator's (a typo would otherwise fail each call).
  OPENAI_BASE_URL: providerBaseUrl('https://api.openai.com/v1'),
  ANTHROPIC_BASE_URL: providerBaseUrl('https://api.anthropic.com'),
  GEMINI_BASE_URL: providerBaseUrl('https://generativelanguage.googleapis.com'),
  MISTRAL_BASE_URL: providerBaseUrl('https://api.mistral.ai'),
  SELF_HOSTED_BASE_URL: providerBaseUrl('http://127.0.0.1:8000/v1'),
  SWITCHYARD_WORKFLOW_CACHE: z.coerce
    .number({ error: 'must be a whole number of workflows, e.g. 250' })
    .int('must be a whole number of workflows, e.g. 250')
    .min(0, 'must be >= 0 (0 turns the cache off)')
    .optional(),
  SWITCHYARD_METRICS_PORT: z
    .union([z.literal('off'), z.coerce.number().int().min(0).max(65_535)], { error: 'must be a port (0-65535; 0 = any free port) or off' })
    .optional(),
  SWITCHYARD_METRICS_FINAL_SCRAPE_MS: z.coerce.number({ error: 'must be milliseconds, e.g. 15000' }).int().min(0).max(600_000).optional(),
  SWITCHYARD_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SWITCHYARD_ENCRYPTION_REQUIRED: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
});

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && env.XDG_STATE_HOME.length > 0 ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(base, 'switchyard');
}

/** True when any real provider key is configured (then `up` does not start the simulator). */
export function hasProviderKeys(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'MISTRAL_API_KEY', 'SELF_HOSTED_BASE_URL'].some((k) => (env[k] ?? '') !== '');
}

export function providerEndpointsFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderEndpoints {
  const ep = (key: string, url: string): { apiKey?: string; baseURL?: string } => ({
    ...(env[key] ? { apiKey: env[key] } : {}),
    ...(env[url] ? { baseURL: env[url] } : {}),
  });
  return {
    openai: ep('OPENAI_API_KEY', 'OPENAI_BASE_URL'),
    anthropic: ep('ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL'),
    google: ep('GEMINI_API_KEY', 'GEMINI_BASE_URL'),
    mistral: ep('MISTRAL_API_KEY', 'MISTRAL_BASE_URL'),
    'self-hosted': ep('SELF_HOSTED_API_KEY', 'SELF_HOSTED_BASE_URL'),
  };
}

export function loadFileConfig(path: string | undefined): FileConfig {
  if (!path) return fileConfigSchema.parse({});
  return parseOrThrow(fileConfigSchema, readStructuredFile(path, 'config file', '; check SWITCHYARD_CONFIG') ?? {}, path);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<SwitchyardConfig> = {}): SwitchyardConfig {
  // An empty variable (`TEMPORAL_ADDRESS= switchyard up`) means unset.
  const e = parseOrThrow(envSchema, Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')), 'environment');
  const file = loadFileConfig(e.SWITCHYARD_CONFIG);
  const stateDir = e.SWITCHYARD_STATE_DIR ?? defaultStateDir(env);
  const cluster = clusterSettingsFromEnv(env);
  const address = e.TEMPORAL_ADDRESS ?? cluster.address;
  if (!address && (cluster.access.tls || cluster.access.apiKey)) {
    throw new Error(
      "TEMPORAL_TLS* or TEMPORAL_API_KEY is set but TEMPORAL_ADDRESS is not: set the cluster's address (host:port, e.g. my-ns.a1b2c.tmprl.cloud:7233); without it Switchyard starts its own dev server, which has no TLS",
    );
  }
  const keys = encryptionKeysFromEnv(env);
  const required = e.SWITCHYARD_ENCRYPTION_REQUIRED === 'true';
  if (required && !keys)
    throw new Error(
      'SWITCHYARD_ENCRYPTION_REQUIRED=true needs SWITCHYARD_ENCRYPTION_KEY: a process cannot require encryption it cannot do (`switchyard codec keygen` makes a key)',
    );
  const config: SwitchyardConfig = {
    ...file,
    temporalAddress: address,
    namespace: e.TEMPORAL_NAMESPACE ?? cluster.namespace ?? 'default',
    access: {
      ...cluster.access,
      ...(keys
        ? {
            codec: new AesGcmPayloadCodec(keys, { refusePlaintext: required }),
            encryptionKeyId: keys.active.id,
            encryptionKeys: keys,
            ...(required ? { encryptionRequired: true } : {}),
          }
        : {}),
    },
    taskQueue: e.SWITCHYARD_TASK_QUEUE,
    stateDir,
    ledgerPath: e.SWITCHYARD_LEDGER ?? join(stateDir, 'ledger.jsonl'),
    ledgerUrl: e.SWITCHYARD_LEDGER_URL,
    catalogPath: e.SWITCHYARD_CATALOG,
    simulatorUrl: e.SWITCHYARD_SIMULATOR_URL,
    providers: providerEndpointsFromEnv(env),
    logLevel: e.SWITCHYARD_LOG_LEVEL,
    ...(e.SWITCHYARD_WORKFLOW_CACHE !== undefined ? { workflowCacheSize: e.SWITCHYARD_WORKFLOW_CACHE } : {}),
    metrics: {
      ...file.metrics,
      ...(e.SWITCHYARD_METRICS_PORT === 'off' ? { enabled: false } : e.SWITCHYARD_METRICS_PORT !== undefined ? { port: e.SWITCHYARD_METRICS_PORT } : {}),
      ...(e.SWITCHYARD_METRICS_FINAL_SCRAPE_MS !== undefined ? { finalScrapeMs: e.SWITCHYARD_METRICS_FINAL_SCRAPE_MS } : {}),
    },
    ...overrides,
  };
  if (config.taskQueue.endsWith(ENTITY_QUEUE_SUFFIX)) {
    throw new Error(
      `task queue "${config.taskQueue}" ends with "${ENTITY_QUEUE_SUFFIX}", the suffix of the queue where Switchyard runs its budget and health entities: choose a name without it (SWITCHYARD_TASK_QUEUE or --task-queue)`,
    );
  }
  return config;
}
