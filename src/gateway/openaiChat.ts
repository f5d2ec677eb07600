/**
 * An OpenAI chat completions request as a Switchyard request, and a Switchyard result as OpenAI's
 * `chat.completion`: the gateway's translation, sharing the body conversion with OpenAI batch files
 * (src/batch/openaiBatch.ts) so that a field means the same on both paths. Pure (no I/O).
 */
import { fromOpenAIBatchLine, openAIFieldName } from '../batch/openaiBatch.js';
import type { RequestInput, RequestResult } from '../workflows/request/contract.js';

/** A refusal in OpenAI's terms: the body parameter at fault, and what to do. */
export interface ChatRefusal {
  readonly param: string | null;
  readonly message: string;
}

/**
 * Where a conversion or validation message names the field, as OpenAI names it: `body.x: why` (or
 * a request field such as `maxOutputTokens: why`, renamed) -> param `x`.
 */
export function refusalOf(message: string): ChatRefusal {
  const named = openAIFieldName(message);
  // `body.max_completion_tokens (or max_tokens): why` names its alias too.
  const m = /^body\.([A-Za-z0-9_.[\]]+)(?: \([^)]*\))?:/.exec(named);
  return m ? { param: m[1] ?? null, message: named.slice('body.'.length) } : { param: null, message };
}

/**
 * The chat body as a request run under `requestId`, or a refusal naming the parameter. Field types
 * and bounds are checked where every request's are (the client's schema; `refusalOf` names them).
 * Streaming is refused here for now (the gateway's non-streaming slice; issue 23 item 1 builds it).
 */
export function requestFromChatBody(body: unknown, requestId: string): { ok: true; request: RequestInput } | { ok: false; refusal: ChatRefusal } {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    return { ok: false, refusal: { param: null, message: 'the body must be a JSON chat completions request object' } };
  const b = body as Record<string, unknown>;
  if (b.stream === true)
    return { ok: false, refusal: { param: 'stream', message: 'streaming is not available on this gateway yet; send stream: false (or leave it out)' } };
  const { stream: _stream, stream_options: _options, ...rest } = b;
  const converted = fromOpenAIBatchLine({ custom_id: requestId, method: 'POST', url: '/v1/chat/completions', body: rest });
  if (!converted.ok) return { ok: false, refusal: refusalOf(converted.error) };
  return { ok: true, request: converted.request };
}

/** OpenAI's finish reason for a provider's. */
function finishReason(r: string | undefined): 'stop' | 'length' {
  return /^(length|max_tokens)$/i.test(r ?? '') ? 'length' : 'stop';
}

/** A Switchyard result as OpenAI's `chat.completion`, with what Switchyard adds in `switchyard`. */
export function chatCompletionOf(r: RequestResult, createdSeconds: number): Record<string, unknown> {
  const promptTokens = r.usage.inputTokens + r.usage.cachedInputTokens;
  return {
    id: `chatcmpl-${r.workflowId}`,
    object: 'chat.completion',
    created: createdSeconds,
    model: r.model,
    choices: [{ index: 0, message: { role: 'assistant', content: r.text, refusal: null }, finish_reason: finishReason(r.finishReason), logprobs: null }],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: r.usage.outputTokens,
      total_tokens: promptTokens + r.usage.outputTokens,
      prompt_tokens_details: { cached_tokens: r.usage.cachedInputTokens },
    },
    switchyard: { workflowId: r.workflowId, tier: r.tier, provider: r.provider, costNanos: r.costNanos, premiumBaselineCostNanos: r.premiumBaselineCostNanos },
  };
}
