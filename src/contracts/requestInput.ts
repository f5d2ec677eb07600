/**
 * The request workflow's input schema (zod): used by the client to validate before starting, and
 * by the paid-call activity to validate again at the workflow's boundary. Workflow code does not
 * import it (zod would be set up again for every run: BENCHMARKS "Request path").
 */
import { z } from 'zod';
import { parseDeadline } from '../deferred/deadline.js';
import { CAPABILITIES, PROVIDERS, TIERS } from '../catalog/tiers.js';
import { qualitySpecSchema } from '../quality/spec.js';
import { MAX_MESSAGES, MAX_PROMPT_CHARS, requestLimitIssues } from '../workflows/request/limits.js';

/** At most this many tools per request, and calls per message (OpenAI's limit on tools). */
export const MAX_TOOLS = 128;

/** A tool's name as every provider takes it (Gemini's and Anthropic's rules are the narrowest). */
const toolName = z
  .string({ error: 'must be a string: the name of a tool in tools' })
  .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/, 'must be 1-64 letters, digits, _ or -, starting with a letter or _ (a name every provider accepts)');

const toolSchema = z
  .object({
    name: toolName,
    description: z.string().max(10_000, 'must be at most 10000 characters').optional(),
    /** A JSON Schema of type object: the arguments the model must send. */
    parameters: z
      .record(z.string(), z.unknown(), { error: 'must be a JSON Schema object describing the arguments, such as {"type": "object", "properties": {...}}' })
      .superRefine((p, ctx) => {
        if (p.type !== 'object')
          ctx.addIssue({ code: 'custom', message: 'must be a JSON Schema of "type": "object" (a tool takes named arguments; every provider requires it)' });
      }),
  })
  .strict();

const toolCallSchema = z
  .object({
    id: z.string().min(1, 'must not be empty').max(200),
    name: toolName,
    /** The arguments as the model wrote them: JSON text. */
    arguments: z.string({ error: 'must be a string: the JSON text of the arguments, as the model wrote them' }).max(MAX_PROMPT_CHARS),
  })
  .strict();

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
    prompt: z
      .string({ error: 'must be a string: the text to send to the model' })
      .trim()
      .min(1, 'must not be empty')
      .max(MAX_PROMPT_CHARS, `must be at most ${MAX_PROMPT_CHARS} characters`)
      .optional(),
    /**
     * A chat conversation instead of `prompt`: system, user and assistant turns, ending with the
     * user's (or with tool results: assistant turns may carry `toolCalls`, each answered by a
     * `tool` turn naming its `toolCallId`).
     */
    messages: z
      .array(
        z
          .object({
            role: z.enum(['system', 'user', 'assistant', 'tool'], { error: 'must be system, user, assistant or tool' }),
            content: z
              .string({ error: "must be a string (the turn's text)" })
              .max(MAX_PROMPT_CHARS, { error: `must be at most ${MAX_PROMPT_CHARS} characters` }),
            toolCalls: z.array(toolCallSchema).min(1, 'must hold at least one call (or leave toolCalls out)').max(MAX_TOOLS).optional(),
            toolCallId: z.string().min(1, 'must not be empty').max(200).optional(),
          })
          .strict()
          .superRefine((m, ctx) => {
            const calls = m.role === 'assistant' && m.toolCalls !== undefined;
            if (!calls && m.role !== 'tool' && m.content.trim() === '')
              ctx.addIssue({ code: 'custom', path: ['content'], message: 'must not be empty or only whitespace' });
            if (m.toolCalls !== undefined && m.role !== 'assistant')
              ctx.addIssue({ code: 'custom', path: ['toolCalls'], message: `only an assistant message makes tool calls (this one is ${m.role}'s)` });
            if (m.role === 'tool' && m.toolCallId === undefined)
              ctx.addIssue({ code: 'custom', path: ['toolCallId'], message: 'is required on a tool message: the id of the call it answers' });
            if (m.role !== 'tool' && m.toolCallId !== undefined)
              ctx.addIssue({ code: 'custom', path: ['toolCallId'], message: 'belongs on a tool message only (role tool)' });
          }),
      )
      .min(1, 'must hold at least one message')
      .max(MAX_MESSAGES, `must hold at most ${MAX_MESSAGES} messages`)
      .optional(),
    system: z.string().max(200_000).optional(),
    /** Tools (functions) the model may call; its calls come back in the result's `toolCalls`. */
    tools: z
      .array(toolSchema)
      .min(1, 'must hold at least one tool (or leave tools out)')
      .max(MAX_TOOLS, `must hold at most ${MAX_TOOLS} tools (OpenAI's limit)`)
      .optional(),
    /** Whether and which tool the model must call: auto (the default), none, required, or {name}. */
    toolChoice: z
      .union([z.enum(['auto', 'none', 'required']), z.object({ name: toolName }).strict()], {
        error: 'must be auto, none, required, or {"name": "<a tool in tools>"}',
      })
      .optional(),
    /** false: at most one tool call per answer (absent: the provider's default, several allowed). */
    parallelToolCalls: z.boolean().optional(),
    /** A document the prompt refers to: counts toward tokens, not complexity. */
    context: z.string().max(MAX_PROMPT_CHARS).optional(),
    category: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,63}$/, 'must be a lowercase name such as critical, standard or batch')
      .default('standard'),
    /** The product feature the request serves (cost attribution in metrics, the ledger and reports); "unspecified" when absent. */
    feature: z
      .string()
      .regex(
        /^[a-z][a-z0-9_-]{0,63}$/,
        'must be a lowercase name of a product feature, such as search, summarise or support-chat (letters, digits, _ and -, at most 64)',
      )
      .optional(),
    /**
     * The unit an A/B experiment assigns (a user, a tenant, a session): every request of a unit sees
     * the same arm. Absent: the request id is the unit.
     */
    unit: z.string().min(1).max(256, 'must be at most 256 characters (an id, not a document)').optional(),
    maxLatencyMs: z.number().int('must be a whole number of milliseconds').positive('must be > 0').optional(),
    /**
     * The answer may wait until then (a duration from the start such as 6h, or an ISO time): the
     * request may go through its model's batch API at the batch price (docs/deferred.md).
     */
    deadline: z
      .string()
      .max(64)
      .superRefine((v, ctx) => {
        const p = parseDeadline(v);
        if ('error' in p) ctx.addIssue({ code: 'custom', message: p.error });
      })
      .optional(),
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
    /** Only these catalog models may serve the request (a gateway key's allow-list). */
    allowedModels: z.array(z.string().min(1).max(200)).min(1, 'must name at least one model').max(100).optional(),
    /** Only models of these tiers may serve it (a gateway key's allow-list, or a tier the client asked for). */
    allowedTiers: z
      .array(z.enum(TIERS, { error: `must be one of ${TIERS.join(', ')}` }))
      .min(1, 'must name at least one tier')
      .optional(),
    /** The gateway key that sent the request (its id, never the key): reports by key. */
    keyId: z
      .string()
      .regex(/^[a-z0-9]{4,32}$/, 'must be a key id (lowercase letters and digits)')
      .optional(),
    /** Start at this tier or above (operator escalation of a finished request). */
    minTier: z.enum(TIERS, { error: `must be one of ${TIERS.join(', ')}` }).optional(),
    /** The budget scope to charge (one budget entity per scope). */
    budgetScope: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/, 'may contain only letters, digits and . _ -')
      .default('default'),
    /**
     * Stream the answer as the provider sends it to a gateway's relay (set by the gateway, not by
     * callers: docs/streaming.md). `relay` is the gateway's relay endpoint; `id` names the stream.
     */
    stream: z
      .object({
        relay: z
          .string()
          .url('must be an http(s) URL: the gateway relay endpoint')
          .max(500)
          .refine((u) => /^https?:/.test(u), 'must be an http(s) URL'),
        id: z.string().regex(/^[A-Za-z0-9_-]{16,100}$/, 'must be 16-100 letters, digits, _ or -'),
      })
      .strict()
      .optional(),
    /** Under a `wait` budget policy, wait at most this long in all (the budget's maxWaitMs if lower). */
    maxBudgetWaitMs: z.number().int('must be a whole number of milliseconds').min(0, 'must be >= 0').optional(),
  })
  .strict();

/** A request as clients and batch files must send it. */
export const requestInputSchema = requestInputBaseSchema.superRefine((r, ctx) => {
  for (const i of requestLimitIssues(r))
    ctx.addIssue({ code: 'custom', path: i.path.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k)), message: i.message });
});
