/**
 * A request's limits beyond its fields' shapes (sizes, reserved names), shared by the request
 * schema (src/contracts/requestInput.ts) and workflow code (re-exported by ./contract.ts, whose input
 * type comes from that schema: a module of its own keeps the two from importing each other).
 * Pure: no zod, no Temporal, no I/O.
 */
import { utf8Bytes } from '../../util/bytes.js';
import { isReservedName, RESERVED_MESSAGE } from '../../util/names.js';
import type { ToolChoice } from '../../providers/types.js';
import { type ChatMessage, messagesIssues, textParts, toolTurnIssues } from '../conversation.js';

/** The fields the limits look at (a validated request has them). */
export interface LimitedRequest {
  readonly prompt?: string | undefined;
  readonly messages?: readonly ChatMessage[] | undefined;
  readonly context?: string | undefined;
  readonly system?: string | undefined;
  readonly category: string;
  readonly budgetScope: string;
  readonly feature?: string | undefined;
  readonly tools?: ReadonlyArray<{ readonly name: string; readonly parameters: Readonly<Record<string, unknown>> }> | undefined;
  readonly toolChoice?: ToolChoice | undefined;
  readonly parallelToolCalls?: boolean | undefined;
}

export const MAX_PROMPT_CHARS = 4_000_000;
/**
 * Prompt, context and system prompt together, in UTF-8 bytes. Temporal rejects payloads over 2 MB
 * by default (`limit.blobSize.error`); the request input must fit with room for the rest.
 */
export const MAX_INPUT_BYTES = 1_500_000;
export const MAX_MESSAGES = 1_000;

/** Limits beyond the fields' shapes: names of Object.prototype members, and the payload size. */
export function requestLimitIssues(r: LimitedRequest): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  if (r.prompt === undefined && r.messages === undefined)
    issues.push({ path: 'prompt', message: 'is required: the text to send to the model (or send `messages`, a chat conversation)' });
  if (r.prompt !== undefined && r.messages !== undefined)
    issues.push({ path: 'messages', message: 'send either prompt or messages, not both (put the prompt in the last user message)' });
  if (r.messages && r.messages.length > 0) issues.push(...messagesIssues(r.messages), ...toolTurnIssues(r.messages, (r.tools?.length ?? 0) > 0));
  issues.push(...toolIssues(r));
  if (isReservedName(r.category)) issues.push({ path: 'category', message: RESERVED_MESSAGE });
  if (isReservedName(r.budgetScope)) issues.push({ path: 'budgetScope', message: RESERVED_MESSAGE });
  if (r.feature !== undefined && isReservedName(r.feature)) issues.push({ path: 'feature', message: RESERVED_MESSAGE });
  if (r.feature === 'other')
    issues.push({ path: 'feature', message: 'is reserved: metrics report features past their label limit as "other"; choose another name' });
  const bytes = textParts(r).reduce((n, t) => n + utf8Bytes(t), 0);
  if (bytes > MAX_INPUT_BYTES) {
    issues.push({
      path: r.context !== undefined ? 'context' : r.messages ? 'messages' : 'prompt',
      message: `prompt or messages, context and system together are ${bytes} bytes; a request holds at most ${MAX_INPUT_BYTES} bytes (Temporal's payload limit is 2 MB): split the document into several requests or summarise it in parts`,
    });
  }
  return issues;
}

/** The tools' own limits: unique names, a tool choice that names one of them, and neither without tools. */
function toolIssues(r: LimitedRequest): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  const names = new Set<string>();
  (r.tools ?? []).forEach((t, i) => {
    if (names.has(t.name)) issues.push({ path: `tools.${i}.name`, message: `repeats the tool name ${t.name}: each tool needs its own name` });
    names.add(t.name);
  });
  const c = r.toolChoice;
  if (c !== undefined && names.size === 0)
    issues.push({ path: 'toolChoice', message: 'needs tools: send the tools the model may call, or leave toolChoice out' });
  else if (c !== undefined && typeof c === 'object' && !names.has(c.name))
    issues.push({ path: 'toolChoice.name', message: `names no tool in tools (${[...names].join(', ')})` });
  if (r.parallelToolCalls !== undefined && names.size === 0)
    issues.push({ path: 'parallelToolCalls', message: 'needs tools: send the tools the model may call, or leave parallelToolCalls out' });
  return issues;
}
