/**
 * Tool calls through every provider's official SDK, via the project's adapters, against the
 * simulator over HTTP: OpenAI and self-hosted (OpenAI's wire), Mistral, Anthropic (`tool_use` /
 * `tool_result` blocks) and Gemini (`functionDeclarations` / `functionCall` / `functionResponse`).
 * The model calls the tool with arguments that satisfy its schema; given the result, it answers in
 * text; streams carry the call too; the tool schemas are billed as input; the simulator refuses
 * what the real APIs refuse (a result that answers no call, a bad tool name, a non-object schema),
 * and can be told to send malformed arguments.
 */
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import type { ProviderName } from '../../src/catalog/schema.js';
import { ProviderError } from '../../src/providers/errors.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import type { ChatRequest, ChatTurn, ToolSpec } from '../../src/providers/types.js';
import { faultSpecSchema } from '../../src/simulator/faults.js';
import { Simulator, simulatorEndpoints } from '../../src/simulator/server.js';

const catalog = defaultCatalog();
const sim = new Simulator({ catalog, latencyScale: 0, recordRequests: true });
let registry: ProviderRegistry;

beforeAll(async () => {
  registry = new ProviderRegistry(simulatorEndpoints(await sim.start()), 5_000);
});
afterAll(async () => {
  await sim.stop();
});

const weather: ToolSpec = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: {
    type: 'object',
    properties: {
      city: { type: 'string', minLength: 2 },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      days: { type: 'integer', minimum: 1, maximum: 7 },
    },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
};
const lookup: ToolSpec = { name: 'lookup_order', parameters: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] } };
const valid = new Ajv({ strict: false }).compile(weather.parameters);

const byProvider: Array<[ProviderName, string]> = [
  ['openai', 'gpt-4o-mini'],
  ['self-hosted', 'llama-3-70b'],
  ['mistral', 'mistral-large'],
  ['anthropic', 'claude-3-5-haiku'],
  ['google', 'gemini-2-flash'],
];

const request = (model: string, turns: ChatTurn[], extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: catalog.require(model).providerModel,
  turns,
  maxOutputTokens: 256,
  tools: { tools: [weather, lookup] },
  requestId: `tools-${model}`,
  ...extra,
});

describe.each(byProvider)('tool calls through %s', (provider, model) => {
  const ask: ChatTurn = { role: 'user', content: 'What is the weather in Lisbon this week?' };

  it('calls the tool with arguments that satisfy its schema, then answers in text from its result', async () => {
    const adapter = await registry.get(provider);
    const first = await adapter.chat(request(model, [ask]));
    expect(first.toolCalls).toHaveLength(1);
    const call = first.toolCalls![0]!;
    expect(call.name).toBe('get_weather');
    expect(valid(JSON.parse(call.arguments))).toBe(true);
    expect(first.finishReason).toBe(provider === 'anthropic' ? 'tool_use' : provider === 'google' ? 'STOP' : 'tool_calls');
    // The tool schemas are billed as input: the same prompt without tools costs fewer input tokens.
    const bare = await adapter.chat({ ...request(model, [ask]), tools: undefined });
    expect(first.usage.inputTokens).toBeGreaterThan(bare.usage.inputTokens);
    expect(bare.toolCalls).toBeUndefined();
    // Given the result, the model answers in text.
    const second = await adapter.chat(
      request(model, [
        ask,
        { role: 'assistant', content: '', toolCalls: [call] },
        { role: 'tool', toolCallId: call.id, name: call.name, content: '{"forecast": "sunny, 24C"}' },
      ]),
    );
    expect(second.toolCalls).toBeUndefined();
    expect(second.text.length).toBeGreaterThan(0);
  });

  it('streams the call too', async () => {
    const adapter = await registry.get(provider);
    const pieces: string[] = [];
    const r = await adapter.chatStream(request(model, [ask], { tools: { tools: [weather, lookup], choice: { name: 'lookup_order' } } }), (p) => pieces.push(p));
    expect(pieces).toEqual([]);
    expect(r.toolCalls?.map((c) => c.name)).toEqual(['lookup_order']);
    expect(typeof (JSON.parse(r.toolCalls![0]!.arguments) as { orderId: unknown }).orderId).toBe('string');
    expect(r.usage.outputTokens).toBeGreaterThan(0);
  });

  it('honours the tool choice: none answers in text; a named tool is the one called', async () => {
    const adapter = await registry.get(provider);
    const none = await adapter.chat(request(model, [ask], { tools: { tools: [weather], choice: 'none' } }));
    expect(none.toolCalls).toBeUndefined();
    const named = await adapter.chat(request(model, [ask], { tools: { tools: [weather, lookup], choice: { name: 'lookup_order' } } }));
    expect(named.toolCalls?.[0]?.name).toBe('lookup_order');
  });

  it('is refused as the real API refuses a tool result that answers no call', async () => {
    const adapter = await registry.get(provider);
    const orphan = await adapter
      .chat(
        request(model, [ask, { role: 'assistant', content: 'Let me check.' }, { role: 'tool', toolCallId: 'call_nope', name: 'get_weather', content: '{}' }]),
      )
      .catch((e: unknown) => e);
    expect(orphan).toBeInstanceOf(ProviderError);
    expect((orphan as ProviderError).kind).toBe('fatal');
    expect((orphan as ProviderError).status).toBe(400);
  });

  it('can be told to send arguments that do not satisfy the schema', async () => {
    const adapter = await registry.get(provider);
    sim.setFaults({ [model]: faultSpecSchema.parse({ malformedToolArgsRate: 1 }) });
    try {
      const r = await adapter.chat(request(model, [ask], { tools: { tools: [weather] } }));
      const args = r.toolCalls?.[0]?.arguments ?? '';
      let parsed: unknown;
      try {
        parsed = JSON.parse(args);
      } catch {
        parsed = undefined;
      }
      expect(parsed !== undefined && valid(parsed)).toBe(false);
    } finally {
      sim.setFaults({});
    }
  });
});

describe('tool definitions the real APIs refuse', () => {
  it.each(byProvider)('%s: a tool name with spaces, and a schema that is not an object', async (provider, model) => {
    const adapter = await registry.get(provider);
    const ask: ChatTurn = { role: 'user', content: 'Hi' };
    for (const bad of [
      { name: 'get weather', parameters: { type: 'object' } },
      { name: 'get_weather', parameters: { type: 'string' } },
    ]) {
      const e = await adapter.chat(request(model, [ask], { tools: { tools: [bad] } })).catch((x: unknown) => x);
      expect(e, `${provider} ${JSON.stringify(bad)}`).toBeInstanceOf(ProviderError);
      expect((e as ProviderError).kind).toBe('fatal');
      expect((e as ProviderError).status).toBe(400);
    }
  });
});
