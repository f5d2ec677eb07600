/**
 * OpenAI Batch API files through `switchyard batch`, as a pipeline that already writes them would
 * run: routed and pinned lines, chat messages, JSON mode, a line Switchyard refuses (tools), and
 * results written in the OpenAI Batch output shape, client-side and detached.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTestStack } from '../helpers/stack.js';

interface OpenAIOutputLine {
  id: string;
  custom_id: string | null;
  response: {
    status_code: number;
    request_id: string;
    body: {
      object: string;
      model: string;
      choices: Array<{ message: { role: string; content: string }; finish_reason: string }>;
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
      switchyard: { tier: string; cost_nanos: number };
    };
  } | null;
  error: { code: string; message: string } | null;
}

const tag = Date.now().toString(36);
const line = (custom_id: string, body: Record<string, unknown>) => JSON.stringify({ custom_id, method: 'POST', url: '/v1/chat/completions', body });

describe('OpenAI Batch API files', () => {
  const stack = useTestStack();
  let dir: string;
  let input: string;
  const env = (): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: stack.address,
      SWITCHYARD_TASK_QUEUE: stack.config.taskQueue,
      SWITCHYARD_LOG_LEVEL: 'warn',
      SWITCHYARD_STATE_DIR: dir,
      SWITCHYARD_BATCH_DIR: join(dir, 'batches'),
    };
    for (const k of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'MISTRAL_API_KEY', 'SELF_HOSTED_BASE_URL', 'SWITCHYARD_SIMULATOR_URL'])
      delete e[k];
    return e;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-oai-batch-'));
    input = join(dir, 'openai-batch.jsonl');
    writeFileSync(
      input,
      [
        line(`${tag}-routed`, {
          model: 'auto',
          messages: [
            { role: 'developer', content: 'Answer in one word.' },
            { role: 'user', content: 'Classify the sentiment: I love this product.' },
          ],
          max_tokens: 20,
        }),
        line(`${tag}-pinned`, {
          model: 'claude-3-5-haiku',
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'Summarise in one line: ' },
                { type: 'text', text: 'the meeting moved to Tuesday.' },
              ],
            },
          ],
          max_completion_tokens: 40,
          temperature: 0.2,
          seed: 7,
        }),
        line(`${tag}-chat`, {
          messages: [
            { role: 'user', content: 'Name a prime.' },
            { role: 'assistant', content: '7' },
            { role: 'user', content: 'And a larger one?' },
          ],
        }),
        // A custom_id outside the request-id alphabet (OpenAI accepts it): runs under a mapped request id, answered under its own.
        line(`${tag}-spaced #1 ü`, { messages: [{ role: 'user', content: 'Name a colour.' }] }),
        line(`${tag}-json`, {
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'Extract the city as JSON {"city": ...}: I live in Paris.' }],
          response_format: { type: 'json_object' },
        }),
        line(`${tag}-legacy`, {
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'What is the weather?' }],
          functions: [{ name: 'weather' }],
        }),
        JSON.stringify({ custom_id: `${tag}-embed`, method: 'POST', url: '/v1/embeddings', body: { input: 'x' } }),
      ].join('\n') + '\n',
    );
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const check = (all: OpenAIOutputLine[]): void => {
    // The refused lines are there too, as OpenAI's 400s naming the field (the embeddings line by its url).
    const refused = all.filter((l) => l.response?.status_code === 400);
    expect(refused.map((l) => l.custom_id)).toEqual([`${tag}-legacy`, `${tag}-embed`]);
    expect(JSON.stringify(refused[0]?.response?.body)).toMatch(/body\.functions: the legacy functions field is not supported/);
    const out = all.filter((l) => l.response?.status_code !== 400);
    const byId = new Map(out.map((l) => [l.custom_id, l]));
    expect([...byId.keys()].sort()).toEqual([`${tag}-chat`, `${tag}-json`, `${tag}-pinned`, `${tag}-routed`, `${tag}-spaced #1 ü`]);
    for (const l of out) {
      expect(l.error).toBeNull();
      expect(l.id).toMatch(/^batch_req_[0-9a-f]{24}$/);
      expect(l.response?.status_code).toBe(200);
      expect(l.response?.body.object).toBe('chat.completion');
      expect(l.response?.body.choices[0]?.message.role).toBe('assistant');
      expect(l.response?.body.choices[0]?.message.content.length).toBeGreaterThan(0);
      const u = l.response?.body.usage;
      expect(u && u.total_tokens === u.prompt_tokens + u.completion_tokens && u.prompt_tokens > 0).toBe(true);
      expect(l.response?.body.switchyard.cost_nanos).toBeGreaterThan(0);
    }
    expect(byId.get(`${tag}-pinned`)?.response?.body.model).toBe('claude-3-5-haiku');
    expect(byId.get(`${tag}-json`)?.response?.body.model).toBe('gpt-4o-mini');
    expect((): unknown => JSON.parse(byId.get(`${tag}-json`)?.response?.body.choices[0]?.message.content ?? '')).not.toThrow();
    // Routed: the cheap tier for a sentiment label.
    expect(byId.get(`${tag}-routed`)?.response?.body.switchyard.tier).toBe('economy');
  };

  it('runs the file as it is, and writes OpenAI Batch output lines', async () => {
    const out = join(dir, 'out.jsonl');
    const r = await runCli(['batch', input, '--out', out, '--output-format', 'openai', '--json'], env(), dir);
    expect(r.code, r.stderr).toBe(3); // two lines refused: partial
    const summary = JSON.parse(r.stdout) as {
      completed: number;
      invalid: number;
      invalidLines: Array<{ line: number; error: string }>;
      temporalActions: { requests: number; actions: number };
    };
    expect(summary.completed).toBe(5);
    expect(summary.temporalActions.requests).toBe(5);
    expect(summary.temporalActions.actions).toBeGreaterThanOrEqual(5 * 4);
    expect(summary.invalidLines.map((l) => l.error)).toEqual([
      expect.stringMatching(/^line 6: body\.functions: the legacy functions field is not supported/),
      expect.stringMatching(/^line 7: url: only "\/v1\/chat\/completions" is supported/),
    ]);
    check(
      readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as OpenAIOutputLine),
    );
    // The pinned line's conversation reached Anthropic's wire format with its text parts joined.
    expect(
      stack.simulator.received().some((q) => q.format === 'anthropic' && q.turns[0]?.text === 'Summarise in one line: the meeting moved to Tuesday.'),
    ).toBe(true);
  });

  it('`ask --messages FILE` takes a conversation (an array, or an OpenAI request body), and names a bad one', async () => {
    const body = join(dir, 'chat.json');
    writeFileSync(
      body,
      JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'developer', content: 'Be terse.' },
          { role: 'user', content: 'Name a prime.' },
          { role: 'assistant', content: '7' },
          { role: 'user', content: 'A larger one?' },
        ],
      }),
    );
    const r = await runCli(['ask', '--messages', body, '--json'], env(), dir);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { text: string; usage: { inputTokens: number } };
    expect(res.text.length).toBeGreaterThan(0);
    expect(
      stack.simulator
        .received()
        .at(-1)
        ?.turns.map((t) => t.role),
    ).toEqual(['user', 'assistant', 'user']);
    const bad = join(dir, 'bad-chat.json');
    writeFileSync(
      bad,
      JSON.stringify([
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
      ]),
    );
    const refused = await runCli(['ask', '--messages', bad], env(), dir);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/messages\[1\]: the last message must be from the user/);
    const both = await runCli(['ask', 'hello', '--messages', body], env(), dir);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/a prompt or --messages FILE, not both/);
    // An OpenAI body is read as a batch line's body is: its model pins, its tools are offered (the call is printed).
    const res2 = res as unknown as { model: string };
    expect(res2.model).toBe('gpt-4o-mini');
    const withTools = join(dir, 'tools-chat.json');
    writeFileSync(
      withTools,
      JSON.stringify({ messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'w' } }], tool_choice: 'required' }),
    );
    const tools = await runCli(['ask', '--messages', withTools], env(), dir);
    expect(tools.code, tools.stderr).toBe(0);
    expect(tools.stdout).toMatch(/^-> calls w\(\{\}\) \[\S+\]$/m);
    const legacy = join(dir, 'legacy-chat.json');
    writeFileSync(legacy, JSON.stringify({ messages: [{ role: 'user', content: 'weather?' }], functions: [{ name: 'w' }] }));
    const refusedLegacy = await runCli(['ask', '--messages', legacy], env(), dir);
    expect(refusedLegacy.code).not.toBe(0);
    expect(refusedLegacy.stderr).toMatch(/body\.functions: the legacy functions field is not supported/);
  });

  it('a detached batch of the same file collects the same shape', async () => {
    const batchId = `oai-${tag}`;
    const detached = join(dir, 'detached.jsonl');
    writeFileSync(detached, readFileSync(input, 'utf8').replaceAll(`"custom_id":"${tag}-`, `"custom_id":"${tag}-d-`));
    const started = await runCli(['batch', detached, '--detach', '--batch-id', batchId, '--json'], env(), dir);
    expect(started.code, started.stderr).toBe(0);
    const out = join(dir, 'detached.out.jsonl');
    const r = await runCli(['batch', 'results', batchId, '--out', out, '--output-format', 'openai', '--json'], env(), dir);
    expect(r.code, r.stderr).toBe(3);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as OpenAIOutputLine);
    check(lines.map((l) => ({ ...l, custom_id: l.custom_id?.replace(`${tag}-d-`, `${tag}-`) ?? null })));
  });
});
