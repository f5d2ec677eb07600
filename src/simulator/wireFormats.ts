/**
 * The providers' wire formats, as the simulator speaks them: how to read a request and how to
 * write a reply or an error, for OpenAI chat completions (also Mistral and OpenAI-compatible
 * self-hosted servers), Anthropic messages and Gemini generateContent.
 */
import { randomUUID } from 'node:crypto';
import { BadRequest, obj, textOf } from './badRequest.js';
import { anthropicTools, geminiTools, openAITools } from './toolFormats.js';
import { argumentsObjectOf, type SimToolCall, type ToolRequest } from './tools.js';
export { BadRequest } from './badRequest.js';

export interface SimTurn {
  readonly role: 'user' | 'assistant';
  readonly text: string;
}

export interface ParsedRequest {
  readonly model: string;
  readonly system: string;
  /** The conversation's turns, in order, as the format sent them. */
  readonly turns: readonly SimTurn[];
  /** All turns' text (what the deterministic answer is derived from). */
  readonly prompt: string;
  readonly messageCount: number;
  readonly maxTokens: number | undefined;
  /** Answer as server-sent events (OpenAI/Mistral and Anthropic: `stream: true`; Gemini: the streamGenerateContent path). */
  readonly stream?: boolean;
  /** OpenAI's `stream_options.include_usage`: usage in a last chunk of its own. */
  readonly includeUsage?: boolean;
  /** The tools offered, their choice, and whether the last turn is a tool's result (absent: no tools). */
  readonly tools?: ToolRequest | undefined;
  /** The tool definitions as sent (billed as input). */
  readonly toolText?: string;
}

export interface Reply {
  readonly model: string;
  readonly text: string;
  /** The model calls a tool instead of answering in text. */
  readonly toolCall?: SimToolCall | undefined;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly truncated: boolean;
}

export type ErrorCategory = 'rate_limit' | 'server' | 'overloaded' | 'bad_request' | 'context' | 'auth' | 'permission' | 'not_found' | 'policy';

/** A streamed reply's frames: what comes before the text, one frame per piece of text, and the end. */
export interface StreamFrames {
  head(): string[];
  delta(text: string): string;
  tail(outputTokens: number, truncated: boolean): string[];
}

export interface WireFormat {
  readonly name: 'openai' | 'anthropic' | 'gemini';
  parse(body: unknown, pathModel: string | undefined): ParsedRequest;
  reply(r: Reply): unknown;
  /** The server-sent events of a streamed reply, as the provider writes them. */
  frames(r: { model: string; inputTokens: number; includeUsage: boolean }): StreamFrames;
  /** A streamed tool call, every frame of it, as the provider writes one. */
  toolStream(r: { model: string; inputTokens: number; includeUsage: boolean; wholeCall?: boolean }, call: SimToolCall, outputTokens: number): string[];
  error(status: number, category: ErrorCategory, message: string): unknown;
  hasKey(headers: Record<string, string | string[] | undefined>, url: URL): boolean;
}

function optInt(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new BadRequest(`${field} must be a positive integer`);
  return v;
}

const header = (h: Record<string, string | string[] | undefined>, k: string): string | undefined => {
  const v = h[k];
  return Array.isArray(v) ? v[0] : v;
};

export const openaiFormat: WireFormat = {
  name: 'openai',
  parse(body) {
    const b = obj(body, 'body');
    if (typeof b.model !== 'string') throw new BadRequest('model is required');
    if (!Array.isArray(b.messages) || b.messages.length === 0) throw new BadRequest('messages must be a non-empty array');
    const msgs = b.messages.map((m, i) => obj(m, `messages[${i}]`));
    msgs.forEach((m, i) => {
      if (!['system', 'developer', 'user', 'assistant', 'tool'].includes(String(m.role)))
        throw new BadRequest(`messages[${i}].role: '${String(m.role)}' is not one of 'system', 'developer', 'user', 'assistant', 'tool'`);
    });
    const system = msgs
      .filter((m) => m.role === 'system' || m.role === 'developer')
      .map((m) => textOf(m.content))
      .join('\n');
    const { turns, tools, toolText } = openAITools(
      b,
      msgs.filter((m) => m.role !== 'system' && m.role !== 'developer'),
    );
    // OpenAI uses max_completion_tokens (max_tokens is its older name); Mistral uses max_tokens.
    const maxTokens = optInt(b.max_completion_tokens, 'max_completion_tokens') ?? optInt(b.max_tokens, 'max_tokens');
    const options = b.stream_options === undefined || b.stream_options === null ? {} : obj(b.stream_options, 'stream_options');
    return {
      model: b.model,
      system,
      turns,
      prompt: turns.map((t) => t.text).join('\n'),
      messageCount: msgs.length,
      maxTokens,
      stream: b.stream === true,
      includeUsage: options.include_usage === true,
      tools,
      toolText,
    };
  },
  toolStream(r, call, out) {
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      sse({ id, object: 'chat.completion.chunk', created, model: r.model, choices, ...(r.includeUsage ? { usage: null } : {}), ...extra });
    const usage = { prompt_tokens: r.inputTokens, completion_tokens: out, total_tokens: r.inputTokens + out };
    const half = Math.ceil(call.arguments.length / 2);
    const args = (a: string) => chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: a } }] }, finish_reason: null }]);
    const start = (a: string) =>
      chunk([
        { index: 0, delta: { tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: a } }] }, finish_reason: null },
      ]);
    return [
      chunk([{ index: 0, delta: { role: 'assistant', content: null }, finish_reason: null }]),
      // OpenAI streams a call's arguments in pieces after its name; Mistral sends each call whole in one chunk.
      ...(r.wholeCall ? [start(call.arguments)] : [start(''), args(call.arguments.slice(0, half)), args(call.arguments.slice(half))]),
      chunk([{ index: 0, delta: {}, finish_reason: 'tool_calls' }], r.includeUsage ? {} : { usage }),
      ...(r.includeUsage ? [chunk([], { usage })] : []),
      'data: [DONE]\n\n',
    ];
  },
  frames(r) {
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      sse({ id, object: 'chat.completion.chunk', created, model: r.model, choices, ...(r.includeUsage ? { usage: null } : {}), ...extra });
    const usage = (out: number) => ({ prompt_tokens: r.inputTokens, completion_tokens: out, total_tokens: r.inputTokens + out });
    return {
      head: () => [chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }])],
      delta: (text) => chunk([{ index: 0, delta: { content: text }, finish_reason: null }]),
      // With include_usage, OpenAI sends usage in a chunk of its own; Mistral (no stream_options) on the last chunk.
      tail: (out, truncated) => [
        chunk([{ index: 0, delta: {}, finish_reason: truncated ? 'length' : 'stop' }], r.includeUsage ? {} : { usage: usage(out) }),
        ...(r.includeUsage ? [chunk([], { usage: usage(out) })] : []),
        'data: [DONE]\n\n',
      ],
    };
  },
  reply(r) {
    return {
      id: `chatcmpl-${randomUUID()}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: r.model,
      choices: [
        r.toolCall
          ? {
              index: 0,
              message: {
                role: 'assistant',
                content: null,
                refusal: null,
                tool_calls: [{ id: r.toolCall.id, type: 'function', function: { name: r.toolCall.name, arguments: r.toolCall.arguments } }],
              },
              finish_reason: 'tool_calls',
              logprobs: null,
            }
          : { index: 0, message: { role: 'assistant', content: r.text, refusal: null }, finish_reason: r.truncated ? 'length' : 'stop', logprobs: null },
      ],
      usage: {
        prompt_tokens: r.inputTokens,
        completion_tokens: r.outputTokens,
        total_tokens: r.inputTokens + r.outputTokens,
        prompt_tokens_details: { cached_tokens: 0 },
      },
    };
  },
  error(status, category, message) {
    const type: Record<ErrorCategory, string> = {
      rate_limit: 'rate_limit_exceeded',
      server: 'server_error',
      overloaded: 'server_error',
      bad_request: 'invalid_request_error',
      context: 'invalid_request_error',
      auth: 'invalid_request_error',
      permission: 'invalid_request_error',
      not_found: 'invalid_request_error',
      policy: 'invalid_request_error',
    };
    const code: Partial<Record<ErrorCategory, string>> = {
      context: 'context_length_exceeded',
      auth: 'invalid_api_key',
      not_found: 'model_not_found',
      policy: 'content_policy_violation',
      rate_limit: 'rate_limit_exceeded',
    };
    return { error: { message, type: type[category], param: null, code: code[category] ?? null }, status };
  },
  hasKey(h) {
    return /^Bearer \S+/.test(header(h, 'authorization') ?? '');
  },
};

/** Anthropic's first stream event: the message, empty, with its input usage. */
function anthropicMessageStart(r: { model: string; inputTokens: number }): string {
  const message = {
    id: `msg_${randomUUID().replace(/-/g, '')}`,
    type: 'message',
    role: 'assistant',
    model: r.model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: r.inputTokens, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
  return `event: message_start\n${sse({ type: 'message_start', message })}`;
}

export const anthropicFormat: WireFormat = {
  name: 'anthropic',
  parse(body) {
    const b = obj(body, 'body');
    if (typeof b.model !== 'string') throw new BadRequest('model: Field required');
    const maxTokens = optInt(b.max_tokens, 'max_tokens');
    if (maxTokens === undefined) throw new BadRequest('max_tokens: Field required');
    if (!Array.isArray(b.messages) || b.messages.length === 0) throw new BadRequest('messages: at least one message is required');
    const msgs = b.messages.map((m, i) => obj(m, `messages.${i}`));
    // As Anthropic's API does: only user and assistant turns (system is a top-level field), user first.
    msgs.forEach((m, i) => {
      if (m.role !== 'user' && m.role !== 'assistant') throw new BadRequest(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    });
    if (msgs[0]?.role !== 'user') throw new BadRequest('messages: first message must use the "user" role');
    const { turns, tools, toolText } = anthropicTools(b, msgs);
    return {
      tools,
      toolText,
      model: b.model,
      system: textOf(b.system),
      turns,
      prompt: turns.map((t) => t.text).join('\n'),
      messageCount: msgs.length,
      maxTokens,
      stream: b.stream === true,
    };
  },
  frames(r) {
    const event = (type: string, data: Record<string, unknown>) => `event: ${type}\n${sse({ type, ...data })}`;
    return {
      head: () => [anthropicMessageStart(r), event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } })],
      delta: (text) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }),
      tail: (out, truncated) => [
        event('content_block_stop', { index: 0 }),
        event('message_delta', { delta: { stop_reason: truncated ? 'max_tokens' : 'end_turn', stop_sequence: null }, usage: { output_tokens: out } }),
        event('message_stop', {}),
      ],
    };
  },
  toolStream(r, call, out) {
    const event = (type: string, data: Record<string, unknown>) => `event: ${type}\n${sse({ type, ...data })}`;
    const half = Math.ceil(call.arguments.length / 2);
    return [
      anthropicMessageStart(r),
      event('content_block_start', { index: 0, content_block: { type: 'tool_use', id: `toolu_${call.id.slice(5)}`, name: call.name, input: {} } }),
      event('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: call.arguments.slice(0, half) } }),
      event('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: call.arguments.slice(half) } }),
      event('content_block_stop', { index: 0 }),
      event('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: out } }),
      event('message_stop', {}),
    ];
  },
  reply(r) {
    return {
      id: `msg_${randomUUID().replace(/-/g, '')}`,
      type: 'message',
      role: 'assistant',
      model: r.model,
      content: r.toolCall
        ? [{ type: 'tool_use', id: `toolu_${r.toolCall.id.slice(5)}`, name: r.toolCall.name, input: argumentsObjectOf(r.toolCall.arguments) }]
        : [{ type: 'text', text: r.text }],
      stop_reason: r.toolCall ? 'tool_use' : r.truncated ? 'max_tokens' : 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: r.inputTokens, output_tokens: r.outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    };
  },
  error(_status, category, message) {
    const type: Record<ErrorCategory, string> = {
      rate_limit: 'rate_limit_error',
      server: 'api_error',
      overloaded: 'overloaded_error',
      bad_request: 'invalid_request_error',
      context: 'invalid_request_error',
      auth: 'authentication_error',
      permission: 'permission_error',
      not_found: 'not_found_error',
      policy: 'invalid_request_error',
    };
    return { type: 'error', error: { type: type[category], message } };
  },
  hasKey(h) {
    return (header(h, 'x-api-key') ?? '').length > 0 || /^Bearer \S+/.test(header(h, 'authorization') ?? '');
  },
};

export const geminiFormat: WireFormat = {
  name: 'gemini',
  parse(body, pathModel) {
    const b = obj(body, 'body');
    if (!pathModel) throw new BadRequest('model is required in the path');
    if (!Array.isArray(b.contents) || b.contents.length === 0) throw new BadRequest('contents must not be empty');
    const contents = b.contents.map((c, i) => obj(c, `contents[${i}]`));
    contents.forEach((c, i) => {
      if (c.role !== undefined && c.role !== 'user' && c.role !== 'model') throw new BadRequest(`contents[${i}].role: Please use a valid role: user, model.`);
    });
    const { turns, tools, toolText } = geminiTools(b, contents);
    const prompt = turns.map((t) => t.text).join('\n');
    const sys = b.systemInstruction === undefined ? '' : textOf(obj(b.systemInstruction, 'systemInstruction').parts);
    const gc = b.generationConfig === undefined ? {} : obj(b.generationConfig, 'generationConfig');
    return {
      model: pathModel,
      system: sys,
      turns,
      prompt,
      messageCount: contents.length,
      maxTokens: optInt(gc.maxOutputTokens, 'generationConfig.maxOutputTokens'),
      tools,
      toolText,
    };
  },
  toolStream(r, call, out) {
    return [
      sse({
        candidates: [
          {
            content: { parts: [{ functionCall: { name: call.name, args: argumentsObjectOf(call.arguments) } }], role: 'model' },
            finishReason: 'STOP',
            index: 0,
          },
        ],
        usageMetadata: { promptTokenCount: r.inputTokens, candidatesTokenCount: out, totalTokenCount: r.inputTokens + out },
        modelVersion: r.model,
      }),
    ];
  },
  frames(r) {
    const piece = (text: string, extra: Record<string, unknown> = {}) =>
      sse({ candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0, ...extra }], modelVersion: r.model });
    return {
      head: () => [],
      delta: (text) => piece(text),
      tail: (out, truncated) => [
        sse({
          candidates: [{ content: { parts: [{ text: '' }], role: 'model' }, finishReason: truncated ? 'MAX_TOKENS' : 'STOP', index: 0 }],
          usageMetadata: { promptTokenCount: r.inputTokens, candidatesTokenCount: out, totalTokenCount: r.inputTokens + out },
          modelVersion: r.model,
        }),
      ],
    };
  },
  reply(r) {
    return {
      candidates: [
        {
          content: {
            parts: r.toolCall ? [{ functionCall: { name: r.toolCall.name, args: argumentsObjectOf(r.toolCall.arguments) } }] : [{ text: r.text }],
            role: 'model',
          },
          finishReason: r.truncated && !r.toolCall ? 'MAX_TOKENS' : 'STOP',
          index: 0,
        },
      ],
      usageMetadata: { promptTokenCount: r.inputTokens, candidatesTokenCount: r.outputTokens, totalTokenCount: r.inputTokens + r.outputTokens },
      modelVersion: r.model,
    };
  },
  error(status, category, message) {
    const s: Record<ErrorCategory, string> = {
      rate_limit: 'RESOURCE_EXHAUSTED',
      server: 'INTERNAL',
      overloaded: 'UNAVAILABLE',
      bad_request: 'INVALID_ARGUMENT',
      context: 'INVALID_ARGUMENT',
      auth: 'UNAUTHENTICATED',
      permission: 'PERMISSION_DENIED',
      not_found: 'NOT_FOUND',
      policy: 'INVALID_ARGUMENT',
    };
    return { error: { code: status, message, status: s[category] } };
  },
  hasKey(h, url) {
    return (header(h, 'x-goog-api-key') ?? '').length > 0 || (url.searchParams.get('key') ?? '').length > 0;
  },
};

/** One server-sent event's data line. */
function sse(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

export function categoryForStatus(status: number): ErrorCategory {
  if (status === 429) return 'rate_limit';
  if (status === 529 || status === 503) return 'overloaded';
  if (status === 401) return 'auth';
  if (status === 403) return 'permission';
  if (status === 404) return 'not_found';
  if (status >= 500) return 'server';
  return 'bad_request';
}
