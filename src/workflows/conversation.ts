/**
 * A request's text as a conversation: either one `prompt` (with optional `context` and `system`)
 * or chat `messages` (system, user and assistant turns), normalised to what every provider's wire
 * format accepts: one system instruction, then turns alternating user/assistant, starting and
 * ending with the user. Pure.
 */
import type { ChatTurn, ToolCall, ToolChoice, ToolSpec, ToolUse } from '../providers/types.js';

/**
 * One message of a request's conversation. An assistant message may carry the tool calls it made
 * (its text may then be empty); a `tool` message is the result of one of them, named by its id.
 */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant' | 'tool';
  readonly content: string;
  // Mutable, as the request schema's input type has it (a readonly array would not be assignable to it).
  readonly toolCalls?: ToolCall[] | undefined;
  readonly toolCallId?: string | undefined;
}

/** The request fields that carry text (the tools a request offers travel with it: they are sent, and billed, as input). */
export interface RequestText {
  readonly prompt?: string | undefined;
  readonly messages?: readonly ChatMessage[] | undefined;
  readonly system?: string | undefined;
  readonly context?: string | undefined;
  readonly tools?: readonly ToolSpec[] | undefined;
  readonly toolChoice?: ToolChoice | undefined;
  readonly parallelToolCalls?: boolean | undefined;
}

export interface Conversation {
  readonly system?: string | undefined;
  /** Starting with the user; a user or tool turn last; `context` is in front of the last user turn. */
  readonly turns: readonly ChatTurn[];
  /** The tools the model may call (absent: none offered). */
  readonly tools?: ToolUse | undefined;
}

/** The tools a request offers, as a call sends them. */
export function toolUseOf(r: RequestText): ToolUse | undefined {
  if (!r.tools || r.tools.length === 0) return undefined;
  return {
    tools: r.tools,
    ...(r.toolChoice !== undefined ? { choice: r.toolChoice } : {}),
    ...(r.parallelToolCalls !== undefined ? { parallel: r.parallelToolCalls } : {}),
  };
}

/**
 * What is wrong with a request's tool turns (path and message): a `tool` message must answer a
 * call of the assistant message before it (or a tool message after that one), every call must be
 * answered before the conversation goes on, and call ids are unique. What OpenAI, Anthropic and
 * Gemini each refuse, refused up front (a provider's refusal would only move the request to the next).
 */
export function toolTurnIssues(messages: readonly ChatMessage[], hasTools: boolean): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  let open = new Map<string, string>();
  const seen = new Set<string>();
  let inCalls = false;
  let usesTools = false;
  messages.forEach((m, i) => {
    if (m.role === 'system') return;
    if (m.role === 'tool') {
      usesTools = true;
      const id = m.toolCallId ?? '';
      if (!inCalls)
        issues.push({
          path: `messages.${i}`,
          message: 'a tool message must follow the assistant message whose toolCalls it answers (or another tool message after it)',
        });
      else if (!open.has(id))
        issues.push({
          path: `messages.${i}.toolCallId`,
          message: seen.has(id)
            ? `answers call ${id} a second time`
            : `names no call of the assistant message before it (its calls: ${[...open.keys()].join(', ') || 'all answered'})`,
        });
      open.delete(id);
      return;
    }
    if (inCalls && open.size > 0)
      issues.push({
        path: `messages.${i}`,
        message: `the tool calls ${[...open.keys()].join(', ')} of an earlier assistant message have no tool message answering them: answer each before the conversation goes on`,
      });
    open = new Map();
    inCalls = false;
    if (m.role === 'assistant' && m.toolCalls && m.toolCalls.length > 0) {
      usesTools = true;
      inCalls = true;
      m.toolCalls.forEach((c, j) => {
        if (seen.has(c.id)) issues.push({ path: `messages.${i}.toolCalls.${j}.id`, message: `repeats the call id ${c.id}: each call needs its own id` });
        seen.add(c.id);
        open.set(c.id, c.name);
      });
    }
  });
  if (inCalls && open.size > 0)
    issues.push({
      path: `messages.${messages.length - 1}`,
      message: `the tool calls ${[...open.keys()].join(', ')} have no tool message answering them: add one per call (role tool, toolCallId, content)`,
    });
  if (usesTools && !hasTools)
    issues.push({
      path: 'tools',
      message: 'is required when the messages hold tool calls or tool results (Anthropic refuses them otherwise): send the tools the conversation used',
    });
  return issues;
}

/** What is wrong with a `messages` array (path and message), or nothing. */
export function messagesIssues(messages: readonly ChatMessage[]): Array<{ path: string; message: string }> {
  const turns = messages.map((m, i) => ({ ...m, i })).filter((m) => m.role !== 'system');
  const issues: Array<{ path: string; message: string }> = [];
  const first = turns[0];
  const last = turns[turns.length - 1];
  if (!first || !last) return [{ path: 'messages', message: 'needs at least one user message (system messages alone ask nothing)' }];
  if (first.role !== 'user')
    issues.push({
      path: `messages.${first.i}`,
      message: 'the first non-system message must be from the user (providers such as Anthropic and Gemini require it)',
    });
  if (last.role !== 'user' && last.role !== 'tool')
    issues.push({
      path: `messages.${last.i}`,
      message:
        "the last message must be from the user (or a tool result): it is the turn the model answers (drop the trailing assistant message, or add the user's next turn)",
    });
  return issues;
}

/**
 * The conversation to send. Consecutive user (or plain assistant) turns are joined (not every
 * provider takes them apart); tool calls and results stay turns of their own, each result named
 * by the call it answers.
 */
export function conversationOf(r: RequestText): Conversation {
  const tools = toolUseOf(r);
  if (!r.messages) {
    const prompt = r.prompt ?? '';
    return { system: r.system, turns: [{ role: 'user', content: r.context ? `${r.context}\n\n${prompt}` : prompt }], ...(tools ? { tools } : {}) };
  }
  const systems = [...(r.system ? [r.system] : []), ...r.messages.filter((m) => m.role === 'system').map((m) => m.content)];
  const turns: Array<{ role: 'user' | 'assistant' | 'tool'; content: string; toolCalls?: readonly ToolCall[]; toolCallId?: string; name?: string }> = [];
  const callNames = new Map<string, string>();
  for (const m of r.messages) {
    if (m.role === 'system') continue;
    const prev = turns[turns.length - 1];
    if (m.role === 'tool') turns.push({ role: 'tool', content: m.content, toolCallId: m.toolCallId ?? '', name: callNames.get(m.toolCallId ?? '') ?? '' });
    else if (m.role === 'assistant' && m.toolCalls && m.toolCalls.length > 0) {
      for (const c of m.toolCalls) callNames.set(c.id, c.name);
      turns.push({ role: 'assistant', content: m.content, toolCalls: m.toolCalls });
    } else if (prev && prev.role === m.role && !prev.toolCalls) prev.content = `${prev.content}\n\n${m.content}`;
    else turns.push({ role: m.role, content: m.content });
  }
  if (r.context) {
    const lastUser = turns.findLast((t) => t.role === 'user');
    if (lastUser) lastUser.content = `${r.context}\n\n${lastUser.content}`;
  }
  const chat = turns.map((t): ChatTurn =>
    t.role === 'tool'
      ? { role: 'tool', content: t.content, toolCallId: t.toolCallId ?? '', name: t.name ?? '' }
      : t.role === 'assistant'
        ? { role: 'assistant', content: t.content, ...(t.toolCalls ? { toolCalls: t.toolCalls } : {}) }
        : { role: 'user', content: t.content },
  );
  return { system: systems.length ? systems.join('\n\n') : undefined, turns: chat, ...(tools ? { tools } : {}) };
}

/** The instruction: the prompt, or the last user message. */
export function instructionOf(r: RequestText): string {
  if (!r.messages) return r.prompt ?? '';
  for (let i = r.messages.length - 1; i >= 0; i--) {
    const m = r.messages[i];
    if (m?.role === 'user') return m.content;
  }
  return '';
}

/**
 * What a judge is shown as "the request": the prompt, or the conversation with its roles (a
 * follow-up such as "and in Python?" cannot be judged without what came before).
 */
export function judgeQuestionOf(r: RequestText): string {
  if (!r.messages) return r.prompt ?? '';
  const c = conversationOf({ messages: r.messages });
  const said = (t: ChatTurn): string =>
    t.role === 'user'
      ? `User: ${t.content}`
      : t.role === 'tool'
        ? `Tool ${t.name} returned: ${t.content}`
        : `Assistant: ${[t.content, ...(t.toolCalls ?? []).map((k) => `[calls ${k.name}(${k.arguments})]`)].filter((x) => x !== '').join(' ')}`;
  const lines = c.turns.map(said);
  return c.turns.length === 1 ? (c.turns[0]?.content ?? '') : `A conversation; grade the answer to its last user turn.\n\n${lines.join('\n\n')}`;
}

/** The turns before the last user message (what the classifier weighs less). */
export function earlierTurnsOf(r: RequestText): ChatTurn[] {
  if (!r.messages) return [];
  let lastUser = -1;
  r.messages.forEach((m, i) => {
    if (m.role === 'user') lastUser = i;
  });
  const turns: ChatTurn[] = [];
  for (const m of r.messages.slice(0, Math.max(0, lastUser))) {
    if (m.role === 'system') continue;
    if (m.role === 'tool') turns.push({ role: 'tool', content: m.content, toolCallId: m.toolCallId ?? '', name: '' });
    else if (m.role === 'assistant') turns.push({ role: 'assistant', content: [m.content, ...(m.toolCalls ?? []).map((c) => c.arguments)].join('\n') });
    else turns.push({ role: m.role, content: m.content });
  }
  return turns;
}

/** The tools a request offers as the text a provider is sent (what the classifier counts: tool definitions are billed as input). */
export function toolsTextOf(r: RequestText): string {
  return r.tools && r.tools.length > 0 ? JSON.stringify(r.tools) : '';
}

/** Every character of text the request carries (for size limits). */
export function textParts(r: RequestText): string[] {
  return [
    r.prompt ?? '',
    r.system ?? '',
    r.context ?? '',
    ...(r.messages ?? []).flatMap((m) => [m.content, ...(m.toolCalls ?? []).map((c) => c.arguments)]),
    toolsTextOf(r),
  ];
}

/** What the classifier reads of a request: the instruction (last user turn), system, context and earlier turns. */
export function classifyInputOf(r: RequestText): {
  prompt: string;
  system?: string | undefined;
  context?: string | undefined;
  history?: ChatTurn[];
  tools?: string;
} {
  const prompt = instructionOf(r);
  const tools = toolsTextOf(r);
  const base = r.messages
    ? { prompt, system: conversationOf(r).system, context: r.context, history: [...earlierTurnsOf(r), ...laterTurnsOf(r)] }
    : { prompt, system: r.system, context: r.context };
  return tools ? { ...base, tools } : base;
}

/** The tool calls and results after the last user message (the classifier counts their tokens). */
function laterTurnsOf(r: RequestText): ChatTurn[] {
  const msgs = r.messages ?? [];
  let lastUser = -1;
  msgs.forEach((m, i) => {
    if (m.role === 'user') lastUser = i;
  });
  return msgs
    .slice(lastUser + 1)
    .filter((m) => m.role === 'assistant' || m.role === 'tool')
    .map((m) => ({ role: 'assistant' as const, content: [m.content, ...(m.toolCalls ?? []).map((c) => c.arguments)].join('\n') }));
}

/** What a call sends inline: the prompt (with the context in front) and system, or the messages, system and context. */
export function callTextOf(r: RequestText): RequestText {
  const tools =
    r.tools && r.tools.length > 0
      ? {
          tools: r.tools,
          ...(r.toolChoice !== undefined ? { toolChoice: r.toolChoice } : {}),
          ...(r.parallelToolCalls !== undefined ? { parallelToolCalls: r.parallelToolCalls } : {}),
        }
      : {};
  if (r.messages) return { system: r.system, messages: r.messages, context: r.context, ...tools };
  return { system: r.system, prompt: r.context ? `${r.context}\n\n${r.prompt ?? ''}` : (r.prompt ?? ''), ...tools };
}
