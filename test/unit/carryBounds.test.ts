/**
 * Carried state and messages bounded by bytes (issue 21, item 4), tested at the bound: the routing
 * entity's and the experiment entity's continue-as-new input with the longest ids the contracts
 * allow, and a worker's outcome report, each measured as JSON against the server's 2 MiB payload
 * limit. What routing depends on is never what gives way.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ANOMALY } from '../../src/learning/anomalies.js';
import { EMPTY_ARM, validateExperiment } from '../../src/learning/experiments.js';
import {
  type AnomalyAlert,
  CARRY_MAX_BYTES,
  EXPERIMENTS_MAX,
  keepAlerts,
  newControlState,
  type PolicyChange,
  RoutingControl,
  RULES_MAX,
  type RoutingRule,
} from '../../src/learning/routingControl.js';
import { DEFAULT_TUNER } from '../../src/learning/tuner.js';
import { REPORT_MAX_BYTES, splitReport } from '../../src/learning/worker/outcomeReporter.js';
import { jsonBytes, newestWithin } from '../../src/util/bytes.js';
import { boundCarried, EXPERIMENT_CARRY_MAX_BYTES } from '../../src/workflows/experiment/carry.js';

const PAYLOAD_LIMIT = 2 * 1024 * 1024;
/** The longest request id the contract allows (200 characters), as a workflow id. */
const longId = (i: number): string => `llm-${String(i).padStart(6, '0')}-${'r'.repeat(189)}`;
const settings = {
  base: { standard: 0.35, premium: 0.7 },
  tuner: { ...DEFAULT_TUNER, enabled: true, intervalMs: 1000 },
  anomaly: { ...DEFAULT_ANOMALY, enabled: true, action: 'pause' as const },
};

function alert(i: number, scope: string, open: boolean): AnomalyAlert {
  return {
    key: `${scope}|standard|*|*`,
    bucketStart: i,
    spendNanos: 1_000_000,
    baselineNanos: 10,
    sdNanos: 1,
    id: `anomaly-${i}`,
    at: i,
    scope,
    category: 'standard',
    model: '*',
    feature: '*',
    action: 'pause',
    ...(open ? {} : { acknowledgedAt: i + 1 }),
  };
}

describe('the routing entity carries at most CARRY_MAX_BYTES', () => {
  it('a state of several megabytes (long ids, full history, alerts, baselines) carries under the bound, keeping rules, thresholds, experiments and open actions', () => {
    const state = newControlState();
    const categories = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`category-${'c'.repeat(40)}-${i}`, { standard: 0.2, premium: 0.8 }]));
    const rules: RoutingRule[] = Array.from({ length: RULES_MAX }, (_, i) => ({
      filter: { feature: `feature-${i}` },
      arm: { name: 'gpt-4o-mini', weight: 1, model: 'gpt-4o-mini' },
      experiment: `exp-${i}`,
      at: i,
    }));
    state.categories = categories;
    state.rules = rules;
    state.experiments = Object.fromEntries(
      Array.from({ length: EXPERIMENTS_MAX }, (_, i) => [
        `live-${i}`,
        {
          name: `live-${i}`,
          arms: [
            { name: 'a', weight: 0.5, model: 'gpt-4o-mini' },
            { name: 'b', weight: 0.5, model: 'claude-3-5-haiku' },
          ],
          filter: { category: 'batch' },
        },
      ]),
    );
    state.history = Array.from({ length: 200 }, (_, i): PolicyChange => ({
      version: i + 1,
      at: i,
      by: 'tuner',
      summary: 's'.repeat(500),
      before: { categories, rules },
      after: { categories, rules },
    }));
    state.feedbackSeen = Array.from({ length: 5_000 }, (_, i) => longId(i));
    state.alerts = Array.from({ length: 200 }, (_, i) => alert(i, `scope-${'s'.repeat(150)}-${i}`, i % 50 === 0));
    state.baselines = Object.fromEntries(
      Array.from({ length: 2_000 }, (_, i) => [
        `scope-${'s'.repeat(150)}-${i}|standard|gpt-4o-mini|feature-${'f'.repeat(60)}`,
        { mean: 1, variance: 1, buckets: 5, open: i, openNanos: 0, lastSpendAt: i },
      ]),
    );
    state.version = 200;
    expect(jsonBytes(state)).toBeGreaterThan(PAYLOAD_LIMIT);

    const carried = new RoutingControl(state, settings).carry();
    expect(jsonBytes(carried)).toBeLessThanOrEqual(CARRY_MAX_BYTES);
    expect(carried.rules).toEqual(rules);
    expect(carried.categories).toEqual(categories);
    expect(Object.keys(carried.experiments)).toHaveLength(EXPERIMENTS_MAX);
    expect(carried.alerts.filter((a) => a.acknowledgedAt === undefined).map((a) => a.id)).toEqual(
      state.alerts.filter((a) => a.acknowledgedAt === undefined).map((a) => a.id),
    );
    // The newest of what was cut is kept: the last history entries, the most recent feedback ids and baselines.
    expect(carried.history.at(-1)!.version).toBe(200);
    expect(carried.history.length).toBeGreaterThanOrEqual(10);
    expect(carried.feedbackSeen.at(-1)).toBe(longId(4_999));
    expect(carried.version).toBe(200);
    // The entity it continues as routes as it did.
    const next = new RoutingControl(carried, settings).policy();
    const before = new RoutingControl(state, settings).policy();
    expect({ ...next, epoch: undefined }).toEqual({ ...before, epoch: undefined });
  });

  it('what cannot be dropped is refused where it comes in: the 101st rule, the 51st experiment', () => {
    const c = new RoutingControl(newControlState(), settings);
    for (let i = 0; i < RULES_MAX; i++)
      c.promote({ filter: { feature: `f${i}` }, arm: { name: 'a', weight: 1, model: 'gpt-4o-mini' }, experiment: `e${i}`, at: i }, null, i);
    expect(() => c.promote({ filter: { feature: 'one-more' }, arm: { name: 'a', weight: 1, model: 'gpt-4o-mini' }, experiment: 'x', at: 0 }, null, 0)).toThrow(
      /100 routing rules exist already/,
    );
    // Replacing the rule of an existing filter is still allowed.
    expect(() => c.promote({ filter: { feature: 'f3' }, arm: { name: 'b', weight: 1, model: 'gpt-4o' }, experiment: 'y', at: 0 }, null, 0)).not.toThrow();
    for (let i = 0; i < EXPERIMENTS_MAX; i++) c.registerExperiment({ name: `x${i}`, arms: [], filter: {} });
    expect(() => c.registerExperiment({ name: 'x-more', arms: [], filter: {} })).toThrow(/50 experiments run/);
    expect(() => c.registerExperiment({ name: 'x7', arms: [], filter: {} })).not.toThrow();
  });

  it('should the kept part still not fit, carry throws (the task fails and retries) instead of losing it', () => {
    const state = newControlState();
    state.rules = Array.from({ length: 50 }, (_, i) => ({
      filter: { feature: `f${i}` },
      arm: { name: 'a', weight: 1, model: 'gpt-4o-mini' },
      experiment: `e${'e'.repeat(500)}${i}`,
      at: i,
    }));
    expect(() => new RoutingControl(state, settings).carry(10_000)).toThrow(/over the 10000 it may carry, with nothing left to drop/);
  });

  it('200 kept alerts never drop an unacknowledged pause (issue 21, item 11)', () => {
    const oldestOpen = alert(0, 'paused-scope', true);
    const later = Array.from({ length: 250 }, (_, i) => alert(i + 1, `other-${i % 3}`, false));
    const kept = keepAlerts([oldestOpen, ...later], 200);
    expect(kept).toHaveLength(200);
    expect(kept[0]).toBe(oldestOpen);
    expect(kept.at(-1)!.id).toBe('anomaly-250');
  });
});

describe('the experiment entity carries at most EXPERIMENT_CARRY_MAX_BYTES', () => {
  it('5,000 outcome ids and 5,000 feedback ids of the longest kind, 20 arms of comments: under the bound, the statistics whole', () => {
    const arms = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`arm-${i}`, { ...EMPTY_ARM, requests: 250 }]));
    const comments = Object.fromEntries(
      Array.from({ length: 20 }, (_, i) => [
        `arm-${i}`,
        Array.from({ length: 20 }, (_, j) => ({ workflowId: longId(j), score: 0.5, comment: 'é'.repeat(2_000) })),
      ]),
    );
    const carried = {
      state: 'running' as const,
      arms,
      seen: Array.from({ length: 5_000 }, (_, i) => longId(i)),
      feedbackSeen: Array.from({ length: 5_000 }, (_, i) => longId(i + 5_000)),
      comments,
      lastLook: 2,
    };
    expect(jsonBytes(carried)).toBeGreaterThan(PAYLOAD_LIMIT);
    const bounded = boundCarried(carried);
    expect(jsonBytes(bounded)).toBeLessThanOrEqual(EXPERIMENT_CARRY_MAX_BYTES);
    expect(bounded.arms).toEqual(arms);
    expect(bounded.seen.at(-1)).toBe(longId(4_999));
    expect(bounded.feedbackSeen.at(-1)).toBe(longId(9_999));
    for (const list of Object.values(bounded.comments ?? {})) expect(list.length).toBeGreaterThan(0);
  });

  it('a new spec is bounded: at most 20 arms, names of 100 characters, filters of 200', () => {
    const arm = (name: string) => ({ name, weight: 1, model: 'gpt-4o-mini' });
    const base = { name: 'sizes', minSamples: 10, confidence: 0.95, filter: {} };
    expect(() => validateExperiment({ ...base, arms: Array.from({ length: 21 }, (_, i) => arm(`a${i}`)) })).toThrow(/arms: at most 20 arms/);
    expect(() => validateExperiment({ ...base, arms: [arm('a'.repeat(101)), arm('b')] })).toThrow(/arms\.0\.name: at most 100 characters/);
    expect(() => validateExperiment({ ...base, arms: [arm('a'), arm('b')], filter: { feature: 'f'.repeat(201) } })).toThrow(
      /filter\.feature: at most 200 characters/,
    );
  });
});

describe("a worker's outcome report goes in signals of at most REPORT_MAX_BYTES", () => {
  it('10,000 spend entries with the longest keys: every part under the bound, nothing lost or reordered', () => {
    const spend = Array.from({ length: 10_000 }, (_, i) => ({
      key: `scope-${'s'.repeat(200)}|standard|gpt-4o-mini|feature-${'f'.repeat(100)}-${i}`,
      at: i,
      nanos: i + 1,
    }));
    const counts = { 'standard|economy|low|false': { n: 10_000, good: 9_000 } };
    expect(jsonBytes({ counts, spend })).toBeGreaterThan(PAYLOAD_LIMIT);
    const parts = splitReport({ counts, spend });
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(jsonBytes(p)).toBeLessThanOrEqual(REPORT_MAX_BYTES);
    expect(parts.flatMap((p) => p.spend)).toEqual(spend);
    expect(parts[0]!.counts).toEqual(counts);
    expect(parts.slice(1).every((p) => Object.keys(p.counts).length === 0)).toBe(true);
    expect(splitReport({ counts, spend: [] })).toEqual([{ counts, spend: [] }]);
  });

  it('newestWithin keeps the newest items within the bytes, in order', () => {
    const list = ['aaaa', 'bbbb', 'cccc'];
    expect(newestWithin(list, jsonBytes(list))).toEqual(list);
    expect(newestWithin(list, jsonBytes(list) - 1)).toEqual(['bbbb', 'cccc']);
    expect(newestWithin(list, 3)).toEqual([]);
  });
});
