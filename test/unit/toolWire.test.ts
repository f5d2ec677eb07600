/** Tool-call ids on each provider's wire: an id another provider made is mapped to one this provider takes, the same for the call and its result. */
import { describe, expect, it } from 'vitest';
import { anthropicMessages, madeUpCallId, mistralMessage, openAIMessage, wireCallId } from '../../src/providers/toolWire.js';
import type { ChatTurn } from '../../src/providers/types.js';

const foreign = 'llm-gw-4f1c2a9e-2b7d-4c1e-9a51-0d2f3b4c5d6e/a1_0';
const turns: ChatTurn[] = [
  { role: 'user', content: 'Weather?' },
  { role: 'assistant', content: '', toolCalls: [{ id: foreign, name: 'get_weather', arguments: '{"city":"Oslo"}' }] },
  { role: 'tool', content: '18C', toolCallId: foreign, name: 'get_weather' },
];

describe('tool-call ids on the wire', () => {
  it('Anthropic: letters, digits, _ and -; the tool_use and its tool_result keep one id', () => {
    const msgs = anthropicMessages(turns) as Array<{ role: string; content: Array<{ type: string; id?: string; tool_use_id?: string }> | string }>;
    const use = (msgs[1]?.content as Array<{ type: string; id?: string }>).find((b) => b.type === 'tool_use');
    const result = (msgs[2]?.content as Array<{ type: string; tool_use_id?: string }>).find((b) => b.type === 'tool_result');
    expect(use?.id).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(result?.tool_use_id).toBe(use?.id);
    expect(wireCallId('anthropic', 'toolu_01ABC')).toBe('toolu_01ABC');
  });

  it('OpenAI: at most 40 characters; Mistral: 9 letters or digits; ids that fit are kept', () => {
    const call = openAIMessage(turns[1]!) as { tool_calls: Array<{ id: string }> };
    const result = openAIMessage(turns[2]!) as { tool_call_id: string };
    expect(call.tool_calls[0]?.id.length).toBeLessThanOrEqual(40);
    expect(result.tool_call_id).toBe(call.tool_calls[0]?.id);
    expect(wireCallId('openai', 'call_abc')).toBe('call_abc');
    const m = mistralMessage(turns[1]!) as { toolCalls: Array<{ id: string }> };
    expect(m.toolCalls[0]?.id).toMatch(/^[A-Za-z0-9]{9}$/);
    expect((mistralMessage(turns[2]!) as { toolCallId: string }).toolCallId).toBe(m.toolCalls[0]?.id);
    expect(wireCallId('mistral', 'D681PevKs')).toBe('D681PevKs');
  });

  it('a made-up id (a call the provider sent without one) fits every provider, and is stable', () => {
    const id = madeUpCallId('llm-batch_1/req 1/a1', 0);
    expect(id).toBe(madeUpCallId('llm-batch_1/req 1/a1', 0));
    expect(id).not.toBe(madeUpCallId('llm-batch_1/req 1/a1', 1));
    for (const p of ['openai', 'anthropic'] as const) expect(wireCallId(p, id)).toBe(id);
  });
});
