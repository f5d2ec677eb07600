import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { loadCatalogFile } from '../../src/catalog/loadFile.js';
import { costNanos, estimateCostNanos } from '../../src/catalog/pricing.js';
import { ValidationError } from '../../src/util/validation.js';

const dir = mkdtempSync(join(tmpdir(), 'catalog-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('default catalog', () => {
  it("holds the seed's eight models at the seed's prices, in integer nanodollars", () => {
    const c = defaultCatalog();
    expect(c.names().sort()).toEqual([
      'claude-3-5-haiku',
      'claude-3-5-sonnet',
      'gemini-2-flash',
      'gpt-4o',
      'gpt-4o-mini',
      'llama-3-70b',
      'mistral-large',
      'o1',
    ]);
    const prices = Object.fromEntries(c.models.map((m) => [m.name, [m.price.inputNanosPerMTok, m.price.outputNanosPerMTok]]));
    expect(prices).toEqual({
      'gpt-4o': [2_500_000_000, 10_000_000_000],
      'claude-3-5-sonnet': [3_000_000_000, 15_000_000_000],
      o1: [15_000_000_000, 60_000_000_000],
      'gpt-4o-mini': [150_000_000, 600_000_000],
      'claude-3-5-haiku': [800_000_000, 4_000_000_000],
      'gemini-2-flash': [100_000_000, 400_000_000],
      'llama-3-70b': [50_000_000, 50_000_000],
      'mistral-large': [2_000_000_000, 6_000_000_000],
    });
    for (const m of c.models) for (const v of Object.values(m.price)) expect(Number.isInteger(v)).toBe(true);
  });

  it('warns that mistral-large is labelled economy but dearer than better standard models', () => {
    const w = defaultCatalog().tierWarnings();
    expect(w.some((s) => s.startsWith('mistral-large (economy)'))).toBe(true);
    expect(w.some((s) => s.startsWith('llama-3-70b'))).toBe(false);
  });
});

describe('user catalog files', () => {
  it('extends the defaults from YAML: a new model and an override', () => {
    const p = file(
      'extend.yaml',
      `mode: extend
models:
  - name: qwen-72b
    provider: self-hosted
    tier: economy
    pricing: { inputUsdPerMTok: 0.04, outputUsdPerMTok: 0.08 }
    contextWindow: 32768
    maxOutputTokens: 4096
    capabilities: [reasoning, coding, multilingual]
    typicalLatencyMs: 250
    quality: 0.77
  - name: gpt-4o
    provider: openai
    tier: premium
    pricing: { inputUsdPerMTok: 2.0, outputUsdPerMTok: 8.0 }
    contextWindow: 128000
    maxOutputTokens: 16384
    capabilities: [reasoning]
    typicalLatencyMs: 700
    quality: 0.92
`,
    );
    const c = loadCatalogFile(p);
    expect(c.names()).toHaveLength(9);
    expect(c.require('qwen-72b').price.outputNanosPerMTok).toBe(80_000_000);
    expect(c.require('gpt-4o').price.inputNanosPerMTok).toBe(2_000_000_000);
    expect(c.require('gpt-4o').price.cachedInputNanosPerMTok).toBe(2_000_000_000);
  });

  it('replaces the defaults with a plain JSON list', () => {
    const p = file(
      'replace.json',
      JSON.stringify([
        {
          name: 'm1',
          provider: 'openai',
          tier: 'standard',
          pricing: { inputUsdPerMTok: 1, outputUsdPerMTok: 2 },
          contextWindow: 1000,
          maxOutputTokens: 100,
          capabilities: [],
          typicalLatencyMs: 10,
          quality: 0.5,
        },
      ]),
    );
    expect(loadCatalogFile(p).names()).toEqual(['m1']);
  });

  it('rejects a bad file with the path, the field and why', () => {
    const p = file(
      'bad.yaml',
      `models:\n  - name: x\n    provider: acme\n    tier: economy\n    pricing: { inputUsdPerMTok: -1, outputUsdPerMTok: 1 }\n    contextWindow: 100\n    maxOutputTokens: 10\n    capabilities: []\n    typicalLatencyMs: 1\n    quality: 1.5\n`,
    );
    let err: unknown;
    try {
      loadCatalogFile(p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    const v = err as ValidationError;
    expect(v.source).toBe(p);
    expect(v.message).toContain(p);
    expect(v.fields).toContain('models[0].provider: must be one of openai, anthropic, google, mistral, self-hosted');
    expect(v.fields).toContain('models[0].pricing.inputUsdPerMTok: must be >= 0 (USD per million tokens)');
    expect(v.fields).toContain('models[0].quality: must be in [0,1]');
  });

  it('rejects unparseable YAML and a missing file clearly', () => {
    expect(() => loadCatalogFile(file('broken.yaml', 'models: [unclosed'))).toThrow(/not valid YAML/);
    expect(() => loadCatalogFile(join(dir, 'nope.yaml'))).toThrow(/cannot read catalog file/);
  });
});

describe('pricing', () => {
  const c = defaultCatalog();
  it('charges exact integer nanodollars, rounding up once', () => {
    // 1234 input tokens at $0.15/M = 185,100 nanos; 567 output at $0.60/M = 340,200 nanos.
    expect(costNanos(c.require('gpt-4o-mini'), { inputTokens: 1234, cachedInputTokens: 0, outputTokens: 567 })).toBe(525_300);
    // 1 token at $0.05/M is 50 nanos exactly; 1 cached token at $0.025/M is 25.
    expect(costNanos(c.require('llama-3-70b'), { inputTokens: 1, cachedInputTokens: 0, outputTokens: 0 })).toBe(50);
    expect(costNanos(c.require('gemini-2-flash'), { inputTokens: 0, cachedInputTokens: 1, outputTokens: 0 })).toBe(25);
    // 1 token at $0.075/M is 75 nanos; 3 tokens at $0.0751/M would be fractional: rounded up.
    expect(costNanos(c.require('gpt-4o-mini'), { inputTokens: 0, cachedInputTokens: 3, outputTokens: 0 })).toBe(225);
  });
  it('stays exact where floats would not (tokens x price beyond 2^53)', () => {
    const o1 = c.require('o1');
    // 200k input x $15/M + 100k output x $60/M = $3 + $6 = $9 exactly.
    expect(costNanos(o1, { inputTokens: 200_000, cachedInputTokens: 0, outputTokens: 100_000 })).toBe(9_000_000_000);
  });
  it('rejects negative or fractional usage', () => {
    expect(() => costNanos(c.require('o1'), { inputTokens: -1, cachedInputTokens: 0, outputTokens: 0 })).toThrow(/inputTokens/);
    expect(() => costNanos(c.require('o1'), { inputTokens: 1.5, cachedInputTokens: 0, outputTokens: 0 })).toThrow(/inputTokens/);
  });
  it('estimates input at the input price plus max output at the output price', () => {
    expect(estimateCostNanos(c.require('gpt-4o'), 1000, 500)).toBe(1000 * 2500 + 500 * 10_000);
  });
});
