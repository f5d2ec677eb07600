/**
 * The worker's Prometheus metrics, scraped over HTTP from a real worker on the dev server: the
 * seed's names and labels, counted once per event (settlements the entity applied, requests that
 * ended), not again when histories replay.
 */
import { describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.js';
import { createSwitchyardWorker } from '../../src/workers/createWorker.js';
import { createLogger } from '../../src/util/logger.js';
import { approveSpendSignal, traceQuery, workflowIdFor } from '../../src/workflows/request/contract.js';
import type { RequestResult } from '../../src/workflows/request/contract.js';
import { budgetWorkflowId, statusQuery } from '../../src/workflows/budget/contract.js';

let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

const stack = useTestStack();

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The Prometheus text format, parsed (one sample per line; comments skipped). */
async function scrape(): Promise<Sample[]> {
  const res = await fetch(stack.metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const out: Sample[] = [];
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

const sum = (samples: Sample[], name: string, where: Record<string, string> = {}): number =>
  samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((t, s) => t + s.value, 0);

function fault(model: string, spec: Record<string, unknown>): void {
  stack.simulator.setFaults({ [model]: { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: [], ...spec } });
}

describe('metrics', () => {
  it('count each paid attempt, its cost to the nanodollar, routing decisions and quality once, by feature; replays add nothing', async () => {
    const before = await scrape();
    const scope = rid('m-scope');
    const results: RequestResult[] = [];
    for (let i = 0; i < 3; i++)
      results.push(
        await stack.client.ask({ requestId: rid('m-search'), prompt: `Name a colour, ${i}.`, category: 'batch', feature: 'search', budgetScope: scope }),
      );
    results.push(await stack.client.ask({ requestId: rid('m-plain'), prompt: 'Name a tree.', category: 'batch', budgetScope: scope }));
    // A fallback: the pinned model fails once (5xx) and the request moves on.
    fault('gpt-4o-mini', { errorRates: { '500': 1 } });
    results.push(
      await stack.client.ask({
        requestId: rid('m-fallback'),
        prompt: 'Name a bird.',
        model: 'gpt-4o-mini',
        fallbacks: ['claude-3-5-haiku'],
        noFallback: false,
        feature: 'search',
        budgetScope: scope,
      }),
    );
    stack.simulator.setFaults({});
    // Quality checks without a judge: a passed check is a score of 1.
    results.push(
      await stack.client.ask({
        requestId: rid('m-quality'),
        prompt: 'Answer as JSON with a field "answer": what is 2+2?',
        category: 'batch',
        quality: { jsonSchema: { type: 'object' } },
        budgetScope: scope,
      }),
    );

    const after = await scrape();
    const d = (name: string, where: Record<string, string> = {}) => sum(after, name, where) - sum(before, name, where);
    const paid = results.flatMap((r) => r.attempts.filter((a) => a.outcome === 'ok'));
    expect(d('llm_model_requests_total')).toBe(paid.length);
    const searchPaid = results.filter((r) => r.feature === 'search').flatMap((r) => r.attempts.filter((a) => a.outcome === 'ok')).length;
    expect(d('llm_model_requests_total', { feature: 'search' })).toBe(searchPaid);
    expect(d('llm_model_requests_total', { feature: 'unspecified' })).toBe(paid.length - searchPaid);
    expect(results.map((r) => r.feature)).toEqual(['search', 'search', 'search', 'unspecified', 'search', 'unspecified']);
    // Cost: exact nanodollars, model by model.
    for (const model of new Set(paid.map((a) => a.model))) {
      const nanos = paid.filter((a) => a.model === model).reduce((t, a) => t + a.costNanos, 0);
      expect(Math.round(d('llm_model_cost_dollars', { model }) * 1e9)).toBe(nanos);
    }
    expect(Math.round(d('llm_model_cost_dollars') * 1e9)).toBe(results.reduce((t, r) => t + r.costNanos, 0));
    expect(d('llm_model_latency_seconds_count')).toBe(paid.length);
    // Routing: one decision per provider call; the fallback is named as such.
    const calls = results.flatMap((r) => r.attempts.filter((a) => a.outcome !== 'budget_denied' && a.outcome !== 'escalated'));
    expect(d('llm_routing_decisions_total')).toBe(calls.length);
    expect(d('llm_routing_decisions_total', { reason: 'fallback' })).toBe(1);
    expect(d('llm_routing_decisions_total', { reason: 'primary' })).toBe(results.length);
    expect(d('switchyard_provider_attempts_total', { model: 'gpt-4o-mini', kind: 'transient' })).toBeGreaterThanOrEqual(1);
    const quality = results.at(-1);
    expect(d('llm_model_quality_score_count', { model: quality?.model ?? '?' })).toBe(1);
    expect(d('llm_model_quality_score_bucket', { model: quality?.model ?? '?', le: '0.95' })).toBe(0);
    expect(d('llm_model_quality_score_bucket', { model: quality?.model ?? '?', le: '1' })).toBe(1);
    // The budget's gauges: this scope's spend, in dollars.
    const spent = sum(after, 'switchyard_budget_spent_dollars', { scope });
    expect(Math.round(spent * 1e9)).toBe(results.reduce((t, r) => t + r.costNanos, 0));

    // Queries on the closed runs replay their histories on this worker; nothing is counted again.
    for (const r of results) await stack.client.temporal.workflow.getHandle(r.workflowId).query(traceQuery);
    const replayed = await scrape();
    for (const name of ['llm_model_requests_total', 'llm_model_cost_dollars', 'llm_routing_decisions_total', 'llm_model_quality_score_count'])
      expect(sum(replayed, name)).toBe(sum(after, name));
  });

  it('the seed names, labels and buckets are exposed; no label holds a prompt or an id', async () => {
    const prompt = rid('secret-prompt-text');
    const r = await stack.client.ask({ requestId: rid('m-labels'), prompt, category: 'batch', feature: 'labels-check' });
    const samples = await scrape();
    const names = new Set(samples.map((s) => s.name));
    for (const n of [
      'llm_model_requests_total',
      'llm_model_cost_dollars',
      'llm_model_quality_score_bucket',
      'llm_model_latency_seconds_bucket',
      'llm_routing_decisions_total',
      'switchyard_budget_allocated_dollars',
      'switchyard_budget_spent_dollars',
      'switchyard_budget_reserved_dollars',
      'switchyard_circuit_state',
      'switchyard_provider_calls_in_flight',
      'switchyard_provider_attempts_total',
    ])
      expect(names).toContain(n);
    expect(Object.keys(samples.find((s) => s.name === 'llm_model_requests_total')?.labels ?? {}).sort()).toEqual(['feature', 'model', 'tier']);
    expect(Object.keys(samples.find((s) => s.name === 'llm_model_cost_dollars')?.labels ?? {}).sort()).toEqual(['model', 'tier']);
    expect(Object.keys(samples.find((s) => s.name === 'llm_routing_decisions_total')?.labels ?? {}).sort()).toEqual(['from_tier', 'reason', 'to_tier']);
    expect(samples.filter((s) => s.name === 'llm_model_latency_seconds_bucket' && s.labels.model === r.model).map((s) => s.labels.le)).toEqual([
      '0.1',
      '0.5',
      '1',
      '2',
      '5',
      '10',
      '30',
      '+Inf',
    ]);
    const values = samples.flatMap((s) => Object.values(s.labels));
    expect(values.some((v) => v.includes('secret-prompt-text') || v.includes(r.workflowId) || v.includes(r.requestId))).toBe(false);
    expect(values).toContain('labels-check');
  });

  it('a worker refuses a namespace without the search attributes its workflows set, naming the commands to create them', async () => {
    const namespace = rid('no-attrs');
    const svc = stack.client.temporal.connection.workflowService;
    // protobufjs takes a number for this Long field; its typings name only Long (not a dependency here).
    await svc.registerNamespace({ namespace, workflowExecutionRetentionPeriod: { seconds: 86_400 } as never });
    for (let i = 0; i < 50; i++) {
      const ok = await svc.describeNamespace({ namespace }).then(
        () => true,
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await expect(
      createSwitchyardWorker({
        config: { ...stack.config, namespace, metrics: { ...stack.config.metrics, enabled: false } },
        address: stack.address,
        log: createLogger('silent'),
      }),
    ).rejects.toThrow(
      new RegExp(
        `namespace "${namespace}" lacks the search attributes .*LlmFeature[\\s\\S]*temporal operator search-attribute create --namespace ${namespace} --name LlmFeature --type Keyword`,
      ),
    );
  });

  it('routing reasons: a hedge counts both calls; a call after a budget wait keeps its reason; a same-model retry is a retry', async () => {
    const count = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const x of (await scrape()).filter((x) => x.name === 'llm_routing_decisions_total'))
        out[x.labels.reason ?? '?'] = (out[x.labels.reason ?? '?'] ?? 0) + x.value;
      return out;
    };
    const d = (a: Record<string, number>, b: Record<string, number>, k: string): number => (a[k] ?? 0) - (b[k] ?? 0);
    let before = await count();
    fault('gemini-2-flash', { script: ['hang'] });
    const hedged = await stack.client.ask({
      requestId: rid('m-hedge'),
      prompt: 'Explain why the sky is blue in two sentences.',
      model: 'gemini-2-flash',
      hedgeAfterMs: 500,
    });
    stack.simulator.setFaults({});
    expect(hedged.attempts.map((a) => a.outcome).sort()).toEqual(['hedged_out', 'ok']);
    let after = await count();
    expect([d(after, before, 'primary'), d(after, before, 'hedge')]).toEqual([1, 1]);

    // A 5xx retried on the same model (3 attempts in the stack's policy), then an answer.
    before = after;
    fault('gpt-4o-mini', { script: [500] });
    const retried = await stack.client.ask({ requestId: rid('m-retry'), prompt: 'Name a river.', model: 'gpt-4o-mini', noFallback: true });
    stack.simulator.setFaults({});
    expect(retried.attempts.map((a) => a.outcome)).toEqual(['transient', 'ok']);
    after = await count();
    expect([d(after, before, 'primary'), d(after, before, 'retry'), d(after, before, 'fallback')]).toEqual([1, 1, 0]);

    // Denied, approved, then called: the call is the request's primary one.
    before = after;
    const scope = rid('m-wait');
    await stack.client.setBudget(scope, { totalNanos: 4, policies: { critical: 'wait', standard: 'wait', batch: 'wait' } });
    const requestId = rid('m-waiting');
    const pending = stack.client.ask({
      requestId,
      prompt: 'Name a mountain.',
      model: 'gpt-4o-mini',
      noFallback: true,
      category: 'critical',
      budgetScope: scope,
    });
    for (let i = 0; i < 100; i++) {
      const st = await stack.client.temporal.workflow
        .getHandle(budgetWorkflowId(stack.config.taskQueue, scope))
        .query(statusQuery)
        .catch(() => undefined);
      if ((st?.counters.denials ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await stack.client.temporal.workflow.getHandle(workflowIdFor(requestId)).signal(approveSpendSignal, { by: 'test' });
    const waited = await pending;
    expect(waited.attempts.map((a) => a.outcome)).toEqual(['budget_denied', 'ok']);
    after = await count();
    expect([d(after, before, 'primary'), d(after, before, 'retry')]).toEqual([1, 0]);
  });

  it('a worker that cannot give a retry verdict does not end the request: it moves to the next model', async () => {
    await stack.restartWorker((real) => ({
      // The paid call's own verdict is lost with it: the attempt fails as an activity, and the workflow asks again.
      callModel: async (input: Parameters<typeof real.callModel>[0]) => {
        if (input.model === 'gpt-4o-mini') throw new Error('worker bug');
        return real.callModel(input);
      },
      retryVerdict: async () => {
        throw new Error('no verdict');
      },
    }));
    try {
      const res = await stack.client.ask({ requestId: rid('m-noverdict'), prompt: 'Name a lake.', model: 'gpt-4o-mini', fallbacks: ['claude-3-5-haiku'] });
      expect(res.model).toBe('claude-3-5-haiku');
      expect(res.attempts[0]).toMatchObject({ model: 'gpt-4o-mini', outcome: 'internal' });
    } finally {
      await stack.restartWorker();
    }
  });
});
