/**
 * OpenAI's Files and Batches endpoints on the gateway, with the official `openai` npm client: a
 * batch input uploaded (multipart, streamed to the store), a batch created, polled to
 * `completed`, and its output and error files read with the SDK's own types; each line routed on
 * its own (one with tools, one pinned), refused and failed lines in the error file, the spend in
 * the extension equal to the runs' results; a gateway restarted mid-batch (the batch goes on: it
 * is a workflow); cancel; the completion window running out (`expired`); and refusals naming the
 * param. Real dev server, simulator over HTTP.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultSpecSchema } from '../../src/simulator/faults.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnWorker, useTestStack } from '../helpers/stack.js';

interface OutputLine {
  id: string;
  custom_id: string | null;
  response: { status_code: number; request_id: string | null; body: ChatCompletion & { switchyard?: { cost_nanos: number; tier: string } } } | null;
  error: { code: string; message: string } | null;
}

const weather = {
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};
const line = (custom_id: string, body: Record<string, unknown>) => JSON.stringify({ custom_id, method: 'POST', url: '/v1/chat/completions', body });

describe('/v1/files and /v1/batches, with the official openai client', () => {
  const stack = useTestStack();
  let dir: string;
  let gateway: TestGateway;
  let openai: OpenAI;
  const gatewayOn = async (windowMs?: number) =>
    startGateway(stack, { files: { dir: join(dir, 'files'), concurrency: 4, ...(windowMs ? { windowMs } : {}) }, waitMs: 5_000 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-files-'));
    gateway = await gatewayOn();
    openai = new OpenAI({ apiKey: 'unused-while-open', baseURL: gateway.base, maxRetries: 0 });
  });
  afterAll(async () => {
    await gateway?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const poll = async (client: OpenAI, id: string, until: (b: Batch) => boolean, ms = 60_000): Promise<Batch> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const b = await client.batches.retrieve(id);
      if (until(b)) return b;
      if (Date.now() > deadline) throw new Error(`batch ${id} still ${b.status} after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const linesOf = async (client: OpenAI, fileId: string | null | undefined): Promise<OutputLine[]> => {
    if (!fileId) return [];
    const text = await (await client.files.content(fileId)).text();
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as OutputLine);
  };

  it('runs a batch file to completed: an output line per answer, an error line per refused or failed line, the spend once', async () => {
    stack.simulator.setFaults({ 'mistral-large': faultSpecSchema.parse({ errorRates: { '400': 1 } }) });
    try {
      const input = [
        line('routed-1', { model: 'auto', messages: [{ role: 'user', content: 'Classify the sentiment: I love it.' }] }),
        line('pinned-2', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi in French.' }], max_tokens: 50 }),
        line('tools-3', { model: 'claude-3-5-haiku', messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [weather], tool_choice: 'required' }),
        line('refused-4', { messages: [{ role: 'user', content: 'x' }], tool_choice: 'sometimes', tools: [weather] }),
        line('failing-5', { model: 'mistral-large', messages: [{ role: 'user', content: 'Summarise: the cat sat.' }] }),
        line('routed 6 (spaces)', { messages: [{ role: 'user', content: 'What is 2+2?' }] }),
      ].join('\n');
      const file = await openai.files.create({ file: await toFile(Buffer.from(`${input}\n`), 'jobs.jsonl'), purpose: 'batch' });
      expect(file).toMatchObject({ object: 'file', purpose: 'batch', filename: 'jobs.jsonl', bytes: Buffer.byteLength(`${input}\n`), status: 'processed' });
      expect((await openai.files.retrieve(file.id)).id).toBe(file.id);
      const listed = [];
      for await (const f of openai.files.list()) listed.push(f.id);
      expect(listed).toContain(file.id);
      expect(await (await openai.files.content(file.id)).text()).toBe(`${input}\n`);

      const created = await openai.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { job: 'nightly' },
      });
      expect(created.status).toBe('in_progress');
      expect(created.metadata).toEqual({ job: 'nightly' });
      expect(created.request_counts?.total).toBe(6);
      const done = await poll(openai, created.id, (b) => ['completed', 'failed', 'expired', 'cancelled'].includes(b.status));
      expect(done.status).toBe('completed');
      expect(done.request_counts).toEqual({ total: 6, completed: 4, failed: 2 });
      expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);
      expect(done.finalizing_at).not.toBeNull();

      const out = await linesOf(openai, done.output_file_id);
      expect(out.map((l) => l.custom_id)).toEqual(['routed-1', 'pinned-2', 'tools-3', 'routed 6 (spaces)']);
      for (const l of out) {
        expect(l.error).toBeNull();
        expect(l.response?.status_code).toBe(200);
        expect(l.response?.body.object).toBe('chat.completion');
        expect(l.response?.body.switchyard?.cost_nanos).toBeGreaterThan(0);
      }
      expect(out[1]?.response?.body.model).toBe('gpt-4o-mini');
      const toolLine = out[2]?.response?.body.choices[0];
      expect(toolLine?.finish_reason).toBe('tool_calls');
      expect(toolLine?.message.tool_calls?.[0]?.type === 'function' && toolLine.message.tool_calls[0].function.name).toBe('get_weather');

      const errors = await linesOf(openai, done.error_file_id);
      expect(errors.map((l) => l.custom_id).sort()).toEqual(['failing-5', 'refused-4']);
      const refused = errors.find((l) => l.custom_id === 'refused-4');
      expect(refused?.response?.status_code).toBe(400);
      expect(JSON.stringify(refused?.response?.body)).toMatch(/body\.tool_choice: must be/);
      expect(errors.find((l) => l.custom_id === 'failing-5')?.error?.code).toBeTruthy();

      // The spend: each answered line's cost is its run's, and the batch's total is their sum (failed runs included).
      const results = await Promise.all(out.map((l) => stack.client.result(l.response!.request_id!)));
      out.forEach((l, i) => expect(l.response?.body.switchyard?.cost_nanos).toBe(results[i]?.costNanos));
      const extension = (done as Batch & { switchyard: { cost_nanos: number } }).switchyard;
      expect(extension.cost_nanos).toBeGreaterThanOrEqual(results.reduce((n, r) => n + r.costNanos, 0));
      // Batches list, newest first; a finished batch cannot be cancelled.
      const page = await openai.batches.list({ limit: 5 });
      expect(page.data[0]?.id).toBe(created.id);
      await expect(openai.batches.cancel(created.id)).rejects.toMatchObject({ status: 409 });
    } finally {
      stack.simulator.setFaults({});
    }
  });

  it('goes on while its gateway restarts, and another gateway on the same files answers for it', async () => {
    // The first call hangs until the call timeout (10 s here): the batch is still running when its gateway stops.
    stack.simulator.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ script: ['hang'] }) });
    try {
      const input = Array.from({ length: 8 }, (_, i) =>
        line(`r-${i}`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Count to ${i + 2}.` }] }),
      ).join('\n');
      const file = await openai.files.create({ file: await toFile(Buffer.from(input), 'restart.jsonl'), purpose: 'batch' });
      const created = await openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      expect((await openai.batches.retrieve(created.id)).status).toBe('in_progress');
      await gateway.stop();
      gateway = await gatewayOn();
      openai = new OpenAI({ apiKey: 'unused-while-open', baseURL: gateway.base, maxRetries: 0 });
      const done = await poll(openai, created.id, (b) => b.status === 'completed');
      expect(done.request_counts).toEqual({ total: 8, completed: 8, failed: 0 });
      expect((await linesOf(openai, done.output_file_id)).map((l) => l.custom_id)).toEqual(Array.from({ length: 8 }, (_, i) => `r-${i}`));
    } finally {
      stack.simulator.setFaults({});
    }
  });

  it("survives its worker SIGKILLed mid-batch: every line ends, and the ledger holds each run's spend once", async () => {
    const worker = await spawnWorker(stack);
    try {
      // The first call hangs: the worker dies with it (and others) in flight.
      stack.simulator.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ script: ['hang'] }) });
      const input = Array.from({ length: 6 }, (_, i) => line(`k-${i}`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Spell ${i}.` }] })).join(
        '\n',
      );
      const file = await openai.files.create({ file: await toFile(Buffer.from(input), 'kill.jsonl'), purpose: 'batch' });
      const created = await openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      await poll(openai, created.id, (b) => (b.request_counts?.completed ?? 0) >= 1, 30_000);
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));
      await stack.restartWorker();
      const done = await poll(openai, created.id, (b) => b.status === 'completed', 120_000);
      expect(done.request_counts).toEqual({ total: 6, completed: 6, failed: 0 });
      const out = await linesOf(openai, done.output_file_id);
      const runs = out.map((l) => l.response!.request_id!);
      const results = await Promise.all(runs.map((id) => stack.client.result(id)));
      const spent = results.reduce((n, r) => n + r.costNanos, 0);
      expect((done as Batch & { switchyard: { cost_nanos: number } }).switchyard.cost_nanos).toBe(spent);
      // The ledger file (written through its outbox) holds each settlement once, summing to the results.
      let rows: Array<{ key: string; workflowId: string; costNanos: number }> = [];
      for (let i = 0; i < 150; i++) {
        rows = readFileSync(stack.config.ledgerPath, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as { key: string; workflowId: string; costNanos: number })
          .filter((e) => runs.includes(e.workflowId));
        if (rows.reduce((n, e) => n + e.costNanos, 0) >= spent) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(rows.reduce((n, e) => n + e.costNanos, 0)).toBe(spent);
      expect(new Set(rows.map((e) => e.key)).size).toBe(rows.length);
    } finally {
      if (worker.exitCode === null) worker.kill('SIGKILL');
      stack.simulator.setFaults({});
    }
  });

  it('cancels: cancelling, then cancelled, the lines never run in the error file as batch_cancelled', async () => {
    stack.simulator.setFaults({ 'gpt-4o-mini': faultSpecSchema.parse({ hangRate: 1 }) });
    try {
      const input = Array.from({ length: 10 }, (_, i) => line(`c-${i}`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Line ${i}` }] })).join(
        '\n',
      );
      const file = await openai.files.create({ file: await toFile(Buffer.from(input), 'cancel.jsonl'), purpose: 'batch' });
      const created = await openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      await expect(openai.files.delete(file.id)).rejects.toMatchObject({ status: 400 });
      const cancelling = await openai.batches.cancel(created.id);
      expect(cancelling.status).toBe('cancelling');
      expect(cancelling.cancelling_at).not.toBeNull();
      const done = await poll(openai, created.id, (b) => b.status === 'cancelled');
      expect(done.cancelled_at).not.toBeNull();
      expect(done.request_counts?.completed).toBe(0);
      const errors = await linesOf(openai, done.error_file_id);
      expect(errors).toHaveLength(10);
      expect(errors.filter((l) => l.error?.code === 'batch_cancelled').length).toBeGreaterThanOrEqual(6);
      // Its input can go now.
      expect(await openai.files.delete(file.id)).toMatchObject({ id: file.id, deleted: true });
      await expect(openai.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 });
    } finally {
      stack.simulator.setFaults({});
    }
  });

  it('expires when its window runs out: what was answered is kept, the rest is batch_expired', async () => {
    const short = await gatewayOn(1_500);
    const client = new OpenAI({ apiKey: 'unused-while-open', baseURL: short.base, maxRetries: 0 });
    stack.simulator.setFaults({ 'claude-3-5-haiku': faultSpecSchema.parse({ hangRate: 1 }) });
    try {
      const input = [
        line('quick', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
        line('stuck', { model: 'claude-3-5-haiku', messages: [{ role: 'user', content: 'hi' }] }),
      ].join('\n');
      const file = await client.files.create({ file: await toFile(Buffer.from(input), 'expire.jsonl'), purpose: 'batch' });
      const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      expect(created.expires_at! - created.created_at).toBeLessThanOrEqual(2);
      const done = await poll(client, created.id, (b) => b.status === 'expired', 90_000);
      expect(done.expired_at).not.toBeNull();
      expect((await linesOf(client, done.output_file_id)).map((l) => l.custom_id)).toEqual(['quick']);
      expect((await linesOf(client, done.error_file_id)).map((l) => [l.custom_id, l.error?.code])).toEqual([['stuck', 'batch_expired']]);
    } finally {
      stack.simulator.setFaults({});
      await short.stop();
    }
  });

  it('pages by creation order even when the cursor was deleted, takes an empty JSON body on delete and cancel, and refuses Switchyard lines and tiers a key may not use', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (
          await openai.files.create({
            file: await toFile(Buffer.from(`${line(`p-${i}`, { messages: [{ role: 'user', content: 'x' }] })}\n`), `p${i}.jsonl`),
            purpose: 'batch',
          })
        ).id,
      );
    const firstPage = await openai.files.list({ limit: 1, order: 'asc', after: ids[0] });
    expect(firstPage.data.map((f) => f.id)).toEqual([ids[1]]);
    // The Python client's delete: a JSON content type and no body.
    const del = await fetch(`${gateway.base}/files/${ids[1]}`, { method: 'DELETE', headers: { 'content-type': 'application/json' } });
    expect(del.status).toBe(200);
    // Its id still holds its place as a cursor.
    expect((await openai.files.list({ limit: 1, order: 'asc', after: ids[1] })).data.map((f) => f.id)).toEqual([ids[2]]);

    // A gateway batch takes OpenAI lines only (a line's own category or judge is the key's to set), and tiers by name.
    const mixed = [
      JSON.stringify({ id: 'native', prompt: 'hi', category: 'critical' }),
      line('tiered', { model: 'switchyard/economy', messages: [{ role: 'user', content: 'Name a colour.' }] }),
      line('no-tier', { model: 'switchyard/gold', messages: [{ role: 'user', content: 'x' }] }),
    ].join('\n');
    const file = await openai.files.create({ file: await toFile(Buffer.from(mixed), 'mixed.jsonl'), purpose: 'batch' });
    const created = await openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const done = await poll(openai, created.id, (b) => b.status === 'completed');
    expect(done.request_counts).toEqual({ total: 3, completed: 1, failed: 2 });
    const out = await linesOf(openai, done.output_file_id);
    expect(out[0]?.response?.body.switchyard?.tier).toBe('economy');
    const errors = await linesOf(openai, done.error_file_id);
    expect(errors.map((l) => [l.custom_id, JSON.stringify(l.response?.body)])).toEqual([
      ['native', expect.stringMatching(/custom_id: is required: a batch created through \/v1\/batches holds OpenAI Batch lines/)],
      ['no-tier', expect.stringMatching(/body\.model: no tier \\"gold\\"/)],
    ]);
    const cancel = await fetch(`${gateway.base}/batches/${created.id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(cancel.status).toBe(409);
  });

  it('a batch whose gateway stopped while checking its lines ends failed, not validating forever', async () => {
    const created = Math.floor(Date.now() / 1000) - 3600;
    const stale = {
      id: 'batch_stale1',
      owner: 'open',
      endpoint: '/v1/chat/completions',
      input_file_id: 'file-gone',
      completion_window: '24h',
      metadata: null,
      created_at: created,
      expires_at: created + 86_400,
      total: 3,
      refused: 0,
      defaults: {},
    };
    mkdirSync(join(dir, 'files', 'batches'), { recursive: true });
    writeFileSync(join(dir, 'files', 'batches', 'batch_stale1.json'), JSON.stringify(stale));
    const b = await openai.batches.retrieve('batch_stale1');
    expect(b.status).toBe('failed');
    expect(b.errors?.data?.[0]?.code).toBe('validation_interrupted');
  });

  it.each<[string, () => Promise<Response>, number, string | null, RegExp]>([
    [
      'an upload without purpose=batch',
      async () => {
        const form = new FormData();
        form.append('purpose', 'fine-tune');
        form.append('file', new Blob(['{}\n']), 'x.jsonl');
        return fetch(`${gateway.base}/files`, { method: 'POST', body: form });
      },
      400,
      'purpose',
      /purpose=batch/,
    ],
    [
      'a JSON upload',
      () => fetch(`${gateway.base}/files`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
      400,
      'file',
      /multipart/,
    ],
    [
      'another endpoint',
      () => post('/batches', { input_file_id: 'file-x', endpoint: '/v1/embeddings', completion_window: '24h' }),
      400,
      'endpoint',
      /only "\/v1\/chat\/completions"/,
    ],
    [
      'another window',
      () => post('/batches', { input_file_id: 'file-x', endpoint: '/v1/chat/completions', completion_window: '1h' }),
      400,
      'completion_window',
      /"24h"/,
    ],
    [
      'an unknown file',
      () => post('/batches', { input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' }),
      404,
      'input_file_id',
      /No such File/,
    ],
    [
      'metadata too large',
      () => post('/batches', { input_file_id: 'file-x', endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { a: 'x'.repeat(600) } }),
      400,
      'metadata.a',
      /512/,
    ],
    ['an unknown batch', () => fetch(`${gateway.base}/batches/batch_nope`), 404, null, /No such Batch/],
    [
      'an upload field it does not take',
      async () => {
        const form = new FormData();
        form.append('purpose', 'batch');
        form.append('expires_after[anchor]', 'created_at');
        form.append('file', new Blob(['{}\n']), 'x.jsonl');
        return fetch(`${gateway.base}/files`, { method: 'POST', body: form });
      },
      400,
      'expires_after[anchor]',
      /kept until deleted/,
    ],
    [
      'a multipart body without its boundary',
      () => fetch(`${gateway.base}/files`, { method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: 'x' }),
      400,
      'file',
      /could not be read/,
    ],
  ])('refuses %s, naming the param', async (_what, call, status, param, message) => {
    const res = await call();
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { param: string | null; message: string } };
    expect(body.error.param).toBe(param);
    expect(body.error.message).toMatch(message);
  });

  const post = (path: string, body: unknown) =>
    fetch(`${gateway.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
});
