/** Router and classifier units; the "seed flaw" tests each show one flaw of the seed's router fixed. */
import { describe, expect, it } from 'vitest';
import { countTokens as gptCount } from 'gpt-tokenizer';
import { buildCatalog, defaultCatalog } from '../../src/catalog/catalog.js';
import { DEFAULT_MODELS } from '../../src/catalog/defaultCatalog.js';
import { estimateCostNanos } from '../../src/catalog/pricing.js';
import { classify } from '../../src/routing/classifier.js';
import { countTokens } from '../../src/routing/tokens.js';
import { NoEligibleModelError, route, tierForComplexity } from '../../src/routing/router.js';

const catalog = defaultCatalog();
const base = { complexity: 0.5, capabilities: [] as [], inputTokens: 200 };

describe('seed flaws, fixed', () => {
  it('no eligible model is an error naming the constraint, not a silent claude-3-5-sonnet', () => {
    let err: unknown;
    try {
      route(catalog, { ...base, maxLatencyMs: 150 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NoEligibleModelError);
    const e = err as NoEligibleModelError;
    expect(e.constraint).toBe('maxLatencyMs');
    expect(e.message).toContain('llama-3-70b: typical latency 200 ms > 150 ms');
    expect(e.hint).toBe('raise maxLatencyMs to at least 200');
  });

  it('names the constraint that removed the last candidates when several apply', () => {
    // Vision narrows to gpt-4o, gpt-4o-mini, gemini-2-flash; provider=anthropic then removes them all.
    expect(() => route(catalog, { ...base, capabilities: ['vision'], provider: 'anthropic' })).toThrow(/constraint "provider"/);
  });

  it('estimates cost as input x input price + max output x output price', () => {
    const d = route(catalog, { ...base, complexity: 0.9, inputTokens: 1000, maxOutputTokens: 800 });
    for (const c of d.chain) {
      const m = catalog.require(c.model);
      expect(c.estimatedCostNanos).toBe(1000 * (m.price.inputNanosPerMTok / 1e6) + 800 * (m.price.outputNanosPerMTok / 1e6));
    }
    // The seed's formula would give (1000 / 1e6) x (in + out): output tokens never estimated.
    const gpt4o = d.chain.find((c) => c.model === 'gpt-4o');
    expect(gpt4o?.estimatedCostNanos).toBe(2_500_000 + 8_000_000);
  });

  it('counts tokens with a real tokenizer, not words x 1.3', () => {
    const text = 'def fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)\n# 東京タワーの高さは？';
    const c = classify({ prompt: text });
    expect(c.instructionTokens).toBe(gptCount(text));
    expect(c.instructionTokens).not.toBe(Math.round(text.split(/\s+/).length * 1.3));
  });

  it('a long document does not make a simple task "high complexity"', () => {
    const doc = 'The quarterly report lists revenue, costs and headcount for each region. '.repeat(5000);
    const c = classify({ prompt: 'Extract the total headcount as a number.', context: doc });
    expect(c.inputTokens).toBeGreaterThan(50_000);
    expect(tierForComplexity(c.complexity)).toBe('economy');
    expect(c.capabilities).toContain('long_context');
    const d = route(catalog, { complexity: c.complexity, capabilities: c.capabilities, inputTokens: c.inputTokens });
    // Cheapest model whose window fits: llama (8k) is out, gemini-2-flash (1M) leads.
    expect(d.chain[0]?.model).toBe('gemini-2-flash');
    expect(d.excluded.find((e) => e.model === 'llama-3-70b')?.constraint).toBe('capabilities');
  });

  it('"cheapest" compares the whole estimate, not the input price', () => {
    const c = buildCatalog([
      {
        name: 'cheap-in',
        provider: 'openai',
        tier: 'standard',
        pricing: { inputUsdPerMTok: 0.1, outputUsdPerMTok: 20 },
        contextWindow: 100_000,
        maxOutputTokens: 4000,
        capabilities: [],
        typicalLatencyMs: 100,
        quality: 0.8,
      },
      {
        name: 'cheap-total',
        provider: 'google',
        tier: 'standard',
        pricing: { inputUsdPerMTok: 0.3, outputUsdPerMTok: 0.3 },
        contextWindow: 100_000,
        maxOutputTokens: 4000,
        capabilities: [],
        typicalLatencyMs: 100,
        quality: 0.8,
      },
    ]);
    const d = route(c, { ...base, inputTokens: 500, maxOutputTokens: 1000 });
    expect(d.chain[0]?.model).toBe('cheap-total');
  });

  it('an "economy" model dearer and worse than standard ones is not picked first (mistral-large)', () => {
    // Multilingual rules out llama-3-70b; the seed would then pick mistral-large, the only economy model left.
    const d = route(catalog, { ...base, complexity: 0.1, capabilities: ['multilingual'] });
    expect(d.preferredTier).toBe('economy');
    expect(d.chain[0]?.model).toBe('gemini-2-flash');
    const mistral = d.chain.find((c) => c.model === 'mistral-large');
    if (mistral) expect(mistral.reason).toMatch(/last resort/);
    expect(d.chain.findIndex((c) => c.model === 'mistral-large')).not.toBe(0);
  });

  it('the fallback is the best fit: same tier, another provider, before a dearer tier', () => {
    const d = route(catalog, { ...base, complexity: 0.5 });
    expect(d.chain.slice(0, 2).map((c) => c.model)).toEqual(['gemini-2-flash', 'gpt-4o-mini']);
    expect(d.chain[1]?.reason).toMatch(/another provider/);
    expect(d.chain[1]?.tier).toBe('standard');
  });
});

describe('router', () => {
  it('prefers the tier by complexity, with tunable thresholds', () => {
    expect(route(catalog, { ...base, complexity: 0.1 }).chain[0]?.tier).toBe('economy');
    expect(route(catalog, { ...base, complexity: 0.5 }).chain[0]?.tier).toBe('standard');
    expect(route(catalog, { ...base, complexity: 0.8 }).chain[0]?.model).toBe('gpt-4o');
    const policy = { thresholds: { standard: 0.05, premium: 0.09 }, defaultMaxOutputTokens: 1024, maxCandidates: 4 };
    expect(route(catalog, { ...base, complexity: 0.1 }, policy).chain[0]?.tier).toBe('premium');
  });

  it('applies capabilities, context window, latency, quality, provider and cost cap', () => {
    const coding = route(catalog, { ...base, complexity: 0.5, capabilities: ['coding'] });
    for (const c of coding.chain) expect(catalog.require(c.model).capabilities).toContain('coding');
    const big = route(catalog, { ...base, inputTokens: 150_000 });
    for (const c of big.chain) expect(catalog.require(c.model).contextWindow).toBeGreaterThanOrEqual(150_000 + c.maxOutputTokens);
    const fast = route(catalog, { ...base, maxLatencyMs: 300 });
    for (const c of fast.chain) expect(catalog.require(c.model).typicalLatencyMs).toBeLessThanOrEqual(300);
    const good = route(catalog, { ...base, minQuality: 0.9 });
    for (const c of good.chain) expect(c.quality).toBeGreaterThanOrEqual(0.9);
    const anth = route(catalog, { ...base, provider: 'anthropic' });
    expect(new Set(anth.chain.map((c) => c.provider))).toEqual(new Set(['anthropic']));
    const cap = estimateCostNanos(catalog.require('gpt-4o-mini'), 200, 1024);
    const capped = route(catalog, { ...base, complexity: 0.9, costCapNanos: cap });
    for (const c of capped.chain) expect(c.estimatedCostNanos).toBeLessThanOrEqual(cap);
    expect(capped.excluded.find((e) => e.model === 'o1')?.constraint).toBe('costCap');
  });

  it('a pinned model leads the chain; noFallback keeps it alone', () => {
    const d = route(catalog, { ...base, model: 'claude-3-5-haiku' });
    expect(d.chain[0]?.model).toBe('claude-3-5-haiku');
    expect(d.chain.length).toBeGreaterThan(1);
    expect(route(catalog, { ...base, model: 'claude-3-5-haiku', noFallback: true }).chain).toHaveLength(1);
    expect(() => route(catalog, { ...base, model: 'nope' })).toThrow(/not in the catalog/);
    expect(() => route(catalog, { ...base, model: 'llama-3-70b', inputTokens: 10_000 })).toThrow(/contextWindow/);
  });

  it('follows a configured fallback chain per tier, and a per-request override', () => {
    const d = route(catalog, { ...base, complexity: 0.5, tierFallbacks: { standard: ['claude-3-5-haiku', 'o1'] } });
    expect(d.chain.map((c) => c.model).slice(0, 3)).toEqual(['gemini-2-flash', 'claude-3-5-haiku', 'o1']);
    expect(d.chain[1]?.reason).toBe('configured fallback #1');
    const r = route(catalog, { ...base, complexity: 0.5, tierFallbacks: { standard: ['claude-3-5-haiku'] }, fallbacks: ['gpt-4o'] });
    expect(r.chain.map((c) => c.model).slice(0, 2)).toEqual(['gemini-2-flash', 'gpt-4o']);
    // Ineligible names are skipped, not errors.
    const v = route(catalog, { ...base, complexity: 0.5, capabilities: ['vision'], fallbacks: ['claude-3-5-haiku', 'gpt-4o'] });
    expect(v.chain.map((c) => c.model)).not.toContain('claude-3-5-haiku');
    expect(v.chain[1]?.model).toBe('gpt-4o');
  });

  it('excludes models already tried and escalates with minTier', () => {
    const d = route(catalog, { ...base, complexity: 0.1, excludeModels: ['llama-3-70b'], minTier: 'premium' });
    expect(d.preferredTier).toBe('premium');
    expect(d.chain.map((c) => c.model)).not.toContain('llama-3-70b');
    expect(d.chain[0]?.tier).toBe('premium');
  });
});

describe('classifier', () => {
  it('scores in [0,1], continuous, and orders easy < medium < hard', () => {
    const easy = classify({ prompt: 'Classify this email as spam or not: "You won a prize!"' });
    const medium = classify({ prompt: 'Explain how a hash map handles collisions.' });
    const hard = classify({
      prompt: 'Design a distributed rate limiter, analyze its consistency trade-offs and prove it never admits more than N requests per window.',
    });
    for (const c of [easy, medium, hard]) {
      expect(c.complexity).toBeGreaterThanOrEqual(0);
      expect(c.complexity).toBeLessThanOrEqual(1);
    }
    expect(easy.complexity).toBeLessThan(medium.complexity);
    expect(medium.complexity).toBeLessThan(hard.complexity);
    expect(hard.capabilities).toContain('reasoning');
  });

  it('detects coding, JSON output and multilingual needs', () => {
    expect(classify({ prompt: 'Fix the bug in this function:\n```js\nfunction add(a,b){return a-b}\n```' }).capabilities).toContain('coding');
    expect(classify({ prompt: 'Return the fields as JSON.' }).capabilities).toContain('json');
    expect(classify({ prompt: 'Translate this into Japanese: good morning' }).capabilities).toContain('multilingual');
    expect(classify({ prompt: 'この文章を要約してください。' }).capabilities).toContain('multilingual');
  });
});

describe('tools', () => {
  it('a request offering tools goes only to models with the tools capability, and its tool schemas count as input', () => {
    const tools = JSON.stringify([
      { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
    ]);
    const plain = classify({ prompt: 'What is the weather in Paris?' });
    const c = classify({ prompt: 'What is the weather in Paris?', tools });
    expect(c.capabilities).toContain('tools');
    expect(plain.capabilities).not.toContain('tools');
    expect(c.inputTokens).toBe(plain.inputTokens + countTokens(tools));
    // A catalog whose cheapest model cannot call tools: it is skipped, and the reason named.
    const models = DEFAULT_MODELS.map((m) => (m.name === 'llama-3-70b' ? { ...m, capabilities: m.capabilities.filter((x) => x !== 'tools') } : m));
    const noToolsLlama = buildCatalog(models);
    const d = route(noToolsLlama, { complexity: 0.05, capabilities: c.capabilities, inputTokens: c.inputTokens });
    expect(d.chain.map((x) => x.model)).not.toContain('llama-3-70b');
    expect(d.excluded.find((e) => e.model === 'llama-3-70b')?.constraint).toBe('capabilities');
    expect(route(noToolsLlama, { complexity: 0.05, capabilities: [], inputTokens: 50 }).chain[0]?.model).toBe('llama-3-70b');
  });
});

describe('a deferred request and batch prices (deferred.upgrade)', () => {
  const std = { complexity: 0.5, capabilities: [], inputTokens: 500, maxOutputTokens: 200, allowedTiers: ['standard' as const] };

  it("up_to_live: the strongest model whose batch price is at or below the routed model's live price; the live chain is unchanged", () => {
    const plain = route(catalog, std);
    const d = route(catalog, { ...std, batchUpgrade: 'up_to_live' });
    expect(d.chain).toEqual(plain.chain);
    expect(plain.chain[0]?.model).toBe('gemini-2-flash');
    const mini = catalog.require('gpt-4o-mini');
    const batchMini = estimateCostNanos({ ...mini, price: mini.batchPrice! }, 500, 200);
    expect(d.deferredPick).toMatchObject({
      model: 'gpt-4o-mini',
      instead: 'gemini-2-flash',
      batchCostNanos: batchMini,
      comparedNanos: plain.chain[0]?.estimatedCostNanos,
    });
    expect(batchMini).toBeLessThanOrEqual(plain.chain[0]!.estimatedCostNanos);
    expect(d.deferredPick?.reason).toMatch(/stronger gpt-4o-mini \(quality 0.82\).*at or below gemini-2-flash's live price/);
  });

  it('no_dearer (the default): only when the stronger batch price is at or below what the routed model costs deferred; off and a pinned model: never', () => {
    // gemini-2-flash has a batch API at half price: gpt-4o-mini's batch price is above that.
    expect(route(catalog, { ...std, batchUpgrade: 'no_dearer' }).deferredPick).toBeUndefined();
    expect(route(catalog, { ...std, batchUpgrade: 'off' }).deferredPick).toBeUndefined();
    expect(route(catalog, { ...std, model: 'gemini-2-flash', batchUpgrade: 'up_to_live' }).deferredPick).toBeUndefined();
    // Without a batch API, the routed model's live price is what it costs deferred: a stronger model at or below it is taken.
    const noBatch = buildCatalog(DEFAULT_MODELS.map((m) => (m.name === 'gemini-2-flash' ? { ...m, pricing: { ...m.pricing, batch: undefined } } : m)));
    expect(route(noBatch, { ...std, batchUpgrade: 'no_dearer' }).deferredPick).toMatchObject({ model: 'gpt-4o-mini', instead: 'gemini-2-flash' });
    // Nothing stronger is that cheap for an economy request on llama-3-70b (self-hosted, $0.05/$0.05).
    expect(
      route(catalog, { complexity: 0.05, capabilities: [], inputTokens: 500, maxOutputTokens: 200, batchUpgrade: 'up_to_live' }).deferredPick,
    ).toBeUndefined();
  });
});
