/**
 * The learning loop on the real dev server, the simulator over HTTP: an A/B experiment from start
 * to promotion (sticky units, outcomes, feedback once per request, the stopping rule, the rule it
 * leaves behind), and the tuner raising the tier of the one category whose cheap model is bad,
 * then lowering it again when the model is fixed, every change recorded and revertible.
 */
import { describe, expect, it } from 'vitest';
import { fileConfigSchema } from '../../src/config/config.js';
import type { RequestResult } from '../../src/workflows/request/contract.js';
import type { PolicyChange } from '../../src/learning/routingControl.js';
import { ValidationError } from '../../src/util/validation.js';
import { assignArm } from '../../src/learning/experiments.js';
import { useTestStack } from '../helpers/stack.js';
import { sleep, until } from '../helpers/wait.js';

let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

const learning = fileConfigSchema.parse({
  learning: {
    reportEveryMs: 200,
    policyCacheMs: 200,
    // Tuned by hand in these tests (`routing tune`), not by its timer.
    tuner: { intervalMs: 3_600_000, minSamples: 4, explore: 0.5 },
    anomaly: { enabled: false },
  },
}).learning;

const stack = useTestStack({ config: { learning } });

describe('an A/B experiment', () => {
  const name = `ab-${Date.now()}`;
  const results: RequestResult[] = [];

  it('is refused with the field named when its spec is bad', async () => {
    await expect(stack.client.learning.createExperiment({ name: 'Bad Name', arms: [], filter: {}, minSamples: 5, confidence: 0.95 })).rejects.toThrow(
      ValidationError,
    );
    await expect(
      stack.client.learning.createExperiment({
        name: 'ok',
        arms: [{ name: 'gpt-4o-mini', weight: 1, model: 'gpt-4o-mini' }],
        filter: {},
        minSamples: 5,
        confidence: 0.95,
      }),
    ).rejects.toThrow(/arms: an experiment needs at least two arms/);
  });

  it('assigns each unit one arm, every time, and counts every request of its traffic', async () => {
    // Units picked so that each arm has six (the assignment is a hash: any unit lands the same way every time).
    const arms = [
      { name: 'gpt-4o-mini', weight: 0.5, model: 'gpt-4o-mini' },
      { name: 'claude-3-5-haiku', weight: 0.5, model: 'claude-3-5-haiku' },
    ];
    const units: string[] = [];
    for (const arm of arms)
      for (let i = 0, got = 0; got < 6; i++)
        if (assignArm({ name, arms }, `user-${arm.name}-${i}`).name === arm.name && ++got) units.push(`user-${arm.name}-${i}`);
    const st = await stack.client.learning.createExperiment({
      name,
      arms,
      filter: { feature: 'abtest' },
      minSamples: 5,
      confidence: 0.95,
    });
    expect(st.state).toBe('running');
    // Registered with the routing entity, and seen by the worker's cached policy.
    // Registered with the routing entity when create returned: no wait before its traffic.
    expect((await stack.client.learning.policy()).experiments.map((e) => e.name)).toContain(name);
    for (let round = 0; round < 2; round++) {
      const batch = await Promise.all(
        units.map((unit) =>
          stack.client.ask({
            requestId: rid('ab'),
            unit,
            feature: 'abtest',
            category: 'standard',
            prompt: 'Write one friendly sentence welcoming a new customer.',
          }),
        ),
      );
      results.push(...batch);
    }
    // Other traffic is not in it.
    const other = await stack.client.ask({ requestId: rid('not-ab'), feature: 'search', prompt: 'Write one friendly sentence welcoming a new customer.' });
    expect(other.learning?.experiment).toBeUndefined();

    const assigned = results.filter((r) => r.learning?.experiment?.name === name);
    expect(assigned.length).toBeGreaterThanOrEqual(10);
    const armOf = new Map<string, string>();
    for (const r of assigned) expect(r.model).toBe(r.learning!.experiment!.arm);
    // Sticky: the same unit always got the same arm (requests i and i+12 share a unit), the one the hash gives.
    for (let u = 0; u < units.length; u++) {
      const a = results[u]!.learning?.experiment?.arm;
      const b = results[u + units.length]!.learning?.experiment?.arm;
      if (a && b) expect(b).toBe(a);
      if (a) armOf.set(units[u]!, a);
    }
    expect(new Set(armOf.values()).size).toBe(2);
    for (const [unit, arm] of armOf) expect(arm).toBe(assignArm({ name, arms }, unit).name);

    const status = await until('every outcome counted', async () => {
      const s = await stack.client.learning.experimentStatus(name);
      const counted = Object.values(s.arms).reduce((t, a) => t + a.requests, 0);
      return counted === assigned.length ? s : undefined;
    });
    for (const [arm, a] of Object.entries(status.arms)) {
      const mine = assigned.filter((r) => r.learning!.experiment!.arm === arm);
      expect(a.requests).toBe(mine.length);
      expect(a.costNanos).toBe(mine.reduce((t, r) => t + r.costNanos, 0));
      expect(a.meanQuality).toBe(1);
    }
  });

  it('concluded by its stopping rule: equal quality, and gpt-4o-mini significantly cheaper', async () => {
    const st = await stack.client.learning.experimentStatus(name);
    expect(st.state).toBe('concluded');
    expect(st.winner).toBe('gpt-4o-mini');
    expect(st.verdict).toMatchObject({ state: 'decided', qualitySignificant: false, costSignificant: true });
    expect(st.arms['gpt-4o-mini']!.meanCostNanos!).toBeLessThan(st.arms['claude-3-5-haiku']!.meanCostNanos!);
    // Off the traffic once concluded.
    await until('the experiment off the policy', async () =>
      (await stack.client.learning.policy()).experiments.some((e) => e.name === name) ? undefined : true,
    );
    expect((await stack.client.learning.listExperiments()).map((e) => e.name)).toContain(name);
  });

  it("feedback replaces a request's quality in its arm, once per request", async () => {
    const r = results.find((x) => x.learning?.experiment?.arm === 'claude-3-5-haiku')!;
    const receipt = await stack.client.feedback(r.workflowId, 0.25, { comment: 'too stiff' });
    // Experiment traffic was routed by its arm, not the thresholds: the tuner does not count it.
    expect(receipt).toMatchObject({ experiment: { name, arm: 'claude-3-5-haiku' }, tuner: false });
    await stack.client.feedback(r.workflowId, 0);
    const st = await until('the feedback counted', async () => {
      const s = await stack.client.learning.experimentStatus(name);
      return s.arms['claude-3-5-haiku']!.feedback.n > 0 ? s : undefined;
    });
    await sleep(500);
    const again = await stack.client.learning.experimentStatus(name);
    const arm = again.arms['claude-3-5-haiku']!;
    expect(arm.feedback).toEqual({ n: 1, mean: 0.25 });
    expect(arm.meanQuality).toBeCloseTo((arm.requests - 1 + 0.25) / arm.requests, 10);
    expect(st.comments['claude-3-5-haiku']).toEqual([{ workflowId: r.workflowId, score: 0.25, comment: 'too stiff' }]);
    await expect(stack.client.feedback(r.workflowId, 1.5)).rejects.toThrow(/score: must be a number from 0 to 1/);
    await expect(stack.client.feedback('no-such-request', 1)).rejects.toThrow(/no request no-such-request/);
    const plain = await stack.client.ask({ requestId: rid('plain'), category: 'standard', prompt: 'Name a colour.' });
    expect(await stack.client.feedback(plain.workflowId, 0.9)).toMatchObject({ tuner: true });
  });

  it('promote: the winner becomes the rule for the traffic, recorded in the routing history', async () => {
    const st = await stack.client.learning.promoteExperiment(name);
    expect(st.state).toBe('promoted');
    expect(st.promotion?.by).toBe('experiment');
    const history = await stack.client.learning.routingHistory();
    expect(history.at(-1)).toMatchObject({ version: st.promotion!.version, by: 'experiment' });
    // In force when promote returned: the very next request routes by the rule.
    const r = await stack.client.ask({
      requestId: rid('after'),
      unit: 'someone-new',
      feature: 'abtest',
      prompt: 'Write one friendly sentence welcoming a new customer.',
    });
    expect(r.learning?.rule).toBe(name);
    expect(r.model).toBe('gpt-4o-mini');
    await expect(stack.client.learning.promoteExperiment(name)).rejects.toThrow(/promoted already/);
  });
});

describe('the tuner', () => {
  const invoice = (i: number): string => `Summarize this invoice note in one sentence: payment ${i} of 40 EUR received.`;
  const memo = (i: number): string => `Summarize this meeting note in one sentence: item ${i}, the launch moved to May.`;
  // With the default checks (an answer, not a refusal): a refused answer escalates a tier.
  const ask = (category: string, prompt: string) => stack.client.ask({ requestId: rid(`tune-${category}`), category, prompt, quality: {} });
  let lowered: PolicyChange;

  it('raises the tier of the category whose cheap model is bad at it, and not the others', async () => {
    // The economy models refuse invoices (an answer that fails the quality checks), and only those.
    const refuse = { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: [], refuseRate: 1, promptPattern: 'invoice' };
    stack.simulator.setFaults({ 'llama-3-70b': refuse, 'mistral-large': refuse });
    const batch = await Promise.all(Array.from({ length: 6 }, (_, i) => ask('batch', invoice(i))));
    const standard = await Promise.all(Array.from({ length: 6 }, (_, i) => ask('standard', memo(i))));
    expect(
      batch.every((r) => r.escalations.length > 0 && r.attempts[0]!.tier === 'economy'),
      JSON.stringify(batch[0], null, 1),
    ).toBe(true);
    expect(standard.every((r) => r.tier === 'economy' && r.escalations.length === 0)).toBe(true);

    const proposal = await until('the proposal', async () => {
      const p = await stack.client.learning.tune({ dryRun: true });
      return Array.isArray(p) && p.length > 0 ? p : undefined;
    });
    expect(proposal.map((c) => c.category)).toEqual(['batch']);
    expect(proposal[0]).toMatchObject({ from: { standard: 0.35 }, to: { standard: 0 } });
    expect(proposal[0]!.evidence.economy).toEqual({ n: 6, good: 0 });
    // A dry run changes nothing.
    expect((await stack.client.learning.policy()).categories).toEqual({});

    const change = await stack.client.learning.tune();
    expect(change).not.toBeNull();
    lowered = change as PolicyChange;
    expect(lowered).toMatchObject({ by: 'operator', after: { categories: { batch: { standard: 0 } } } });
    expect(lowered.changes?.[0]?.evidence.economy).toEqual({ n: 6, good: 0 });
    await sleep(400);
    const after = await Promise.all(Array.from({ length: 10 }, (_, i) => ask('batch', invoice(100 + i))));
    const routed = after.filter((r) => !r.learning!.explore);
    const explored = after.filter((r) => r.learning!.explore);
    expect(routed.length).toBeGreaterThan(0);
    expect(routed.every((r) => r.attempts[0]!.tier === 'standard' && r.escalations.length === 0)).toBe(true);
    expect(explored.every((r) => r.attempts[0]!.tier === 'economy')).toBe(true);
    const still = await ask('standard', memo(99));
    expect(still.attempts[0]!.tier).toBe('economy');
  });

  it('lowers it again when the cheap model is fixed (measured on exploration traffic), and cost falls back', async () => {
    stack.simulator.setFaults({});
    // A tick closes the window that saw the broken model (its exploration traffic was refused too).
    await sleep(500);
    expect(await stack.client.learning.tune()).toBeNull();
    const explored: RequestResult[] = [];
    for (let i = 0; explored.length < 5 && i < 60; i += 6) {
      const rs = await Promise.all(Array.from({ length: 6 }, (_, k) => ask('batch', invoice(200 + i + k))));
      explored.push(...rs.filter((r) => r.learning!.explore));
    }
    expect(explored.length).toBeGreaterThanOrEqual(4);
    const change = await until('the tuner to lower it back', async () => {
      const p = await stack.client.learning.tune({ dryRun: true });
      return Array.isArray(p) && p.some((c) => c.category === 'batch' && c.to.standard === 0.35) ? stack.client.learning.tune() : undefined;
    });
    expect(change).toMatchObject({ after: { categories: {} } });
    await sleep(400);
    const back = await Promise.all(Array.from({ length: 4 }, (_, i) => ask('batch', invoice(300 + i))));
    expect(back.every((r) => r.tier === 'economy')).toBe(true);
    expect((await stack.client.learning.routingHistory()).filter((h) => h.version >= lowered.version).length).toBe(2);
    const econCost = back.reduce((t, r) => t + r.costNanos, 0) / back.length;
    const std = await stack.client.ask({ requestId: rid('std-cost'), category: 'batch', prompt: invoice(300), minTier: 'standard', quality: {} });
    expect(econCost).toBeLessThan(std.costNanos);
  });

  it('every change is in the history with its evidence, and a revert restores the policy before it (recorded too)', async () => {
    const history = await stack.client.learning.routingHistory();
    const last = history.at(-1)!;
    const reverted = await stack.client.learning.revert(last.version);
    expect(reverted).toMatchObject({ by: 'revert', after: last.before });
    expect((await stack.client.learning.policy()).categories).toEqual(last.before.categories);
    await expect(stack.client.learning.revert(9_999)).rejects.toThrow(/no routing change 9999/);
  });
});
