/**
 * Router speed against the seed's Python router, side by side in one run, on the seed's own four
 * requests: classify (real tokenizer) + route (all constraints, full fallback chain) per decision.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { classify } from '../../src/routing/classifier.js';
import { route } from '../../src/routing/router.js';

const REQUESTS: Array<[string, number, number]> = [
  ["Classify this text as positive or negative: 'Great product!'", 100, 0.0],
  ['Analyze this codebase architecture and suggest improvements for scalability', 50000, 0.85],
  ['Write a short poem about autumn', 50, 0.0],
  ['Debug complex race condition in this function and explain why it fails', 2000, 0.0],
];

export function benchRouter(n: number, rounds: number): { oursUs: number[]; seedUs: number[] } {
  const catalog = defaultCatalog();
  const seedPath = join(process.cwd(), '..', 'shared', 'tools', 'seed-router.py');
  const oursUs: number[] = [];
  const seedUs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const [prompt, contextTokens, minQuality] = REQUESTS[i % 4]!;
      const c = classify({ prompt });
      route(catalog, { complexity: c.complexity, capabilities: c.capabilities, inputTokens: c.inputTokens + contextTokens, minQuality });
    }
    oursUs.push(((performance.now() - t0) * 1000) / n);
    if (existsSync(seedPath)) {
      const out = execFileSync('python3', [seedPath, String(n)], { encoding: 'utf8' });
      const m = /([\d.]+) us\/decision/.exec(out);
      if (m) seedUs.push(Number(m[1]));
    }
  }
  return { oursUs, seedUs };
}

/**
 * Classification of hostile prompts, each `rounds` times (median ms): the case that took 5.7 s at
 * 40 KB before classification was bounded, up to 4 MB, and ordinary prose of the same size.
 */
export function benchAdversarial(rounds: number): Array<{ name: string; chars: number; ms: number[] }> {
  const cases: Array<[string, string]> = [
    ['"\\n-" + 40,000 spaces + "x"', `\n-${' '.repeat(40_000)}x`],
    ['"\\n-" + 4,000,000 spaces + "x"', `\n-${' '.repeat(4_000_000)}x`],
    ['"\\n- " x 1,333,333 (4 MB of list items)', `${'\n- '.repeat(1_333_333)}x`],
    ['4 MB without whitespace', 'a'.repeat(4_000_000)],
    ['4 MB of prose', 'The quick brown fox jumps over the lazy dog. '.repeat(90_000)],
    ['1.5 MB of prose (the request size limit)', 'The quick brown fox jumps over the lazy dog. '.repeat(33_000)],
  ];
  return cases.map(([name, prompt]) => {
    const ms: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      classify({ prompt });
      ms.push(performance.now() - t0);
    }
    return { name, chars: prompt.length, ms };
  });
}
