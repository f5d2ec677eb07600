/**
 * Tool calls through the gateway with the official `openai` npm client, to each of the five
 * providers (pinned by model; the simulator speaks each wire format): the client's own types read
 * `tool_calls` and `finish_reason: "tool_calls"`, the tool's result goes back as a `tool` message
 * and the model answers in words; a stream with tools delivers the calls as OpenAI's chunks (the
 * SDK's stream helper assembles them); tools are refused as OpenAI refuses them, naming the param.
 */
import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultSpecSchema } from '../../src/simulator/faults.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { useTestStack } from '../helpers/stack.js';

const parameters = {
  type: 'object',
  properties: { city: { type: 'string', minLength: 2 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const tools: ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters, strict: true } }];

describe('tool calls through the gateway, with the official openai client', () => {
  const stack = useTestStack();
  let gateway: TestGateway;
  let openai: OpenAI;
  beforeAll(async () => {
    gateway = await startGateway(stack, { waitMs: 5_000 });
    openai = new OpenAI({ apiKey: 'unused-while-open', baseURL: gateway.base, maxRetries: 0 });
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it.each(['gpt-4o-mini', 'claude-3-5-haiku', 'gemini-2-flash', 'mistral-large', 'llama-3-70b'])(
    '%s: the model calls the tool, the result goes back as a tool message, and the model answers in words',
    async (model) => {
      const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris, in celsius?' }];
      const first = await openai.chat.completions.create({ model, messages, tools, tool_choice: 'required' });
      const choice = first.choices[0];
      expect(first.model).toBe(model);
      expect(choice?.finish_reason).toBe('tool_calls');
      expect(choice?.message.content).toBeNull();
      const call = choice?.message.tool_calls?.[0];
      expect(call?.type).toBe('function');
      if (call?.type !== 'function') throw new Error('expected a function call');
      expect(call.function.name).toBe('get_weather');
      expect(new Ajv().validate(parameters, JSON.parse(call.function.arguments))).toBe(true);
      expect(first.usage?.prompt_tokens).toBeGreaterThan(40);

      messages.push(choice!.message, { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temperature: 18, unit: 'celsius' }) });
      const second = await openai.chat.completions.create({ model, messages, tools });
      expect(second.choices[0]?.finish_reason).toBe('stop');
      expect(second.choices[0]?.message.tool_calls ?? []).toEqual([]);
      expect(second.choices[0]?.message.content?.length).toBeGreaterThan(0);
    },
  );

  it('routes a tools request to a model that can call tools, and streams the call as chunks the SDK assembles', async () => {
    const stream = openai.chat.completions.stream({
      model: 'auto',
      messages: [{ role: 'user', content: 'Weather in Rome?' }],
      tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      stream_options: { include_usage: true },
    });
    const done = await stream.finalChatCompletion();
    const call = done.choices[0]?.message.tool_calls?.[0];
    expect(done.choices[0]?.finish_reason).toBe('tool_calls');
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_weather');
    expect(new Ajv().validate(parameters, JSON.parse(call.function.arguments))).toBe(true);
    expect(done.usage?.completion_tokens).toBeGreaterThan(0);
    const model = stack.catalog.get(done.model);
    expect(model?.capabilities).toContain('tools');
  });

  it('a call with arguments that miss the schema is escalated before the client sees it', async () => {
    stack.simulator.setFaults({ 'gemini-2-flash': faultSpecSchema.parse({ malformedToolArgsRate: 1 }) });
    try {
      const { data, response } = await openai.chat.completions
        .create({ model: 'gemini-2-flash', messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools, tool_choice: 'required' })
        .withResponse();
      expect(data.model).not.toBe('gemini-2-flash');
      const call = data.choices[0]?.message.tool_calls?.[0];
      if (call?.type !== 'function') throw new Error('expected a function call');
      expect(new Ajv().validate(parameters, JSON.parse(call.function.arguments))).toBe(true);
      const r = await stack.client.result(response.headers.get('x-switchyard-workflow-id')!);
      const checked = r.attempts.find((a) => a.model === 'gemini-2-flash');
      expect(checked?.qualityFailures?.[0] ?? JSON.stringify(r.attempts)).toMatch(/^tool call 1 \(get_weather\)/);
    } finally {
      stack.simulator.setFaults({});
    }
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['a tool that is not a function', { tools: [{ type: 'custom', custom: { name: 'x' } }] }, 'tools[0].type', /only "function" tools/],
    [
      'a schema that is not an object',
      { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'array' } } }] },
      'tools[0].function.parameters',
      /"type": "object"/,
    ],
    ['a tool choice naming no tool', { tools, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice', /names no tool in tools/],
    [
      'a tool message answering no call',
      {
        tools,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'tool', tool_call_id: 'c9', content: '1' },
        ],
      },
      'messages[1]',
      /a tool message must follow the assistant message/,
    ],
    ['the legacy functions field', { functions: [{ name: 'f' }] }, 'functions', /send tools/],
  ])('refuses %s with 400, naming the param', async (_what, extra, param, message) => {
    const res = await fetch(`${gateway.base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], ...extra }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { param: string | null; message: string; type: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.param).toBe(param);
    expect(body.error.message).toMatch(message);
  });
});
