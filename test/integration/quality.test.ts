/** Quality checks and escalation, on the real dev server with the simulator's off-format answers. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBatchFile } from '../../src/batch/inputFile.js';
import { runBatch } from '../../src/batch/runBatch.js';
import type { BatchResultLine } from '../../src/batch/summary.js';
import { RequestFailedError } from '../../src/client/client.js';
import { ValidationError } from '../../src/util/validation.js';
import { useTestStack } from '../helpers/stack.js';

let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;
const SCHEMA = {
  type: 'object',
  required: ['answer', 'confidence'],
  properties: { answer: { type: 'string' }, confidence: { type: 'number', minimum: 0, maximum: 1 } },
};

const stack = useTestStack();

function script(models: Record<string, unknown[]>): void {
  stack.simulator.setFaults(
    Object.fromEntries(Object.entries(models).map(([m, s]) => [m, { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: s }])) as never,
  );
}

describe('quality checks', () => {
  // Before RE2, the first line alone put the worker at 100% CPU for good: nothing else ran.
  it('hostile patterns cannot stall the worker: the batch ends and other requests keep flowing', async () => {
    const tag = rid('redos');
    stack.simulator.setFaults({
      'gpt-4o-mini': {
        errorRates: {},
        hangRate: 0,
        malformedRate: 0,
        dropRate: 0,
        script: [],
        promptPattern: '^Spell the letter a',
        answer: `${'a'.repeat(3_000)}!`,
      },
    });
    const dir = mkdtempSync(join(tmpdir(), 'redos-'));
    const f = join(dir, 'batch.jsonl');
    const normal = Array.from({ length: 6 }, (_, i) =>
      JSON.stringify({ id: `${tag}-ok-${i}`, prompt: `Classify this ticket as billing or technical: "invoice ${i} is wrong"`, category: 'batch' }),
    );
    writeFileSync(
      f,
      [
        '{"id":"redos-1","prompt":"Explain in two sentences why caching helps web servers.","quality":{"regex":"^(\\\\w+\\\\s?)*$"}}'.replace(
          'redos-1',
          `${tag}-redos-1`,
        ),
        JSON.stringify({
          id: `${tag}-redos-2`,
          prompt: 'Spell the letter a many times.',
          model: 'gpt-4o-mini',
          quality: { regex: '^(a+)+$', maxEscalations: 0 },
        }),
        ...normal,
      ].join('\n'),
    );
    const out: BatchResultLine[] = [];
    const bad: string[] = [];
    const [summary, asked] = await Promise.all([
      runBatch(stack.client, readBatchFile(f, { category: 'batch' }), {
        concurrency: 8,
        onResult: (r) => void out.push(r),
        onInvalid: (b) => void bad.push(b.error),
      }),
      stack.client.ask({ requestId: rid('redos-bystander'), prompt: 'Summarise: the meeting moved to Tuesday.', category: 'batch' }),
    ]);
    stack.simulator.setFaults({});
    rmSync(dir, { recursive: true, force: true });
    expect(bad).toEqual([]);
    expect(asked.text.length).toBeGreaterThan(0);
    expect(summary).toMatchObject({ requests: 8, completed: 6, failed: 2 });
    const byId = new Map(out.map((r) => [r.id, r]));
    expect(normal.every((_, i) => byId.get(`${tag}-ok-${i}`)?.status === 'completed')).toBe(true);
    const redos1 = byId.get(`${tag}-redos-1`);
    expect(redos1?.error?.type).toBe('QualityCheckFailed');
    expect(redos1?.error?.message).toMatch(/does not match/);
    const redos2 = byId.get(`${tag}-redos-2`);
    expect(redos2).toMatchObject({ status: 'failed', model: 'gpt-4o-mini', error: { type: 'QualityCheckFailed' } });
    expect(redos2!.costNanos).toBeGreaterThan(0);
    // The worker still answers its metrics endpoint.
    expect((await fetch(stack.metricsUrl)).status).toBe(200);
  });

  it('a failed JSON Schema check escalates to the next tier, and both attempts are charged', async () => {
    script({ 'gemini-2-flash': ['offformat'] });
    const scope = rid('q-scope');
    const res = await stack.client.ask({
      requestId: rid('q-json'),
      prompt: 'Extract the city as JSON: "I moved to Paris last spring."',
      category: 'batch',
      model: 'gemini-2-flash',
      quality: { jsonSchema: SCHEMA },
      budgetScope: scope,
    });
    stack.simulator.setFaults({});
    expect(res.attempts[0]).toMatchObject({ model: 'gemini-2-flash', outcome: 'ok' });
    expect(res.attempts[0]?.qualityFailures?.[0]).toMatch(/^not JSON/);
    expect(res.attempts[0]?.decision).toMatch(/^escalate to the premium tier/);
    expect(res.tier).toBe('premium');
    expect(res.escalations).toEqual([{ from: 'gemini-2-flash', to: res.model, reason: expect.stringMatching(/^quality: not JSON/) }]);
    expect(JSON.parse(res.text)).toMatchObject({ answer: expect.any(String) });
    expect(res.costNanos).toBe(res.attempts.reduce((s, a) => s + a.costNanos, 0));
    expect(res.attempts[0]!.costNanos).toBeGreaterThan(0);
    expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(res.costNanos);
  });

  it('a refusal is caught and escalated', async () => {
    script({ 'llama-3-70b': ['refuse'] });
    const res = await stack.client.ask({
      requestId: rid('q-refuse'),
      prompt: 'Classify this ticket as billing or technical: "refund please"',
      category: 'batch',
      quality: {},
    });
    stack.simulator.setFaults({});
    expect(res.attempts[0]?.qualityFailures).toEqual(['the model refused']);
    expect(res.tier).toBe('standard');
  });

  it('fails with QualityCheckFailed once the escalations are spent, with the spend in the failure', async () => {
    script({ 'gemini-2-flash': ['offformat'], 'gpt-4o': ['offformat'] });
    const err = await stack.client
      .ask({
        requestId: rid('q-spent'),
        prompt: 'Extract the city as JSON: "Born in Lyon."',
        category: 'batch',
        model: 'gemini-2-flash',
        quality: { jsonSchema: SCHEMA, maxEscalations: 1 },
      })
      .catch((e: unknown) => e);
    stack.simulator.setFaults({});
    expect(err).toBeInstanceOf(RequestFailedError);
    const f = err as RequestFailedError;
    expect(f.failureType).toBe('QualityCheckFailed');
    expect(f.message).toMatch(/after 1 escalation/);
    expect(f.details?.attempts).toHaveLength(2);
    expect(f.details?.costNanos).toBe(f.details!.attempts.reduce((s, a) => s + a.costNanos, 0));
    expect(f.details?.costNanos).toBeGreaterThan(0);
  });

  it('a judge model scores the answer; a low score escalates; the judge calls are charged', async () => {
    script({ 'gemini-2-flash': ['refuse'] });
    const scope = rid('judge-scope');
    const res = await stack.client.ask({
      requestId: rid('q-judge'),
      prompt: 'Describe a sunrise over the sea.',
      model: 'gemini-2-flash',
      quality: { noRefusal: false, judge: { threshold: 0.6 } },
      budgetScope: scope,
    });
    stack.simulator.setFaults({});
    const judges = res.attempts.filter((a) => a.attemptId.startsWith('j'));
    expect(judges.map((j) => j.decision)).toEqual(['judge: 0.35', 'judge: 0.85']);
    expect(judges.every((j) => j.model === 'llama-3-70b' && j.costNanos > 0)).toBe(true);
    expect(res.escalations[0]?.reason).toBe('quality: judge llama-3-70b scored 0.35 < 0.6');
    expect(res.tier).toBe('premium');
    expect(res.costNanos).toBe(res.attempts.reduce((s, a) => s + a.costNanos, 0));
    expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(res.costNanos);
  });

  it('rejects an invalid JSON Schema before starting anything', async () => {
    const err = await stack.client.ask({ requestId: rid('q-bad'), prompt: 'hi', quality: { jsonSchema: { type: 'no-such-type' } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fields[0]).toMatch(/^quality.jsonSchema: not a valid JSON Schema/);
  });
});
