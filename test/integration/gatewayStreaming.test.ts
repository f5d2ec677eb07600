/**
 * Streaming through the gateway with the official `openai` npm client, against a real dev server and
 * the simulator over HTTP: the provider's pieces reach the client while the run is still going, with
 * usage and cost in the last chunk; buffered mode; and every way a stream can break, with the spend
 * equal to what the simulator billed, once: the provider failing mid-answer, the client leaving
 * mid-answer, and the worker process SIGKILLed mid-answer (its replacement settles what the gateway
 * relayed instead of calling again).
 */
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costNanos } from '../../src/catalog/pricing.js';
import { faultSpecSchema } from '../../src/simulator/faults.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnWorker, useTestStack } from '../helpers/stack.js';

const MODEL = 'gpt-4o-mini';
const PROMPT = 'Explain in a few sentences why durable execution helps long LLM pipelines.';

describe('streaming through the gateway', () => {
  const stack = useTestStack();
  let gateway: TestGateway;
  let openai: OpenAI;
  beforeAll(async () => {
    gateway = await startGateway(stack);
    openai = new OpenAI({ apiKey: 'unused-while-open', baseURL: gateway.base, maxRetries: 0 });
  });
  afterAll(async () => {
    stack.simulator.setFaults({});
    await gateway?.stop();
  });

  /** What the simulator billed for MODEL since its stats were reset, priced as the catalog prices it. */
  const billed = () => {
    const s = stack.simulator.getStats().byModel[MODEL];
    const usage = { inputTokens: s?.inputTokens ?? 0, cachedInputTokens: 0, outputTokens: s?.outputTokens ?? 0 };
    return { usage, nanos: costNanos(stack.catalog.require(MODEL), usage) };
  };
  const slow = (spec: Record<string, unknown>) => stack.simulator.setFaults({ [MODEL]: faultSpecSchema.parse(spec) });

  it('relays the pieces as the provider sends them: the first reaches the client while the run is still going', async () => {
    slow({ chunkDelayMs: 40 });
    stack.simulator.resetStats();
    const { data: stream, response } = await openai.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true, stream_options: { include_usage: true } })
      .withResponse();
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(response.headers.get('x-switchyard-stream')).toBe('live');
    const workflowId = response.headers.get('x-switchyard-workflow-id')!;
    let text = '';
    let pieces = 0;
    let runningAtFirst: string | undefined;
    let last: OpenAI.Chat.ChatCompletionChunk | undefined;
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta.content;
      if (piece) {
        pieces += 1;
        text += piece;
        if (pieces === 1) runningAtFirst = (await stack.client.temporal.workflow.getHandle(workflowId).describe()).status.name;
      }
      last = chunk;
    }
    expect(runningAtFirst).toBe('RUNNING');
    expect(pieces).toBeGreaterThan(3);
    const result = await stack.client.result(workflowId);
    expect(result.text).toBe(text);
    expect(result.streamed).toBe('complete');
    // The usage chunk: the real usage, and the cost the ledger holds.
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.completion_tokens).toBe(result.usage.outputTokens);
    const ext = (last as unknown as { switchyard: { costNanos: number } }).switchyard;
    expect(ext.costNanos).toBe(result.costNanos);
    const entries = stack.ledger.entries().filter((e) => e.workflowId === workflowId);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.costNanos).toBe(billed().nanos);
  });

  it('buffered mode runs the checks first, then streams the final answer', async () => {
    stack.simulator.setFaults({});
    const { data: stream, response } = await openai.chat.completions
      .create(
        { model: 'auto', messages: [{ role: 'user', content: 'Reply in JSON with a key "colour".' }], response_format: { type: 'json_object' }, stream: true },
        { headers: { 'x-switchyard-stream': 'buffered' } },
      )
      .withResponse();
    expect(response.headers.get('x-switchyard-stream')).toBe('buffered');
    // The cost is known before the first event: the headers carry it.
    expect(Number(response.headers.get('x-switchyard-cost-nanos'))).toBeGreaterThan(0);
    let text = '';
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(() => JSON.parse(text) as unknown).not.toThrow();
    expect(finish).toBe('stop');
  });

  it('a provider failing mid-answer ends the stream with an error event; the run fails as StreamInterrupted, charged what the provider billed', async () => {
    slow({ breakAfterChunks: 3 });
    stack.simulator.resetStats();
    const { data: stream, response } = await openai.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true })
      .withResponse();
    const workflowId = response.headers.get('x-switchyard-workflow-id')!;
    let text = '';
    const err = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('stream_interrupted');
    expect(text.length).toBeGreaterThan(0);
    const failed = await stack.client.result(workflowId).catch((e: unknown) => e);
    expect((failed as { failureType?: string }).failureType).toBe('StreamInterrupted');
    // One call only: no retry and no other model after text reached the client.
    expect(stack.simulator.getStats().requests).toBe(1);
    const entries = stack.ledger.entries().filter((e) => e.workflowId === workflowId);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.outputTokens).toBe(billed().usage.outputTokens);
    expect(entries[0]?.costNanos).toBe(billed().nanos);
  });

  it('a client leaving mid-answer stops the call: the run completes with what was sent, charged what the provider billed', async () => {
    slow({ chunkDelayMs: 60 });
    stack.simulator.resetStats();
    const ac = new AbortController();
    const { data: stream, response } = await openai.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true }, { signal: ac.signal })
      .withResponse();
    const workflowId = response.headers.get('x-switchyard-workflow-id')!;
    let pieces = 0;
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content && ++pieces === 3) ac.abort();
    const result = await stack.client.result(workflowId);
    expect(result.streamed).toBe('client_left');
    const full = (await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }] })).usage?.completion_tokens ?? 0;
    expect(result.usage.outputTokens).toBeLessThan(full);
    const entries = stack.ledger.entries().filter((e) => e.workflowId === workflowId);
    expect(entries).toHaveLength(1);
    // Settled = what the run received when the call stopped. The provider bills what it wrote, which
    // may include one piece that was on the wire as the call stopped (nobody can see that piece), so
    // the settled charge is the bill or the bill less at most one piece (a word: a few tokens).
    const s = stack.simulator.getStats().byModel[MODEL];
    const price = (outputTokens: number) =>
      costNanos(stack.catalog.require(MODEL), { inputTokens: result.usage.inputTokens, cachedInputTokens: 0, outputTokens });
    const billedForStream = price((s?.outputTokens ?? 0) - full);
    const settled = entries[0]?.costNanos ?? -1;
    expect(settled).toBe(price(result.usage.outputTokens));
    expect(settled).toBeLessThanOrEqual(billedForStream);
    expect(billedForStream - settled).toBeLessThanOrEqual(price(4) - price(0));
    // Collected later, the cut answer is not passed off as a whole one.
    const later = await fetch(`${gateway.base}/switchyard/requests/${encodeURIComponent(workflowId)}`);
    expect(later.status).toBe(502);
    expect(later.headers.get('x-should-retry')).toBe('false');
    expect(((await later.json()) as { error: { code: string } }).error.code).toBe('stream_interrupted');
  });

  it('a client that leaves before the first token: the run goes on to the whole answer, charged once, and a retry collects it', async () => {
    stack.simulator.setFaults({});
    stack.simulator.resetStats();
    const release = stack.simulator.hold(MODEL);
    try {
      const ac = new AbortController();
      const key = `left-early-${Date.now()}`;
      const call = openai.chat.completions
        .create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true }, { signal: ac.signal, headers: { 'Idempotency-Key': key } })
        .catch((e: unknown) => e);
      const deadline = Date.now() + 10_000;
      while (stack.simulator.heldCount(MODEL) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      ac.abort();
      await call;
      release();
      // The same call again attaches to the run and gets its whole answer.
      const { data: again, response } = await openai.chat.completions
        .create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true }, { headers: { 'Idempotency-Key': key } })
        .withResponse();
      let text = '';
      for await (const c of again) text += c.choices[0]?.delta.content ?? '';
      const r = await stack.client.result(response.headers.get('x-switchyard-workflow-id')!);
      expect(r.streamed).toBe('complete');
      expect(text).toBe(r.text);
      expect(r.usage.outputTokens).toBe(billed().usage.outputTokens);
      expect(stack.ledger.entries().filter((e) => e.workflowId === r.workflowId)).toHaveLength(1);
    } finally {
      release();
    }
  });

  it('a relay the worker cannot reach is not a client that left: the call goes on, the client gets the whole answer, charged once', async () => {
    slow({});
    stack.simulator.resetStats();
    const unreachable = await startGateway(stack, { relayUrl: 'http://127.0.0.1:1/switchyard/relay' });
    try {
      const client = new OpenAI({ apiKey: 'unused-while-open', baseURL: unreachable.base, maxRetries: 0 });
      const { data: stream, response } = await client.chat.completions
        .create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true })
        .withResponse();
      let text = '';
      let finish: string | null | undefined;
      for await (const c of stream) {
        text += c.choices[0]?.delta.content ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      const r = await stack.client.result(response.headers.get('x-switchyard-workflow-id')!);
      expect(r.streamed).toBe('complete');
      expect(text).toBe(r.text);
      expect(finish).toBe('stop');
      expect(r.usage.outputTokens).toBe(billed().usage.outputTokens);
      expect(stack.ledger.entries().filter((e) => e.workflowId === r.workflowId)).toHaveLength(1);
    } finally {
      await unreachable.stop();
    }
  });

  it('a gateway stopping before the first token still answers its stream whole (its relay refused, the call goes on)', async () => {
    stack.simulator.setFaults({});
    const stopping = await startGateway(stack);
    const release = stack.simulator.hold(MODEL);
    let closed: Promise<void> | undefined;
    try {
      const client = new OpenAI({ apiKey: 'unused-while-open', baseURL: stopping.base, maxRetries: 0 });
      const call = client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true }).withResponse();
      const deadline = Date.now() + 10_000;
      while (stack.simulator.heldCount(MODEL) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(stack.simulator.heldCount(MODEL)).toBe(1);
      closed = stopping.gw.close(20_000);
      release();
      const { data: stream, response } = await call;
      let text = '';
      let finish: string | null | undefined;
      for await (const c of stream) {
        text += c.choices[0]?.delta.content ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      await closed;
      const r = await stack.client.result(response.headers.get('x-switchyard-workflow-id')!);
      expect(r.streamed).toBe('complete');
      expect(text).toBe(r.text);
      expect(finish).toBe('stop');
    } finally {
      release();
      await (closed ?? stopping.stop());
    }
  });
});

describe('a worker SIGKILLed mid-stream', () => {
  const stack = useTestStack();
  let gateway: TestGateway;
  let worker: ChildProcess | undefined;
  beforeAll(async () => {
    gateway = await startGateway(stack);
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null) worker.kill('SIGKILL');
    await gateway?.stop();
  });

  it('ends the stream with an error event; the next worker settles what was relayed, never calling again', async () => {
    worker = await spawnWorker(stack);
    const child = worker;
    stack.simulator.setFaults({ [MODEL]: faultSpecSchema.parse({ chunkDelayMs: 400 }) });
    stack.simulator.resetStats();
    const openai = new OpenAI({ apiKey: 'unused-while-open', baseURL: gateway.base, maxRetries: 0 });
    const { data: stream, response } = await openai.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true })
      .withResponse();
    const workflowId = response.headers.get('x-switchyard-workflow-id')!;
    let text = '';
    let pieces = 0;
    const err = await (async () => {
      for await (const chunk of stream) {
        const piece = chunk.choices[0]?.delta.content;
        if (!piece) continue;
        text += piece;
        // Right after a piece: the next is 400 ms away, so the worker dies between two pieces.
        if (++pieces === 2) child.kill('SIGKILL');
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('worker_lost');
    await stack.restartWorker();
    const failed = await stack.client.result(workflowId).catch((e: unknown) => e);
    expect((failed as { failureType?: string }).failureType).toBe('StreamInterrupted');
    expect(stack.simulator.getStats().requests).toBe(1);
    const entries = stack.ledger.entries().filter((e) => e.workflowId === workflowId);
    expect(entries).toHaveLength(1);
    const s = stack.simulator.getStats().byModel[MODEL];
    const usage = { inputTokens: s?.inputTokens ?? 0, cachedInputTokens: 0, outputTokens: s?.outputTokens ?? 0 };
    expect(entries[0]?.outputTokens).toBe(usage.outputTokens);
    expect(entries[0]?.costNanos).toBe(costNanos(stack.catalog.require(MODEL), usage));
    expect(text.length).toBeGreaterThan(0);
  }, 60_000);
});

describe('the gateway against slow and greedy clients, and its graceful stop', () => {
  // A call may pause 1.5 s at most between two pieces here (the stalled provider below).
  const stack = useTestStack({ config: { callTimeoutMs: 1_500 } });
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway(stack, { idleTimeoutMs: 500, maxStreamsPerKey: 1 });
  });
  afterAll(async () => {
    stack.simulator.setFaults({});
    await gateway?.stop();
  });

  /** A raw connection that sends `head` and then nothing: resolves with how long the gateway kept it. */
  const stall = (head: string) =>
    new Promise<number>((resolve, reject) => {
      const t0 = Date.now();
      const s = connect(Number(new URL(gateway.base).port), '127.0.0.1', () => s.write(head));
      // Read what the gateway answers (a refusal may come before the drop): a paused socket would not see its close.
      s.resume();
      s.on('close', () => resolve(Date.now() - t0));
      s.on('error', () => undefined);
      setTimeout(() => reject(new Error(`the gateway kept a stalled connection for 10 s: ${head.slice(0, 60)}`)), 10_000).unref();
    });

  it('drops a client that stalls in its headers or its body, on any path', async () => {
    expect(await stall('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: app')).toBeLessThan(10_000);
    expect(await stall('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model"')).toBeLessThan(
      10_000,
    );
    expect(await stall('POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a"')).toBeLessThan(10_000);
    expect(
      await stall('POST /switchyard/relay/unknown HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n'),
    ).toBeLessThan(10_000);
  });

  it('a provider that stalls mid-stream is cut off after the pause bound: an error event, charged what it sent', async () => {
    stack.simulator.setFaults({ [MODEL]: faultSpecSchema.parse({ chunkDelayMs: 5_000 }) });
    stack.simulator.resetStats();
    const openai = new OpenAI({ apiKey: 'unused-while-open', baseURL: gateway.base, maxRetries: 0 });
    const { data: stream, response } = await openai.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true })
      .withResponse();
    let text = '';
    const err = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('stream_interrupted');
    expect((err as Error).message).toMatch(/sent nothing for 2 s mid-stream/);
    expect(text.length).toBeGreaterThan(0);
    const workflowId = response.headers.get('x-switchyard-workflow-id')!;
    const failed = await stack.client.result(workflowId).catch((e: unknown) => e);
    expect((failed as { failureType?: string }).failureType).toBe('StreamInterrupted');
    const entries = stack.ledger.entries().filter((e) => e.workflowId === workflowId);
    expect(entries).toHaveLength(1);
    // The simulator bills the cut stream when its own pause ends and it finds the connection gone.
    const billedOut = () => stack.simulator.getStats().byModel[MODEL]?.outputTokens ?? 0;
    for (const until = Date.now() + 8_000; billedOut() === 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 100));
    expect(entries[0]?.outputTokens).toBe(billedOut());
    stack.simulator.setFaults({});
  });

  it('holds a key to its streams at once (429), and a graceful stop lets the open stream finish', async () => {
    stack.simulator.setFaults({ [MODEL]: faultSpecSchema.parse({ chunkDelayMs: 60 }) });
    const openai = new OpenAI({ apiKey: 'unused-while-open', baseURL: gateway.base, maxRetries: 0 });
    const { data: first, response } = await openai.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true })
      .withResponse();
    const second = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true }).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(OpenAI.RateLimitError);
    expect((second as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('too_many_streams');
    // Stop the gateway while the first stream is still going: it finishes, to its last chunk.
    const stopping = gateway.gw.close(20_000);
    let text = '';
    let finish: string | null | undefined;
    for await (const c of first) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    await stopping;
    expect(finish).toBe('stop');
    const r = await stack.client.result(response.headers.get('x-switchyard-workflow-id')!);
    expect(r.text).toBe(text);
    expect(r.streamed).toBe('complete');
    const refused = await fetch(`${gateway.base}/models`).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
  });
});
