/**
 * The line formats of `switchyard classify` and `switchyard route-eval` (and the router trainer):
 * prompts to score, and prompts with recorded weak/strong quality. Parsing only; the commands read
 * the files. A bad line is an error naming its line number and field.
 */
import { z } from 'zod';
import type { RequestText } from '../workflows/conversation.js';
import { messagesIssues } from '../workflows/conversation.js';
import type { RecordedOutcome } from '../routing/routerTraining.js';

const message = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() });
const idField = z.union([z.string().min(1), z.number()]).transform(String);

const promptLine = z
  .object({ id: idField, prompt: z.string().optional(), messages: z.array(message).min(1).optional(), system: z.string().optional() })
  .refine((l) => (l.prompt === undefined) !== (l.messages === undefined), {
    message: 'give "prompt" (a string) or "messages" (an array of {role, content}), one of them',
  });

const outcomeLine = z.object({
  id: idField,
  prompt: z.string(),
  subject: z.string().optional(),
  weak: z.number().min(0).max(1),
  strong: z.number().min(0).max(1),
});

export interface PromptLine {
  readonly id: string;
  readonly text: RequestText;
}

function parseLines<T>(text: string, what: string, parse: (v: unknown, lineNo: number) => T): T[] {
  const out: T[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new Error(`${what} line ${i + 1}: not JSON (${(e as Error).message})`);
    }
    const parsed = parse(value, i + 1) as T & { id: string };
    if (seen.has(parsed.id)) throw new Error(`${what} line ${i + 1}: id "${parsed.id}" appears twice; ids must be unique`);
    seen.add(parsed.id);
    out.push(parsed);
  });
  if (out.length === 0) throw new Error(`${what}: no lines`);
  return out;
}

function issuesOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? `"${i.path.join('.')}"` : 'line'}: ${i.message}`).join('; ');
}

/** Lines {"id", "prompt"} or {"id", "messages"} (optionally "system"). */
export function parsePromptLines(text: string, what = 'classify input'): PromptLine[] {
  return parseLines(text, what, (value, lineNo) => {
    const r = promptLine.safeParse(value);
    if (!r.success) throw new Error(`${what} line ${lineNo}: ${issuesOf(r.error)}`);
    if (r.data.messages) {
      const bad = messagesIssues(r.data.messages);
      if (bad.length) throw new Error(`${what} line ${lineNo}: ${bad.map((b) => `"${b.path}": ${b.message}`).join('; ')}`);
    }
    const t: RequestText = r.data.messages ? { messages: r.data.messages, system: r.data.system } : { prompt: r.data.prompt, system: r.data.system };
    return { id: r.data.id, text: t };
  });
}

/** Lines {"id", "prompt", "weak", "strong"} (optionally "subject"), qualities in [0, 1]. */
export function parseOutcomeLines(text: string, what = 'route-eval data'): RecordedOutcome[] {
  return parseLines(text, what, (value, lineNo) => {
    const r = outcomeLine.safeParse(value);
    if (!r.success) throw new Error(`${what} line ${lineNo}: ${issuesOf(r.error)} (lines are {"id", "prompt", "weak", "strong"}, qualities 0..1)`);
    return r.data;
  });
}
