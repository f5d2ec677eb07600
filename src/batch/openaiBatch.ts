/**
 * The OpenAI Batch API's file formats, so that pipelines that already write them run unchanged.
 *
 * Input line: {"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {chat request}}.
 * `custom_id` is the request id; `body.model` absent or "auto" means routed, a catalog model means
 * pinned; `body.messages` becomes the request's messages; max_completion_tokens (or max_tokens),
 * temperature and response_format map to their Switchyard fields. Output line (with
 * `--output-format openai`): {"id", "custom_id", "response": {"status_code", "request_id", "body":
 * chat.completion}, "error"}, with a `switchyard` object in the body (tier, cost, baseline).
 * Pure (no I/O).
 */
import { createHash } from 'node:crypto';
import { TIERS } from '../catalog/tiers.js';
import type { ToolCall, ToolChoice, ToolSpec } from '../providers/types.js';
import type { ChatMessage } from '../workflows/conversation.js';
import type { RequestInput } from '../workflows/request/contract.js';
import type { BadLine, BatchResultLine } from './summary.js';

/** Whether a parsed line is in the OpenAI Batch format (rather than Switchyard's own). */
export function isOpenAIBatchLine(raw: Record<string, unknown>): boolean {
  return Object.hasOwn(raw, 'custom_id');
}

/** Body fields accepted without effect: sampling knobs and bookkeeping a router need not honour. */
const IGNORED = new Set([
  'top_p',
  'frequency_penalty',
  'presence_penalty',
  'seed',
  'user',
  'metadata',
  'store',
  'logit_bias',
  'service_tier',
  'stop',
  'reasoning_effort',
]);
/** Body fields that would change what the caller gets back: refused rather than silently dropped. */
const UNSUPPORTED: Record<string, string> = {
  functions: 'the legacy functions field is not supported: send tools (each {"type": "function", "function": {...}})',
  function_call: 'the legacy function_call field is not supported: send tool_choice',
  stream: 'batch requests are not streamed; remove it',
  logprobs: 'logprobs are not returned by every provider; remove it',
  top_logprobs: 'logprobs are not returned by every provider; remove it',
  audio: 'audio output is not supported',
  modalities: 'only text output is supported',
  prediction: 'predicted outputs are not supported',
};

export type Converted =
  { readonly ok: true; readonly id: string; readonly request: RequestInput & { requestId: string } } | { readonly ok: false; readonly error: string };

/** What a request id may hold (the request contract's alphabet and length). */
const SAFE_ID = /^[A-Za-z0-9._:/-]{1,200}$/;

/**
 * The request id of a line: its `custom_id` when that is a valid request id, else a stable mapping
 * (the id's safe characters, up to 60, then `-cid-` and 24 hex digits of its SHA-256), so that any
 * custom_id OpenAI accepts (spaces, other scripts, any length) runs, re-running the file finds the
 * same requests, and the output line carries the original custom_id.
 */
export function requestIdForCustomId(customId: string): string {
  if (SAFE_ID.test(customId)) return customId;
  const readable = customId.replace(/[^A-Za-z0-9._:/-]+/g, '_').slice(0, 60);
  return `${readable}-cid-${createHash('sha256').update(customId).digest('hex').slice(0, 24)}`;
}

/** Text of an OpenAI message content: a string, or text parts (other parts are refused). */
function contentText(content: unknown, where: string): string | { error: string } {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    const texts: string[] = [];
    for (const [i, part] of content.entries()) {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (p && p.type === 'text' && typeof p.text === 'string') texts.push(p.text);
      else return { error: `${where}.content[${i}]: only text parts are supported (got ${p && typeof p.type === 'string' ? p.type : typeof part})` };
    }
    return texts.join('');
  }
  return { error: `${where}.content: must be a string or an array of text parts` };
}

/** An assistant message's `tool_calls` as Switchyard's tool calls. */
function toolCallsFromOpenAI(raw: unknown, at: string): ToolCall[] | { error: string } {
  if (!Array.isArray(raw)) return { error: `${at}.tool_calls: must be an array of {"id", "type": "function", "function": {"name", "arguments"}}` };
  const out: ToolCall[] = [];
  for (const [j, c] of raw.entries()) {
    const call = c as { id?: unknown; type?: unknown; function?: { name?: unknown; arguments?: unknown } | null } | null;
    const where = `${at}.tool_calls[${j}]`;
    if (!call || typeof call !== 'object') return { error: `${where}: must be an object {"id", "type": "function", "function": {"name", "arguments"}}` };
    if (call.type !== undefined && call.type !== 'function')
      return { error: `${where}.type: only "function" tool calls are supported (got ${JSON.stringify(call.type)})` };
    if (typeof call.id !== 'string') return { error: `${where}.id: must be a string (the call's id, which the tool message answers)` };
    const f = call.function;
    if (!f || typeof f !== 'object' || typeof f.name !== 'string') return { error: `${where}.function.name: must be a string (the tool called)` };
    if (typeof f.arguments !== 'string') return { error: `${where}.function.arguments: must be a string (the JSON text of the arguments)` };
    out.push({ id: call.id, name: f.name, arguments: f.arguments });
  }
  return out;
}

/** OpenAI chat messages as Switchyard messages ("developer" is a system turn; assistant `tool_calls` and `tool` results carried over). */
export function messagesFromOpenAI(raw: unknown, where = 'body.messages'): ChatMessage[] | { error: string } {
  if (!Array.isArray(raw)) return { error: `${where}: must be an array of {"role", "content"}` };
  const out: ChatMessage[] = [];
  for (const [i, m] of raw.entries()) {
    const msg = m as { role?: unknown; content?: unknown; tool_calls?: unknown; tool_call_id?: unknown } | null;
    const at = `${where}[${i}]`;
    if (!msg || typeof msg !== 'object') return { error: `${at}: must be an object {"role", "content"}` };
    const role = msg.role === 'developer' ? 'system' : msg.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'tool')
      return {
        error: `${at}.role: "${String(msg.role)}" is not supported (system, developer, user, assistant or tool${msg.role === 'function' ? '; the legacy function role: send tool messages' : ''})`,
      };
    const calls = role === 'assistant' && msg.tool_calls !== undefined && msg.tool_calls !== null ? toolCallsFromOpenAI(msg.tool_calls, at) : undefined;
    if (calls && !Array.isArray(calls)) return calls;
    const hasCalls = calls !== undefined && calls.length > 0;
    // An assistant message that only calls tools has null (or no) content.
    const text = hasCalls && (msg.content === null || msg.content === undefined) ? '' : contentText(msg.content, at);
    if (typeof text !== 'string') return text;
    if (role === 'tool') {
      if (typeof msg.tool_call_id !== 'string') return { error: `${at}.tool_call_id: must be a string (the id of the tool call this message answers)` };
      out.push({ role, content: text, toolCallId: msg.tool_call_id });
    } else if (hasCalls) out.push({ role: 'assistant', content: text, toolCalls: calls });
    else out.push({ role, content: text });
  }
  return out;
}

/** OpenAI's `tools` as Switchyard's: function tools only; a function without parameters takes none. */
function toolsFromOpenAI(raw: unknown): ToolSpec[] | { error: string } {
  if (!Array.isArray(raw)) return { error: 'body.tools: must be an array of {"type": "function", "function": {"name", "description", "parameters"}}' };
  const out: ToolSpec[] = [];
  for (const [i, t] of raw.entries()) {
    const tool = t as { type?: unknown; function?: { name?: unknown; description?: unknown; parameters?: unknown; strict?: unknown } | null } | null;
    const at = `body.tools[${i}]`;
    if (!tool || typeof tool !== 'object') return { error: `${at}: must be an object {"type": "function", "function": {...}}` };
    if (tool.type !== 'function') return { error: `${at}.type: only "function" tools are supported (got ${JSON.stringify(tool.type)})` };
    const f = tool.function;
    if (!f || typeof f !== 'object' || Array.isArray(f)) return { error: `${at}.function: must be an object {"name", "description", "parameters"}` };
    if (typeof f.name !== 'string') return { error: `${at}.function.name: must be a string` };
    if (f.description !== undefined && f.description !== null && typeof f.description !== 'string')
      return { error: `${at}.function.description: must be a string` };
    if (f.strict !== undefined && f.strict !== null && typeof f.strict !== 'boolean') return { error: `${at}.function.strict: must be true or false` };
    const params = f.parameters ?? { type: 'object', properties: {} };
    if (typeof params !== 'object' || Array.isArray(params)) return { error: `${at}.function.parameters: must be a JSON Schema object` };
    out.push({ name: f.name, ...(typeof f.description === 'string' ? { description: f.description } : {}), parameters: params as Record<string, unknown> });
  }
  return out;
}

/** OpenAI's `tool_choice` as Switchyard's. */
function toolChoiceFromOpenAI(raw: unknown): ToolChoice | { error: string } {
  if (raw === 'auto' || raw === 'none' || raw === 'required') return raw;
  const c = raw as { type?: unknown; function?: { name?: unknown } | null } | null;
  if (c && typeof c === 'object' && c.type === 'function' && c.function && typeof c.function.name === 'string') return { name: c.function.name };
  return { error: 'body.tool_choice: must be "auto", "none", "required" or {"type": "function", "function": {"name": "<a tool in tools>"}}' };
}

/** One OpenAI Batch input line as a Switchyard request (validated by the caller like any line). */
export function fromOpenAIBatchLine(raw: Record<string, unknown>): Converted {
  const bad = (error: string): Converted => ({ ok: false, error });
  const id = raw.custom_id;
  if (typeof id !== 'string') return bad('custom_id: must be a string (a unique name per line)');
  if (id === '') return bad('custom_id: is required (a unique name per line)');
  if (raw.method !== undefined && raw.method !== 'POST') return bad(`method: must be "POST" (got ${JSON.stringify(raw.method)})`);
  if (raw.url !== '/v1/chat/completions') return bad(`url: only "/v1/chat/completions" is supported (got ${JSON.stringify(raw.url)})`);
  const body = raw.body as Record<string, unknown> | null;
  if (!body || typeof body !== 'object' || Array.isArray(body)) return bad('body: must be a chat completions request object');
  for (const k of Object.keys(body)) {
    const why = Object.hasOwn(UNSUPPORTED, k) ? UNSUPPORTED[k] : undefined;
    const v = body[k];
    const unset = v === undefined || v === null || v === false || (Array.isArray(v) && v.length === 0);
    if (why && !unset) return bad(`body.${k}: ${why}`);
  }
  if (body.n !== undefined && body.n !== null && body.n !== 1) return bad('body.n: only 1 choice per request is supported');
  const known = new Set([
    'model',
    'messages',
    'max_tokens',
    'max_completion_tokens',
    'temperature',
    'response_format',
    'n',
    'tools',
    'tool_choice',
    'parallel_tool_calls',
    ...Object.keys(UNSUPPORTED),
    ...IGNORED,
  ]);
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length) return bad(`body.${unknown[0]}: not a chat completions field Switchyard knows; remove it`);
  const messages = messagesFromOpenAI(body.messages);
  if (!Array.isArray(messages)) return bad(messages.error);
  const model = body.model;
  if (model !== undefined && typeof model !== 'string') return bad('body.model: must be a string ("auto" or absent: routed; a catalog model: pinned)');
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const request: Record<string, unknown> = { requestId: requestIdForCustomId(id), messages };
  if (typeof model === 'string' && model.startsWith('switchyard/')) {
    // A tier, as the gateway's model list names them: routed within it.
    const tier = model.slice('switchyard/'.length);
    if (!(TIERS as readonly string[]).includes(tier)) return bad(`body.model: no tier "${tier}": use ${TIERS.map((t) => `switchyard/${t}`).join(', ')}`);
    request.allowedTiers = [tier];
  } else if (model !== undefined && model !== 'auto' && model !== '') request.model = model;
  if (maxTokens !== undefined && maxTokens !== null) request.maxOutputTokens = maxTokens;
  if (body.temperature !== undefined && body.temperature !== null) request.temperature = body.temperature;
  if (body.tools !== undefined && body.tools !== null) {
    const tools = toolsFromOpenAI(body.tools);
    if (!Array.isArray(tools)) return bad(tools.error);
    if (tools.length > 0) request.tools = tools;
  }
  if (body.tool_choice !== undefined && body.tool_choice !== null) {
    const choice = toolChoiceFromOpenAI(body.tool_choice);
    if (typeof choice === 'object' && 'error' in choice) return bad(choice.error);
    // "none" with no tools is what OpenAI's clients send by default in some versions: nothing to choose from.
    if (!(choice === 'none' && request.tools === undefined)) request.toolChoice = choice;
  }
  if (body.parallel_tool_calls !== undefined && body.parallel_tool_calls !== null && request.tools !== undefined)
    request.parallelToolCalls = body.parallel_tool_calls;
  const rf = body.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined | null;
  // JSON modes: the answer is checked (a failed check escalates a tier), and the model is told, as
  // a system turn, since not every provider has a native JSON mode.
  if (rf && rf.type === 'json_object') {
    request.quality = { json: true };
    messages.push({ role: 'system', content: 'Reply with one JSON object and nothing else.' });
  } else if (rf && rf.type === 'json_schema') {
    if (!rf.json_schema || typeof rf.json_schema.schema !== 'object' || rf.json_schema.schema === null)
      return bad('body.response_format.json_schema.schema: must be a JSON Schema object');
    request.quality = { jsonSchema: rf.json_schema.schema };
    messages.push({ role: 'system', content: `Reply with JSON only, valid against this JSON Schema:\n${JSON.stringify(rf.json_schema.schema)}` });
  } else if (rf && rf.type !== 'text') return bad('body.response_format.type: must be text, json_object or json_schema');
  // The caller validates the request like any other line (zod), so types are checked there.
  return { ok: true, id, request: request as RequestInput & { requestId: string } };
}

/** A validation message about a converted line, with the field named as the OpenAI line names it. */
export function openAIFieldName(issue: string): string {
  const names: Array<[RegExp, string]> = [
    [/^requestId:/, 'custom_id:'],
    [/^maxOutputTokens:/, 'body.max_completion_tokens (or max_tokens):'],
    [/^temperature:/, 'body.temperature:'],
    [/^model:/, 'body.model:'],
    [/^messages(\[\d+\])\.toolCalls(\[\d+\])\.(name|arguments)/, 'body.messages$1.tool_calls$2.function.$3'],
    [/^messages(\[\d+\])\.toolCalls/, 'body.messages$1.tool_calls'],
    [/^messages(\[\d+\])\.toolCallId/, 'body.messages$1.tool_call_id'],
    [/^messages/, 'body.messages'],
    [/^quality\.jsonSchema/, 'body.response_format.json_schema.schema'],
    [/^tools(\[\d+\])\.(name|description|parameters)/, 'body.tools$1.function.$2'],
    [/^tools/, 'body.tools'],
    [/^toolChoice(\.name)?/, 'body.tool_choice'],
    [/^parallelToolCalls/, 'body.parallel_tool_calls'],
  ];
  for (const [re, name] of names) if (re.test(issue)) return issue.replace(re, name);
  return issue;
}

/** A Switchyard result line in the OpenAI Batch output format. */
export function toOpenAIBatchOutput(r: BatchResultLine, createdAtSeconds: number): Record<string, unknown> {
  const id = `batch_req_${createHash('sha256').update(r.workflowId).digest('hex').slice(0, 24)}`;
  if (r.status !== 'completed') {
    return { id, custom_id: r.id, response: null, error: { code: r.error?.type ?? 'failed', message: r.error?.message ?? 'failed' } };
  }
  const u = r.usage ?? { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 };
  const promptTokens = u.inputTokens + u.cachedInputTokens;
  return {
    id,
    custom_id: r.id,
    response: {
      status_code: 200,
      request_id: r.workflowId,
      body: {
        id: `chatcmpl-${r.workflowId}`,
        object: 'chat.completion',
        created: createdAtSeconds,
        model: r.model,
        choices: [
          {
            index: 0,
            message: assistantMessageOf(r.text ?? '', r.toolCalls),
            finish_reason: openAIFinishReason(r.finishReason, r.toolCalls),
            logprobs: null,
          },
        ],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: u.outputTokens,
          total_tokens: promptTokens + u.outputTokens,
          prompt_tokens_details: { cached_tokens: u.cachedInputTokens },
        },
        switchyard: { workflow_id: r.workflowId, tier: r.tier, cost_nanos: r.costNanos, premium_baseline_cost_nanos: r.premiumBaselineCostNanos },
      },
    },
    error: null,
  };
}

/** OpenAI's finish reason for a provider's: tool_calls when the answer called tools, length when it was cut off, else stop. */
export function openAIFinishReason(reason: string | undefined, toolCalls?: readonly ToolCall[]): 'stop' | 'length' | 'tool_calls' {
  if (toolCalls && toolCalls.length > 0) return 'tool_calls';
  return /^(length|max_tokens)$/i.test(reason ?? '') ? 'length' : 'stop';
}

/** OpenAI's assistant message for an answer: its text (null when it only called tools) and its tool calls. */
export function assistantMessageOf(text: string, toolCalls?: readonly ToolCall[]): Record<string, unknown> {
  const calls = toolCalls && toolCalls.length > 0 ? toolCalls : undefined;
  return {
    role: 'assistant',
    content: calls && text === '' ? null : text,
    refusal: null,
    ...(calls ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) } : {}),
  };
}

/**
 * A line refused before it ran, as OpenAI's error file holds a request it would not run: status
 * 400 with the error body naming the field (`custom_id` when it could be read). `batchId` names it.
 */
export function toOpenAIRefusedLine(bad: BadLine, batchId: string): Record<string, unknown> {
  const param = /^line \d+: (body\.[A-Za-z0-9_.[\]]+|custom_id|method|url)/.exec(bad.error)?.[1] ?? null;
  return {
    id: `batch_req_${createHash('sha256').update(`${batchId}\n${bad.line}`).digest('hex').slice(0, 24)}`,
    custom_id: bad.id ?? null,
    response: { status_code: 400, request_id: null, body: { error: { message: bad.error, type: 'invalid_request_error', param, code: 'invalid_request' } } },
    error: null,
    switchyard: { line: bad.line },
  };
}
