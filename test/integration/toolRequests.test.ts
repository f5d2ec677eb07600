/**
 * Tool calls as requests: `tools`, `toolChoice` and tool turns through the request workflow to
 * every provider's wire format (the simulator records what arrived and answers with a call whose
 * arguments satisfy the schema), the calls in the result, the tool schemas counted and billed as
 * input, a call whose arguments miss the schema escalated to the next tier, and bad tool input
 * refused before anything runs, naming the field and the message index.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { faultSpecSchema } from '../../src/simulator/faults.js';
import { ValidationError } from '../../src/util/validation.js';
import type { RequestInput } from '../../src/workflows/request/contract.js';
import { useTestStack } from '../helpers/stack.js';

const validateResult = new Ajv2020({ strict: false }).compile(
  JSON.parse(readFileSync(join(process.cwd(), 'contracts', 'request-result.v1.schema.json'), 'utf8')) as Record<string, unknown>,
);

const weatherParams = {
  type: 'object',
  properties: { city: { type: 'string', minLength: 2 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const tools = [
  { name: 'get_time', description: 'The local time in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  { name: 'get_weather', description: 'The weather in a city', parameters: weatherParams },
];
/** A conversation that already called one tool and has its result, then asks for another. */
const messages: NonNullable<RequestInput['messages']> = [
  { role: 'system', content: 'You answer with tools.' },
  { role: 'user', content: 'What time is it in Paris?' },
  { role: 'assistant', content: '', toolCalls: [{ id: 'call_t1', name: 'get_time', arguments: '{"city":"Paris"}' }] },
  { role: 'tool', toolCallId: 'call_t1', content: '{"time":"09:00"}' },
  { role: 'user', content: 'And the weather there, in celsius?' },
];

describe('tool requests', () => {
  const stack = useTestStack();

  it.each(['gpt-4o-mini', 'claude-3-5-haiku', 'gemini-2-flash', 'mistral-large', 'llama-3-70b'])(
    'pinned to %s: the tools and tool turns reach the provider, and the call comes back in the result',
    async (model) => {
      const before = stack.simulator.received().length;
      const r = await stack.client.ask({ messages, tools, toolChoice: { name: 'get_weather' }, model, requestId: `tools-${model}-${randomUUID()}` });
      expect(validateResult(r), JSON.stringify(validateResult.errors)).toBe(true);
      expect(r.model).toBe(model);
      expect(r.toolCalls, JSON.stringify({ text: r.text, attempts: r.attempts, finish: r.finishReason })).toHaveLength(1);
      const call = r.toolCalls?.[0];
      expect(call?.name).toBe('get_weather');
      expect(call?.id).not.toBe('');
      const args = JSON.parse(call?.arguments ?? 'null') as unknown;
      expect(new Ajv().validate(weatherParams, args)).toBe(true);
      const seen = stack.simulator
        .received()
        .slice(before)
        .filter((q) => q.model === model);
      expect(seen).toHaveLength(1);
      expect(seen[0]?.tools).toEqual(['get_time', 'get_weather']);
      // The earlier call and its result arrived as turns of their own.
      expect(seen[0]?.turns.length).toBeGreaterThanOrEqual(3);
      expect(r.classification.capabilities).toContain('tools');
      // The tool definitions are billed as input, and the classifier counted them.
      const without = await stack.client.ask({ messages: messages.slice(0, 2), model, requestId: `tools-none-${model}-${randomUUID()}` });
      expect(r.classification.inputTokens).toBeGreaterThan(without.classification.inputTokens + 40);
      expect(r.usage.inputTokens + r.usage.cachedInputTokens).toBeGreaterThan(without.usage.inputTokens + without.usage.cachedInputTokens + 40);
    },
  );

  it('after a tool result the model answers in words, and the result carries no calls', async () => {
    const r = await stack.client.ask({
      messages: messages.slice(0, 4),
      tools,
      model: 'claude-3-5-haiku',
      requestId: `tools-after-${randomUUID()}`,
    });
    expect(r.toolCalls).toBeUndefined();
    expect(r.text.length).toBeGreaterThan(0);
  });

  it('a call whose arguments miss the schema escalates to the next tier, and both calls are charged', async () => {
    stack.simulator.setFaults({ 'gemini-2-flash': faultSpecSchema.parse({ malformedToolArgsRate: 1 }) });
    try {
      const r = await stack.client.ask({ messages, tools, toolChoice: 'required', model: 'gemini-2-flash', requestId: `tools-bad-${randomUUID()}` });
      expect(r.model).not.toBe('gemini-2-flash');
      const first = r.attempts[0];
      expect(first?.model).toBe('gemini-2-flash');
      expect(first?.qualityFailures?.join(' ')).toMatch(/tool call 1 \(get_(weather|time)\)/);
      expect(first?.decision).toMatch(/^escalate to the \w+ tier/);
      expect(r.escalations[0]?.reason).toMatch(/^quality: tool call/);
      expect(r.toolCalls?.length).toBeGreaterThan(0);
      expect(r.costNanos).toBe(r.attempts.reduce((n, a) => n + a.costNanos, 0));
      expect(first?.costNanos).toBeGreaterThan(0);

      // quality.toolArguments: false keeps the call as it came.
      const kept = await stack.client.ask({
        messages,
        tools,
        toolChoice: 'required',
        model: 'gemini-2-flash',
        quality: { toolArguments: false },
        requestId: `tools-unchecked-${randomUUID()}`,
      });
      expect(kept.model).toBe('gemini-2-flash');
      expect(kept.escalations).toEqual([]);
      expect(kept.toolCalls?.length).toBeGreaterThan(0);
    } finally {
      stack.simulator.setFaults({});
    }
  });

  it.each<[string, Partial<RequestInput>, RegExp]>([
    [
      'a tool result that answers no call',
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'tool', toolCallId: 'x', content: '1' },
        ],
        tools,
      },
      /messages\[1\]: a tool message must follow the assistant message/,
    ],
    [
      'a call left unanswered',
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'get_time', arguments: '{}' }] },
          { role: 'user', content: 'well?' },
        ],
        tools,
      },
      /messages\[2\]: the tool calls c1 of an earlier assistant message have no tool message/,
    ],
    [
      'tool turns without tools',
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'get_time', arguments: '{}' }] },
          { role: 'tool', toolCallId: 'c1', content: '1' },
        ],
      },
      /tools: is required when the messages hold tool calls/,
    ],
    ['a tool choice naming no tool', { prompt: 'hi', tools, toolChoice: { name: 'get_stock' } }, /toolChoice\.name: names no tool in tools/],
    ['a tool choice without tools', { prompt: 'hi', toolChoice: 'required' }, /toolChoice: needs tools/],
    [
      'a schema that is not an object',
      { prompt: 'hi', tools: [{ name: 'f', parameters: { type: 'string' } }] },
      /tools\[0\]\.parameters: must be a JSON Schema of "type": "object"/,
    ],
    [
      'a schema that does not compile',
      { prompt: 'hi', tools: [{ name: 'f', parameters: { type: 'object', properties: { a: { type: 'nope' } } } }] },
      /tools\[0\]\.parameters: not a valid JSON Schema/,
    ],
    ['a bad tool name', { prompt: 'hi', tools: [{ name: 'get weather', parameters: { type: 'object' } }] }, /tools\[0\]\.name: must be 1-64 letters/],
    ['two tools of one name', { prompt: 'hi', tools: [tools[0]!, tools[0]!] }, /tools\[1\]\.name: repeats the tool name get_time/],
    [
      'tool calls on a user message',
      { messages: [{ role: 'user', content: 'hi', toolCalls: [{ id: 'a', name: 'f', arguments: '{}' }] }], tools },
      /messages\[0\]\.toolCalls: only an assistant message/,
    ],
    [
      'a tool message without its call id',
      { messages: [{ role: 'user', content: 'hi' }, { role: 'tool', content: '1' } as never], tools },
      /messages\[1\]\.toolCallId: is required on a tool message/,
    ],
  ])('refuses %s before anything runs, naming the field', async (_what, input, message) => {
    const requestId = `tools-invalid-${randomUUID()}`;
    const err = await stack.client.ask({ ...input, requestId }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(message);
    await expect(stack.client.temporal.workflow.getHandle(`llm-${requestId}`).describe()).rejects.toThrow(/not found/i);
  });
});
