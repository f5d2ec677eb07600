/**
 * The request workflow's contract: what a client needs to start it and talk to it, in one place.
 * Its name and id, the memo and search attributes it carries, its signals and query. The input
 * and result types are in ../requestTypes.ts (re-exported here); the input's zod schema is in
 * src/contracts/requestInput.ts, kept out of every module a workflow imports (the SDK evaluates a
 * workflow's modules again for each run: zod there cost ~40 ms of CPU per request).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Candidate } from '../../routing/router.js';
import type { Attempt, RequestResult } from '../requestTypes.js';

export type { RequestInput, RequestResult, RequestFailureDetails, Attempt } from '../requestTypes.js';

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
  return { title: prompt === undefined ? REDACTED_TITLE : requestTitle(prompt), category, ...(batch ? { batchId: batch.batchId, ...(batch.line !== undefined ? { line: batch.line } : {}) } : {}) };
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

export const SEARCH_ATTRIBUTES = [LlmModel, LlmTier, LlmCategory, LlmOutcome, LlmCostNanos, LlmComplexity, LlmBatch];

// ---- messages

export interface RequestTrace {
  readonly workflowId: string;
  readonly requestId: string;
  readonly category: string;
  /** classifying, routing, calling a provider, or waiting on a durable timer (rate limit, budget, backoff). */
  readonly phase: 'classifying' | 'routing' | 'calling' | 'waiting';
  /** While waiting: on what (budget: next period or an approval; rate_limit: a provider's reset; backoff: a retry) and until when. */
  readonly waiting?: { readonly on: 'budget' | 'rate_limit' | 'backoff'; readonly until: string };
  /** Models left out because the workers cannot call them (provider not configured, circuit open). */
  readonly skipped: Array<{ model: string; why: string }>;
  readonly classification: { complexity: number; capabilities: string[]; inputTokens: number; signals: string[] } | null;
  readonly candidates: Candidate[];
  readonly attempts: Attempt[];
  readonly escalations: RequestResult['escalations'];
  readonly costNanos: number;
}

export const traceQuery = defineQuery<RequestTrace>('trace');

/** To a request waiting under the budget's `wait` policy: spend past the limit is approved. */
export const approveSpendSignal = defineSignal<[{ by?: string }]>('approveSpend');

/** To a running request: re-route now, to a named model or one tier up. */
export const escalateSignal = defineSignal<[{ model?: string; reason?: string }]>('escalate');
