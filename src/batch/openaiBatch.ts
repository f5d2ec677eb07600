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
import type { ChatMessage } from '../workflows/conversation.js';
import type { RequestInput } from '../workflows/request/contract.js';
import type { BatchResultLine } from './summary.js';

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
  'parallel_tool_calls',
  'stop',
  'reasoning_effort',
]);
/** Body fields that would change what the caller gets back: refused rather than silently dropped. */
const UNSUPPORTED: Record<string, string> = {
  tools: 'tool calling is not supported by Switchyard yet',
  tool_choice: 'tool calling is not supported by Switchyard yet',
  functions: 'function calling is not supported by Switchyard yet',
  function_call: 'function calling is not supported by Switchyard yet',
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

/** OpenAI chat messages as Switchyard messages ("developer" is a system turn). */
export function messagesFromOpenAI(raw: unknown, where = 'body.messages'): ChatMessage[] | { error: string } {
  if (!Array.isArray(raw)) return { error: `${where}: must be an array of {"role", "content"}` };
  const out: ChatMessage[] = [];
  for (const [i, m] of raw.entries()) {
    const msg = m as { role?: unknown; content?: unknown } | null;
    const at = `${where}[${i}]`;
    if (!msg || typeof msg !== 'object') return { error: `${at}: must be an object {"role", "content"}` };
    const role = msg.role === 'developer' ? 'system' : msg.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant')
      return { error: `${at}.role: "${String(msg.role)}" is not supported (system, developer, user or assistant)` };
    const text = contentText(msg.content, at);
    if (typeof text !== 'string') return text;
    out.push({ role, content: text });
  }
  return out;
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
  if (model !== undefined && model !== 'auto' && model !== '') request.model = model;
  if (maxTokens !== undefined && maxTokens !== null) request.maxOutputTokens = maxTokens;
  if (body.temperature !== undefined && body.temperature !== null) request.temperature = body.temperature;
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
    [/^messages/, 'body.messages'],
    [/^quality\.jsonSchema/, 'body.response_format.json_schema.schema'],
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
            message: { role: 'assistant', content: r.text ?? '', refusal: null },
            finish_reason: /^(length|max_tokens)$/i.test(r.finishReason ?? '') ? 'length' : 'stop',
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
