/**
 * The providers' wire formats, as the simulator speaks them: how to read a request and how to
 * write a reply or an error, for OpenAI chat completions (also Mistral and OpenAI-compatible
 * self-hosted servers), Anthropic messages and Gemini generateContent.
 */
import { randomUUID } from 'node:crypto';

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
}

export interface Reply {
  readonly model: string;
  readonly text: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly truncated: boolean;
}

export type ErrorCategory = 'rate_limit' | 'server' | 'overloaded' | 'bad_request' | 'context' | 'auth' | 'permission' | 'not_found' | 'policy';

export interface WireFormat {
  readonly name: 'openai' | 'anthropic' | 'gemini';
  parse(body: unknown, pathModel: string | undefined): ParsedRequest;
  reply(r: Reply): unknown;
  error(status: number, category: ErrorCategory, message: string): unknown;
  hasKey(headers: Record<string, string | string[] | undefined>, url: URL): boolean;
}

export class BadRequest extends Error {}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadRequest(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((c) => (typeof c === 'object' && c !== null && typeof (c as { text?: unknown }).text === 'string' ? (c as { text: string }).text : ''))
      .join('');
  }
  return '';
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
      if (!['system', 'developer', 'user', 'assistant'].includes(String(m.role)))
        throw new BadRequest(`messages[${i}].role: '${String(m.role)}' is not one of 'system', 'developer', 'user', 'assistant'`);
    });
    const system = msgs
      .filter((m) => m.role === 'system' || m.role === 'developer')
      .map((m) => textOf(m.content))
      .join('\n');
    const turns = msgs.filter((m) => m.role === 'user' || m.role === 'assistant').map((m) => ({ role: m.role as SimTurn['role'], text: textOf(m.content) }));
    // OpenAI uses max_completion_tokens (max_tokens is its older name); Mistral uses max_tokens.
    const maxTokens = optInt(b.max_completion_tokens, 'max_completion_tokens') ?? optInt(b.max_tokens, 'max_tokens');
    return { model: b.model, system, turns, prompt: turns.map((t) => t.text).join('\n'), messageCount: msgs.length, maxTokens };
  },
  reply(r) {
    return {
      id: `chatcmpl-${randomUUID()}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: r.model,
      choices: [{ index: 0, message: { role: 'assistant', content: r.text, refusal: null }, finish_reason: r.truncated ? 'length' : 'stop', logprobs: null }],
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
    const turns = msgs.map((m) => ({ role: m.role as SimTurn['role'], text: textOf(m.content) }));
    return { model: b.model, system: textOf(b.system), turns, prompt: turns.map((t) => t.text).join('\n'), messageCount: msgs.length, maxTokens };
  },
  reply(r) {
    return {
      id: `msg_${randomUUID().replace(/-/g, '')}`,
      type: 'message',
      role: 'assistant',
      model: r.model,
      content: [{ type: 'text', text: r.text }],
      stop_reason: r.truncated ? 'max_tokens' : 'end_turn',
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
    const turns = contents.map((c): SimTurn => ({ role: c.role === 'model' ? 'assistant' : 'user', text: textOf(c.parts) }));
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
    };
  },
  reply(r) {
    return {
      candidates: [{ content: { parts: [{ text: r.text }], role: 'model' }, finishReason: r.truncated ? 'MAX_TOKENS' : 'STOP', index: 0 }],
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

export function categoryForStatus(status: number): ErrorCategory {
  if (status === 429) return 'rate_limit';
  if (status === 529 || status === 503) return 'overloaded';
  if (status === 401) return 'auth';
  if (status === 403) return 'permission';
  if (status === 404) return 'not_found';
  if (status >= 500) return 'server';
  return 'bad_request';
}
