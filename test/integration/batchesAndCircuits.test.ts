/**
 * Batches and circuits under real traffic (issue 9) on the real dev server: detached batch ids and
 * duplicate lines, a batch held up by a tight budget that says what it waits on, results as they
 * finish, and one trial request for a half-open circuit.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchIdTakenError, prepareDetachedBatch } from '../../src/batch/detached.js';
import { readBatchFile } from '../../src/batch/inputFile.js';
import { type BatchProgress, runBatch } from '../../src/batch/runBatch.js';
import type { BatchResultLine } from '../../src/batch/summary.js';
import { loadConfig } from '../../src/config/config.js';
import { startTestStack, type TestStack, useTestStack } from '../helpers/stack.js';
import { until } from '../helpers/wait.js';
import type { RequestResult } from '../../src/workflows/request/contract.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-batchh-'));
const tag = Date.now().toString(36);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('detached batches', () => {
  const stack = useTestStack();

  it('a repeated id is skipped by the worker too (run once, counted once), and a taken batch id never has its input overwritten', async () => {
    const batchId = `dup-${tag}`;
    const f = join(dir, 'dup.jsonl');
    const lines = [
      { id: `d-${tag}-1`, prompt: 'Say one.' },
      { id: `d-${tag}-2`, prompt: 'Say two.' },
      { id: `d-${tag}-1`, prompt: 'Say one, but differently.' },
      { id: `d-${tag}-3`, prompt: 'Say three.' },
    ];
    writeFileSync(f, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const prepared = await prepareDetachedBatch(f, batchId, join(dir, 'batches'), {});
    expect(prepared.requests).toBe(3);
    expect(prepared.duplicates).toEqual([{ line: 3, id: expect.stringMatching(/-1$/), error: expect.stringMatching(/repeats line 1/) }]);
    await stack.client.startBatch({ batchId, source: prepared.source, concurrency: 4, duplicates: prepared.duplicates.map((d) => d.line) });
    let st = await stack.client.batchStatus(batchId);
    for (let i = 0; i < 300 && st.state !== 'completed'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      st = await stack.client.batchStatus(batchId);
    }
    expect(st.state).toBe('completed');
    expect(st.summary.requests).toBe(3);
    expect(st.summary.alreadyStarted).toBe(0);
    expect(st.summary.invalid).toBe(1);
    expect(st.summary.invalidLines[0]?.line).toBe(3);
    const ledger = stack.ledger.entries().filter((e) => e.workflowId.startsWith(`llm-d-${tag}-`));
    expect(ledger).toHaveLength(3);
    expect(ledger.reduce((s, e) => s + e.costNanos, 0)).toBe(st.summary.costNanos);

    // The same id with other content: refused before anything is copied; the first input stays.
    const before = readFileSync(prepared.source.path, 'utf8');
    const g = join(dir, 'other.jsonl');
    writeFileSync(g, `${JSON.stringify({ id: 'x', prompt: 'Other.' })}\n`);
    await expect(prepareDetachedBatch(g, batchId, join(dir, 'batches'), {})).rejects.toBeInstanceOf(BatchIdTakenError);
    expect(readFileSync(prepared.source.path, 'utf8')).toBe(before);
    expect(await stack.client.batchExists(batchId)).toBe(true);
    expect(await stack.client.batchExists(`never-${tag}`)).toBe(false);
  });
});

describe('a batch over a tight budget', () => {
  let stack: TestStack;
  beforeAll(async () => {
    const base = loadConfig({}).budget;
    stack = await startTestStack({
      latencyScale: 0.2,
      config: { budget: { ...base, policies: { critical: 'downgrade', standard: 'downgrade', batch: 'wait' } } },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('progress says how many wait on the budget and until when; --order finish hands results over as they finish; a bounded wait ends them', async () => {
    const scope = `tight-${tag}`;
    // Room for a few requests in category batch (25% of the total).
    await stack.client.setBudget(scope, { totalNanos: 4 * 3 * 60_000 });
    const f = join(dir, 'tight.jsonl');
    const n = 12;
    writeFileSync(
      f,
      `${Array.from({ length: n }, (_, i) => JSON.stringify({ id: `t-${tag}-${i}`, prompt: 'Write one sentence about rivers.', category: 'batch', model: 'gpt-4o-mini', noFallback: true, maxOutputTokens: 100, budgetScope: scope })).join('\n')}\n`,
    );
    const progress: BatchProgress[] = [];
    const order: string[] = [];
    const handedAt: number[] = [];
    const summary = await runBatch(stack.client, readBatchFile(f), {
      concurrency: n,
      order: 'finish',
      waitSampleMs: 300,
      requestDefaults: { maxBudgetWaitMs: 6_000 },
      onProgress: (p) => progress.push(p),
      onResult: (r: BatchResultLine) => {
        order.push(`${r.id}:${r.status}`);
        handedAt.push(Date.now());
      },
    });
    expect(summary.requests).toBe(n);
    expect(summary.completed).toBeGreaterThan(0);
    expect(summary.failed).toBeGreaterThan(0);
    expect(summary.failures.BudgetExceeded).toBe(summary.failed);
    const waiting = progress.map((p) => p.waiting?.budget).find((w) => w !== undefined);
    expect(waiting?.count).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(waiting?.until ?? ''))).toBe(false);
    // Results came out as they finished: the first ones were handed over seconds before the waiters ended.
    expect(order).toHaveLength(n);
    expect(new Set(order.map((o) => o.split(':')[0])).size).toBe(n);
    expect(order[0]).toMatch(/:completed$/);
    expect((handedAt[n - 1] ?? 0) - (handedAt[0] ?? 0)).toBeGreaterThan(3_000);
  });
});

describe('a half-open circuit', () => {
  let stack: TestStack;
  beforeAll(async () => {
    // Catalog latency (gemini answers in ~250 ms): the trial is still out while the others route.
    stack = await startTestStack({
      latencyScale: 1,
      config: {
        health: { failureThreshold: 2, cooldownMs: 2_000, enabled: true },
        retry: {
          maximumAttempts: 1,
          initialIntervalMs: 100,
          backoffCoefficient: 2,
          maximumIntervalMs: 1_000,
          maxRetryAfterMs: 10_000,
          maxRateLimitWaitMs: 60_000,
        },
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('lets exactly one request through as its trial; the others go elsewhere until it reports', async () => {
    const prompt = 'Explain why the sky is blue to a child.';
    stack.simulator.setFaults({ 'gemini-2-flash': { errorRates: { '500': 1 }, hangRate: 0, malformedRate: 0, dropRate: 0, script: [] } });
    for (let i = 0; i < 2; i++) {
      const r = await stack.client.ask({ requestId: `ho-${tag}-${i}`, prompt });
      expect(r.attempts[0]?.model).toBe('gemini-2-flash');
    }
    for (let i = 0; i < 50 && (await stack.client.health()).find((m) => m.model === 'gemini-2-flash')?.state !== 'open'; i++)
      await new Promise((r) => setTimeout(r, 100));
    // The model recovers, and its answers are held: the trial is out, deterministically, until
    // every other request has been answered elsewhere; then it is let through.
    stack.simulator.setFaults({});
    const release = stack.simulator.hold('gemini-2-flash');
    await new Promise((r) => setTimeout(r, 2_300));
    const asked = Array.from({ length: 10 }, (_, i) => stack.client.ask({ requestId: `ho-${tag}-c${i}`, prompt }));
    const settled: Array<RequestResult | undefined> = Array.from({ length: 10 }, () => undefined);
    asked.forEach((p, i) => void p.then((r) => (settled[i] = r)));
    await until(
      'nine answered elsewhere while the trial is held',
      async () => (settled.filter(Boolean).length === 9 && stack.simulator.heldCount('gemini-2-flash') === 1 ? true : undefined),
      60_000,
    );
    release();
    const results = await Promise.all(asked);
    const onHalfOpen = results.filter((r) => r.attempts.some((a) => a.model === 'gemini-2-flash'));
    expect(onHalfOpen).toHaveLength(1);
    expect(onHalfOpen[0]?.model).toBe('gemini-2-flash');
    for (const r of results) if (r !== onHalfOpen[0]) expect(r.skipped?.some((s) => s.model === 'gemini-2-flash' && s.why === 'circuit open')).toBe(true);
  });
});
