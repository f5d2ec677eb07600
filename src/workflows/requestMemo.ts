/** The memo every request workflow carries, shown in the Temporal UI's list and detail pages. Pure. */

export interface RequestMemo {
  /** The first words of the prompt. */
  readonly title: string;
  readonly category: string;
  /** Set when the request belongs to a batch. */
  readonly batchId?: string;
  readonly line?: number;
  /** Set on a re-driven run: the failed run it replaces. */
  readonly redriveOf?: string;
}

export const TITLE_MAX_CHARS = 60;

/** A request's workflow id: readable, and derived from its id so that re-submitting is idempotent. */
export function workflowIdFor(requestId: string): string {
  return `llm-${requestId}`;
}

/** The first words of a prompt, cut at a word boundary, on one line. */
export function requestTitle(prompt: string, maxChars = TITLE_MAX_CHARS): string {
  const flat = prompt.replace(/\s+/g, ' ').trim();
  if (flat.length <= maxChars) return flat;
  const cut = flat.slice(0, maxChars - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > maxChars / 2 ? cut.slice(0, space) : cut).replace(/[\s,.;:]+$/, '')}…`;
}

/** Shown instead of the prompt's first words when payloads are encrypted (memos must not leak prompts). */
export const REDACTED_TITLE = '(prompt encrypted)';

/** The memo of a request; `prompt` undefined (payload encryption on) leaves the prompt out. */
export function requestMemo(prompt: string | undefined, category: string, batch?: { batchId: string; line?: number }): RequestMemo {
  return { title: prompt === undefined ? REDACTED_TITLE : requestTitle(prompt), category, ...(batch ? { batchId: batch.batchId, ...(batch.line !== undefined ? { line: batch.line } : {}) } : {}) };
}
