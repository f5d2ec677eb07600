/**
 * Pipelines on the real dev server: client batches (ordered results, resumed without paying
 * twice), a detached batch of 1,000 with continue-as-new, inspection of running and failed runs,
 * replay of live histories, and a failed request re-driven to success.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestFailedError } from '../../src/client/client.js';
import { readBatchFile } from '../../src/batch/inputFile.js';
import { runBatch } from '../../src/batch/runBatch.js';
import { prepareDetachedBatch } from '../../src/batch/detached.js';
import type { BatchResultLine } from '../../src/batch/summary.js';
import { historiesFromServer, replayHistories } from '../../src/replay/replay.js';
import { inject } from 'vitest';
import { useTestStack } from '../helpers/stack.js';
import { entityTaskQueue } from '../../src/workflows/taskQueues.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-pipelines-'));
const tag = `${Date.now().toString(36)}`;

const stack = useTestStack();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PROMPTS = [
  'Classify this ticket as billing or technical: "I was charged twice."',
  'Summarise in two sentences: revenue grew 12% while costs stayed flat, and churn fell.',
  'Explain step by step how to prove that the square root of 2 is irrational, then compare two proofs.',
  'Translate to French: "The meeting moved to Thursday."',
];

function requests(prefix: string, n: number, scope: string) {
  return Array.from({ length: n }, (_, i) => ({
    requestId: `${prefix}-${String(i).padStart(4, '0')}`,
    prompt: `${PROMPTS[i % PROMPTS.length]} (#${i})`,
    category: i % 3 === 0 ? 'batch' : 'standard',
    budgetScope: scope,
  }));
}

describe('client batches', () => {
  it('returns results in input order and resumes a half-finished batch without charging anything twice', async () => {
    const scope = `pipe-${tag}`;
    const all = requests(`half-${tag}`, 40, scope);
    // The first run "crashes" after half the requests: only those were submitted.
    const first = await stack.client.batch(all.slice(0, 20), { concurrency: 8 });
    expect(first.summary.completed).toBe(20);
    const ledgerAfterFirst = stack.ledger.entries().filter((e) => e.workflowId.startsWith(`llm-half-${tag}`)).length;

    const seen: string[] = [];
    const second = await stack.client.batch(all, { concurrency: 8, onResult: (r) => void seen.push(r.id) });
    expect(second.results.map((r) => r.id)).toEqual(all.map((r) => r.requestId));
    expect(seen).toEqual(all.map((r) => r.requestId));
    expect(second.summary).toMatchObject({ requests: 40, completed: 40, failed: 0, alreadyStarted: 20 });
    // The re-collected half is identical: same run, same answer, same cost.
    expect(second.results.slice(0, 20)).toEqual(first.results);

    const entries = stack.ledger.entries().filter((e) => e.workflowId.startsWith(`llm-half-${tag}`));
    expect(ledgerAfterFirst).toBe(20);
    expect(entries).toHaveLength(40);
    expect(new Set(entries.map((e) => e.workflowId)).size).toBe(40);
    const total = second.results.reduce((s, r) => s + r.costNanos, 0);
    expect(second.summary.costNanos).toBe(total);
    expect(entries.reduce((s, e) => s + e.costNanos, 0)).toBe(total);
    expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(total);
    expect(second.summary.premiumBaselineCostNanos).toBeGreaterThan(total);
  });

  it('a malformed line is reported with its number and skipped; the rest run', async () => {
    const f = join(dir, 'mixed.jsonl');
    writeFileSync(
      f,
      [
        `{"id":"mx-${tag}-1","prompt":"Classify: refund please"}`,
        '{"id": "mx-2", "prompt": ',
        `{"id":"mx-${tag}-3","prompt":"Classify: app crashes","category":"batch"}`,
        `{"id":"mx-${tag}-4","prompt":"","category":"batch"}`,
      ].join('\n'),
    );
    const out: BatchResultLine[] = [];
    const bad: string[] = [];
    const s = await runBatch(stack.client, readBatchFile(f, { category: 'batch' }), {
      concurrency: 4,
      onResult: (r) => void out.push(r),
      onInvalid: (b) => void bad.push(b.error),
    });
    expect(out.map((r) => r.id)).toEqual([`mx-${tag}-1`, `mx-${tag}-3`]);
    expect(out.every((r) => r.status === 'completed' && r.tier === 'economy')).toBe(true);
    expect(bad).toEqual([expect.stringMatching(/^line 2: not valid JSON/), 'line 4: prompt: must not be empty']);
    expect(s).toMatchObject({ requests: 2, completed: 2, invalid: 2 });
  });

  it('a failed request comes back as a failed line with its error, not an exception', async () => {
    const [r] = (await stack.client.batch([{ requestId: `nomodel-${tag}`, prompt: 'hi', maxLatencyMs: 1 }])).results;
    expect(r).toMatchObject({ status: 'failed', error: { type: 'NoEligibleModel', message: expect.stringMatching(/maxLatencyMs/) }, costNanos: 0 });
  });
});

describe('detached batch', () => {
  it('runs 1,000 requests as child workflows across continue-as-new runs; status and ordered results read back', async () => {
    const scope = `det-${tag}`;
    const reqs = requests(`det-${tag}`, 1000, scope);
    // Two of them ran before the batch: the batch collects them instead of running them again.
    await stack.client.ask(reqs[3]!);
    await stack.client.ask(reqs[500]!);
    const f = join(dir, 'detached.jsonl');
    writeFileSync(f, `${reqs.map(({ requestId, ...r }) => JSON.stringify({ id: requestId, ...r })).join('\n')}\n{"id": "det-bad"}\n`);
    const batchId = `det-${tag}`;
    const prepared = await prepareDetachedBatch(f, batchId, join(dir, 'batches'), {});
    expect(prepared.requests).toBe(1000);
    expect(prepared.invalid).toEqual([{ line: 1001, id: 'det-bad', error: expect.stringMatching(/^line 1001: prompt: is required/) }]);
    await stack.client.startBatch({ batchId, source: prepared.source, concurrency: 64, childrenPerRun: 300, pageSize: 50 });
    await expect(stack.client.startBatch({ batchId, source: prepared.source, concurrency: 64 })).rejects.toThrow(/already exists/);

    let st = await stack.client.batchStatus(batchId);
    for (let i = 0; st.state === 'running' && i < 600; i++) {
      expect(st.inFlight).toBeLessThanOrEqual(64);
      await new Promise((r) => setTimeout(r, 500));
      st = await stack.client.batchStatus(batchId);
    }
    expect(st.state).toBe('completed');
    expect(st.runs).toBeGreaterThanOrEqual(4); // 1,000 children at 300 per run
    expect(st.summary).toMatchObject({ requests: 1000, completed: 1000, failed: 0, invalid: 1, alreadyStarted: 2 });

    const lines: BatchResultLine[] = [];
    const collected = await stack.client.batchResults(batchId, { onResult: (r) => void lines.push(r) });
    expect(lines.map((l) => l.id)).toEqual(reqs.map((r) => r.requestId));
    expect(collected.costNanos).toBe(st.summary.costNanos);
    const ledger = stack.ledger.entries().filter((e) => e.workflowId.startsWith(`llm-det-${tag}`));
    expect(ledger).toHaveLength(1000);
    expect(ledger.reduce((s, e) => s + e.costNanos, 0)).toBe(st.summary.costNanos);
    expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(st.summary.costNanos);
    // Children carry the batch (search attribute LlmBatch) and their title (memo).
    const run = await stack.client.inspect(`llm-det-${tag}-0005`);
    expect(run).toMatchObject({ status: 'COMPLETED', batchId, title: expect.stringMatching(/^Summarise in two sentences/) });
    const inBatch = await stack.client.listRuns({ query: `LlmBatch = '${batchId}'`, limit: 2000 });
    expect(inBatch).toHaveLength(998); // the two that ran before the batch were not started by it
  }, 300_000);
});

describe('inspection, replay and re-drive', () => {
  it('shows a running request waiting on a rate limit, then a cancelled one', async () => {
    stack.simulator.setFaults({ 'gpt-4o-mini': { errorRates: { '429': 1 }, retryAfterSeconds: 60, hangRate: 0, malformedRate: 0, dropRate: 0, script: [] } });
    const h = await stack.client.start({ requestId: `wait-${tag}`, prompt: 'Say hi', model: 'gpt-4o-mini', noFallback: true });
    let view = await stack.client.inspect(h.workflowId);
    for (let i = 0; view.trace?.phase !== 'waiting' && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      view = await stack.client.inspect(h.workflowId);
    }
    stack.simulator.setFaults({});
    expect(view.status).toBe('RUNNING');
    expect(view.trace).toMatchObject({ phase: 'waiting', candidates: [expect.objectContaining({ model: 'gpt-4o-mini' })] });
    expect(view.trace?.attempts[0]).toMatchObject({ model: 'gpt-4o-mini', outcome: 'rate_limited', status: 429 });
    await stack.client.cancel(h.workflowId);
    await expect(stack.client.result(h.workflowId)).rejects.toThrow();
    expect((await stack.client.inspect(h.workflowId)).status).toBe('CANCELLED');
  });

  it('a failed request is re-driven to success: new run, same id; what the failed run settled is not charged again', async () => {
    const scope = `redrive-${tag}`;
    const id = `redrive-${tag}`;
    const schema = { type: 'object', required: ['answer'], properties: { answer: { type: 'string' } } };
    // The cheap answer is off-format (paid, then escalated); every other model is down.
    const down = { errorRates: { '500': 1 }, hangRate: 0, malformedRate: 0, dropRate: 0, script: [] };
    stack.simulator.setFaults({ 'gemini-2-flash': { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: ['offformat'] }, '*': down } as never);
    const input = {
      requestId: id,
      prompt: 'Extract the city as JSON: "I moved to Paris last spring."',
      category: 'batch',
      model: 'gemini-2-flash',
      quality: { jsonSchema: schema },
      budgetScope: scope,
    };
    const failure = await stack.client.ask(input).then(
      () => undefined,
      (e: unknown) => e,
    );
    stack.simulator.setFaults({});
    expect(failure).toBeInstanceOf(RequestFailedError);
    const failedCost = (failure as RequestFailedError).details?.costNanos ?? 0;
    expect(failedCost).toBeGreaterThan(0); // the off-format answer was paid for
    const old = await stack.client.inspect(`llm-${id}`);
    expect(old.status).toBe('FAILED');

    // Listed as failed, re-driven by query.
    const failed = await stack.client.listRuns({ query: `WorkflowId = 'llm-${id}' AND ExecutionStatus = 'Failed'` });
    expect(failed.map((r) => r.runId)).toEqual([old.runId]);
    const rep = await stack.client.redrive({ query: `WorkflowId = 'llm-${id}'` });
    expect(rep.restarted).toEqual([{ workflowId: `llm-${id}`, previousRunId: old.runId, runId: expect.any(String), previousCostNanos: failedCost }]);
    const res = await stack.client.result(`llm-${id}`);
    expect(res.requestId).toBe(id);
    const now = await stack.client.inspect(`llm-${id}`);
    expect(now).toMatchObject({ status: 'COMPLETED', runId: rep.restarted[0]!.runId, redriveOf: old.runId });
    expect(now.runId).not.toBe(old.runId);

    // Spend: the failed run's settled attempt once, plus the new run's own attempts, exactly.
    const entries = stack.ledger.entries().filter((e) => e.workflowId === `llm-${id}`);
    expect(new Set(entries.map((e) => e.key)).size).toBe(entries.length);
    expect(entries.filter((e) => e.key.includes(old.runId)).reduce((s, e) => s + e.costNanos, 0)).toBe(failedCost);
    expect(entries.filter((e) => e.key.includes(now.runId)).reduce((s, e) => s + e.costNanos, 0)).toBe(res.costNanos);
    expect((await stack.client.budgetStatus(scope)).spentNanos).toBe(failedCost + res.costNanos);

    // Nothing left to re-drive: the latest run completed.
    const again = await stack.client.redrive({ query: `WorkflowId = 'llm-${id}'` });
    expect(again.restarted).toEqual([]);
    expect(again.skipped[0]?.reason).toMatch(/later run/);
  });

  it('every run on this task queue replays against the current code', async () => {
    let n = 0;
    const failures: string[] = [];
    for await (const r of replayHistories(
      historiesFromServer(stack.client.temporal, {
        query: `TaskQueue = '${stack.config.taskQueue}' AND WorkflowType != 'llmRequest' OR (TaskQueue = '${stack.config.taskQueue}' AND WorkflowId STARTS_WITH 'llm-redrive') OR TaskQueue = '${entityTaskQueue(stack.config.taskQueue)}'`,
      }),
      { bundlePath: inject('workflowBundlePath') },
    )) {
      n += 1;
      if (!r.ok) failures.push(`${r.workflowId}: ${r.error}`);
    }
    expect(failures).toEqual([]);
    expect(n).toBeGreaterThanOrEqual(6); // batch runs, budget entities, health, both runs of the re-driven request
  });
});
