/**
 * An OpenAI chat completions request as a Switchyard request, and a Switchyard result as OpenAI's
 * `chat.completion`: the gateway's translation, sharing the body conversion with OpenAI batch files
 * (src/batch/openaiBatch.ts) so that a field means the same on both paths. Pure (no I/O).
 */
import { assistantMessageOf, fromOpenAIBatchLine, openAIFieldName, openAIFinishReason } from '../batch/openaiBatch.js';
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

/** How the answer goes back: one JSON body, or server-sent events (with a last usage chunk when asked). */
export interface ChatDelivery {
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

/**
 * The chat body as a request run under `requestId`, with how to deliver it, or a refusal naming
 * the parameter. Field types and bounds are checked where every request's are (the client's
 * schema; `refusalOf` names them).
 */
export function requestFromChatBody(
  body: unknown,
  requestId: string,
): { ok: true; request: RequestInput; delivery: ChatDelivery } | { ok: false; refusal: ChatRefusal } {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    return { ok: false, refusal: { param: null, message: 'the body must be a JSON chat completions request object' } };
  const b = body as Record<string, unknown>;
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean')
    return { ok: false, refusal: { param: 'stream', message: 'stream: must be true or false' } };
  const options = b.stream_options;
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options)))
    return { ok: false, refusal: { param: 'stream_options', message: 'stream_options: must be an object such as {"include_usage": true}' } };
  const includeUsage = (options as { include_usage?: unknown } | null | undefined)?.include_usage;
  if (includeUsage !== undefined && typeof includeUsage !== 'boolean')
    return { ok: false, refusal: { param: 'stream_options.include_usage', message: 'stream_options.include_usage: must be true or false' } };
  if (options && b.stream !== true) return { ok: false, refusal: { param: 'stream_options', message: 'stream_options: only allowed when stream is true' } };
  const { stream: _stream, stream_options: _options, ...rest } = b;
  const converted = fromOpenAIBatchLine({ custom_id: requestId, method: 'POST', url: '/v1/chat/completions', body: rest });
  if (!converted.ok) return { ok: false, refusal: refusalOf(converted.error) };
  return { ok: true, request: converted.request, delivery: { stream: b.stream === true, includeUsage: includeUsage === true } };
}

/** A Switchyard result as OpenAI's `chat.completion`, with what Switchyard adds in `switchyard`. */
export function chatCompletionOf(r: RequestResult, createdSeconds: number): Record<string, unknown> {
  return {
    id: `chatcmpl-${r.workflowId}`,
    object: 'chat.completion',
    created: createdSeconds,
    model: r.model,
    choices: [{ index: 0, message: assistantMessageOf(r.text, r.toolCalls), finish_reason: openAIFinishReason(r.finishReason, r.toolCalls), logprobs: null }],
    usage: usageOf(r.usage),
    switchyard: switchyardOf(r),
  };
}

/** OpenAI's usage object for a result's usage. */
export function usageOf(u: RequestResult['usage']): Record<string, unknown> {
  const promptTokens = u.inputTokens + u.cachedInputTokens;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: u.outputTokens,
    total_tokens: promptTokens + u.outputTokens,
    prompt_tokens_details: { cached_tokens: u.cachedInputTokens },
  };
}

/** What Switchyard adds to a response or a stream's last chunk. */
export function switchyardOf(r: RequestResult): Record<string, unknown> {
  return {
    workflowId: r.workflowId,
    tier: r.tier,
    provider: r.provider,
    costNanos: r.costNanos,
    premiumBaselineCostNanos: r.premiumBaselineCostNanos,
    ...(r.streamed ? { streamed: r.streamed } : {}),
  };
}

/** Builds a stream's `chat.completion.chunk`s (one id, model and creation time for all). */
export class ChunkWriter {
  constructor(
    private readonly id: string,
    private model: string,
    private readonly created: number,
    private readonly includeUsage: boolean,
  ) {}

  setModel(model: string): void {
    this.model = model;
  }

  private chunk(choices: unknown[], extra: Record<string, unknown> = {}): string {
    const body = {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices,
      ...(this.includeUsage ? { usage: null } : {}),
      ...extra,
    };
    return `data: ${JSON.stringify(body)}\n\n`;
  }

  role(): string {
    return this.chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }]);
  }

  delta(text: string): string {
    return this.chunk([{ index: 0, delta: { content: text }, finish_reason: null, logprobs: null }]);
  }

  /** The answer's tool calls, each whole in one piece (the index is the call's place in the answer). */
  toolCalls(calls: NonNullable<RequestResult['toolCalls']>): string {
    return calls
      .map((c, index) =>
        this.chunk([
          {
            index: 0,
            delta: { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }] },
            finish_reason: null,
            logprobs: null,
          },
        ]),
      )
      .join('');
  }

  /** The finish chunk, the usage chunk when asked for, and `[DONE]`. */
  end(r: RequestResult): string {
    const finish = this.chunk(
      [{ index: 0, delta: {}, finish_reason: openAIFinishReason(r.finishReason, r.toolCalls), logprobs: null }],
      this.includeUsage ? {} : { switchyard: switchyardOf(r) },
    );
    const usage = this.includeUsage ? this.chunk([], { usage: usageOf(r.usage), switchyard: switchyardOf(r) }) : '';
    return `${finish}${usage}data: [DONE]\n\n`;
  }

  /** An error event: OpenAI's clients raise it as an API error. */
  static error(message: string, code: string): string {
    return `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code } })}\n\n`;
  }
}
