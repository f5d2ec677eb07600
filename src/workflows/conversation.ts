/**
 * A request's text as a conversation: either one `prompt` (with optional `context` and `system`)
 * or chat `messages` (system, user and assistant turns), normalised to what every provider's wire
 * format accepts: one system instruction, then turns alternating user/assistant, starting and
 * ending with the user. Pure.
 */
import type { ChatTurn } from '../providers/types.js';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** The request fields that carry text. */
export interface RequestText {
  readonly prompt?: string | undefined;
  readonly messages?: readonly ChatMessage[] | undefined;
  readonly system?: string | undefined;
  readonly context?: string | undefined;
}

export interface Conversation {
  readonly system?: string | undefined;
  /** Alternating, first and last from the user; `context` is in front of the last user turn. */
  readonly turns: readonly ChatTurn[];
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
  if (last.role !== 'user')
    issues.push({
      path: `messages.${last.i}`,
      message: "the last message must be from the user: it is the turn the model answers (drop the trailing assistant message, or add the user's next turn)",
    });
  return issues;
}

/** The conversation to send. Consecutive turns of one role are joined (not every provider takes them apart). */
export function conversationOf(r: RequestText): Conversation {
  if (!r.messages) {
    const prompt = r.prompt ?? '';
    return { system: r.system, turns: [{ role: 'user', content: r.context ? `${r.context}\n\n${prompt}` : prompt }] };
  }
  const systems = [...(r.system ? [r.system] : []), ...r.messages.filter((m) => m.role === 'system').map((m) => m.content)];
  const turns: Array<{ role: 'user' | 'assistant'; content: string }> = [];
  for (const m of r.messages) {
    if (m.role === 'system') continue;
    const prev = turns[turns.length - 1];
    if (prev && prev.role === m.role) prev.content = `${prev.content}\n\n${m.content}`;
    else turns.push({ role: m.role, content: m.content });
  }
  const last = turns[turns.length - 1];
  if (r.context && last) last.content = `${r.context}\n\n${last.content}`;
  return { system: systems.length ? systems.join('\n\n') : undefined, turns };
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
  const lines = c.turns.map((t) => `${t.role === 'user' ? 'User' : 'Assistant'}: ${t.content}`);
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
  for (const m of r.messages.slice(0, Math.max(0, lastUser))) if (m.role !== 'system') turns.push({ role: m.role, content: m.content });
  return turns;
}

/** Every character of text the request carries (for size limits). */
export function textParts(r: RequestText): string[] {
  return [r.prompt ?? '', r.system ?? '', r.context ?? '', ...(r.messages ?? []).map((m) => m.content)];
}

/** What the classifier reads of a request: the instruction (last user turn), system, context and earlier turns. */
export function classifyInputOf(r: RequestText): { prompt: string; system?: string | undefined; context?: string | undefined; history?: ChatTurn[] } {
  const prompt = instructionOf(r);
  return r.messages
    ? { prompt, system: conversationOf(r).system, context: r.context, history: earlierTurnsOf(r) }
    : { prompt, system: r.system, context: r.context };
}

/** What a call sends inline: the prompt (with the context in front) and system, or the messages, system and context. */
export function callTextOf(r: RequestText): RequestText {
  if (r.messages) return { system: r.system, messages: r.messages, context: r.context };
  return { system: r.system, prompt: r.context ? `${r.context}\n\n${r.prompt ?? ''}` : (r.prompt ?? '') };
}
