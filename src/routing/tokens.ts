/**
 * Token counting with a real BPE tokenizer (gpt-tokenizer, o200k_base: GPT-4o's encoding). For
 * Claude, Gemini and Llama models it is an approximation of their own tokenizers, which are not
 * published as libraries; the provider's reported usage is what gets billed.
 */
import { countTokens as countO200k } from 'gpt-tokenizer';

/** Per-message framing tokens of chat formats (role markers), as OpenAI documents for its models. */
export const MESSAGE_OVERHEAD_TOKENS = 3;
export const REPLY_PRIMING_TOKENS = 3;

/**
 * BPE merges within one pre-token take time quadratic in its length: 16,000 spaces take ~0.4 s and
 * a few megabytes of them minutes. Runs of whitespace or of non-whitespace longer than this are
 * cut into pieces of this size and counted piece by piece (a cut can add a token, never lose one:
 * for budgets an overcount is the safe side). Ordinary text has no such runs and is counted whole.
 */
const MAX_RUN = 64;
const LONG_RUN = new RegExp(`\\s{${MAX_RUN + 1},}|\\S{${MAX_RUN + 1},}`, 'g');
const pieceCache = new Map<string, number>();

function countPiece(piece: string): number {
  const hit = pieceCache.get(piece);
  if (hit !== undefined) return hit;
  const n = countO200k(piece);
  if (pieceCache.size >= 4096) pieceCache.clear();
  pieceCache.set(piece, n);
  return n;
}

/** Tokens of the text, in time linear in its length (see MAX_RUN). */
export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  let total = 0;
  let from = 0;
  LONG_RUN.lastIndex = 0;
  for (let m = LONG_RUN.exec(text); m !== null; m = LONG_RUN.exec(text)) {
    if (m.index > from) total += countO200k(text.slice(from, m.index));
    for (let i = 0; i < m[0].length; i += MAX_RUN) total += countPiece(m[0].slice(i, i + MAX_RUN));
    from = m.index + m[0].length;
  }
  if (from < text.length) total += countO200k(from === 0 ? text : text.slice(from));
  return total;
}

/** Tokens of a chat request: each message's content plus framing. */
export function countChatTokens(messages: ReadonlyArray<{ content: string }>): number {
  let total = REPLY_PRIMING_TOKENS;
  for (const m of messages) total += MESSAGE_OVERHEAD_TOKENS + countTokens(m.content);
  return total;
}
