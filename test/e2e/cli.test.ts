/**
 * The CLI as a user runs it: `switchyard demo --json` on its own embedded stack, and
 * `switchyard up` serving a `switchyard ask` from another process, then stopping on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, runCli } from '../helpers/cli.js';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'switchyard-e2e-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of [...dirs, stateHome]) rmSync(d, { recursive: true, force: true });
});

const stateHome = mkdtempSync(join(tmpdir(), 'switchyard-statehome-'));

function baseEnv(): NodeJS.ProcessEnv {
  // A state home of its own: the default ledger and the local stacks' records never touch the user's.
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_CLI: inject('temporalCli'), SWITCHYARD_LOG_LEVEL: 'warn', XDG_STATE_HOME: stateHome };
  for (const k of [
    'TEMPORAL_ADDRESS',
    'OPENAI_API_KEY',
    'ANTHROPIC_API_KEY',
    'GEMINI_API_KEY',
    'MISTRAL_API_KEY',
    'SELF_HOSTED_BASE_URL',
    'SWITCHYARD_SIMULATOR_URL',
    'SWITCHYARD_LEDGER',
    'SWITCHYARD_LEDGER_URL',
    'SWITCHYARD_STATE_DIR',
  ])
    delete env[k];
  return env;
}

const run = runCli;

function waitFor(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; got:\n${buf}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      if (pattern.test(buf)) {
        clearTimeout(timer);
        resolve(buf);
      }
    };
    child.stderr?.on('data', onData);
    child.stdout?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`exited with ${code} before ${pattern}:\n${buf}`)));
  });
}

describe('switchyard demo --json', () => {
  it('completes every request below the premium baseline and stops what it started', async () => {
    const state = tmp();
    const r = await run(['demo', '--json', '--requests', '40', '--port', '0', '--ui-port', '0', '--state-dir', state, '--latency-scale', '0'], baseEnv());
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout.trim()) as {
      requests: number;
      completed: number;
      failed: number;
      costNanos: number;
      premiumBaselineCostNanos: number;
      byModel: Record<string, { tier: string; requests: number; costNanos: number }>;
    };
    expect(s.requests).toBe(40);
    expect(s.completed).toBe(40);
    expect(s.failed).toBe(0);
    expect(s.costNanos).toBeGreaterThan(0);
    expect(s.costNanos).toBeLessThan(s.premiumBaselineCostNanos);
    expect(Object.values(s.byModel).reduce((a, m) => a + m.requests, 0)).toBe(40);
    expect(new Set(Object.values(s.byModel).map((m) => m.tier)).size).toBeGreaterThan(1);
    // The ledger on disk agrees with the summary to the nanodollar.
    const ledger = readFileSync(join(state, 'ledger.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { costNanos: number });
    expect(ledger).toHaveLength(40);
    expect(ledger.reduce((a, e) => a + e.costNanos, 0)).toBe(s.costNanos);
    // Orchestration is on the bill: every request's billable Temporal actions, at $50 per million.
    const t = (
      JSON.parse(r.stdout.trim()) as { temporalActions: { requests: number; actions: number; perRequest: number; usdPerMillion: number; costNanos: number } }
    ).temporalActions;
    expect(t.requests).toBe(40);
    expect(t.usdPerMillion).toBe(50);
    // In each history: start, the paid-call activity, the settlement (local activity), the final
    // upsert (some requests fall back or escalate: more); plus the request's share of the budget
    // entity's batched updates.
    expect(t.perRequest).toBeGreaterThanOrEqual(4);
    expect(t.perRequest).toBeLessThanOrEqual(6);
    expect(t.costNanos).toBe(Math.round(t.actions * 50 * 1_000));
  });
});

describe('switchyard up + ask', () => {
  it('serves a request from another process and stops cleanly on SIGTERM', async () => {
    const state = tmp();
    const up = spawn(process.execPath, [bin, 'up', '--port', '0', '--ui-port', '0', '--state-dir', state, '--latency-scale', '0'], {
      env: baseEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const banner = await waitFor(up, /Ctrl-C stops everything/, 90_000);
      const address = /Temporal\s+(\S+:\d+)/.exec(banner)?.[1];
      expect(address).toBeDefined();
      expect(banner).toMatch(/Temporal UI\s+http:\/\/127\.0\.0\.1:\d+/);
      const r = await run(['ask', 'Classify this ticket as billing or technical: "I was charged twice."', '--category', 'batch', '--json'], {
        ...baseEnv(),
        TEMPORAL_ADDRESS: address,
      });
      expect(r.code).toBe(0);
      const res = JSON.parse(r.stdout) as { tier: string; costNanos: number; attempts: unknown[]; category: string };
      expect(res.tier).toBe('economy');
      expect(res.category).toBe('batch');
      expect(res.costNanos).toBeGreaterThan(0);
      // What the CLI says describes the stack it reaches (issue 21, item 13): the worker's providers
      // (all through the simulator), and the ledger `up` printed, not this shell's default one.
      const models = await run(['models', '--json'], { ...baseEnv(), TEMPORAL_ADDRESS: address });
      expect(models.code, models.stderr).toBe(0);
      const listed = JSON.parse(models.stdout) as { models: Array<{ configured: boolean; reach?: string }>; configuredBy: unknown };
      expect(listed.configuredBy).toMatchObject({ stack: address });
      expect(listed.models.every((m) => m.configured && m.reach === 'simulator')).toBe(true);
      expect((await run(['models'], { ...baseEnv(), TEMPORAL_ADDRESS: address })).stdout).toMatch(/configured: as the worker of the local stack at \S+ has it/);
      const report = await run(['report'], { ...baseEnv(), TEMPORAL_ADDRESS: address });
      expect(report.code, report.stderr).toBe(0);
      expect(report.stdout).toContain(`ledger: ${join(state, 'ledger.jsonl')} (the ledger of the local stack at ${address}`);
      // One figures row (no --by: the total once), under the header.
      expect(report.stdout.split('\n').filter((l) => /^\s*1\s+\d+\s+\$/.test(l))).toHaveLength(1);
      expect(report.stdout.trim().split('\n')).toHaveLength(3);
      const reportJson = JSON.parse((await run(['report', '--json'], { ...baseEnv(), TEMPORAL_ADDRESS: address })).stdout) as {
        total: { requests: number; costNanos: number };
      };
      expect(reportJson.total).toMatchObject({ requests: 1, costNanos: res.costNanos });
      // A ledger file named by hand that is not there is an error, not $0.
      const noFile = await run(['report', '--ledger', join(state, 'no-such-ledger.jsonl')], { ...baseEnv(), TEMPORAL_ADDRESS: address });
      expect(noFile.code).not.toBe(0);
      expect(noFile.stderr).toMatch(/--ledger: no file at .*no-such-ledger\.jsonl/);
      const budgetText = await run(['budget', 'status'], { ...baseEnv(), TEMPORAL_ADDRESS: address });
      expect(budgetText.stdout).toContain(`from the budget entity on ${address}, task queue switchyard (the local stack, pid`);
      const budget = await run(['budget', 'status', '--json'], { ...baseEnv(), TEMPORAL_ADDRESS: address });
      expect(budget.code).toBe(0);
      const st = JSON.parse(budget.stdout) as {
        scope: string;
        period: { start: string; end: string };
        totalNanos: number;
        spentNanos: number;
        reservedNanos: number;
        categories: Record<string, { allocatedNanos: number; spentNanos: number; reservedNanos: number; remainingNanos: number }>;
      };
      expect(st.scope).toBe('default');
      expect(st.spentNanos).toBe(res.costNanos);
      expect(st.categories.batch?.spentNanos).toBe(res.costNanos);
      expect(st.reservedNanos).toBe(0);
      expect(Date.parse(st.period.end)).toBeGreaterThan(Date.parse(st.period.start));
      expect(Object.values(st.categories).reduce((a, c) => a + c.allocatedNanos, 0)).toBe(st.totalNanos);
      const set = await run(['budget', 'set', '--monthly', '250', '--allocation', 'critical=0.5,standard=0.3,batch=0.2', '--json'], {
        ...baseEnv(),
        TEMPORAL_ADDRESS: address,
      });
      expect(set.code).toBe(0);
      expect((JSON.parse(set.stdout) as { totalNanos: number }).totalNanos).toBe(250_000_000_000);
      const badSet = await run(['budget', 'set', '--allocation', 'critical=0.5,batch=0.2'], { ...baseEnv(), TEMPORAL_ADDRESS: address });
      expect(badSet.code).not.toBe(0);
      expect(badSet.stderr).toMatch(/allocations: fractions must sum to 1/);
      // The learning loop's commands, as a user runs them.
      const env = { ...baseEnv(), TEMPORAL_ADDRESS: address };
      const badArms = await run(['experiment', 'create', 'cli-exp', '--arms', 'gpt-4o-mini=0.5,nonsense=0.5'], env);
      expect(badArms.code).toBe(2);
      expect(badArms.stderr).toMatch(/arm "nonsense" is not a catalog model/);
      const created = await run(
        ['experiment', 'create', 'cli-exp', '--arms', 'gpt-4o-mini=0.5,gemini-2-flash=0.5', '--feature', 'cli-ab', '--min-samples', '50', '--json'],
        env,
      );
      expect(created.code, created.stderr).toBe(0);
      // The stack's worker reaches every provider (its simulator): no warning from this shell's environment.
      expect(created.stderr).not.toMatch(/is not configured/);
      expect(JSON.parse(created.stdout)).toMatchObject({ name: 'cli-exp', state: 'running', winner: null });
      // In force when `experiment create` returned: the very next request is in it.
      const a = await run(['ask', 'Name a fruit.', '--feature', 'cli-ab', '--unit', 'user-1', '--json'], env);
      expect(a.code, a.stderr).toBe(0);
      const asked = JSON.parse(a.stdout) as { workflowId: string; model: string; learning?: { experiment?: { arm: string } } };
      expect(asked.learning?.experiment?.arm).toBeDefined();
      expect(asked.model).toBe(asked.learning?.experiment?.arm);
      const fb = await run(['feedback', asked.workflowId, '--score', '0.5', '--json'], env);
      expect(fb.code, fb.stderr).toBe(0);
      expect(JSON.parse(fb.stdout)).toMatchObject({ experiment: { name: 'cli-exp' }, tuner: false });
      const badFb = await run(['feedback', asked.workflowId, '--score', '2'], env);
      expect(badFb.stderr).toMatch(/--score must be a number in \[0, 1\]/);
      const status = JSON.parse((await run(['experiment', 'status', 'cli-exp', '--json'], env)).stdout) as {
        name: string;
        state: string;
        arms: Record<string, { requests: number; costNanos: number; meanQuality: number | null; qualityCi: unknown }>;
        winner: unknown;
      };
      expect(Object.keys(status.arms).sort()).toEqual(['gemini-2-flash', 'gpt-4o-mini']);
      expect(Object.keys(status.arms[asked.learning!.experiment!.arm]!)).toEqual(expect.arrayContaining(['requests', 'costNanos', 'meanQuality', 'qualityCi']));
      expect((await run(['experiment', 'list'], env)).stdout).toMatch(/cli-exp\s+running/);
      expect((await run(['experiment', 'stop', 'cli-exp'], env)).stdout).toMatch(/experiment cli-exp: stopped/);
      expect(JSON.parse((await run(['routing', 'tune', '--dry-run', '--json'], env)).stdout)).toEqual({ changes: [] });
      expect(JSON.parse((await run(['routing', 'history', '--json'], env)).stdout)).toEqual({ changes: [] });
      expect((await run(['routing', 'revert', '1'], env)).stderr).toMatch(/no routing change 1/);
      expect(JSON.parse((await run(['anomalies', 'list', '--json'], env)).stdout)).toEqual({ anomalies: [] });
      const realloc = JSON.parse((await run(['budget', 'realloc', '--dry-run', '--json'], env)).stdout) as {
        dryRun: boolean;
        shards: Array<{ moves: unknown[]; forecastNanos: Record<string, number> }>;
      };
      expect(realloc.dryRun).toBe(true);
      expect(Object.keys(realloc.shards[0]!.forecastNanos).sort()).toEqual(['batch', 'critical', 'standard']);
      const history = JSON.parse((await run(['budget', 'history', '--json'], env)).stdout) as { periods: unknown[]; reallocations: unknown[] };
      expect(history.reallocations).toEqual([]);
      const bad = await run(['ask', 'hi', '--min-quality', '3'], { ...baseEnv(), TEMPORAL_ADDRESS: address });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/--min-quality must be a number in \[0, 1\]/);
    } finally {
      const exited = new Promise<number | null>((r) => up.once('exit', (code) => r(code)));
      up.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    // Stopped: its record is gone, and the CLI says whose configuration it shows now.
    expect(existsSync(join(stateHome, 'switchyard', 'stacks'))).toBe(true);
    expect(readdirSync(join(stateHome, 'switchyard', 'stacks'))).toEqual([]);
  });
});

describe('switchyard up killed with SIGKILL', () => {
  it('does not leave its Temporal dev server running', async () => {
    const state = tmp();
    const up = spawn(process.execPath, [bin, 'up', '--port', '0', '--ui-port', '0', '--state-dir', state, '--latency-scale', '0'], {
      env: baseEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const banner = await waitFor(up, /Ctrl-C stops everything/, 90_000);
    const [host, port] = (/Temporal\s+(\S+):(\d+)/.exec(banner) ?? []).slice(1);
    const answers = (): Promise<boolean> =>
      new Promise((resolve) => {
        const sock = connect(Number(port), host, () => {
          sock.destroy();
          resolve(true);
        });
        sock.on('error', () => resolve(false));
      });
    expect(await answers()).toBe(true);
    const exited = new Promise<void>((r) => up.once('exit', () => r()));
    up.kill('SIGKILL');
    await exited;
    // The watchdog stops the server within a second or so of the starter's death (SIGKILL after 10 s).
    let open = true;
    for (let i = 0; i < 80 && open; i++) {
      await new Promise((r) => setTimeout(r, 250));
      open = await answers();
    }
    expect(open).toBe(false);
  });
});

describe('the package', () => {
  it('exports the typed client for pipelines from its entry point (the built dist)', async () => {
    const code =
      "import * as sy from 'switchyard'; console.log(JSON.stringify({ connect: typeof sy.SwitchyardClient.connect, batch: typeof sy.SwitchyardClient.prototype.batch, ask: typeof sy.SwitchyardClient.prototype.ask, failed: typeof sy.RequestFailedError, id: sy.workflowIdFor('t-1') }))";
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (c) => resolve({ code: c, stdout, stderr }));
    });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ connect: 'function', batch: 'function', ask: 'function', failed: 'function', id: 'llm-t-1' });
  });
});
