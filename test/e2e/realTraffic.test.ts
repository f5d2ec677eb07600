/**
 * Real traffic as processes (issue 9): `switchyard models` with one provider key, and a batch that
 * keeps going while worker processes are SIGKILLed and restarted: every request ends, settled spend
 * equals the results, and no reservation is charged twice across the workers' shared ledger.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, runCli } from '../helpers/cli.js';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { SwitchyardClient } from '../../src/client/client.js';
import { settingsFromConfig } from '../../src/budget/settings.js';
import { loadConfig } from '../../src/config/config.js';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import type { LedgerEntry } from '../../src/ledger/fileLedger.js';
import { Simulator } from '../../src/simulator/server.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-rt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHYARD_LOG_LEVEL: 'warn', ...extra };
  for (const k of [
    'OPENAI_API_KEY',
    'OPENAI_BASE_URL',
    'ANTHROPIC_API_KEY',
    'GEMINI_API_KEY',
    'MISTRAL_API_KEY',
    'SELF_HOSTED_BASE_URL',
    'SWITCHYARD_SIMULATOR_URL',
  ])
    if (!(k in extra)) delete env[k];
  return env;
}

const run = runCli;

describe('switchyard models with one provider key', () => {
  it('lists every model with whether its provider is configured, prices and circuit state', async () => {
    const r = await run(
      ['models', '--json'],
      cleanEnv({
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        SWITCHYARD_TASK_QUEUE: `models-${Date.now()}`,
        OPENAI_API_KEY: 'sk-user',
        OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
      }),
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      models: Array<{ model: string; provider: string; configured: boolean; configure?: string; inputUsdPerMTok: number; circuit: string }>;
    };
    const by = new Map(out.models.map((m) => [m.model, m]));
    expect(by.get('gpt-4o')).toMatchObject({ provider: 'openai', configured: true, circuit: 'closed' });
    expect(by.get('gpt-4o')?.inputUsdPerMTok).toBeGreaterThan(0);
    expect(by.get('claude-3-5-haiku')).toMatchObject({ configured: false, configure: expect.stringMatching(/ANTHROPIC_API_KEY/) });
    expect(by.get('llama-3-70b')).toMatchObject({ configured: false, configure: expect.stringMatching(/SELF_HOSTED_BASE_URL/) });
    const text = await run(['models'], cleanEnv({ TEMPORAL_ADDRESS: inject('temporalAddress'), OPENAI_API_KEY: 'sk-user' }));
    expect(text.stdout).toMatch(/not configured \(the router skips their models\): .*anthropic: set ANTHROPIC_API_KEY/);
  });
});

describe('worker processes killed in the middle of a batch', () => {
  it('every request ends; settled spend == the results == the ledger; no reservation is charged twice', async () => {
    const address = inject('temporalAddress');
    const taskQueue = `deaths-${Date.now()}`;
    const simulator = new Simulator({ catalog: defaultCatalog(), latencyScale: 0.5 });
    const simulatorUrl = await simulator.start();
    const ledgerPath = join(dir, 'ledger.jsonl');
    // A torn line left by an earlier crash: the workers must start anyway, and append after it.
    writeFileSync(ledgerPath, '{"key":"torn-by-a-crash","workflowId":"w","co');
    const env = cleanEnv({
      TEMPORAL_ADDRESS: address,
      SWITCHYARD_TASK_QUEUE: taskQueue,
      SWITCHYARD_SIMULATOR_URL: simulatorUrl,
      SWITCHYARD_LEDGER: ledgerPath,
      SWITCHYARD_STATE_DIR: dir,
      SWITCHYARD_LOG_LEVEL: 'error',
    });
    const workers: ChildProcess[] = [];
    const startWorker = (): ChildProcess => {
      const w = spawn(process.execPath, [bin, 'worker'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      workers.push(w);
      return w;
    };
    const live = [startWorker(), startWorker()];
    const cfg = loadConfig({});
    const client = await SwitchyardClient.connect({ address, taskQueue, budgetDefaults: settingsFromConfig(cfg.budget), budgetShards: 1 });
    const scope = `deaths-${Date.now()}`;
    const prompts = [
      'Classify the sentiment: I love it.',
      'Summarise: the meeting moved to Tuesday.',
      'Explain why the sky is blue, step by step.',
      'Write a SQL query that counts orders per day.',
    ];
    const requests = Array.from({ length: 60 }, (_, i) => ({ requestId: `${scope}-${i}`, prompt: prompts[i % prompts.length] ?? 'hi', budgetScope: scope }));
    let kills = 0;
    const killer = (async () => {
      // Four times: SIGKILL one worker (calls in flight die with it), start a replacement.
      for (let k = 0; k < 4; k++) {
        await new Promise((r) => setTimeout(r, 2_500));
        const victim = live.shift();
        victim?.kill('SIGKILL');
        kills += 1;
        live.push(startWorker());
      }
    })();
    try {
      const { results, summary } = await client.batch(requests, { concurrency: 16 });
      await killer;
      expect(kills).toBe(4);
      expect(results).toHaveLength(60);
      expect(summary.completed + summary.failed).toBe(60);
      for (const r of results) if (r.status === 'failed') expect(r.error?.message).toBeTruthy();
      // Settled spend equals the results, and the ledger (both workers append to it) agrees.
      let st = await client.budgetStatus(scope);
      for (let i = 0; i < 60 && st.reservedNanos > 0; i++) {
        await new Promise((r) => setTimeout(r, 500));
        st = await client.budgetStatus(scope);
      }
      const resultsTotal = results.reduce((s, r) => s + r.costNanos, 0);
      expect(st.spentNanos).toBe(resultsTotal);
      expect(st.reservedNanos).toBe(0);
      const lines = readFileSync(ledgerPath, 'utf8').split('\n');
      expect(lines[0]).toBe('{"key":"torn-by-a-crash","workflowId":"w","co');
      const entries = lines
        .slice(1)
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as LedgerEntry)
        .filter((e) => e.workflowId.startsWith(`llm-${scope}-`));
      const keys = new Set(entries.map((e) => e.key));
      expect(keys.size).toBe(entries.length);
      expect(entries.reduce((s, e) => s + e.costNanos, 0)).toBe(resultsTotal);
    } finally {
      for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
      await Promise.all(workers.map((w) => (w.exitCode !== null || w.signalCode !== null ? Promise.resolve() : new Promise((r) => w.once('exit', r)))));
      await client.close();
      await simulator.stop();
    }
  });
});
