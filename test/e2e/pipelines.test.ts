/**
 * Pipelines as a user runs them, against `switchyard up`: a batch file with a malformed line,
 * re-running it (nothing charged twice), a detached batch, runs list, show, replay, redrive, and
 * the Temporal UI in headless Chromium filtering by a search attribute.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CliRun, runCli, startUp, type UpProcess } from '../helpers/cli.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchHeadless } from '../helpers/browser.js';

const state = mkdtempSync(join(tmpdir(), 'switchyard-e2e-pipes-'));
const tag = Date.now().toString(36);
let up: UpProcess | undefined;
let address = '';
let uiUrl = '';

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_CLI: inject('temporalCli'),
    SWITCHYARD_LOG_LEVEL: 'warn',
    SWITCHYARD_STATE_DIR: state,
    TEMPORAL_ADDRESS: address,
  };
  for (const k of [
    'OPENAI_API_KEY',
    'ANTHROPIC_API_KEY',
    'GEMINI_API_KEY',
    'MISTRAL_API_KEY',
    'SELF_HOSTED_BASE_URL',
    'SWITCHYARD_SIMULATOR_URL',
    'SWITCHYARD_BATCH_DIR',
  ])
    delete e[k];
  return e;
}

function cli(args: string[]): Promise<CliRun> {
  return runCli(args, env(), state);
}

beforeAll(async () => {
  up = await startUp(['--port', '0', '--ui-port', '0', '--state-dir', join(state, 'stack'), '--latency-scale', '0'], env());
  address = up.address;
  uiUrl = up.uiUrl;
});

afterAll(async () => {
  await up?.stop();
  rmSync(state, { recursive: true, force: true });
});

interface Line {
  id: string;
  workflowId: string;
  status: string;
  model: string | null;
  tier: string | null;
  costNanos: number;
  text?: string;
  error?: { type: string; message: string };
}
const readLines = (p: string): Line[] =>
  readFileSync(p, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);

const ids = Array.from({ length: 12 }, (_, i) => `e2e-${tag}-${i}`);

describe('switchyard batch', () => {
  it('runs a file, skips a malformed line with its number, writes results in input order, and re-runs without charging twice', async () => {
    const input = join(state, 'tickets.jsonl');
    const rows = ids.map((id, i) =>
      JSON.stringify({
        id,
        prompt: i % 2 ? `Classify this ticket as billing or technical: "charged twice" (${i})` : `Summarise in two sentences: sales rose 3% in week ${i}.`,
      }),
    );
    rows.splice(4, 0, '{"id": "broken", "prompt": }');
    writeFileSync(input, `${rows.join('\n')}\n`);
    const first = await cli(['batch', input, '--out', join(state, 'out1.jsonl'), '--concurrency', '4', '--category', 'batch', '--json']);
    expect(first.stderr).toMatch(/line 5: not valid JSON/);
    expect(first.code).toBe(3); // finished, with a malformed line
    const s1 = JSON.parse(first.stdout) as {
      requests: number;
      completed: number;
      failed: number;
      invalid: number;
      costNanos: number;
      premiumBaselineCostNanos: number;
      alreadyStarted: number;
    };
    expect(s1).toMatchObject({ requests: 12, completed: 12, failed: 0, invalid: 1, alreadyStarted: 0 });
    expect(s1.costNanos).toBeLessThan(s1.premiumBaselineCostNanos);
    const out1 = readLines(join(state, 'out1.jsonl'));
    expect(out1.map((l) => l.id)).toEqual(ids);
    expect(out1.every((l) => l.status === 'completed' && l.workflowId === `llm-${l.id}` && typeof l.text === 'string' && l.costNanos > 0)).toBe(true);
    expect(out1.reduce((a, l) => a + l.costNanos, 0)).toBe(s1.costNanos);

    const second = await cli(['batch', input, '--out', join(state, 'out2.jsonl'), '--category', 'batch', '--json']);
    const s2 = JSON.parse(second.stdout) as typeof s1;
    expect(s2).toMatchObject({ requests: 12, completed: 12, alreadyStarted: 12, costNanos: s1.costNanos });
    expect(readLines(join(state, 'out2.jsonl'))).toEqual(out1);
    const ledger = readFileSync(join(state, 'stack', 'ledger.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { workflowId: string; costNanos: number });
    const mine = ledger.filter((e) => e.workflowId.startsWith(`llm-e2e-${tag}`));
    expect(mine).toHaveLength(12);
    expect(mine.reduce((a, e) => a + e.costNanos, 0)).toBe(s1.costNanos);
  });

  it('a detached batch runs server-side; status and results read it back', async () => {
    const input = join(state, 'detached.jsonl');
    writeFileSync(
      input,
      `${Array.from({ length: 30 }, (_, i) => JSON.stringify({ id: `det-${tag}-${i}`, prompt: `Translate to French: "order ${i} shipped"`, category: 'batch' })).join('\n')}\n`,
    );
    const start = await cli(['batch', input, '--detach', '--batch-id', `d-${tag}`, '--children-per-run', '10', '--json']);
    expect(start.code).toBe(0);
    expect(JSON.parse(start.stdout)).toMatchObject({ batchId: `d-${tag}`, workflowId: `batch-d-${tag}`, requests: 30, invalid: 0 });
    const st = await cli(['batch', 'status', `d-${tag}`, '--wait', '--json']);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout) as { state: string; runs: number; summary: { completed: number; costNanos: number } };
    expect(status).toMatchObject({ state: 'completed', summary: { completed: 30 } });
    expect(status.runs).toBeGreaterThanOrEqual(3);
    const res = await cli(['batch', 'results', `d-${tag}`, '--out', join(state, 'det.jsonl'), '--json']);
    expect(res.code).toBe(0);
    const lines = readLines(join(state, 'det.jsonl'));
    expect(lines.map((l) => l.id)).toEqual(Array.from({ length: 30 }, (_, i) => `det-${tag}-${i}`));
    expect(lines.reduce((a, l) => a + l.costNanos, 0)).toBe(status.summary.costNanos);
  });
});

describe('inspection and replay from the CLI', () => {
  it('runs list filters by search attribute; show prints the trace', async () => {
    const list = await cli(['runs', 'list', '--query', `LlmBatch = 'tickets' AND LlmCategory = 'batch'`, '--json', '--limit', '100']);
    expect(list.code).toBe(0);
    const runs = list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { workflowId: string; status: string; title: string; tier: string; costNanos: number });
    expect(runs.map((r) => r.workflowId).sort()).toEqual(ids.map((id) => `llm-${id}`).sort());
    expect(runs.every((r) => r.status === 'COMPLETED' && r.title.length > 0 && r.costNanos > 0)).toBe(true);
    const show = await cli(['show', `llm-${ids[1]}`]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/status completed, category batch/);
    expect(show.stdout).toMatch(/title: Classify this ticket/);
    expect(show.stdout).toMatch(/batch: tickets\n/);
    expect(show.stdout).toMatch(/classified: complexity/);
    expect(show.stdout).toMatch(/candidates:\n {2}1\. /);
    expect(show.stdout).toMatch(/attempts:\n {2}a1 /);
    expect(show.stdout).toMatch(/answered by \S+ \(economy\); cost \$/);
    const batches = await cli(['runs', 'list', '--batches', '--json']);
    expect(
      batches.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { batchId: string; status: string }).batchId),
    ).toContain(`d-${tag}`);
    const missing = await cli(['show', 'llm-no-such-request']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/not found/i);
  });

  it('replay checks live runs and history files, and names the run that fails', async () => {
    const live = await cli(['replay', '--query', `WorkflowId STARTS_WITH 'llm-e2e-${tag}'`, '--json']);
    expect(live.code).toBe(0);
    const results = live.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { workflowId: string; ok: boolean });
    expect(results).toHaveLength(12);
    expect(results.every((r) => r.ok)).toBe(true);
    const files = await cli([
      'replay',
      '--file',
      join(process.cwd(), 'test', 'histories', 'v1-success.json'),
      join(process.cwd(), 'test', 'histories', 'v1-fallback.json'),
    ]);
    expect(files.code).toBe(0);
    expect(files.stdout).toMatch(/replayed 2 run\(s\): 2 ok, 0 failed/);
    const none = await cli(['replay']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/exactly one of --workflow-id, --query or --file/);
  });

  it('redrive --dry-run lists failed runs without starting anything; redrive --wait starts and reports a new run', async () => {
    const bad = await cli(['ask', 'hi', '--max-latency-ms', '1', '--request-id', `nomodel-${tag}`]);
    expect(bad.code).not.toBe(0);
    const dry = await cli(['redrive', '--query', `WorkflowId = 'llm-nomodel-${tag}'`, '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ restarted: [{ workflowId: `llm-nomodel-${tag}`, runId: '(dry run)' }], skipped: [] });
    const list = await cli(['runs', 'list', '--query', `WorkflowId = 'llm-nomodel-${tag}'`, '--json']);
    expect(list.stdout.trim().split('\n')).toHaveLength(1); // still the one failed run

    // For real: a new run of the same request; it fails again (no model meets 1 ms), and says so.
    const real = await cli(['redrive', '--query', `WorkflowId = 'llm-nomodel-${tag}'`, '--wait', '--json']);
    expect(real.code).toBe(0);
    const rep = JSON.parse(real.stdout) as { restarted: Array<{ workflowId: string; previousRunId: string; runId: string }>; outcomes: Record<string, string> };
    expect(rep.restarted).toHaveLength(1);
    expect(rep.restarted[0]!.runId).not.toBe(rep.restarted[0]!.previousRunId);
    expect(rep.outcomes).toEqual({ [`llm-nomodel-${tag}`]: 'failed' });
    const runs = await cli(['runs', 'list', '--query', `WorkflowId = 'llm-nomodel-${tag}'`, '--json']);
    expect(runs.stdout.trim().split('\n')).toHaveLength(2);
    const show = await cli(['show', `llm-nomodel-${tag}`]);
    expect(show.stdout).toMatch(new RegExp(`re-drive of run ${rep.restarted[0]!.previousRunId}`));
    expect(show.stdout).toMatch(/failed \(NoEligibleModel\)/);
  });
});

describe('Temporal UI', () => {
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
  });

  it('headless Chromium finds a run by filtering on a search attribute', async () => {
    expect(uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    browser = await launchHeadless();
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${uiUrl}/namespaces/default/workflows`, { waitUntil: 'networkidle' });
    await page.getByTestId('toggle-manual-query').click();
    // The test id changed between UI releases (2.42 with CLI 1.5.1; 2.54 with CLI 1.9.1).
    const query = page.getByTestId('manual-search-input').or(page.getByTestId('workflow-manual-search-input'));
    // One economy run of this test's batch, by search attributes the workflow set itself.
    await query.fill(`LlmTier = "economy" AND LlmCategory = "batch" AND WorkflowId = "llm-${ids[1]}"`);
    await query.press('Enter');
    await page.waitForURL(/query=/);
    const row = page.getByRole('link', { name: `llm-${ids[1]}`, exact: true });
    await row.waitFor({ timeout: 30_000 });
    expect(await row.count()).toBe(1);
    expect(await page.getByRole('link', { name: `llm-${ids[3]}`, exact: true }).count()).toBe(0);
    // The run's page shows the memo title the client set.
    await row.click();
    await page.waitForURL(new RegExp(`/workflows/llm-${ids[1]}/`));
    await page
      .getByText('Memo')
      .first()
      .click()
      .catch(() => undefined);
    await expect.poll(async () => (await page.locator('body').innerText()).includes('Classify this ticket'), { timeout: 30_000 }).toBe(true);
  });
});
