/** The learning loop's pure parts: experiment statistics, the tuner, anomaly detection, reallocation, the routing control state. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocate } from '../../src/budget/allocation.js';
import { planReallocation, validateReallocation } from '../../src/budget/reallocation.js';
import { addSpend, advance, type AnomalySettings, type Baseline, DEFAULT_ANOMALY } from '../../src/learning/anomalies.js';
import {
  type ArmStats,
  assignArm,
  confidenceAtLook,
  EMPTY_ARM,
  ExperimentSpecError,
  lookAt,
  parseArms,
  recordFeedback,
  recordOutcome,
  validateExperiment,
  verdict,
  zFor,
} from '../../src/learning/experiments.js';
import { newControlState, RoutingControl } from '../../src/learning/routingControl.js';
import { DEFAULT_TUNER, outcomeKey, proposeChanges } from '../../src/learning/tuner.js';
import { seededRandom } from '../../src/simulator/faults.js';

const isModel = (m: string): boolean => ['gpt-4o-mini', 'claude-3-5-haiku', 'gpt-4o'].includes(m);

describe('experiments', () => {
  it('normal quantiles', () => {
    expect(zFor(0.95)).toBeCloseTo(1.95996, 4);
    expect(zFor(0.99)).toBeCloseTo(2.57583, 4);
    expect(zFor(0.9)).toBeCloseTo(1.64485, 4);
  });

  it('arms parse and normalise; bad ones are errors naming the arm and the fix', () => {
    expect(parseArms('gpt-4o-mini=1,claude-3-5-haiku=3', isModel).map((a) => [a.name, a.weight])).toEqual([
      ['gpt-4o-mini', 0.25],
      ['claude-3-5-haiku', 0.75],
    ]);
    expect(parseArms('tier:premium=0.5,thresholds:0.2/0.5=0.5', isModel)).toEqual([
      { name: 'tier:premium', weight: 0.5, minTier: 'premium' },
      { name: 'thresholds:0.2/0.5', weight: 0.5, thresholds: { standard: 0.2, premium: 0.5 } },
    ]);
    expect(() => parseArms('gpt-4o-mini=0.5', isModel)).toThrow(/at least two arms/);
    expect(() => parseArms('gpt-4o-mini=0.5,nope=0.5', isModel)).toThrow(/arm "nope" is not a catalog model/);
    expect(() => parseArms('gpt-4o-mini=0,gpt-4o=1', isModel)).toThrow(/weight must be a number above 0/);
    expect(() => parseArms('gpt-4o-mini=1,gpt-4o-mini=1', isModel)).toThrow(/given twice/);
    expect(() => parseArms('thresholds:0.8/0.2=1,gpt-4o=1', isModel)).toThrow(/0 <= S <= P <= 1/);
    expect(() => validateExperiment({ name: 'x', arms: parseArms('gpt-4o-mini,gpt-4o', isModel), filter: {}, minSamples: 1, confidence: 0.95 })).toThrow(
      ExperimentSpecError,
    );
  });

  it('assignment is sticky per unit and follows the weights', () => {
    const spec = { name: 'e', arms: parseArms('gpt-4o-mini=0.2,gpt-4o=0.8', isModel) };
    expect(assignArm(spec, 'user-7').name).toBe(assignArm(spec, 'user-7').name);
    let small = 0;
    for (let i = 0; i < 20_000; i++) if (assignArm(spec, `u${i}`).name === 'gpt-4o-mini') small += 1;
    expect(small / 20_000).toBeGreaterThan(0.18);
    expect(small / 20_000).toBeLessThan(0.22);
    // Another experiment splits the same units independently.
    const other = { name: 'f', arms: spec.arms };
    const same = Array.from({ length: 1000 }, (_, i) => assignArm(spec, `u${i}`).name === assignArm(other, `u${i}`).name).filter(Boolean).length;
    expect(same).toBeLessThan(800);
  });

  const arm = (outcomes: Array<[cost: number, quality: number]>): ArmStats =>
    outcomes.reduce(
      (s, [costNanos, quality], i) => recordOutcome(s, { workflowId: `w${i}`, arm: 'a', costNanos, latencyMs: 100, quality, failed: false, escalations: 0 }),
      EMPTY_ARM,
    );

  it('verdicts: collecting without enough samples (no division by zero), a quality winner, a cost winner at equal quality, no difference', () => {
    const spec = { minSamples: 20, confidence: 0.95 };
    expect(
      verdict(
        spec,
        new Map([
          ['a', EMPTY_ARM],
          ['b', EMPTY_ARM],
        ]),
      ),
    ).toMatchObject({ state: 'collecting', winner: null });
    const rnd = seededRandom(1);
    const good = arm(Array.from({ length: 60 }, () => [1000, rnd() < 0.95 ? 1 : 0]));
    const bad = arm(Array.from({ length: 60 }, () => [1000, rnd() < 0.6 ? 1 : 0]));
    expect(
      verdict(
        spec,
        new Map([
          ['good', good],
          ['bad', bad],
        ]),
      ),
    ).toMatchObject({ state: 'decided', winner: 'good', qualitySignificant: true });
    const cheap = arm(Array.from({ length: 60 }, () => [1000 + Math.round(rnd() * 100), rnd() < 0.9 ? 1 : 0]));
    const dear = arm(Array.from({ length: 60 }, () => [5000 + Math.round(rnd() * 100), rnd() < 0.9 ? 1 : 0]));
    expect(
      verdict(
        spec,
        new Map([
          ['cheap', cheap],
          ['dear', dear],
        ]),
      ),
    ).toMatchObject({ state: 'decided', winner: 'cheap', qualitySignificant: false, costSignificant: true });
    const x = arm(Array.from({ length: 60 }, () => [1000 + Math.round(rnd() * 500), rnd() < 0.9 ? 1 : 0]));
    const y = arm(Array.from({ length: 60 }, () => [1000 + Math.round(rnd() * 500), rnd() < 0.9 ? 1 : 0]));
    expect(
      verdict(
        spec,
        new Map([
          ['x', x],
          ['y', y],
        ]),
      ).state,
    ).toBe('no_difference');
  });

  it('the stopping rule (looks at minSamples x 2^k, alpha spent across them) keeps A/A false winners below alpha', () => {
    const rnd = seededRandom(11);
    let falseWinners = 0;
    const runs = 300;
    for (let r = 0; r < runs; r++) {
      const arms = new Map<string, ArmStats>([
        ['a', EMPTY_ARM],
        ['b', EMPTY_ARM],
      ]);
      let last = -1;
      for (let i = 0; i < 1600; i++) {
        const name = i % 2 === 0 ? 'a' : 'b';
        arms.set(
          name,
          recordOutcome(arms.get(name)!, {
            workflowId: `${i}`,
            arm: name,
            costNanos: 1000 + Math.floor(rnd() * 400),
            latencyMs: 1,
            quality: rnd() < 0.8 ? 1 : 0,
            failed: false,
            escalations: 0,
          }),
        );
        const look = lookAt(Math.min(arms.get('a')!.requests, arms.get('b')!.requests), 50);
        if (look === null || look <= last) continue;
        last = look;
        if (verdict({ minSamples: 50, confidence: confidenceAtLook(0.95, look) }, arms).state === 'decided') {
          falseWinners += 1;
          break;
        }
      }
    }
    expect(falseWinners / runs).toBeLessThan(0.05);
  });

  it('feedback replaces the automatic quality of its request', () => {
    const a = arm([
      [1, 1],
      [1, 1],
      [1, 1],
      [1, 1],
    ]);
    const f = recordFeedback(a, 0, 1);
    expect(f.quality.sum).toBe(3);
    expect(f.quality.n).toBe(4);
    expect(f.feedback).toEqual({ n: 1, sum: 0, sumSq: 0 });
  });
});

describe('the tuner', () => {
  const base = { standard: 0.35, premium: 0.7 };
  it("lowers only the failing category's threshold, within bounds, and only with enough samples", () => {
    const counts = {
      [outcomeKey('legal', 'economy', 'low', false)]: { n: 30, good: 12 },
      [outcomeKey('support', 'economy', 'low', false)]: { n: 30, good: 29 },
      [outcomeKey('chat', 'economy', 'low', false)]: { n: 5, good: 0 },
    };
    const changes = proposeChanges(counts, {}, base, { ...DEFAULT_TUNER, minSamples: 20 });
    expect(changes.map((c) => [c.category, c.to])).toEqual([['legal', { standard: 0, premium: 0.7 }]]);
    expect(changes[0]!.evidence).toEqual({ economy: { n: 30, good: 12 } });
    // At the lower bound already: nothing further.
    expect(proposeChanges(counts, { legal: { standard: 0.1, premium: 0.7 } }, base, { ...DEFAULT_TUNER, minSamples: 20, minThreshold: 0.1 })).toEqual([]);
  });
  it('moves back toward the base when exploration traffic holds the target again', () => {
    const counts = { [outcomeKey('legal', 'economy', 'low', true)]: { n: 10, good: 10 }, [outcomeKey('legal', 'standard', 'low', false)]: { n: 40, good: 40 } };
    const [c] = proposeChanges(counts, { legal: { standard: 0, premium: 0.7 } }, base, { ...DEFAULT_TUNER, minSamples: 5 });
    expect(c).toMatchObject({ category: 'legal', to: { standard: 0.35, premium: 0.7 } });
  });
});

describe('anomaly detection', () => {
  const s: AnomalySettings = { ...DEFAULT_ANOMALY, bucketMs: 60_000, minSpendNanos: 0, warmupBuckets: 10, k: 4 };
  const run = (spend: (bucket: number) => number, buckets: number) => {
    let b: Baseline | undefined;
    const found: number[] = [];
    for (let i = 0; i < buckets; i++) {
      const x = spend(i);
      // No spend is no report (as the workers send it); the timer's advance closes quiet buckets.
      if (x === 0) {
        if (b) b = advance(b, 'k', i * s.bucketMs + 1, s).baseline;
        continue;
      }
      const r = addSpend(b, 'k', i * s.bucketMs + 1, x, s);
      b = r.baseline;
      if (r.anomalies.length) found.push(i - 1);
    }
    return { found, baseline: b! };
  };
  it('steady noisy traffic raises nothing over a week of minute buckets (several seeds)', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7]) {
      const rnd = seededRandom(seed);
      // 12-28 requests a minute, each 1,000-3,000 nanodollars.
      const { found } = run(() => Array.from({ length: 12 + Math.floor(rnd() * 17) }, () => 1000 + Math.floor(rnd() * 2000)).reduce((a, b) => a + b, 0), 1440);
      expect(found, `seed ${seed}`).toEqual([]);
    }
  });
  it('a burst is caught in the bucket it happened in, and a quiet gap does not hide it', () => {
    const { found } = run((i) => (i === 100 ? 2_000_000 : 40_000), 110);
    expect(found).toEqual([100]);
    // After a burst, silence: the bucket closes on the timer's advance.
    let b = run(() => 40_000, 30).baseline;
    b = addSpend(b, 'k', 30 * s.bucketMs + 5, 5_000_000, s).baseline;
    expect(advance(b, 'k', 45 * s.bucketMs, s).anomalies).toHaveLength(1);
  });
  it('traffic coming back after a long silence is not an anomaly (the baseline is not decayed to zero)', () => {
    const { found } = run((i) => (i >= 100 && i < 220 ? 0 : 40_000 + (i % 3) * 1000), 260);
    expect(found).toEqual([]);
  });
  it('nothing before the baseline has warmed up, nor below the floor', () => {
    expect(run((i) => (i === 3 ? 2_000_000 : 40_000), 8).found).toEqual([]);
    expect(run((i) => (i === 50 ? 2_000 : 40), 60).found).toEqual([50]);
    const floor = { ...s, minSpendNanos: 10_000 };
    let b: Baseline | undefined;
    let any = 0;
    for (let i = 0; i < 60; i++) {
      const r = addSpend(b, 'k', i * s.bucketMs + 1, i === 50 ? 2_000 : 40, floor);
      b = r.baseline;
      any += r.anomalies.length;
    }
    expect(any).toBe(0);
  });
});

describe('budget reallocation', () => {
  const period = { start: 0, end: 30 * 86_400_000 };
  const input = (spent: Record<string, number>, now: number) => ({
    totalNanos: 1_000_000_000,
    configured: { critical: 0.4, standard: 0.35, batch: 0.25 },
    current: { critical: 0.4, standard: 0.35, batch: 0.25 },
    spentNanos: spent,
    period,
    now,
    settings: { everyMs: 86_400_000 },
  });
  it('moves from a category that will not use its allocation to one forecast to run out; critical keeps its floor', () => {
    // A third of the month gone: batch spent 200M (forecast 600M > 250M), standard 10M (forecast 30M), critical nothing.
    const p = planReallocation(input({ batch: 200_000_000, standard: 10_000_000 }, 10 * 86_400_000));
    expect(p.moves.every((m) => m.from === 'standard' && m.to === 'batch')).toBe(true);
    const after = allocate(1_000_000_000, p.allocations);
    expect(after.critical).toBe(400_000_000);
    expect(after.standard).toBeGreaterThanOrEqual(Math.ceil(30_000_000 * 1.1));
    expect(after.batch! + after.standard! + after.critical!).toBe(1_000_000_000);
  });
  it('a donor keeps its open reservations, and a category that has spent nothing keeps its allocation until mid-period', () => {
    const withReserved = planReallocation({ ...input({ batch: 200_000_000 }, 10 * 86_400_000), reservedNanos: { standard: 300_000_000 } });
    const after = allocate(1_000_000_000, withReserved.allocations);
    // Standard spent nothing but has 300M promised to calls in flight: it keeps that much.
    expect(after.standard).toBeGreaterThanOrEqual(300_000_000);
    expect(withReserved.moves.filter((m) => m.from === 'standard').reduce((t, m) => t + m.nanos, 0)).toBeLessThanOrEqual(50_000_000);
    // Before mid-period, a category with nothing spent or reserved gives nothing.
    expect(planReallocation(input({ batch: 200_000_000 }, 10 * 86_400_000)).moves.filter((m) => m.from === 'standard')).toEqual([]);
    const late = planReallocation(input({ batch: 200_000_000, critical: 1 }, 20 * 86_400_000));
    expect(late.moves.map((m) => m.from)).toContain('standard');
  });
  it('nothing moves early in the period, or when no category will run out', () => {
    expect(planReallocation(input({ batch: 200_000_000 }, 86_400_000)).moves).toEqual([]);
    expect(planReallocation(input({ batch: 1_000_000 }, 20 * 86_400_000)).why).toMatch(/no category is forecast to run out/);
  });
  it('never breaks the total, a floor, or what a category has spent (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 400_000_000 }), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 3, max: 30 }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        ([c, s, b], day, floor) => {
          const p = planReallocation({
            ...input({ critical: c!, standard: s!, batch: b! }, day * 86_400_000),
            settings: { everyMs: 86_400_000, floors: { standard: floor } },
          });
          const after = allocate(1_000_000_000, p.allocations);
          const before = allocate(1_000_000_000, { critical: 0.4, standard: 0.35, batch: 0.25 });
          expect(Object.values(after).reduce((x, y) => x + y, 0)).toBe(1_000_000_000);
          for (const m of p.moves) {
            expect(m.nanos).toBeGreaterThan(0);
            expect(m.from).not.toBe('critical');
          }
          if (p.moves.length > 0) {
            expect(after.critical).toBeGreaterThanOrEqual(before.critical! - 1);
            expect(after.standard!).toBeGreaterThanOrEqual(Math.min(before.standard!, Math.floor(floor * 1_000_000_000)) - 1);
            for (const [cat, spent] of Object.entries({ critical: c!, standard: s!, batch: b! }))
              expect(after[cat]!).toBeGreaterThanOrEqual(Math.min(spent, before[cat]!) - 1);
          }
        },
      ),
    );
  });
  it('bad settings are named', () => {
    expect(validateReallocation({ everyMs: 10, floors: { x: 2 } }, ['critical'])).toEqual([
      'reallocation.everyMs: must be at least 1000 (milliseconds; 86400000 is a day)',
      'reallocation.floors.x: not a category of this budget (critical)',
      'reallocation.floors.x: must be a fraction in [0, 1]',
      'reallocation.floors: they sum to 2, more than the whole budget',
    ]);
  });
});

describe('routing control', () => {
  const settings = {
    base: { standard: 0.35, premium: 0.7 },
    tuner: { ...DEFAULT_TUNER, enabled: true, intervalMs: 1000, minSamples: 2 },
    anomaly: { ...DEFAULT_ANOMALY, enabled: false },
  };
  it('records every change with its evidence; revert restores the policy before a change, as a new version', () => {
    const c = new RoutingControl(newControlState(), settings);
    c.report({ counts: { [outcomeKey('legal', 'economy', 'low', false)]: { n: 4, good: 0 } }, spend: [] }, 1);
    const v1 = c.tune(2, 'tuner')!;
    expect(v1).toMatchObject({ version: 1, by: 'tuner', before: { categories: {} }, after: { categories: { legal: { standard: 0, premium: 0.7 } } } });
    expect(c.policy().categories).toEqual({ legal: { standard: 0, premium: 0.7 } });
    const v2 = c.revert(1, 3);
    expect(v2).toMatchObject({ version: 2, by: 'revert' });
    expect(c.policy().categories).toEqual({});
    expect(() => c.revert(7, 4)).toThrow(/no routing change 7/);
  });
  it('acknowledging one anomaly ends every open one of its scope and category (one burst raises one per key)', () => {
    const c = new RoutingControl(newControlState(), {
      ...settings,
      anomaly: { ...DEFAULT_ANOMALY, enabled: true, bucketMs: 1000, warmupBuckets: 3, minSpendNanos: 0, action: 'pause' },
    });
    for (let i = 0; i < 6; i++)
      c.report(
        {
          counts: {},
          spend: [
            { key: 's|standard|m|f', at: i * 1000 + 1, nanos: 100 },
            { key: 's|standard|*|*', at: i * 1000 + 1, nanos: 100 },
          ],
        },
        i * 1000 + 1,
      );
    c.report(
      {
        counts: {},
        spend: [
          { key: 's|standard|m|f', at: 6001, nanos: 100_000 },
          { key: 's|standard|*|*', at: 6001, nanos: 100_000 },
        ],
      },
      6001,
    );
    const alerts = c.tick(7001);
    expect(alerts).toHaveLength(2);
    expect(c.policy().actions['s|standard']).toBeDefined();
    c.acknowledge(alerts[0]!.id, 7002);
    expect(c.policy().actions['s|standard']).toBeUndefined();
  });
  it('feedback counts once per request', () => {
    const c = new RoutingControl(newControlState(), settings);
    const key = outcomeKey('legal', 'economy', 'low', false);
    expect(c.feedback({ workflowId: 'w1', key, score: 0.1 })).toBe(true);
    expect(c.feedback({ workflowId: 'w1', key, score: 0.1 })).toBe(false);
    expect(c.state.counts[key]).toEqual({ n: 1, good: 0 });
  });
  it('a promoted rule replaces the rule for the same traffic and ends the experiment', () => {
    const c = new RoutingControl(newControlState(), settings);
    const arms = parseArms('gpt-4o-mini,gpt-4o', isModel);
    c.registerExperiment({ name: 'e1', arms, filter: { feature: 'f' } });
    c.promote({ filter: { feature: 'f' }, arm: arms[0]!, experiment: 'e1', at: 1 }, {}, 1);
    c.promote({ filter: { feature: 'f' }, arm: arms[1]!, experiment: 'e2', at: 2 }, {}, 2);
    expect(c.policy().rules.map((r) => r.arm.name)).toEqual(['gpt-4o']);
    expect(c.policy().experiments).toEqual([]);
  });
});
