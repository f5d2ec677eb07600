/**
 * The gateway as a new user meets it: `switchyard up` prints its URL; a key from `switchyard keys
 * create`; then the official Python `openai` package (a cached venv), the Vercel AI SDK's
 * OpenAI-compatible provider, and curl for every error status the gateway answers (400, 401, 403,
 * 404, 413, 422, 429 twice, 502, 503, 504), each against
 * the real dev server and the simulator over HTTP.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { Client, Connection } from '@temporalio/client';
import { generateText, streamText } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { budgetWorkflowId } from '../../src/workflows/budget/contract.js';
import { runCli, startUp, type UpProcess } from '../helpers/cli.js';
import { pythonWith } from '../helpers/python.js';

const run = promisify(execFile);
const OPENAI_PY = 'openai==2.8.1';
/** Models the clients' keys may use: none of them faulty here. */
const HEALTHY = 'gpt-4o-mini,claude-3-5-haiku,gemini-2-flash,gpt-4o';

describe('the gateway from switchyard up, with real clients', () => {
  let up: UpProcess;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let python: string;
  let key = '';
  const keyFor = async (name: string, args: string[]): Promise<string> => {
    const r = await runCli(['keys', 'create', name, ...args, '--json'], env);
    expect(r.stderr).toBe('');
    return (JSON.parse(r.stdout) as { key: string }).key;
  };

  beforeAll(async () => {
    python = pythonWith([OPENAI_PY]);
    dir = mkdtempSync(join(tmpdir(), 'switchyard-gw-clients-'));
    // One model always fails, one never answers: the 502 and 504 statuses, for keys limited to them.
    writeFileSync(join(dir, 'faults.json'), JSON.stringify({ 'mistral-large': { errorRates: { '500': 1 } }, 'llama-3-70b': { hangRate: 1 } }));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ gateway: { waitMs: 3_000 }, retry: { maximumAttempts: 1 } }));
    env = { ...process.env, SWITCHYARD_CONFIG: join(dir, 'config.json'), SWITCHYARD_LOG_LEVEL: 'warn' };
    for (const k of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'GOOGLE_API_KEY', 'MISTRAL_API_KEY', 'SWITCHYARD_SIMULATOR_URL']) delete env[k];
    up = await startUp(
      ['--state-dir', dir, '--port', '0', '--ui-port', '0', '--gateway-port', '0', '--latency-scale', '0', '--faults', join(dir, 'faults.json')],
      env,
    );
    env = { ...env, TEMPORAL_ADDRESS: up.address };
    expect(up.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    key = await keyFor('py-team', ['--scope', 'py-team', '--models', HEALTHY]);
    // The gateway reads the registry every 2 s: from the first key on, it asks every caller for one.
    for (let i = 0; i < 50 && (await fetch(`${up.gatewayUrl}/models`)).status !== 401; i++) await new Promise((r) => setTimeout(r, 100));
  }, 300_000);
  afterAll(async () => {
    await up?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the official Python openai client gets a routed answer, the same run on an idempotent retry, and a stream with usage', async () => {
    const { stdout, stderr } = await run(
      python,
      [join(process.cwd(), 'examples', 'python', 'openai_gateway.py'), '--base-url', up.gatewayUrl, '--api-key', key],
      {
        env,
      },
    );
    expect(stderr).toBe('');
    const out = JSON.parse(stdout) as {
      chat: { model: string; content: string; usage: { prompt_tokens: number; completion_tokens: number }; workflowId: string; costNanos: number };
      retry: { workflowId: string; content: string };
      stream: { model: string; text: string; pieces: number; usage: { completion_tokens: number } | null };
    };
    expect(HEALTHY.split(',')).toContain(out.chat.model);
    expect(out.chat.content.length).toBeGreaterThan(0);
    expect(out.chat.usage.completion_tokens).toBeGreaterThan(0);
    expect(out.chat.costNanos).toBeGreaterThan(0);
    expect(out.retry.workflowId).toBe(out.chat.workflowId);
    expect(out.retry.content).toBe(out.chat.content);
    expect(out.stream.pieces).toBeGreaterThan(1);
    expect(out.stream.usage?.completion_tokens).toBeGreaterThan(0);
    // Budgeted: the key's scope was charged what the runs cost.
    const report = await runCli(['report', '--by', 'key', '--json'], env);
    const rows = (JSON.parse(report.stdout) as { rows: Array<{ group: { key: string }; requests: number; costNanos: number }> }).rows;
    const mine = rows.find((r) => r.group.key !== 'none');
    expect(mine?.requests).toBe(2);
    expect(mine?.costNanos).toBeGreaterThan(out.chat.costNanos);
  }, 120_000);

  it("the Vercel AI SDK's OpenAI-compatible provider generates and streams", async () => {
    const switchyard = createOpenAICompatible({ name: 'switchyard', baseURL: up.gatewayUrl, apiKey: key, includeUsage: true });
    const r = await generateText({ model: switchyard('auto'), prompt: 'Name one benefit of retries.' });
    expect(r.text.length).toBeGreaterThan(0);
    expect(r.usage.outputTokens).toBeGreaterThan(0);
    const s = streamText({ model: switchyard('switchyard/standard'), prompt: 'Explain backoff in two sentences.' });
    let text = '';
    let parts = 0;
    for await (const t of s.textStream) {
      text += t;
      parts += 1;
    }
    expect(parts).toBeGreaterThan(1);
    expect(text).toBe(await s.text);
    expect((await s.usage).outputTokens).toBeGreaterThan(0);
  }, 60_000);

  it('curl: every error status in OpenAI shape, with its code', async () => {
    const curl = async (path: string, opts: { key?: string; body?: string; file?: string; headers?: string[] } = {}) => {
      const args = ['-sS', '-D', '-', '-o', join(dir, 'body.json'), '-X', opts.body !== undefined || opts.file ? 'POST' : 'GET', `${up.gatewayUrl}${path}`];
      if (opts.key) args.push('-H', `Authorization: Bearer ${opts.key}`);
      for (const h of opts.headers ?? []) args.push('-H', h);
      if (opts.body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', opts.body);
      if (opts.file) args.push('-H', 'content-type: application/json', '--data-binary', `@${opts.file}`);
      const { stdout } = await run('curl', args, { maxBuffer: 1 << 20 });
      // The last status line: a large body gets "100 Continue" first.
      const status = Number([...stdout.matchAll(/^HTTP\/[\d.]+ (\d+)/gm)].at(-1)?.[1]);
      const { readFileSync } = await import('node:fs');
      const body = JSON.parse(readFileSync(join(dir, 'body.json'), 'utf8')) as {
        error?: { type: string; code: string | null; param: string | null; message: string };
      };
      return { status, headers: stdout.toLowerCase(), error: body.error };
    };
    const chat = (model: string, content = 'Say hi.') => JSON.stringify({ model, messages: [{ role: 'user', content }] });

    const malformed = await curl('/chat/completions', { key, body: '{"model": "auto", "messages": [' });
    expect([malformed.status, malformed.error?.type]).toEqual([400, 'invalid_request_error']);
    const badParam = await curl('/chat/completions', { key, body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'x' }], n: 3 }) });
    expect([badParam.status, badParam.error?.param]).toEqual([400, 'n']);
    const noKey = await curl('/chat/completions', { body: chat('auto') });
    expect([noKey.status, noKey.error?.code]).toEqual([401, 'invalid_api_key']);
    const forbidden = await curl('/chat/completions', { key, body: chat('mistral-large') });
    expect([forbidden.status, forbidden.error?.param]).toEqual([403, 'model']);
    const unknown = await curl('/chat/completions', { key, body: chat('gpt-99') });
    expect([unknown.status, unknown.error?.code]).toEqual([404, 'model_not_found']);
    writeFileSync(join(dir, 'big.json'), chat('auto', 'x'.repeat(9 * 1024 * 1024)));
    const tooLarge = await curl('/chat/completions', { key, file: join(dir, 'big.json') });
    expect(tooLarge.status).toBe(413);
    const idem = ['Idempotency-Key: curl-reused'];
    expect((await curl('/chat/completions', { key, body: chat('auto', 'First body.'), headers: idem })).status).toBe(200);
    const reused = await curl('/chat/completions', { key, body: chat('auto', 'Second body.'), headers: idem });
    expect([reused.status, reused.error?.code]).toEqual([422, 'idempotency_key_reused']);

    const limited = await keyFor('curl-rpm', ['--scope', 'curl-rpm', '--models', HEALTHY, '--rpm', '1']);
    expect((await curl('/chat/completions', { key: limited, body: chat('auto') })).status).toBe(200);
    const overRpm = await curl('/chat/completions', { key: limited, body: chat('auto') });
    expect([overRpm.status, overRpm.error?.code]).toEqual([429, 'rate_limit_exceeded']);
    expect(overRpm.headers).toMatch(/retry-after: \d+/);

    const budget = await runCli(
      ['budget', 'set', '--scope', 'curl-poor', '--monthly', '0.000001', '--policy', 'critical=reject,standard=reject,batch=reject'],
      env,
    );
    expect(budget.code).toBe(0);
    const poor = await keyFor('curl-poor', ['--scope', 'curl-poor', '--models', HEALTHY]);
    const quota = await curl('/chat/completions', { key: poor, body: chat('auto') });
    expect([quota.status, quota.error?.code]).toEqual([429, 'insufficient_quota']);

    // 503: the scope's budget entity was terminated (an operator's mistake): reservations are
    // refused until `switchyard budget restore`, and the gateway says so.
    const stranded = await keyFor('curl-503', ['--scope', 'curl-503', '--models', HEALTHY]);
    expect((await curl('/chat/completions', { key: stranded, body: chat('auto') })).status).toBe(200);
    const temporal = new Client({ connection: await Connection.connect({ address: up.address }) });
    try {
      await temporal.workflow.getHandle(budgetWorkflowId('switchyard', 'curl-503')).terminate('the curl 503 test');
    } finally {
      await temporal.connection.close();
    }
    const unavailable = await curl('/chat/completions', { key: stranded, body: chat('auto') });
    expect([unavailable.status, unavailable.error?.code]).toEqual([503, 'budget_unavailable']);
    expect(unavailable.error?.message).toMatch(/budget restore/);

    const failing = await keyFor('curl-502', ['--scope', 'curl-502', '--models', 'mistral-large']);
    const upstream = await curl('/chat/completions', { key: failing, body: chat('auto') });
    expect([upstream.status, upstream.error?.code]).toEqual([502, 'all_candidates_failed']);

    const hanging = await keyFor('curl-504', ['--scope', 'curl-504', '--models', 'llama-3-70b']);
    const slow = await curl('/chat/completions', { key: hanging, body: chat('auto') });
    expect([slow.status, slow.error?.code]).toEqual([504, 'request_pending']);
    const workflowId = /x-switchyard-workflow-id: (\S+)/.exec(slow.headers)?.[1];
    expect(slow.error?.message).toContain(`/v1/switchyard/requests/${workflowId}`);
  }, 180_000);

  it("a pipeline written against OpenAI's Batch API (the official Python client) runs unchanged, under its key's scope and models", async () => {
    const batchKey = await keyFor('py-batch', ['--scope', 'py-batch', '--models', 'gpt-4o-mini,claude-3-5-haiku,gemini-2-flash']);
    const weather = {
      type: 'function',
      function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
    };
    const line = (custom_id: string, body: Record<string, unknown>) => JSON.stringify({ custom_id, method: 'POST', url: '/v1/chat/completions', body });
    const input = join(dir, 'requests.jsonl');
    writeFileSync(
      input,
      [
        line('a', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Classify: I love it.' }] }),
        line('b', { messages: [{ role: 'user', content: 'Name a prime number.' }] }),
        line('c', { model: 'claude-3-5-haiku', messages: [{ role: 'user', content: 'Weather in Lima?' }], tools: [weather], tool_choice: 'required' }),
        line('d', { model: 'gpt-4o', messages: [{ role: 'user', content: "Not this key's model." }] }),
        line('e', { messages: 'not a list' }),
      ].join('\n') + '\n',
    );
    const { stdout, stderr } = await run(python, [join(process.cwd(), 'examples', 'python', 'openai_batch.py'), input], {
      env: { ...env, OPENAI_BASE_URL: up.gatewayUrl, OPENAI_API_KEY: batchKey },
    });
    expect(stderr).toBe('');
    const out = JSON.parse(stdout) as {
      file: { purpose: string };
      cancel_after_end: number;
      input_deleted: boolean;
      batch: {
        status: string;
        statuses: string[];
        request_counts: { total: number; completed: number; failed: number };
        metadata: Record<string, string>;
        listed: boolean;
      };
      answers: Array<{ custom_id: string; model: string; tool_calls: string[]; finish_reason: string; switchyard: { cost_nanos: number; tier: string } }>;
      errors: Array<{ custom_id: string | null; error: { code: string } | null; status: number | null }>;
    };
    expect(out.file.purpose).toBe('batch');
    // The Python client sends an empty JSON body on cancel and delete.
    expect(out.cancel_after_end).toBe(409);
    expect(out.input_deleted).toBe(true);
    expect(out.batch.status).toBe('completed');
    expect(out.batch.listed).toBe(true);
    expect(out.batch.metadata).toEqual({ pipeline: 'nightly-example' });
    expect(out.batch.request_counts).toEqual({ total: 5, completed: 3, failed: 2 });
    expect(out.answers.map((a) => a.custom_id)).toEqual(['a', 'b', 'c']);
    for (const a of out.answers) {
      expect(['gpt-4o-mini', 'claude-3-5-haiku', 'gemini-2-flash']).toContain(a.model);
      expect(a.switchyard.cost_nanos).toBeGreaterThan(0);
    }
    expect(out.answers[2]).toMatchObject({ tool_calls: ['get_weather'], finish_reason: 'tool_calls' });
    expect(out.errors.map((e) => e.custom_id).sort()).toEqual(['d', 'e']);
    expect(out.errors.find((e) => e.custom_id === 'e')?.status).toBe(400);
    // The key's scope was charged for its lines, and another key sees none of its files.
    const report = await runCli(['report', '--by', 'key', '--json'], env);
    const rows = (JSON.parse(report.stdout) as { rows: Array<{ group: { key: string }; requests: number; costNanos: number }> }).rows;
    const spent = out.answers.reduce((n, a) => n + a.switchyard.cost_nanos, 0);
    expect(rows.some((r) => r.requests >= 3 && r.costNanos >= spent)).toBe(true);
    const other = await fetch(`${up.gatewayUrl}/files`, { headers: { authorization: `Bearer ${key}` } });
    expect(((await other.json()) as { data: unknown[] }).data).toEqual([]);
  }, 180_000);
});
