/** Batch input parsing, page reading from byte offsets, summaries, titles and run queries. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { resultsWriter } from '../../src/batch/resultsFile.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { duplicateLine, IdRegistry, parseBatchLine } from '../../src/batch/batchInput.js';
import { addInvalid, addResult, emptySummary, formatSummary } from '../../src/batch/summary.js';
import { LINE_MAX_BYTES, readPage } from '../../src/activities/batch/index.js';
import { readBatchFile } from '../../src/batch/inputFile.js';
import { requestRunsQuery } from '../../src/client/client.js';
import type { BatchSource } from '../../src/workflows/batch/contract.js';
import { requestTitle, workflowIdFor } from '../../src/workflows/request/contract.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-batch-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('batch lines', () => {
  it('maps id to the request id and applies the default category only where none is given', () => {
    const a = parseBatchLine('{"id": 7, "prompt": "Classify: refund please"}', 3, { category: 'batch' });
    expect(a).toEqual({ ok: true, item: { line: 3, id: '7', request: { prompt: 'Classify: refund please', requestId: '7', category: 'batch' } } });
    const b = parseBatchLine('{"id": "x", "prompt": "p", "category": "critical"}', 1, { category: 'batch' });
    expect(b?.ok && b.item.request.category).toBe('critical');
  });

  it('reports each kind of malformed line with its number, the field and the fix', () => {
    const err = (text: string): string => {
      const r = parseBatchLine(text, 12);
      if (!r || r.ok) throw new Error('expected a bad line');
      return r.bad.error;
    };
    expect(err('{"id": "a", "prompt": ')).toMatch(/^line 12: not valid JSON .*each line must be one JSON object/);
    expect(err('[1,2]')).toMatch(/^line 12: must be a JSON object/);
    expect(err('{"prompt": "no id"}')).toMatch(/^line 12: id: is required/);
    expect(err('{"id": "a b", "prompt": "x"}')).toMatch(/^line 12: id: may contain only letters/);
    expect(err('{"id": "a", "prompt": ""}')).toBe('line 12: prompt: must not be empty');
    expect(err('{"id": "a", "prompt": "x", "minQuality": 3}')).toMatch(/minQuality: must be in \[0,1\]/);
    expect(err('{"id": "a", "prompt": "x", "colour": "red"}')).toMatch(/colour/);
    expect(err('{"id": "a", "requestId": "b", "prompt": "x"}')).toMatch(/requestId: differs from id "a"/);
    expect(err('{"id": "a", "prompt": "x", "quality": {"jsonSchema": {"type": 12}}}')).toMatch(/quality.jsonSchema: not a valid JSON Schema/);
    expect(parseBatchLine('   ', 1)).toBeUndefined();
  });

  it('a repeated id is reported against the line that first used it', () => {
    const ids = new IdRegistry();
    expect(ids.claim('a', 1)).toBeUndefined();
    expect(ids.claim('b', 2)).toBeUndefined();
    expect(ids.claim('a', 5)).toBe(1);
    expect(duplicateLine('a', 5, 1).error).toBe('line 5: id "a" repeats line 1; ids must be unique within a batch');
  });

  it('the file reader numbers every line (blank ones too) and reports duplicates', async () => {
    const f = join(dir, 'in.jsonl');
    writeFileSync(f, '{"id":"a","prompt":"p1"}\n\n{"id":"a","prompt":"p2"}\r\nnope\n{"id":"c","prompt":"p3"}');
    const got = [];
    for await (const e of readBatchFile(f)) got.push(e.ok ? `ok ${e.item.line} ${e.item.id}` : e.bad.error.slice(0, 20));
    expect(got).toEqual(['ok 1 a', 'line 3: id "a" repea', 'line 4: not valid JS', 'ok 5 c']);
  });

  it('two OpenAI custom_ids that map to one request id are a duplicate, not one shared answer (found by the independent review)', async () => {
    const f = join(dir, 'oai-dup.jsonl');
    const line = (id: string) =>
      JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'x' }] } });
    writeFileSync(f, `${line('a b')}\n${line('a_b-cid-c8687a08aa5d6ed2044328fa')}\n`);
    const got = [];
    for await (const e of readBatchFile(f)) got.push(e.ok ? `ok ${e.item.line} ${e.item.request.requestId}` : e.bad.error);
    expect(got).toEqual([
      'ok 1 a_b-cid-c8687a08aa5d6ed2044328fa',
      'line 2: id "a_b-cid-c8687a08aa5d6ed2044328fa" repeats line 1; ids must be unique within a batch',
    ]);
    // And the other way round, the mapped id's message names what it maps to.
    writeFileSync(f, `${line('a_b-cid-c8687a08aa5d6ed2044328fa')}\n${line('a b')}\n`);
    const back = [];
    for await (const e of readBatchFile(f)) back.push(e.ok ? 'ok' : e.bad.error);
    expect(back).toEqual([
      'ok',
      'line 2: custom_id "a b" maps to request id "a_b-cid-c8687a08aa5d6ed2044328fa", as line 1 does; give the lines ids that differ in more than spaces and symbols',
    ]);
  });
});

describe('reading a batch file in pages from byte offsets', () => {
  const source = (path: string): BatchSource => ({ path, sha256: '', sizeBytes: statSync(path).size, lines: 0, originalName: 'x' });

  it('pages cover every line exactly once, whatever the page size, with line numbers matching the file', async () => {
    const f = join(dir, 'pages.jsonl');
    const lines: string[] = [];
    for (let i = 1; i <= 57; i++)
      lines.push(i % 10 === 0 ? '' : i % 13 === 0 ? 'broken' : JSON.stringify({ id: `r${i}`, prompt: `prompt ${i} ${'é'.repeat(i % 7)}` }));
    writeFileSync(f, `${lines.join('\r\n')}\n`);
    for (const size of [1, 4, 100]) {
      let cursor = { offset: 0, lineNo: 0 };
      const ids: string[] = [];
      const bad: number[] = [];
      for (let guard = 0; guard < 200; guard++) {
        const page = await readPage(source(f), cursor, size, {});
        ids.push(...page.items.map((it) => `${it.line}:${it.id}`));
        bad.push(...page.invalid.map((b) => b.line));
        expect(page.items.length).toBeLessThanOrEqual(size);
        cursor = page.next;
        if (page.eof) break;
      }
      const want = lines.flatMap((l, i) => (l.startsWith('{') ? [`${i + 1}:r${i + 1}`] : []));
      expect(ids).toEqual(want);
      expect(bad).toEqual([13, 26, 39, 52]);
      expect(cursor.offset).toBe(statSync(f).size);
    }
  });

  it('an oversized line is reported and skipped; the lines after it are read', async () => {
    const f = join(dir, 'big.jsonl');
    writeFileSync(
      f,
      `${JSON.stringify({ id: 'a', prompt: 'short' })}\n${JSON.stringify({ id: 'b', prompt: 'x'.repeat(LINE_MAX_BYTES + 10) })}\n${JSON.stringify({ id: 'c', prompt: 'after' })}`,
    );
    const page = await readPage(source(f), { offset: 0, lineNo: 0 }, 10, { category: 'batch' });
    expect(page.items.map((i) => [i.line, i.id, i.request.category])).toEqual([
      [1, 'a', 'batch'],
      [3, 'c', 'batch'],
    ]);
    expect(page.invalid).toEqual([{ line: 2, error: expect.stringMatching(/^line 2: longer than 1048576 bytes/) }]);
    expect(page.eof).toBe(true);
  });
});

describe('summary, titles, ids and queries', () => {
  it('counts and costs per tier and model, failures by reason; the premium baseline counts answers only', () => {
    const s = emptySummary();
    addResult(s, { id: '1', workflowId: 'llm-1', status: 'completed', model: 'llama-3-70b', tier: 'economy', costNanos: 100, premiumBaselineCostNanos: 5_000 });
    addResult(s, { id: '2', workflowId: 'llm-2', status: 'completed', model: 'gpt-4o', tier: 'premium', costNanos: 4_000, premiumBaselineCostNanos: 4_000 });
    addResult(s, {
      id: '3',
      workflowId: 'llm-3',
      status: 'failed',
      model: 'gpt-4o',
      tier: 'premium',
      costNanos: 30,
      premiumBaselineCostNanos: 0,
      error: { type: 'BudgetExceeded', message: 'no' },
    });
    addInvalid(s, { line: 9, error: 'line 9: bad' });
    expect(s).toMatchObject({
      requests: 3,
      completed: 2,
      failed: 1,
      invalid: 1,
      costNanos: 4_130,
      premiumBaselineCostNanos: 9_000,
      failures: { BudgetExceeded: 1 },
    });
    expect(s.byTier).toEqual({ economy: { requests: 1, costNanos: 100 }, premium: { requests: 1, costNanos: 4_000 } });
    expect(s.byModel['gpt-4o']).toEqual({ tier: 'premium', requests: 1, costNanos: 4_000 });
    const text = formatSummary(s);
    expect(text).toMatch(/failed 1 \(BudgetExceeded: 1\); 1 malformed line\(s\) skipped/);
    expect(text).toMatch(/on the premium model {2}\$0\.000009 {2}\(routing saved 54\.1%\)/);
  });

  it('titles are the first words of the prompt on one line', () => {
    expect(requestTitle('  Summarise\nthis   report ')).toBe('Summarise this report');
    const t = requestTitle('Classify the sentiment of this product review as positive, negative or neutral please');
    expect(t.length).toBeLessThanOrEqual(60);
    expect(t).toBe('Classify the sentiment of this product review as positive…');
    expect(workflowIdFor('t-1')).toBe('llm-t-1');
  });

  it('run queries are scoped to request workflows on the task queue', () => {
    expect(requestRunsQuery('q1')).toBe("WorkflowType = 'llmRequest' AND TaskQueue = 'q1'");
    expect(requestRunsQuery('q1', "LlmTier = 'premium'", "ExecutionStatus = 'Failed'")).toBe(
      "WorkflowType = 'llmRequest' AND TaskQueue = 'q1' AND ExecutionStatus = 'Failed' AND (LlmTier = 'premium')",
    );
  });
});

describe('results file', () => {
  it('thousands of backpressured writes leave no listeners behind (no MaxListenersExceededWarning)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sy-results-')), 'r.jsonl');
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.name);
    };
    process.on('warning', onWarning);
    try {
      const w = resultsWriter(path);
      const text = 'x'.repeat(20_000); // each line exceeds the stream's buffer: every write pushes back
      for (let i = 0; i < 300; i++)
        await w.write({
          id: String(i),
          workflowId: `llm-${i}`,
          status: 'completed',
          model: 'm',
          tier: 'economy',
          costNanos: 1,
          premiumBaselineCostNanos: 2,
          text,
        });
      await w.close();
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean)).toHaveLength(300);
  });
});
