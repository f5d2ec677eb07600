/**
 * The OpenAI-compatible gateway's first slice, with the official `openai` npm client against a real
 * dev server and the simulator over HTTP: a routed chat answered by the request workflow with the
 * real usage and Switchyard's headers, a pinned model, the model list, and refusals in OpenAI's
 * shape naming the parameter (nothing started, nothing charged).
 */
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildGateway } from '../../src/gateway/server.js';
import { bin, runCli } from '../helpers/cli.js';
import { useTestStack } from '../helpers/stack.js';

describe('the gateway, through the official openai client', () => {
  const stack = useTestStack();
  let app: FastifyInstance;
  let base = '';
  let openai: OpenAI;
  beforeAll(async () => {
    app = buildGateway({ client: stack.client, catalog: stack.catalog, bodyLimit: 64 * 1024 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1`;
    openai = new OpenAI({ apiKey: 'unused-until-keys', baseURL: base, maxRetries: 0 });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('answers a routed chat through the request workflow, with the real usage and the run in its headers', async () => {
    const { data, response } = await openai.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'Classify the sentiment: I love this product.' }] })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(stack.catalog.models.map((m) => m.name)).toContain(data.model);
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

  it('lists auto and the catalog models with their prices', async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids[0]).toBe('auto');
    for (const m of stack.catalog.models) expect(ids).toContain(m.name);
  });

  it('refuses what it does not support, naming the parameter, in OpenAI shape', async () => {
    const msgs = [{ role: 'user' as const, content: 'hi' }];
    const n = await openai.chat.completions.create({ model: 'auto', messages: msgs, n: 2 }).catch((e: unknown) => e);
    expect(n).toBeInstanceOf(OpenAI.BadRequestError);
    expect((n as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
    const stream = await openai.chat.completions.create({ model: 'auto', messages: msgs, stream: true }).catch((e: unknown) => e);
    expect(stream).toBeInstanceOf(OpenAI.BadRequestError);
    expect((stream as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('stream');
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
      const models = (await (await fetch(`${url}/models`)).json()) as { data: Array<{ id: string; switchyard: { configured?: unknown } }> };
      for (const m of models.data.slice(1)) expect(typeof m.switchyard.configured).toBe('boolean');
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
    expect(r.stderr).toMatch(/bind 127\.0\.0\.1 until keys exist/);
  });
});
