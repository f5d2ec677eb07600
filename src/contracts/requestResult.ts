/**
 * The request workflow's result and failure details as zod schemas: the source of the result's
 * versioned JSON Schema (contracts/request-result.v1.schema.json). The TypeScript interfaces in
 * workflows/request/contract.ts stay the workflow's types; the checks at the bottom fail to compile if
 * the two drift apart. Pure (zod only).
 */
import { z } from 'zod';
import { PROVIDERS, TIERS } from '../catalog/schema.js';
import type { Attempt, AttemptOutcome, RequestFailureDetails, RequestResult } from '../workflows/request/contract.js';

const nanos = z.number().int().min(0).describe('US dollars x 1e9 (integer nanodollars)');
const tier = z.enum(TIERS);
const provider = z.enum(PROVIDERS);

const usage = z.object({
  inputTokens: z.number().int().min(0).describe('input tokens billed at the full input price (excludes cached tokens)'),
  cachedInputTokens: z.number().int().min(0),
  outputTokens: z.number().int().min(0),
});

const candidate = z.object({
  model: z.string(),
  provider,
  tier,
  quality: z.number(),
  maxOutputTokens: z.number().int(),
  estimatedCostNanos: nanos,
  reason: z.string(),
});

const OUTCOMES = [
  'ok',
  'rate_limited',
  'transient',
  'context_too_long',
  'fatal',
  'timeout',
  'unavailable',
  'internal',
  'budget_denied',
  'escalated',
  'hedged_out',
] as const satisfies readonly AttemptOutcome[];

const attempt = z.object({
  attemptId: z.string(),
  model: z.string(),
  provider,
  tier,
  outcome: z.enum(OUTCOMES),
  status: z.number().int().optional(),
  message: z.string().optional(),
  waitBeforeMs: z.number().min(0).describe('durable wait (timer) before this attempt started'),
  startedAt: z.string(),
  durationMs: z.number().min(0),
  costNanos: nanos,
  decision: z.string().optional().describe('what happened next and why (retry, next candidate, fail)'),
  qualityFailures: z.array(z.string()).optional(),
  mode: z.enum(['batch']).optional().describe("answered through the provider's batch API (absent: a live call)"),
  batchId: z.string().optional().describe('the provider batch that answered it'),
});

export const requestResultSchema = z.object({
  workflowId: z.string(),
  requestId: z.string(),
  category: z.string(),
  feature: z.string().optional(),
  text: z.string().describe("the model's answer"),
  toolCalls: z
    .array(z.object({ id: z.string(), name: z.string(), arguments: z.string().describe('JSON text, as the model wrote it') }))
    .optional()
    .describe('the tools the model called, in order (absent: none; text may then be empty)'),
  model: z.string(),
  provider,
  tier,
  usage,
  finishReason: z.string().optional().describe('why the answer ended, as the provider said it (stop, length, end_turn, max_tokens, STOP, MAX_TOKENS, ...)'),
  costNanos: nanos,
  premiumBaselineCostNanos: nanos.describe('what the same usage would have cost on the premium baseline model'),
  classification: z.object({
    complexity: z.number().min(0).max(1),
    capabilities: z.array(z.string()),
    inputTokens: z.number().int().min(0),
    signals: z.array(z.string()),
    preferredTier: tier,
  }),
  candidates: z.array(candidate),
  skipped: z.array(z.object({ model: z.string(), why: z.string() })).optional(),
  attempts: z.array(attempt),
  escalations: z.array(z.object({ from: z.string(), to: z.string(), reason: z.string() })),
  durationMs: z.number().min(0),
  streamed: z
    .enum(['complete', 'client_left'])
    .optional()
    .describe('set when the answer was streamed to a gateway client: complete, or client_left (the text sent before the client left)'),
  deferred: z
    .object({
      model: z.string(),
      outcome: z
        .enum(['answered', 'waiting', 'left_for_deadline', 'errored', 'expired', 'cancelled', 'failed', 'not_deferred'])
        .describe('answered in a provider batch, or why the request was called live'),
      batchId: z.string().optional(),
      message: z.string().optional(),
      savedNanos: nanos.optional().describe('the batch price against the same usage at the live price'),
      upgradedFrom: z.string().optional().describe('sent to this stronger model instead of the one routed for a live call (deferred.upgrade)'),
      upgradeReason: z.string().optional(),
      earlier: z
        .object({ outcome: z.string(), batchId: z.string().optional(), message: z.string().optional() })
        .optional()
        .describe('an earlier provider batch the line failed in, before it went to another'),
    })
    .optional()
    .describe('a request with a deadline: its provider batch, or why it went live (docs/deferred.md)'),
  learning: z
    .object({
      band: z.enum(['low', 'mid', 'high']).describe('the complexity band under the configured thresholds'),
      explore: z.boolean().describe('routed by the base thresholds to keep measuring a tuned category'),
      firstTier: tier.optional(),
      experiment: z.object({ name: z.string(), arm: z.string() }).optional(),
      rule: z.string().optional().describe('the promoted experiment whose rule routed it'),
      policyVersion: z.number().int().min(0).optional(),
      automaticQuality: z.number().min(0).max(1).describe('the quality its outcome counted, which feedback replaces'),
    })
    .optional()
    .describe('how the routing policy shaped the request (what feedback needs)'),
});

/** `details[0]` of a failed request's ApplicationFailure (types in FAILURE_TYPES). */
export const requestFailureDetailsSchema = z.object({
  reason: z.string(),
  costNanos: nanos.describe('everything this run spent, including unsettled'),
  unsettled: z
    .array(
      z.object({
        scope: z.string(),
        shard: z.number().int(),
        reservationId: z.string(),
        category: z.string(),
        costNanos: nanos,
        seq: z.number().int().optional(),
      }),
    )
    .optional(),
  attempts: z.array(attempt),
  candidates: z.array(candidate),
});

// Compile-time drift checks: each side must be assignable to the other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Mutable<T> = { -readonly [K in keyof T]: T[K] extends ReadonlyArray<infer U> ? Mutable<U>[] : T[K] extends object ? Mutable<T[K]> : T[K] };
const resultMatches: Same<Mutable<RequestResult>, Mutable<z.output<typeof requestResultSchema>>> = true;
const attemptMatches: Same<Mutable<Attempt>, Mutable<z.output<typeof attempt>>> = true;
const failureMatches: Same<Mutable<RequestFailureDetails>, Mutable<z.output<typeof requestFailureDetailsSchema>>> = true;
export const CONTRACT_TYPES_MATCH = resultMatches && attemptMatches && failureMatches;
