/**
 * The official provider SDKs talk to the simulator unchanged, through the project's adapters, and
 * every adapter maps the same HTTP failures into the same error kinds. Streaming too: every
 * adapter's `chatStream` gets the answer piece by piece in its provider's wire format (OpenAI and
 * Mistral chunks, Anthropic message events, Gemini streamGenerateContent) with the billed usage; a
 * stream cut mid-answer fails as a provider failure after the text so far; a stream the client
 * abandons is billed for the text the simulator sent.
 */
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogFromFileContent } from '../../src/catalog/catalog.js';
import { DEFAULT_MODELS } from '../../src/catalog/defaultCatalog.js';
import type { ProviderName } from '../../src/catalog/schema.js';
import { ProviderError } from '../../src/providers/errors.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { countChatTokens, countTokens } from '../../src/routing/tokens.js';
import { faultSpecSchema } from '../../src/simulator/faults.js';
import { FAULT_HEADER, Simulator, simulatorEndpoints } from '../../src/simulator/server.js';

// Gemini's real 1M-token window would need a 4 MB prompt to overflow: the simulator serves it with
// a 32k window so that the context-length path is exercised for every wire format.
const catalog = catalogFromFileContent(
  { mode: 'extend', models: DEFAULT_MODELS.filter((m) => m.name === 'gemini-2-flash').map((m) => ({ ...m, contextWindow: 32_000 })) },
  'test catalog',
);
const sim = new Simulator({ catalog, latencyScale: 0, recordRequests: true });
let url = '';
let registry: ProviderRegistry;

beforeAll(async () => {
  url = await sim.start();
  registry = new ProviderRegistry(simulatorEndpoints(url), 5_000);
});
afterAll(async () => {
  await sim.stop();
});

const byProvider: Array<[ProviderName, string]> = [
  ['openai', 'gpt-4o-mini'],
  ['anthropic', 'claude-3-5-haiku'],
  ['google', 'gemini-2-flash'],
  ['mistral', 'mistral-large'],
  ['self-hosted', 'llama-3-70b'],
];

describe('official clients against the simulator', () => {
  it('openai npm client, unchanged, gets a completion with usage counted by the tokenizer', async () => {
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${url}/v1`, maxRetries: 0 });
    const prompt = 'Say hello to the router.';
    const res = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: prompt }], max_completion_tokens: 64 });
    expect(res.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(res.usage?.prompt_tokens).toBe(countChatTokens([{ content: prompt }]));
    expect(res.usage?.completion_tokens).toBeGreaterThan(0);
    expect(res.usage?.completion_tokens).toBeLessThanOrEqual(64);
    const again = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: prompt }], max_completion_tokens: 64 });
    expect(again.choices[0]?.message.content).toBe(res.choices[0]?.message.content);
  });

  it('anthropic client, unchanged, gets a message', async () => {
    const client = new Anthropic({ apiKey: 'sk-test', baseURL: url, maxRetries: 0 });
    const res = await client.messages.create({
      model: 'claude-3-5-sonnet-20241022',
      max_tokens: 100,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Explain retries.' }],
    });
    expect(res.content[0]?.type).toBe('text');
    expect(res.usage.input_tokens).toBe(countChatTokens([{ content: 'Be brief.' }, { content: 'Explain retries.' }]));
    expect(['end_turn', 'max_tokens']).toContain(res.stop_reason);
  });

  it('a missing key is a 401 that the SDK raises as an authentication error', async () => {
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { type: string } };
    expect(body.error.type).toBe('authentication_error');
  });
});

describe('adapters', () => {
  it.each(byProvider)('%s adapter returns text and usage for %s', async (provider, model) => {
    const spec = catalog.require(model);
    const res = await (
      await registry.get(provider)
    ).chat({ model: spec.providerModel, turns: [{ role: 'user', content: 'Summarize: the cat sat on the mat.' }], system: 'Be brief.', maxOutputTokens: 50 });
    expect(res.text.length).toBeGreaterThan(0);
    expect(res.usage.inputTokens).toBe(countChatTokens([{ content: 'Be brief.' }, { content: 'Summarize: the cat sat on the mat.' }]));
    expect(res.usage.outputTokens).toBeGreaterThan(0);
    expect(res.usage.outputTokens).toBeLessThanOrEqual(50);
  });

  it.each(byProvider)('%s adapter sends a whole conversation in its wire format (%s)', async (provider, model) => {
    const spec = catalog.require(model);
    const turns = [
      { role: 'user' as const, content: 'Write a haiku about rain.' },
      { role: 'assistant' as const, content: 'Soft rain on the roof / the gutters hum old songs / the street shines at dusk' },
      { role: 'user' as const, content: 'Now one about snow, please.' },
    ];
    const before = sim.received().length;
    const res = await (await registry.get(provider)).chat({ model: spec.providerModel, system: 'You write haiku.', turns, maxOutputTokens: 60 });
    const seen = sim.received().slice(before);
    expect(seen).toHaveLength(1);
    const got = seen[0];
    expect(got?.format).toBe(provider === 'anthropic' ? 'anthropic' : provider === 'google' ? 'gemini' : 'openai');
    expect(got?.system).toBe('You write haiku.');
    expect(got?.turns).toEqual(turns.map((t) => ({ role: t.role, text: t.content })));
    // Every turn is counted and billed, not only the last.
    const all = countChatTokens([{ content: 'You write haiku.' }, ...turns]);
    expect(res.usage.inputTokens + res.usage.cachedInputTokens).toBe(all);
    expect(all).toBeGreaterThan(countChatTokens([{ content: 'You write haiku.' }, { content: 'Now one about snow, please.' }]) + 15);
  });

  const cases: Array<[string, Record<string, unknown>, string, boolean]> = [
    ['500', { script: [500] }, 'transient', false],
    ['503', { script: [503] }, 'transient', true],
    ['429', { script: [429], retryAfterSeconds: 7 }, 'rate_limited', true],
    ['400', { script: [400] }, 'fatal', false],
    ['content-policy refusal', { script: ['refusal'] }, 'fatal', false],
    ['401', { script: [401] }, 'fatal', false],
    ['403', { script: [403] }, 'fatal', false],
    ['malformed body', { script: ['malformed'] }, 'transient', false],
    ['dropped connection', { script: ['drop'] }, 'transient', false],
  ];
  for (const [provider, model] of byProvider) {
    it.each(cases)(`${provider}: %s maps to its kind`, async (_label, fault, kind, hasRetryAfter) => {
      sim.setFaults({ [model]: { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: [], ...fault } });
      const spec = catalog.require(model);
      const err = await (await registry.get(provider)).chat({ model: spec.providerModel, turns: [{ role: 'user', content: 'hi' }], maxOutputTokens: 10 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      sim.setFaults({});
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).kind).toBe(kind);
      // Gemini's SDK does not expose response headers, so it cannot see Retry-After.
      if (hasRetryAfter && provider !== 'google' && kind === 'rate_limited') expect((err as ProviderError).retryAfterMs).toBe(7000);
    });

    it(`${provider}: a prompt over the context window maps to context_too_long`, async () => {
      const spec = catalog.require(model);
      const long = 'lorem ipsum dolor sit amet '.repeat(Math.ceil(spec.contextWindow / 4));
      const err = await (await registry.get(provider)).chat({ model: spec.providerModel, turns: [{ role: 'user', content: long }], maxOutputTokens: 10 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as ProviderError).kind).toBe('context_too_long');
    });
  }

  it('the per-request fault header applies to that request only', async () => {
    const client = new OpenAI({
      apiKey: 'sk-test',
      baseURL: `${url}/v1`,
      maxRetries: 0,
      defaultHeaders: { [FAULT_HEADER]: JSON.stringify({ errorRates: { '503': 1 } }) },
    });
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 503 });
    const plain = new OpenAI({ apiKey: 'sk-test', baseURL: `${url}/v1`, maxRetries: 0 });
    await expect(plain.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).resolves.toBeDefined();
  });
});

const streamPrompt = 'Explain briefly why durable workflows help LLM pipelines.';

describe('chatStream through every provider SDK', () => {
  for (const [provider, model] of byProvider) {
    it(`${provider}: pieces arrive in order, join to the non-streamed answer, with the billed usage`, async () => {
      const adapter = await registry.get(provider);
      const spec = catalog.require(model);
      const req = { model: spec.providerModel, turns: [{ role: 'user' as const, content: streamPrompt }], maxOutputTokens: 200 };
      const whole = await adapter.chat(req);
      sim.resetStats();
      const pieces: string[] = [];
      const streamed = await adapter.chatStream(req, (t) => pieces.push(t));
      expect(pieces.length).toBeGreaterThan(3);
      expect(pieces.join('')).toBe(whole.text);
      expect(streamed.text).toBe(whole.text);
      expect(streamed.usage).toEqual(whole.usage);
      expect(streamed.usage.inputTokens).toBe(countChatTokens([{ content: streamPrompt }]));
      expect(streamed.finishReason).toBe(whole.finishReason);
      const billed = sim.getStats().byModel[model];
      expect(billed?.outputTokens).toBe(streamed.usage.outputTokens);
    });
  }

  it('a stream cut mid-answer fails as a transient provider failure, after the text sent so far', async () => {
    const adapter = await registry.get('openai');
    sim.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ breakAfterChunks: 4 }) });
    try {
      const pieces: string[] = [];
      const err = await adapter
        .chatStream({ model: 'gpt-4o-mini', turns: [{ role: 'user', content: streamPrompt }], maxOutputTokens: 200 }, (t) => pieces.push(t))
        .then(() => undefined)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).kind).toBe('transient');
      expect(pieces).toHaveLength(4);
    } finally {
      sim.setFaults({});
    }
  });

  it('a stream the client abandons is billed for the text the simulator sent, not the whole answer', async () => {
    sim.setFaults({ 'gpt-4o': faultSpecSchema.parse({ chunkDelayMs: 30 }) });
    sim.resetStats();
    try {
      const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${url}/v1`, maxRetries: 0 });
      const ac = new AbortController();
      const stream = await client.chat.completions.create(
        { model: 'gpt-4o', messages: [{ role: 'user', content: streamPrompt }], stream: true, max_completion_tokens: 200 },
        { signal: ac.signal },
      );
      let text = '';
      let pieces = 0;
      // The SDK ends the iteration when its signal aborts.
      for await (const c of stream) {
        text += c.choices[0]?.delta.content ?? '';
        if (c.choices[0]?.delta.content && ++pieces === 3) ac.abort();
      }
      expect(pieces).toBe(3);
      await new Promise((r) => setTimeout(r, 100));
      const billed = sim.getStats().byModel['gpt-4o']?.outputTokens ?? 0;
      expect(billed).toBeGreaterThanOrEqual(countTokens(text));
      // At most the piece in flight when the client left.
      expect(billed).toBeLessThanOrEqual(countTokens(text) + 2);
    } finally {
      sim.setFaults({});
    }
  });
});
