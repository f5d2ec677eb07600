/**
 * The OpenAI-compatible gateway's first slice, with the official `openai` npm client against a real
 * dev server and the simulator over HTTP: a routed chat answered by the request workflow with the
 * real usage and Switchyard's headers, a pinned model, the model list, and refusals in OpenAI's
 * shape naming the parameter (nothing started, nothing charged).
 */
import { spawn } from 'node:child_process';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, runCli } from '../helpers/cli.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { useTestStack } from '../helpers/stack.js';

describe('the gateway, through the official openai client', () => {
  const stack = useTestStack();
  let gateway: TestGateway;
  let base = '';
  let openai: OpenAI;
  beforeAll(async () => {
    gateway = await startGateway(stack, { bodyLimit: 64 * 1024, aliases: { 'gpt-4': 'switchyard/premium', cheap: 'gpt-4o-mini' }, waitMs: 1_500 });
    base = gateway.base;
    openai = new OpenAI({ apiKey: 'unused-while-open', baseURL: base, maxRetries: 0 });
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it('answers a routed chat through the request workflow, with the real usage and the run in its headers', async () => {
    const { data, response } = await openai.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'Classify the sentiment: I love this product.' }] })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(stack.catalog.models.map((m) => m.name)).toContain(data.model);
    expect(data.choices[0]?.finish_reason).toBe('stop');
    expect(data.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(data.usage?.completion_tokens).toBeGreaterThan(0);
    const workflowId = response.headers.get('x-switchyard-workflow-id');
    expect(workflowId).toBeTruthy();
    expect(response.headers.get('x-switchyard-model')).toBe(data.model);
    const result = await stack.client.result(workflowId!);
    expect(result.text).toBe(data.choices[0]?.message.content);
    expect(Number(response.headers.get('x-switchyard-cost-nanos'))).toBe(result.costNanos);
    expect(result.costNanos).toBeGreaterThan(0);
  });

  it('pins a catalog model, and the same Idempotency-Key attaches to the run already made', async () => {
    const key = `gw-test-${Date.now()}`;
    const ask = () =>
      openai.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in French.' }] }, { headers: { 'Idempotency-Key': key } })
        .withResponse();
    const first = await ask();
    const second = await ask();
    expect(first.data.model).toBe('gpt-4o-mini');
    expect(second.response.headers.get('x-switchyard-workflow-id')).toBe(first.response.headers.get('x-switchyard-workflow-id'));
    expect(second.data.choices[0]?.message.content).toBe(first.data.choices[0]?.message.content);
  });

  it('refuses the same Idempotency-Key with another body (422), and runs nothing for it', async () => {
    const key = `gw-conflict-${Date.now()}`;
    const first = await openai.chat.completions.create(
      { model: 'auto', messages: [{ role: 'user', content: 'Name a colour.' }] },
      { headers: { 'Idempotency-Key': key } },
    );
    expect(first.choices[0]?.message.content?.length).toBeGreaterThan(0);
    const other = await openai.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'Name a fruit.' }] }, { headers: { 'Idempotency-Key': key } })
      .catch((e: unknown) => e);
    expect(other).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect((other as InstanceType<typeof OpenAI.UnprocessableEntityError>).code).toBe('idempotency_key_reused');
    // The same body with other Switchyard options is another request too.
    const otherOptions = await openai.chat.completions
      .create(
        { model: 'auto', messages: [{ role: 'user', content: 'Name a colour.' }] },
        { headers: { 'Idempotency-Key': key, 'x-switchyard-category': 'batch' } },
      )
      .catch((e: unknown) => e);
    expect(otherOptions).toBeInstanceOf(OpenAI.UnprocessableEntityError);
  });

  it("answers the router's own refusals and unknown routes in OpenAI's shape", async () => {
    const badPath = await fetch(`${base}/switchyard/requests/%E0%A4%A`);
    expect(badPath.status).toBe(400);
    expect(((await badPath.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    const nowhere = await fetch(`${base}/nothing-here`);
    expect(nowhere.status).toBe(404);
    expect(((await nowhere.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('a tier or an alias routes within it; x-switchyard headers and metadata set the category and feature', async () => {
    const premium = await openai.chat.completions.create({ model: 'switchyard/premium', messages: [{ role: 'user', content: 'Say hi.' }] }).withResponse();
    expect(premium.response.headers.get('x-switchyard-tier')).toBe('premium');
    const alias = await openai.chat.completions.create({ model: 'gpt-4', messages: [{ role: 'user', content: 'Say hi again.' }] }).withResponse();
    expect(alias.response.headers.get('x-switchyard-tier')).toBe('premium');
    const pinned = await openai.chat.completions.create({ model: 'cheap', messages: [{ role: 'user', content: 'Say hi once more.' }] });
    expect(pinned.model).toBe('gpt-4o-mini');
    const tagged = await openai.chat.completions
      .create(
        { model: 'auto', messages: [{ role: 'user', content: 'Summarise: the sky is blue.' }], metadata: { switchyard_feature: 'summarise' } },
        { headers: { 'x-switchyard-category': 'batch' } },
      )
      .withResponse();
    const r = await stack.client.result(tagged.response.headers.get('x-switchyard-workflow-id')!);
    expect(r.category).toBe('batch');
    expect(r.feature).toBe('summarise');
  });

  it('a request that outlasts the wait bound answers 504 with its workflow id; GET /v1/switchyard/requests/{id} collects it, charged once', async () => {
    const release = stack.simulator.hold('gpt-4o-mini');
    try {
      const slow = await fetch(`${base}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Take your time: list three rivers.' }] }),
      });
      expect(slow.status).toBe(504);
      const body = (await slow.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('request_pending');
      const workflowId = slow.headers.get('x-switchyard-workflow-id')!;
      expect(body.error.message).toContain(`/v1/switchyard/requests/${workflowId}`);
      expect(slow.headers.get('location')).toBe(`/v1/switchyard/requests/${workflowId}`);
      // The official client retries 5xx by default; a retry without an Idempotency-Key would start
      // another paid run, so the gateway tells it not to: one more call, one more run, no third.
      expect(slow.headers.get('x-should-retry')).toBe('false');
      const retrying = new OpenAI({ apiKey: 'unused-while-open', baseURL: base, maxRetries: 2 });
      const again = await retrying.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Take your time: list three lakes.' }] })
        .catch((e: unknown) => e);
      expect((again as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
      expect(stack.simulator.heldCount('gpt-4o-mini')).toBe(2);
      release();
      const got = await fetch(`${base}/switchyard/requests/${workflowId}`);
      expect(got.status).toBe(200);
      const done = (await got.json()) as { choices: Array<{ message: { content: string } }>; switchyard: { costNanos: number } };
      expect(done.choices[0]?.message.content.length).toBeGreaterThan(0);
      const entries = stack.ledger.entries().filter((e) => e.workflowId === workflowId);
      expect(entries).toHaveLength(1);
      expect(entries[0]?.costNanos).toBe(done.switchyard.costNanos);
      const unknown = await fetch(`${base}/switchyard/requests/llm-no-such-request`);
      expect(unknown.status).toBe(404);
    } finally {
      release();
    }
  });

  it('lists auto, the tiers, the aliases and the catalog models with their prices', async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids.slice(0, 4)).toEqual(['auto', 'switchyard/economy', 'switchyard/standard', 'switchyard/premium']);
    expect(ids).toContain('gpt-4');
    for (const m of stack.catalog.models) expect(ids).toContain(m.name);
  });

  it('refuses what it does not support, naming the parameter, in OpenAI shape', async () => {
    const msgs = [{ role: 'user' as const, content: 'hi' }];
    const n = await openai.chat.completions.create({ model: 'auto', messages: msgs, n: 2 }).catch((e: unknown) => e);
    expect(n).toBeInstanceOf(OpenAI.BadRequestError);
    expect((n as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
    const logprobs = await openai.chat.completions.create({ model: 'auto', messages: msgs, logprobs: true }).catch((e: unknown) => e);
    expect(logprobs).toBeInstanceOf(OpenAI.BadRequestError);
    expect((logprobs as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('logprobs');
    const tier = await openai.chat.completions.create({ model: 'switchyard/deluxe', messages: msgs }).catch((e: unknown) => e);
    expect(tier).toBeInstanceOf(OpenAI.NotFoundError);
    const header = await openai.chat.completions
      .create({ model: 'auto', messages: msgs }, { headers: { 'x-switchyard-max-latency-ms': 'soon' } })
      .catch((e: unknown) => e);
    expect(header).toBeInstanceOf(OpenAI.BadRequestError);
    expect((header as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('x-switchyard-max-latency-ms');
    const temp = await openai.chat.completions.create({ model: 'auto', messages: msgs, temperature: 7 }).catch((e: unknown) => e);
    expect(temp).toBeInstanceOf(OpenAI.BadRequestError);
    expect((temp as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
    expect((temp as Error).message).toMatch(/temperature: /);
    const unknown = await openai.chat.completions.create({ model: 'gpt-99', messages: msgs }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect((unknown as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
  });

  it('answers malformed JSON and an oversized body with 400 and 413 in OpenAI shape', async () => {
    const bad = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": "auto", "messages": [',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    const big = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'x'.repeat(100 * 1024) }] }),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { message: string } }).error.message).toMatch(/larger than/);
  });
});

describe('switchyard gateway, the command', () => {
  const stack = useTestStack();

  it('serves the OpenAI API in front of the stack TEMPORAL_ADDRESS points at, and stops on SIGTERM', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: stack.address,
      SWITCHYARD_TASK_QUEUE: stack.config.taskQueue,
      SWITCHYARD_LOG_LEVEL: 'warn',
    };
    const child = spawn(process.execPath, [bin, 'gateway', '--port', '0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let err = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /gateway listening on (http:\/\/\S+\/v1)/.exec(err);
          if (m?.[1]) resolve(m[1]);
        });
        child.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${err}`)));
      });
      const openai = new OpenAI({ apiKey: 'unused-until-keys', baseURL: url, maxRetries: 0 });
      const r = await openai.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'Translate to German: good morning.' }] });
      expect(r.choices[0]?.message.content?.length).toBeGreaterThan(0);
      // The command marks whether each model's provider is configured where it runs.
      const models = (await (await fetch(`${url}/models`)).json()) as {
        data: Array<{ id: string; switchyard: { configured?: unknown; inputNanosPerMTok?: number } }>;
      };
      const catalogModels = models.data.filter((m) => m.switchyard.inputNanosPerMTok !== undefined);
      expect(catalogModels.length).toBe(stack.catalog.models.length);
      for (const m of catalogModels) expect(typeof m.switchyard.configured).toBe('boolean');
      const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses to bind beyond this machine while it has no keys', async () => {
    const r = await runCli(['gateway', '--host', '0.0.0.0', '--port', '0'], { ...process.env, TEMPORAL_ADDRESS: stack.address });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/without keys; create one first/);
  });
});
