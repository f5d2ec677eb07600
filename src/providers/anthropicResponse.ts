/** Anthropic's Messages API answer as Switchyard's ChatResponse (the adapter's live calls and its batch API's lines). */
import type Anthropic from '@anthropic-ai/sdk';
import type { ChatResponse } from './types.js';

/** A Messages API answer (a live call's, or a batch line's) as a ChatResponse: its text, tool calls and usage. */
export function anthropicResponseOf(res: Anthropic.Message, model: string): ChatResponse {
  const text = res.content
    .filter((b): b is Anthropic.TextBlock => b.type === 'text')
    .map((b) => b.text)
    .join('');
  const toolCalls = res.content
    .filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')
    .map((b) => ({ id: b.id, name: b.name, arguments: JSON.stringify(b.input ?? {}) }));
  return {
    text,
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    usage: {
      // Cache writes are billed as input; cache reads at the cached price.
      inputTokens: res.usage.input_tokens + (res.usage.cache_creation_input_tokens ?? 0),
      cachedInputTokens: res.usage.cache_read_input_tokens ?? 0,
      outputTokens: res.usage.output_tokens,
    },
    finishReason: res.stop_reason ?? 'unknown',
    providerModel: res.model ?? model,
  };
}
