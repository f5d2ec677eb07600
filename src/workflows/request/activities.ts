/**
 * The request workflow's activity contract: the shapes of the routing, budget and provider calls
 * it makes, and the interface of the activities it calls (`RequestActivities`). Types only;
 * activities/request/ implements them (workers/activities.ts checks that the composition satisfies it), and
 * workflow code takes its activity types from here, never from activities/.
 */
import type { Usage } from '../../catalog/pricing.js';
import type { Tier } from '../../catalog/schema.js';
import type { Band } from '../../learning/tuner.js';
import type { Classification, ClassifyInput } from '../../routing/classifier.js';
import type { FailureFacts, RetryPolicy, RetryVerdict } from '../../routing/retryDecision.js';
import type { Candidate, RouteDecision } from '../../routing/router.js';
import type { QualityVerdict } from '../../quality/checks.js';
import type { QualitySpec } from '../../quality/spec.js';
import type { ReserveResult, SettleResult } from '../../budget/book.js';
import type { ToolCall, ToolChoice, ToolSpec } from '../../providers/types.js';
import type { ChatMessage } from '../conversation.js';
import type { RequestInput, ValidRequest } from './contract.js';
import type { AttemptFailure } from './failure.js';

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
 * runs started before the `request-v3` shape read them (./v2/llmRequest.ts; and v4
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
  /** The tools the model may call (inline with the text; by reference with it too). */
  readonly tools?: readonly ToolSpec[] | undefined;
  readonly toolChoice?: ToolChoice | undefined;
  readonly parallelToolCalls?: boolean | undefined;
  /** Read prompt, context and system from the run's start input (large requests: one copy in history). */
  readonly promptRef?: true;
  /** A judge call: the prompt is built from the request's prompt (inline here, or by reference) and this answer. */
  readonly judge?: { readonly answer: string; readonly prompt?: string };
  readonly maxOutputTokens: number;
  readonly temperature?: number | undefined;
  /** Stream the answer to this gateway relay as it arrives (answer calls of a streamed request; never a judge's). */
  readonly stream?: StreamTarget | undefined;
}

/** Where a streamed answer goes: a gateway's relay endpoint and the stream's id there. */
export interface StreamTarget {
  readonly relay: string;
  readonly id: string;
}

/** What opens a relayed stream: which call it is, and where it went. */
export interface RelayStart {
  readonly workflowId: string;
  readonly attemptId: string;
  readonly model: string;
  readonly provider: string;
  readonly tier: string;
}

/** A line of a relay's body (a JSON object per line; docs/streaming.md). */
export type RelayEvent =
  | ({ readonly t: 'start' } & RelayStart)
  | { readonly t: 'd'; readonly v: string }
  | { readonly t: 'end'; readonly finish: string }
  | { readonly t: 'error'; readonly message: string };

export const RELAY_CONTENT_TYPE = 'application/x-ndjson';

/**
 * How a streamed answer ended. `complete`: the provider finished it. Otherwise the answer is the
 * text sent so far and its usage is counted by the tokenizer (the provider reports usage only at a
 * stream's end): `client_left` (the call was stopped so as not to pay for more), `provider_failed`
 * (the provider broke off; the client got an error event), `worker_lost` (a worker died mid-stream;
 * the text is what the gateway relayed).
 */
export type StreamEnd = 'complete' | 'client_left' | 'provider_failed' | 'worker_lost';

export interface CallModelOutput {
  readonly text: string;
  readonly usage: Usage;
  readonly costNanos: number;
  readonly premiumBaselineCostNanos: number;
  readonly finishReason: string;
  readonly latencyMs: number;
  /** The tools the model called (absent: none; `text` may then be empty). */
  readonly toolCalls?: readonly ToolCall[] | undefined;
  /** What is wrong with those calls against the tools offered (unknown tool, arguments that are not JSON or miss the schema); absent: nothing. */
  readonly toolCallFailures?: readonly string[] | undefined;
  /** A provider batch's answer: what the same usage costs at the live price (the saving). */
  readonly liveCostNanos?: number | undefined;
  /** Set when the answer was streamed (quality checks then cannot escalate: the client has it). */
  readonly streamed?: { readonly end: StreamEnd; readonly message?: string | undefined };
}

/** The request as started (validated here), or the run whose start input holds it (large requests). */
export interface RouteInput {
  readonly start: { readonly request: unknown } | { readonly run: { readonly workflowId: string; readonly runId: string } };
}

/** A request's fields without its text (what the workflow needs once the input is validated). */
export type RequestConstraints = Omit<ValidRequest, 'prompt' | 'messages' | 'system' | 'context' | 'tools' | 'toolChoice' | 'parallelToolCalls'>;

export interface Routed {
  readonly classification: Classification;
  readonly selection: RouteSelection;
  /** The validated request, without its text (the workflow has that). */
  readonly request: RequestConstraints;
}

export interface PaidCallInput {
  /** Route first and pay for the chain's first model (the request's first attempt). */
  readonly route?: RouteInput;
  /** Else: the model to pay for, with what to reserve for it. */
  readonly model?: { readonly name: string; readonly maxOutputTokens: number; readonly reserveNanos: number };
  /** What to send: everything of CallModelInput but the model and its output budget. */
  readonly call: Omit<CallModelInput, 'model' | 'maxOutputTokens'>;
  /** Scope and category: from the validated request when routing here. */
  readonly budget: { readonly scope?: string; readonly category?: string; readonly reservationId: string; readonly force: boolean };
  /** Temporal's attempts for this activity: a worker bug on the last one is reported, not thrown. */
  readonly maxAttempts: number;
  /** The request's attempt on this model (1-based; default 1), for the retry verdict. */
  readonly attempt?: number;
}

export type PaidCallOutcome =
  | { readonly kind: 'answered'; readonly out: CallModelOutput; readonly shard: number; readonly seq?: number | undefined }
  | { readonly kind: 'denied'; readonly grant: ShardedReserveResult & { granted: false } }
  /** A provider's failure, with the worker's verdict on it (absent in runs recorded before verdicts). */
  | { readonly kind: 'failed'; readonly failure: AttemptFailure; readonly verdict?: RetryVerdict };

export interface PaidCallOutput {
  readonly routed?: Routed;
  /** The model paid for (the chain's first when routed here). */
  readonly model: string;
  readonly outcome: PaidCallOutcome;
}

export interface ReserveInput {
  readonly scope: string;
  readonly reservationId: string;
  readonly category: string;
  readonly amountNanos: number;
  readonly workflowId: string;
  readonly force?: boolean;
}

export type ShardedReserveResult = ReserveResult & { readonly shard: number };

export interface RecordSpendInput {
  readonly scope: string;
  /** The shard that granted the reservation. */
  readonly shard: number;
  readonly workflowId: string;
  readonly attemptId: string;
  readonly reservationId: string;
  readonly model: string;
  readonly category: string;
  readonly usage: Usage;
  readonly costNanos: number;
  /** The sequence number the reservation was granted with. */
  readonly seq?: number | undefined;
  /** The request's feature (absent in runs started before features: "unspecified"). */
  readonly feature?: string | undefined;
  /** How long the provider took to answer. */
  readonly latencyMs?: number | undefined;
  /** What the same usage would have cost on the premium baseline model (reports' saving). */
  readonly baselineNanos?: number | undefined;
  /** The gateway key that sent the request (reports by key); absent for requests sent otherwise. */
  readonly keyId?: string | undefined;
  /** Bought through a provider batch (absent: live); `duplicated`: answered there after the request went live. */
  readonly mode?: 'batch' | 'duplicated' | undefined;
  /** A batch line's price at the live rate (the ledger's saving). */
  readonly liveNanos?: number | undefined;
}

/** The activities the request workflow calls (and its pre-v3 path in v2/llmRequest.ts). */
export interface RequestActivities {
  classify(input: ClassifyInput): Promise<Classification>;
  /** A run's start input (a large request: the workflow sends a reference to its run). */
  readRequestInput(input: { workflowId: string; runId: string }): Promise<RequestInput>;
  checkQuality(input: { text: string; spec: QualitySpec }): Promise<QualityVerdict>;
  selectModels(input: SelectInput): Promise<SelectOutput>;
  /** Select a chain (the re-route step; the paid call selects in-line). */
  selectRoute(input: SelectInput): Promise<RouteSelection>;
  /** What the worker's retry policy says about a failed attempt (one that failed as an activity). */
  retryVerdict(input: { model: string; failure: FailureFacts }): Promise<RetryVerdict>;
  callModel(input: CallModelInput): Promise<CallModelOutput>;
  reserveBudget(input: ReserveInput): Promise<ShardedReserveResult>;
  releaseBudget(input: { scope: string; shard: number; reservationId: string }): Promise<boolean>;
  releaseReservation(input: { scope: string; reservationId: string; workflowId: string }): Promise<boolean>;
  recordSpend(input: RecordSpendInput): Promise<SettleResult>;
  route(input: RouteInput): Promise<Routed>;
  paidCall(input: PaidCallInput): Promise<PaidCallOutput>;
}
