/**
 * Token counting with a real BPE tokenizer (gpt-tokenizer, o200k_base: GPT-4o's encoding). For
 * Claude, Gemini and Llama models it is an approximation of their own tokenizers, which are not
 * published as libraries; the provider's reported usage is what gets billed.
 */
import { countTokens as countO200k } from 'gpt-tokenizer';

/** Per-message framing tokens of chat formats (role markers), as OpenAI documents for its models. */
export const MESSAGE_OVERHEAD_TOKENS = 3;
export const REPLY_PRIMING_TOKENS = 3;

export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  return countO200k(text);
}

/** Tokens of a chat request: each message's content plus framing. */
export function countChatTokens(messages: ReadonlyArray<{ content: string }>): number {
  let total = REPLY_PRIMING_TOKENS;
  for (const m of messages) total += MESSAGE_OVERHEAD_TOKENS + countTokens(m.content);
  return total;
}
