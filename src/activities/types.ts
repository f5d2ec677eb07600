/**
 * The shapes of routing and provider calls that activities exchange with the workflows and with
 * each other (the paid call composes them). Types only: a module of their own, so that the
 * activities that use them need not import the composition in ./index.ts (which imports them).
 */
import type { Usage } from '../catalog/pricing.js';
import type { Tier } from '../catalog/schema.js';
import type { Band } from '../learning/tuner.js';
import type { Classification } from '../routing/classifier.js';
import type { RetryPolicy } from '../routing/retryDecision.js';
import type { Candidate, RouteDecision } from '../routing/router.js';
import type { ChatMessage } from '../workflows/conversation.js';
import type { ValidRequest } from '../workflows/request/contract.js';

export interface SelectInput {
  readonly request: Omit<ValidRequest, 'prompt' | 'system' | 'context' | 'quality'>;
  readonly classification: Pick<Classification, 'complexity' | 'capabilities' | 'inputTokens'>;
  readonly excludeModels?: string[];
  readonly minTier?: Tier;
  /** A judge model named by the request's quality spec. */
  readonly judgeModel?: string;
}

/**
 * A routing decision and the catalog's facts about its chain. It carries no worker configuration:
 * the worker's retry policy stays on the worker, which answers each failed attempt with a verdict
 * (`retryVerdict`, and in the paid call's `failed` outcome).
 */
export interface RouteSelection {
  readonly decision: RouteDecision;
  readonly contextWindows: Record<string, number>;
  /** The cheapest model of the catalog (the default judge). */
  readonly cheapestModel?: string;
  /** Judge candidates (cheapest model and any named judge), with upper-bound estimates. */
  readonly judgeModels?: Record<string, { provider: Candidate['provider']; tier: Candidate['tier']; estimatedCostNanos: number }>;
  /** Models left out because the workers cannot call them now (provider not configured, circuit open). */
  readonly skipped?: Array<{ model: string; why: string }>;
  /** Why the preferred tier's own models were left out, when some were (a routing decision's reason). */
  readonly preferredTierSkipped?: 'circuit_open' | 'unavailable';
  /** What to reserve per chain model: the estimate with the provider's margin on input tokens. */
  readonly reserveNanos?: Record<string, number>;
  /** How the routing policy shaped this selection (absent in runs recorded before the learning loop). */
  readonly learning?: RouteLearning;
}

export interface RouteLearning {
  /** The complexity band under the configured (base) thresholds: how outcomes are grouped. */
  readonly band: Band;
  /** Routed by the base thresholds although the category's were tuned (to keep measuring). */
  readonly explore: boolean;
  readonly policyVersion?: number;
  /** The experiment and arm this request was assigned. */
  readonly experiment?: { readonly name: string; readonly arm: string };
  /** The promoted rule it was routed by (the experiment that made it). */
  readonly rule?: string;
  /** An anomaly's downgrade in force for its category. */
  readonly downgradedBy?: string;
}

/**
 * What `selectModels` returns: the selection with the worker's retry policy and call timeout, as
 * runs started before the `request-v3` shape read them (./workflows/request/legacy.ts; and v4
 * histories, whose recorded selections have them). New runs ask the worker for verdicts instead.
 */
export interface SelectOutput extends RouteSelection {
  readonly retry: RetryPolicy;
  /** Per-model retry policies for the chain's models, where configured. */
  readonly retryByModel?: Record<string, RetryPolicy>;
  readonly callTimeoutMs: number;
}

export interface CallModelInput {
  readonly workflowId: string;
  /** The request's run (with `promptRef`, whose start input holds the prompt). */
  readonly runId?: string;
  readonly attemptId: string;
  readonly model: string;
  /** Inline text (small requests): a prompt (context already in front), or chat messages and context. */
  readonly system?: string | undefined;
  readonly prompt?: string;
  readonly messages?: readonly ChatMessage[] | undefined;
  readonly context?: string | undefined;
  /** Read prompt, context and system from the run's start input (large requests: one copy in history). */
  readonly promptRef?: true;
  /** A judge call: the prompt is built from the request's prompt (inline here, or by reference) and this answer. */
  readonly judge?: { readonly answer: string; readonly prompt?: string };
  readonly maxOutputTokens: number;
  readonly temperature?: number | undefined;
}

export interface CallModelOutput {
  readonly text: string;
  readonly usage: Usage;
  readonly costNanos: number;
  readonly premiumBaselineCostNanos: number;
  readonly finishReason: string;
  readonly latencyMs: number;
}
