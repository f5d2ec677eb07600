/**
 * The request workflow's contract: what a client needs to start it and talk to it, in one place.
 * Its name and id, the memo and search attributes it carries, its signals and query, its input
 * and result types, the request limits and failure types. The input's zod schema is in
 * src/contracts/requestInput.ts, kept out of every module a workflow imports (the SDK evaluates a
 * workflow's modules again for each run: zod there cost ~40 ms of CPU per request). The interface
 * of the activities it calls, with the shapes of those calls, is beside it in ./activities.ts.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Candidate } from '../../routing/router.js';
import type { z } from 'zod';
import type { ProviderName, Tier } from '../../catalog/tiers.js';
import type { requestInputSchema } from '../../contracts/requestInput.js';
import type { Usage } from '../../catalog/pricing.js';

/** The workflow type name (in histories, the UI and `temporal workflow start --type`). */
export const REQUEST_WORKFLOW_TYPE = 'llmRequest';

// ---- id and memo

export interface RequestMemo {
  /** The first words of the prompt. */
  readonly title: string;
  readonly category: string;
  /** Set when the request belongs to a batch. */
  readonly batchId?: string;
  readonly line?: number;
  /** Set on a re-driven run: the failed run it replaces. */
  readonly redriveOf?: string;
  /** A digest of the body a gateway client sent (an Idempotency-Key reused with another body is refused). */
  readonly fingerprint?: string;
  /** The gateway key that sent it (its id). */
  readonly keyId?: string;
}

export const TITLE_MAX_CHARS = 60;

/** A request's workflow id: readable, and derived from its id so that re-submitting is idempotent. */
export function workflowIdFor(requestId: string): string {
  return `llm-${requestId}`;
}

/** The first words of a prompt, cut at a word boundary, on one line. */
export function requestTitle(prompt: string, maxChars = TITLE_MAX_CHARS): string {
  const flat = prompt.replace(/\s+/g, ' ').trim();
  if (flat.length <= maxChars) return flat;
  const cut = flat.slice(0, maxChars - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > maxChars / 2 ? cut.slice(0, space) : cut).replace(/[\s,.;:]+$/, '')}…`;
}

/** Shown instead of the prompt's first words when payloads are encrypted (memos must not leak prompts). */
export const REDACTED_TITLE = '(prompt encrypted)';

/** The memo of a request; `prompt` undefined (payload encryption on) leaves the prompt out. */
export function requestMemo(prompt: string | undefined, category: string, batch?: { batchId: string; line?: number }): RequestMemo {
  return {
    title: prompt === undefined ? REDACTED_TITLE : requestTitle(prompt),
    category,
    ...(batch ? { batchId: batch.batchId, ...(batch.line !== undefined ? { line: batch.line } : {}) } : {}),
  };
}

// ---- search attributes

export const LlmModel = defineSearchAttributeKey('LlmModel', SearchAttributeType.KEYWORD);
export const LlmTier = defineSearchAttributeKey('LlmTier', SearchAttributeType.KEYWORD);
export const LlmCategory = defineSearchAttributeKey('LlmCategory', SearchAttributeType.KEYWORD);
export const LlmOutcome = defineSearchAttributeKey('LlmOutcome', SearchAttributeType.KEYWORD);
export const LlmCostNanos = defineSearchAttributeKey('LlmCostNanos', SearchAttributeType.INT);
export const LlmComplexity = defineSearchAttributeKey('LlmComplexity', SearchAttributeType.DOUBLE);
/** The batch a request belongs to (set at start), so that a batch's runs can be listed or re-driven. */
export const LlmBatch = defineSearchAttributeKey('LlmBatch', SearchAttributeType.KEYWORD);
/** The product feature a request serves (the request's `feature`; "unspecified" when absent). */
export const LlmFeature = defineSearchAttributeKey('LlmFeature', SearchAttributeType.KEYWORD);

/** The deferred lane's collectors and provider batches (workflows/deferred): their provider, provider batch id and state. */
export const DeferredProvider = defineSearchAttributeKey('DeferredProvider', SearchAttributeType.KEYWORD);
export const DeferredBatchId = defineSearchAttributeKey('DeferredBatchId', SearchAttributeType.KEYWORD);
export const DeferredState = defineSearchAttributeKey('DeferredState', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTES = [
  LlmModel,
  LlmTier,
  LlmCategory,
  LlmOutcome,
  LlmCostNanos,
  LlmComplexity,
  LlmBatch,
  LlmFeature,
  DeferredProvider,
  DeferredBatchId,
  DeferredState,
];

/** The feature of a request that names none. */
export const UNSPECIFIED_FEATURE = 'unspecified';

// ---- messages

export interface RequestTrace {
  readonly workflowId: string;
  readonly requestId: string;
  readonly category: string;
  /** classifying, routing, calling a provider, or waiting on a durable timer (rate limit, budget, backoff). */
  readonly phase: 'classifying' | 'routing' | 'calling' | 'waiting' | 'deferred';
  /** While waiting: on what (budget: next period or an approval; rate_limit: a provider's reset; backoff: a retry) and until when. */
  readonly waiting?: { readonly on: 'budget' | 'rate_limit' | 'backoff'; readonly until: string };
  /** Models left out because the workers cannot call them (provider not configured, circuit open). */
  readonly skipped: Array<{ model: string; why: string }>;
  readonly classification: { complexity: number; capabilities: string[]; inputTokens: number; signals: string[] } | null;
  readonly candidates: Candidate[];
  readonly attempts: Attempt[];
  readonly escalations: RequestResult['escalations'];
  readonly costNanos: number;
  /** A request with a deadline: its provider batch, or why it went live. */
  readonly deferred?: Deferral;
}

export const traceQuery = defineQuery<RequestTrace>('trace');

/** To a request waiting under the budget's `wait` policy: spend past the limit is approved. */
export const approveSpendSignal = defineSignal<[{ by?: string }]>('approveSpend');

/** To a running request: re-route now, to a named model or one tier up. */
export const escalateSignal = defineSignal<[{ model?: string; reason?: string }]>('escalate');

// ---- input, result, limits and failure types

// The limits live in a module of their own (./limits.ts, pure): the request schema uses them,
// and this contract takes its input type from that schema.
export { MAX_INPUT_BYTES, MAX_MESSAGES, MAX_PROMPT_CHARS, requestLimitIssues } from './limits.js';

export type RequestInput = z.input<typeof requestInputSchema>;
export type ValidRequest = z.output<typeof requestInputSchema>;

export type AttemptOutcome =
  'ok' | 'rate_limited' | 'transient' | 'context_too_long' | 'fatal' | 'timeout' | 'unavailable' | 'internal' | 'budget_denied' | 'escalated' | 'hedged_out';

export interface Attempt {
  readonly attemptId: string;
  readonly model: string;
  readonly provider: ProviderName;
  readonly tier: Tier;
  readonly outcome: AttemptOutcome;
  readonly status?: number | undefined;
  readonly message?: string | undefined;
  /** Durable wait (timer) before this attempt started. */
  readonly waitBeforeMs: number;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly costNanos: number;
  /** What happened next and why (retry, next candidate, fail). */
  readonly decision?: string | undefined;
  /** Failed quality checks of an answered attempt. */
  readonly qualityFailures?: string[] | undefined;
  /** Answered through the provider's batch API (absent: live), and that batch's id. */
  readonly mode?: 'batch' | undefined;
  readonly batchId?: string | undefined;
}

/** What became of a request with a deadline (docs/deferred.md). */
export interface Deferral {
  readonly model: string;
  /** answered in a provider batch; or the reason it was called live instead. */
  readonly outcome: 'answered' | 'waiting' | 'left_for_deadline' | 'errored' | 'expired' | 'cancelled' | 'failed' | 'not_deferred';
  readonly batchId?: string | undefined;
  readonly message?: string | undefined;
  /** The batch answer's price against the same usage at the live price. */
  readonly savedNanos?: number | undefined;
  /** Sent to a stronger model than the one routed for a live call (deferred.upgrade): that model, and why. */
  readonly upgradedFrom?: string | undefined;
  readonly upgradeReason?: string | undefined;
  /** An earlier provider batch this request's line failed in, before it was sent to another. */
  readonly earlier?: { readonly outcome: string; readonly batchId?: string | undefined; readonly message?: string | undefined } | undefined;
}

export interface ClassificationSummary {
  readonly complexity: number;
  readonly capabilities: string[];
  readonly inputTokens: number;
  readonly signals: string[];
  readonly preferredTier: Tier;
}

export interface RequestResult {
  readonly workflowId: string;
  readonly requestId: string;
  readonly category: string;
  /** The request's feature ("unspecified" when it named none; absent in results of runs started before features). */
  readonly feature?: string;
  readonly text: string;
  /** The tools the model called, in order (absent: none; `text` may then be empty). */
  readonly toolCalls?: Array<{ readonly id: string; readonly name: string; readonly arguments: string }>;
  readonly model: string;
  readonly provider: ProviderName;
  readonly tier: Tier;
  readonly usage: Usage;
  /** Why the answer ended, as the provider said it (stop, length, end_turn, max_tokens, STOP, MAX_TOKENS, ...). */
  readonly finishReason?: string;
  readonly costNanos: number;
  /** What the same usage would have cost on the premium baseline model. */
  readonly premiumBaselineCostNanos: number;
  readonly classification: ClassificationSummary;
  readonly candidates: Candidate[];
  /** Models left out because the workers cannot call them (provider not configured, circuit open). */
  readonly skipped?: Array<{ model: string; why: string }>;
  readonly attempts: Attempt[];
  /** Each escalation to a higher tier or another model, with its reason. */
  readonly escalations: Array<{ readonly from: string; readonly to: string; readonly reason: string }>;
  readonly durationMs: number;
  /**
   * Set when the answer was streamed to a gateway's client: how the stream ended (`complete`, or
   * `client_left` with the text sent before the client left). Checks ran but could not escalate.
   */
  readonly streamed?: 'complete' | 'client_left';
  /** A request with a deadline: whether its provider batch answered it, or why it went live. */
  readonly deferred?: Deferral;
  /** How the routing policy shaped the request, for feedback (absent in results of runs before the learning loop). */
  readonly learning?: ResultLearning;
}

/** What feedback on a request needs to reach its experiment and the tuner. */
export interface ResultLearning {
  readonly band: 'low' | 'mid' | 'high';
  readonly explore: boolean;
  readonly firstTier?: Tier | undefined;
  readonly experiment?: { readonly name: string; readonly arm: string };
  readonly rule?: string;
  readonly policyVersion?: number;
  /** The quality the request's outcome counted (judge score, or 1/0 for checks passed/escalated): what feedback replaces. */
  readonly automaticQuality: number;
}

/** Details attached to a failed request workflow's ApplicationFailure. */
export interface UnsettledSpend {
  readonly scope: string;
  readonly shard: number;
  readonly reservationId: string;
  readonly category: string;
  readonly costNanos: number;
  readonly seq?: number;
}

export interface RequestFailureDetails {
  readonly reason: string;
  /** Everything this run spent, including `unsettled`. */
  readonly costNanos: number;
  /**
   * Paid attempts the budget entity could not take (it had failed or was terminated): in the
   * ledger, not yet in the budget; `switchyard budget restore` settles them.
   */
  readonly unsettled?: UnsettledSpend[];
  readonly attempts: Attempt[];
  readonly candidates: Candidate[];
}

/**
 * The details of a failed request as they come back from Temporal, or undefined when the failure
 * carries none of ours (e.g. invalid input, which fails before any attempt).
 */
export function requestFailureDetails(raw: unknown): RequestFailureDetails | undefined {
  const d = raw as Partial<RequestFailureDetails> | null | undefined;
  return d && Array.isArray(d.attempts) && typeof d.costNanos === 'number' ? (d as RequestFailureDetails) : undefined;
}

export const FAILURE_TYPES = {
  invalidInput: 'InvalidInput',
  noEligibleModel: 'NoEligibleModel',
  allCandidatesFailed: 'AllCandidatesFailed',
  nonRetryable: 'NonRetryableProviderError',
  budgetExceeded: 'BudgetExceeded',
  cancelled: 'Cancelled',
  qualityCheckFailed: 'QualityCheckFailed',
  /** The budget entity cannot take reservations (failed or terminated; restore it first). */
  budgetUnavailable: 'BudgetUnavailable',
  /** A spend anomaly paused the request's category (until acknowledged: `switchyard anomalies ack`). */
  categoryPaused: 'CategoryPaused',
  /** A streamed answer broke off after text reached the client (the provider failed, or the worker was lost); what was sent is charged. */
  streamInterrupted: 'StreamInterrupted',
  /** Something other than a provider answer ended the request (a worker bug, an activity that failed for good). */
  internal: 'InternalError',
} as const;
