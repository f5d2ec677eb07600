/**
 * The request workflow's input and result. Pure (zod only): used by the client to validate before
 * starting, and by the workflow to validate again at its boundary.
 */
import { z } from 'zod';
import { CAPABILITIES, PROVIDERS, type ProviderName, type Tier, TIERS } from '../catalog/schema.js';
import type { Usage } from '../catalog/pricing.js';
import type { Candidate } from '../routing/router.js';
import { qualitySpecSchema } from '../quality/spec.js';
import { utf8Bytes } from '../util/bytes.js';
import { isReservedName, RESERVED_MESSAGE } from '../util/names.js';
import { messagesIssues, textParts } from './conversation.js';

export const MAX_PROMPT_CHARS = 4_000_000;
/**
 * Prompt, context and system prompt together, in UTF-8 bytes. Temporal rejects payloads over 2 MB
 * by default (`limit.blobSize.error`); the request input must fit with room for the rest.
 */
export const MAX_INPUT_BYTES = 1_500_000;
export const MAX_MESSAGES = 1_000;

/** The request's fields (what runs started before the size and reserved-name limits were checked against). */
export const requestInputBaseSchema = z
  .object({
    /** Caller's id for the request; the workflow id derives from it (idempotent submission). */
    requestId: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[A-Za-z0-9._:/-]+$/, 'may contain only letters, digits and . _ : / -')
      .optional(),
    /** The instruction; or send `messages` instead. */
    prompt: z.string({ error: 'must be a string: the text to send to the model' }).trim().min(1, 'must not be empty').max(MAX_PROMPT_CHARS, `must be at most ${MAX_PROMPT_CHARS} characters`).optional(),
    /** A chat conversation instead of `prompt`: system, user and assistant turns, ending with the user's. */
    messages: z
      .array(
        z
          .object({
            role: z.enum(['system', 'user', 'assistant'], { error: 'must be system, user or assistant' }),
            content: z
              .string({ error: 'must be a string (the turn\'s text)' })
              .max(MAX_PROMPT_CHARS)
              .refine((s) => s.trim() !== '', 'must not be empty or only whitespace'),
          })
          .strict(),
      )
      .min(1, 'must hold at least one message')
      .max(MAX_MESSAGES, `must hold at most ${MAX_MESSAGES} messages`)
      .optional(),
    system: z.string().max(200_000).optional(),
    /** A document the prompt refers to: counts toward tokens, not complexity. */
    context: z.string().max(MAX_PROMPT_CHARS).optional(),
    category: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,63}$/, 'must be a lowercase name such as critical, standard or batch')
      .default('standard'),
    maxLatencyMs: z.number().int('must be a whole number of milliseconds').positive('must be > 0').optional(),
    /** Start a hedge (the next tier) when the first attempt has not answered in this long; defaults to maxLatencyMs. */
    hedgeAfterMs: z.number().int().positive('must be > 0').optional(),
    minQuality: z.number().min(0, 'must be in [0,1]').max(1, 'must be in [0,1]').optional(),
    provider: z.enum(PROVIDERS, { error: `must be one of ${PROVIDERS.join(', ')}` }).optional(),
    model: z.string().min(1).optional(),
    maxOutputTokens: z.number().int().min(1, 'must be >= 1').max(1_000_000).optional(),
    requiredCapabilities: z.array(z.enum(CAPABILITIES, { error: `must be one of ${CAPABILITIES.join(', ')}` })).optional(),
    costCapNanos: z.number().int().min(0).optional(),
    temperature: z.number().min(0).max(2).optional(),
    noFallback: z.boolean().optional(),
    /** Models to fall back to, in order, after the primary (overrides the configured chain). */
    fallbacks: z.array(z.string().min(1)).max(10).optional(),
    /** Checks the answer must pass; a failure escalates to the next tier up. */
    quality: qualitySpecSchema.optional(),
    /** Start at this tier or above (operator escalation of a finished request). */
    minTier: z.enum(TIERS, { error: `must be one of ${TIERS.join(', ')}` }).optional(),
    /** The budget scope to charge (one budget entity per scope). */
    budgetScope: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/, 'may contain only letters, digits and . _ -')
      .default('default'),
    /** Under a `wait` budget policy, wait at most this long in all (the budget's maxWaitMs if lower). */
    maxBudgetWaitMs: z.number().int('must be a whole number of milliseconds').min(0, 'must be >= 0').optional(),
  })
  .strict();

/** Limits beyond the fields' shapes: names of Object.prototype members, and the payload size. */
export function requestLimitIssues(r: Pick<z.output<typeof requestInputBaseSchema>, 'prompt' | 'messages' | 'context' | 'system' | 'category' | 'budgetScope'>): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  if (r.prompt === undefined && r.messages === undefined) issues.push({ path: 'prompt', message: 'is required: the text to send to the model (or send `messages`, a chat conversation)' });
  if (r.prompt !== undefined && r.messages !== undefined) issues.push({ path: 'messages', message: 'send either prompt or messages, not both (put the prompt in the last user message)' });
  if (r.messages && r.messages.length > 0) issues.push(...messagesIssues(r.messages));
  if (isReservedName(r.category)) issues.push({ path: 'category', message: RESERVED_MESSAGE });
  if (isReservedName(r.budgetScope)) issues.push({ path: 'budgetScope', message: RESERVED_MESSAGE });
  const bytes = textParts(r).reduce((n, t) => n + utf8Bytes(t), 0);
  if (bytes > MAX_INPUT_BYTES) {
    issues.push({
      path: r.context !== undefined ? 'context' : r.messages ? 'messages' : 'prompt',
      message: `prompt or messages, context and system together are ${bytes} bytes; a request holds at most ${MAX_INPUT_BYTES} bytes (Temporal's payload limit is 2 MB): split the document into several requests or summarise it in parts`,
    });
  }
  return issues;
}

/** A request as clients and batch files must send it. */
export const requestInputSchema = requestInputBaseSchema.superRefine((r, ctx) => {
  for (const i of requestLimitIssues(r)) ctx.addIssue({ code: 'custom', path: i.path.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k)), message: i.message });
});

export type RequestInput = z.input<typeof requestInputSchema>;
export type ValidRequest = z.output<typeof requestInputSchema>;

export type AttemptOutcome = 'ok' | 'rate_limited' | 'transient' | 'context_too_long' | 'fatal' | 'timeout' | 'unavailable' | 'internal' | 'budget_denied' | 'escalated' | 'hedged_out';

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
  readonly text: string;
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
  /** Something other than a provider answer ended the request (a worker bug, an activity that failed for good). */
  internal: 'InternalError',
} as const;
