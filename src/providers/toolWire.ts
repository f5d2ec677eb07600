/**
 * Tool use in the wire shapes the provider SDKs take, from the provider-neutral types (types.ts):
 * OpenAI's (also Mistral's and self-hosted OpenAI-compatible servers'), Anthropic's and Gemini's.
 * Pure mapping: no SDK is imported here, the adapters cast to their SDK's types.
 */
import { createHash } from 'node:crypto';
import type { ChatTurn, ToolCall, ToolChoice, ToolUse } from './types.js';

const digest = (s: string): string => createHash('sha256').update(s).digest('hex');

/** An id for a call the provider sent without one (Gemini may): `call_` and 24 hex digits of the request id and the call's place, an id every provider takes back. */
export function madeUpCallId(requestId: string | undefined, i: number): string {
  return `call_${digest(`${requestId ?? ''}\n${i}`).slice(0, 24)}`;
}

/**
 * A call id as this provider takes it, the same for a call and the result that answers it: ids
 * another provider made (a conversation that moved between providers) may break its rules.
 * Anthropic: letters, digits, `_` and `-`; OpenAI: at most 40 characters; Mistral: 9 letters or
 * digits. An id that already fits is kept.
 */
export function wireCallId(provider: 'openai' | 'anthropic' | 'mistral', id: string): string {
  if (provider === 'anthropic') return /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : `toolu_${digest(id).slice(0, 24)}`;
  if (provider === 'mistral') return /^[A-Za-z0-9]{9}$/.test(id) ? id : digest(id).slice(0, 9);
  return id.length <= 40 ? id : `call_${digest(id).slice(0, 24)}`;
}

/** Arguments as an object, for the providers that take them parsed (Anthropic's `input`, Gemini's `args`); text that is not a JSON object is kept under `_raw`. */
export function argumentsObject(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // below
  }
  return { _raw: text };
}

// ---- OpenAI chat completions (and Mistral, camelCased by its SDK) ----

/** OpenAI's tool fields; Mistral's SDK takes the same with camelCased names. */
function openAIShapedTools(t: ToolUse | undefined, names: { choice: string; parallel: string }): Record<string, unknown> {
  if (!t || t.tools.length === 0) return {};
  const choice = (c: ToolChoice): unknown => (typeof c === 'string' ? c : { type: 'function', function: { name: c.name } });
  return {
    tools: t.tools.map((x) => ({
      type: 'function',
      function: { name: x.name, ...(x.description ? { description: x.description } : {}), parameters: x.parameters },
    })),
    ...(t.choice !== undefined ? { [names.choice]: choice(t.choice) } : {}),
    ...(t.parallel !== undefined ? { [names.parallel]: t.parallel } : {}),
  };
}

export function openAITools(t: ToolUse | undefined): Record<string, unknown> {
  return openAIShapedTools(t, { choice: 'tool_choice', parallel: 'parallel_tool_calls' });
}

export function openAIMessage(t: ChatTurn): Record<string, unknown> {
  if (t.role === 'tool') return { role: 'tool', tool_call_id: wireCallId('openai', t.toolCallId), content: t.content };
  if (t.role === 'assistant' && t.toolCalls && t.toolCalls.length > 0)
    return {
      role: 'assistant',
      content: t.content === '' ? null : t.content,
      tool_calls: t.toolCalls.map((c) => ({ id: wireCallId('openai', c.id), type: 'function', function: { name: c.name, arguments: c.arguments } })),
    };
  return { role: t.role, content: t.content };
}

/** Tool calls of an OpenAI-shaped message (or Mistral's, whose arguments may come parsed). */
export function callsOfOpenAI(
  calls: ReadonlyArray<{ id?: string | null | undefined; function?: { name?: string; arguments?: unknown } | undefined }> | null | undefined,
  idPrefix: string,
): ToolCall[] | undefined {
  if (!calls || calls.length === 0) return undefined;
  return calls.map((c, i) => ({
    id: c.id ?? madeUpCallId(idPrefix, i),
    name: c.function?.name ?? '',
    arguments: typeof c.function?.arguments === 'string' ? c.function.arguments : JSON.stringify(c.function?.arguments ?? {}),
  }));
}

/** Stream deltas of tool calls (OpenAI and Mistral send them in pieces, by index): put together. */
export class ToolCallAssembler {
  private readonly byIndex = new Map<number, { id?: string; name: string; arguments: string }>();

  add(
    deltas:
      | ReadonlyArray<{
          index?: number | undefined;
          id?: string | null | undefined;
          function?: { name?: string | null | undefined; arguments?: unknown } | undefined;
        }>
      | null
      | undefined,
  ): void {
    for (const [k, d] of (deltas ?? []).entries()) {
      const i = d.index ?? k;
      const cur = this.byIndex.get(i) ?? { name: '', arguments: '' };
      if (d.id) cur.id = d.id;
      if (d.function?.name) cur.name += d.function.name;
      const a = d.function?.arguments;
      if (typeof a === 'string') cur.arguments += a;
      else if (a && typeof a === 'object') cur.arguments += JSON.stringify(a);
      this.byIndex.set(i, cur);
    }
  }

  calls(idPrefix: string): ToolCall[] | undefined {
    if (this.byIndex.size === 0) return undefined;
    return [...this.byIndex.entries()]
      .sort(([a], [b]) => a - b)
      .map(([i, c]) => ({ id: c.id ?? madeUpCallId(idPrefix, i), name: c.name, arguments: c.arguments }));
  }
}

// ---- Anthropic messages ----

export function anthropicTools(t: ToolUse | undefined): Record<string, unknown> {
  if (!t || t.tools.length === 0) return {};
  const noParallel = t.parallel === false ? { disable_parallel_tool_use: true } : {};
  const choice = (c: ToolChoice | undefined): unknown =>
    c === undefined
      ? t.parallel === false
        ? { type: 'auto', ...noParallel }
        : undefined
      : c === 'none'
        ? { type: 'none' }
        : c === 'auto'
          ? { type: 'auto', ...noParallel }
          : c === 'required'
            ? { type: 'any', ...noParallel }
            : { type: 'tool', name: c.name, ...noParallel };
  const tc = choice(t.choice);
  return {
    tools: t.tools.map((x) => ({ name: x.name, ...(x.description ? { description: x.description } : {}), input_schema: x.parameters })),
    ...(tc !== undefined ? { tool_choice: tc } : {}),
  };
}

/**
 * Anthropic's messages: a tool call is a `tool_use` block of the assistant's turn, its result a
 * `tool_result` block of the next user turn; consecutive results (and a user turn after them) go
 * in one user message, as the API requires alternating roles.
 */
export function anthropicMessages(turns: readonly ChatTurn[]): Array<{ role: 'user' | 'assistant'; content: unknown }> {
  const out: Array<{ role: 'user' | 'assistant'; content: unknown }> = [];
  const userBlocks = (): unknown[] => {
    const last = out[out.length - 1];
    if (last && last.role === 'user' && Array.isArray(last.content)) return last.content as unknown[];
    const blocks: unknown[] = [];
    out.push({ role: 'user', content: blocks });
    return blocks;
  };
  for (const t of turns) {
    if (t.role === 'tool') userBlocks().push({ type: 'tool_result', tool_use_id: wireCallId('anthropic', t.toolCallId), content: t.content });
    else if (t.role === 'user') {
      const last = out[out.length - 1];
      if (last && last.role === 'user' && Array.isArray(last.content)) (last.content as unknown[]).push({ type: 'text', text: t.content });
      else out.push({ role: 'user', content: t.content });
    } else if (t.toolCalls && t.toolCalls.length > 0)
      out.push({
        role: 'assistant',
        content: [
          ...(t.content !== '' ? [{ type: 'text', text: t.content }] : []),
          ...t.toolCalls.map((c) => ({ type: 'tool_use', id: wireCallId('anthropic', c.id), name: c.name, input: argumentsObject(c.arguments) })),
        ],
      });
    else out.push({ role: 'assistant', content: t.content });
  }
  return out;
}

// ---- Gemini generateContent ----

export function geminiTools(t: ToolUse | undefined): Record<string, unknown> {
  if (!t || t.tools.length === 0) return {};
  const c = t.choice;
  const mode = c === undefined || c === 'auto' ? 'AUTO' : c === 'none' ? 'NONE' : 'ANY';
  return {
    tools: [
      {
        functionDeclarations: t.tools.map((x) => ({
          name: x.name,
          ...(x.description ? { description: x.description } : {}),
          parametersJsonSchema: x.parameters,
        })),
      },
    ],
    ...(c !== undefined ? { toolConfig: { functionCallingConfig: { mode, ...(typeof c === 'object' ? { allowedFunctionNames: [c.name] } : {}) } } } : {}),
  };
}

/** Gemini's contents: a call is a `functionCall` part of a model turn, a result a `functionResponse` part of a user turn. */
export function geminiContents(turns: readonly ChatTurn[]): Array<{ role: 'user' | 'model'; parts: unknown[] }> {
  const out: Array<{ role: 'user' | 'model'; parts: unknown[] }> = [];
  const push = (role: 'user' | 'model', part: unknown) => {
    const last = out[out.length - 1];
    if (last && last.role === role) last.parts.push(part);
    else out.push({ role, parts: [part] });
  };
  for (const t of turns) {
    if (t.role === 'tool') {
      let response: Record<string, unknown>;
      try {
        const v: unknown = JSON.parse(t.content);
        response = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { result: v };
      } catch {
        response = { result: t.content };
      }
      push('user', { functionResponse: { id: t.toolCallId, name: t.name, response } });
    } else if (t.role === 'user') push('user', { text: t.content });
    else {
      if (t.content !== '') push('model', { text: t.content });
      for (const c of t.toolCalls ?? []) push('model', { functionCall: { id: c.id, name: c.name, args: argumentsObject(c.arguments) } });
    }
  }
  return out;
}

// ---- Mistral chat (its SDK's camelCase) ----

export function mistralTools(t: ToolUse | undefined): Record<string, unknown> {
  return openAIShapedTools(t, { choice: 'toolChoice', parallel: 'parallelToolCalls' });
}

export function mistralMessage(t: ChatTurn): Record<string, unknown> {
  if (t.role === 'tool') return { role: 'tool', content: t.content, toolCallId: wireCallId('mistral', t.toolCallId), name: t.name };
  if (t.role === 'assistant' && t.toolCalls && t.toolCalls.length > 0)
    return {
      role: 'assistant',
      content: t.content,
      toolCalls: t.toolCalls.map((c) => ({ id: wireCallId('mistral', c.id), type: 'function', function: { name: c.name, arguments: c.arguments } })),
    };
  return { role: t.role, content: t.content };
}
