/** Spend reports: grouping, totals, CSV, and the CLI over the ledger file. */
import { execFile } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FileLedger, type LedgerEntry } from '../../src/ledger/fileLedger.js';
import { buildReport, reportCsv, reportTable } from '../../src/ledger/report.js';
import { instant } from '../../src/cli/commands/report.js';
import { redactUrl } from '../../src/ledger/pgLedger.js';

const e = (key: string, over: Partial<LedgerEntry>): LedgerEntry => ({
  key,
  workflowId: `wf-${key}`,
  attemptId: 'a1',
  model: 'gpt-4o-mini',
  provider: 'openai',
  tier: 'standard',
  category: 'batch',
  inputTokens: 100,
  cachedInputTokens: 0,
  outputTokens: 50,
  costNanos: 1_000,
  at: '2026-12-01T10:00:00.000Z',
  ...over,
});

describe('the ledger URL in messages', () => {
  it('never shows a password, in the user part or as a parameter', () => {
    expect(redactUrl('postgres://sw:s3cret@db:5432/switchyard')).toBe('postgres://sw:***@db:5432/switchyard');
    expect(redactUrl('postgres://sw@db/switchyard?password=s3cret&sslmode=require')).not.toContain('s3cret');
    expect(redactUrl('postgres://sw@db/switchyard?sslpassword=k3y')).not.toContain('k3y');
  });
});

describe('report', () => {
  const entries = [
    e('1', { feature: 'search', baselineNanos: 10_000 }),
    e('2', { workflowId: 'wf-1', attemptId: 'a2', model: 'claude-3-5-haiku', provider: 'anthropic', costNanos: 2_000, baselineNanos: 12_000 }),
    e('3', { at: '2026-12-02T01:00:00.000Z', scope: 'team-a', category: 'critical', tier: 'premium', model: 'gpt-4o', costNanos: 9_000 }),
  ];
  it('groups by several dimensions, counts requests and attempts apart, and prices old entries by the given baseline', () => {
    const r = buildReport(entries, { by: ['day', 'feature'] }, () => 7_000);
    expect(r.rows.map((x) => [x.group.day, x.group.feature, x.requests, x.attempts, x.costNanos, x.baselineNanos])).toEqual([
      ['2026-12-01', 'search', 1, 1, 1_000, 10_000],
      ['2026-12-01', 'unspecified', 1, 1, 2_000, 12_000],
      ['2026-12-02', 'unspecified', 1, 1, 9_000, 7_000],
    ]);
    expect(r.total).toMatchObject({
      requests: 2,
      attempts: 3,
      costNanos: 12_000,
      baselineNanos: 29_000,
      savingNanos: 17_000,
      inputTokens: 300,
      outputTokens: 150,
    });
    const byScope = buildReport(entries, { by: ['scope'] }, () => 0);
    expect(byScope.rows.map((x) => [x.group.scope, x.costNanos])).toEqual([
      ['default', 3_000],
      ['team-a', 9_000],
    ]);
  });

  it('CSV has a header, a line per group and a total, money in exact nanodollars', () => {
    const csv = reportCsv(buildReport(entries, { by: ['model'] }, () => 0))
      .trim()
      .split('\n');
    expect(csv).toEqual([
      'model,requests,attempts,costNanos,baselineNanos,savingNanos,inputTokens,cachedInputTokens,outputTokens,batchSavingNanos,duplicatedNanos',
      'claude-3-5-haiku,1,1,2000,12000,10000,100,0,50,0,0',
      'gpt-4o,1,1,9000,0,-9000,100,0,50,0,0',
      'gpt-4o-mini,1,1,1000,10000,9000,100,0,50,0,0',
      'total,2,3,12000,22000,10000,300,0,150,0,0',
    ]);
  });

  it('by mode: live, batch and duplicated apart, with what batches saved against the live price', () => {
    const deferred = [
      ...entries,
      e('4', { workflowId: 'wf-3', model: 'gpt-4o-mini', costNanos: 500, mode: 'batch', liveNanos: 1_000 }),
      e('5', { workflowId: 'wf-4', model: 'gpt-4o-mini', costNanos: 400, mode: 'batch', liveNanos: 800 }),
      e('6', { workflowId: 'wf-4', attemptId: 'a1-batch', model: 'gpt-4o-mini', costNanos: 300, mode: 'duplicated', liveNanos: 600 }),
    ];
    const r = buildReport(deferred, { by: ['mode'] }, () => 0);
    expect(r.rows.map((x) => [x.group.mode, x.attempts, x.costNanos, x.batchSavingNanos, x.duplicatedNanos])).toEqual([
      ['batch', 2, 900, 900, 0],
      ['duplicated', 1, 300, 0, 300],
      ['live', 3, 12_000, 0, 0],
    ]);
    expect(r.total).toMatchObject({ costNanos: 13_200, batchSavingNanos: 900, duplicatedNanos: 300 });
    expect(reportTable(r)[0]).toEqual([
      'mode',
      'requests',
      'attempts',
      'cost',
      'premium baseline',
      'saved',
      'tokens in',
      'tokens out',
      'batch saved',
      'duplicated',
    ]);
  });

  it('--since and --until take an ISO date or a duration ago, and name the flag when wrong', () => {
    const now = Date.parse('2026-12-02T12:00:00Z');
    expect(instant('--since', () => now)('7d').toISOString()).toBe('2026-11-25T12:00:00.000Z');
    expect(instant('--since', () => now)('2026-12-01').toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(() => instant('--since', () => now)('last week')).toThrow(/--since must be an ISO date or time/);
    expect(() => instant('--until', () => now)('2026-13-45')).toThrow(/--until: "2026-13-45" is not a date/);
    expect(() => instant('--until', () => now)('2026-02-31')).toThrow(/is not a date/);
    expect(() => instant('--since', () => now)('7')).toThrow(/with its unit \(7d, 12h\)/);
    expect(instant('--since', () => now)('2026-12-01T08:00').toISOString()).toBe('2026-12-01T08:00:00.000Z');
  });

  it('the CLI reads the ledger file: filters by scope and time, and refuses an unknown dimension', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-report-'));
    try {
      const path = join(dir, 'ledger.jsonl');
      const file = new FileLedger(path);
      for (const x of entries) file.record(x);
      const cli = join(import.meta.dirname, '..', '..', 'bin', 'switchyard.js');
      const env = { ...process.env, SWITCHYARD_LEDGER: path, SWITCHYARD_LEDGER_URL: '', SWITCHYARD_LOG_LEVEL: 'warn' };
      const run = promisify(execFile);
      const out = JSON.parse((await run(process.execPath, [cli, 'report', '--json', '--since', '2026-12-01', '--until', '2026-12-02'], { env })).stdout) as {
        total: { costNanos: number };
        ledger: string;
      };
      expect(out).toMatchObject({ total: { costNanos: 3_000 }, ledger: path });
      const team = JSON.parse((await run(process.execPath, [cli, 'report', '--json', '--scope', 'team-a'], { env })).stdout) as {
        total: { costNanos: number };
      };
      expect(team.total.costNanos).toBe(9_000);
      await expect(run(process.execPath, [cli, 'report', '--by', 'colour'], { env })).rejects.toMatchObject({
        stderr: expect.stringMatching(/--by must be one or more of day, model, tier, category, feature, scope, key, mode, got "colour"/),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('over several ledger files (a file per worker) each settlement counts once, and the CLI says how many were repeated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-report-'));
    try {
      const a = new FileLedger(join(dir, 'worker-a.jsonl'));
      const b = new FileLedger(join(dir, 'worker-b.jsonl'));
      for (const x of entries) a.record(x);
      // Worker b took over the second settlement and wrote it again, and has one of its own.
      b.record(entries[1]!);
      b.record(e('4', { costNanos: 500 }));
      const cli = join(import.meta.dirname, '..', '..', 'bin', 'switchyard.js');
      const run = promisify(execFile);
      const env = { ...process.env, SWITCHYARD_LEDGER_URL: '', SWITCHYARD_LOG_LEVEL: 'warn' };
      const r = await run(process.execPath, [cli, 'report', '--json', '--ledger', a.path, '--ledger', b.path], { env });
      const out = JSON.parse(r.stdout) as { total: { costNanos: number; attempts: number }; repeatedKeys: number; ledger: string };
      expect(out.total).toMatchObject({ costNanos: 12_500, attempts: 4 });
      expect(out.repeatedKeys).toBe(1);
      expect(out.ledger).toBe(`${a.path}, ${b.path}`);
      expect(r.stderr).toMatch(/1 settlement\(s\) found in more than one ledger file, counted once/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a report without --by prints the total once, not a group and a total', () => {
    const r = buildReport(entries, { by: [] }, () => 0);
    expect(r.rows).toEqual([]);
    expect(reportTable(r)).toHaveLength(2);
  });

  it('an unreadable ledger is an error, never a zero total; unreadable lines are counted and said', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-report-'));
    try {
      const cli = join(import.meta.dirname, '..', '..', 'bin', 'switchyard.js');
      const run = promisify(execFile);
      const env = { ...process.env, SWITCHYARD_LEDGER_URL: '', SWITCHYARD_LOG_LEVEL: 'warn' };
      mkdirSync(join(dir, 'not-a-file.jsonl'));
      await expect(run(process.execPath, [cli, 'report', '--json', '--ledger', join(dir, 'not-a-file.jsonl')], { env })).rejects.toMatchObject({
        stderr: expect.stringMatching(/EISDIR/),
      });
      const path = join(dir, 'torn.jsonl');
      writeFileSync(path, `${JSON.stringify(entries[0])}\n{"key":"torn","cost\n${JSON.stringify(entries[2])}`);
      const r = await run(process.execPath, [cli, 'report', '--json', '--ledger', path], { env });
      expect(JSON.parse(r.stdout) as { total: { costNanos: number }; skippedLines: number }).toMatchObject({ total: { costNanos: 10_000 }, skippedLines: 1 });
      expect(r.stderr).toMatch(/warning: 1 unreadable line\(s\) in .*torn\.jsonl left out/);
      expect(new FileLedger(path).totalNanos()).toBe(10_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a 600 MB ledger file: the worker-side ledger opens it and the report streams it, both to the exact total', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-report-'));
    try {
      const path = join(dir, 'big.jsonl');
      // 600,000 entries of ~1 KB (a long workflow id): more than the longest string V8 can hold.
      const pad = 'x'.repeat(820);
      const fd = openSync(path, 'w');
      let expected = 0;
      const count = 600_000;
      for (let block = 0; block < count; block += 10_000) {
        const lines: string[] = [];
        for (let i = block; i < block + 10_000; i++) {
          const cost = 1_000 + (i % 977);
          expected += cost;
          lines.push(JSON.stringify(e(`k${i}`, { workflowId: `wf-${pad}-${i}`, costNanos: cost, baselineNanos: 2_000 })));
        }
        writeSync(fd, `${lines.join('\n')}\n`);
      }
      closeSync(fd);
      expect(statSync(path).size).toBeGreaterThan(600 * 1024 * 1024);
      const ledger = new FileLedger(path);
      expect(ledger.totalNanos()).toBe(expected);
      const cli = join(import.meta.dirname, '..', '..', 'bin', 'switchyard.js');
      const run = promisify(execFile);
      const r = await run(process.execPath, [cli, 'report', '--json'], {
        env: { ...process.env, SWITCHYARD_LEDGER: path, SWITCHYARD_LEDGER_URL: '', SWITCHYARD_LOG_LEVEL: 'warn' },
        maxBuffer: 1 << 20,
      });
      expect((JSON.parse(r.stdout) as { total: { costNanos: number; attempts: number } }).total).toMatchObject({ costNanos: expected, attempts: count });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
