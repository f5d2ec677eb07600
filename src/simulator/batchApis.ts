/**
 * The providers' batch APIs, as the simulator serves them: OpenAI's files + batches and
 * Anthropic's message batches, in their wire formats. A batch is processed after
 * `processingMs` (scaled down for tests), when it is next looked at: each line is answered as a
 * live call to its model would be (the same deterministic answers), and billed at the model's
 * batch price. Faults (the `batch` field of a model's fault spec): the batch fails, expires, or
 * answers some lines with errors; results always come out of order, as the providers warn they may.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';

export const batchFaultSchema = z
  .object({
    /** How the batch ends: answered, failed as a whole (nothing answered), or expired (nothing answered). */
    outcome: z.enum(['ok', 'failed', 'expired']).default('ok'),
    /** The share of lines answered with an error (500) instead of an answer. */
    lineErrorRate: z.number().min(0).max(1).default(0),
    /** How long the batch takes, instead of the simulator's default. */
    processingMs: z.number().int().min(0).max(86_400_000).optional(),
  })
  .strict();
export type BatchFault = z.output<typeof batchFaultSchema>;

/** A line's answer as a live call would give it: the provider's reply body, or an error. */
export interface LineAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** What the simulator does for the batch module: answer a line, and say a model's batch fault. */
export interface BatchHost {
  answerLine(format: 'openai' | 'anthropic', body: unknown, errored: boolean): Promise<LineAnswer>;
  batchFault(model: string): BatchFault | undefined;
  random(): number;
  readonly processingMs: number;
}

/** A provider batch the simulator has created (for tests: `Simulator.batches()`). */
export interface SimBatchInfo {
  readonly id: string;
  readonly provider: 'openai' | 'anthropic';
  readonly model: string;
  readonly lines: number;
  readonly tag?: string;
  readonly status: string;
}

interface SimBatch {
  readonly id: string;
  readonly provider: 'openai' | 'anthropic';
  readonly model: string;
  readonly createdAtMs: number;
  readonly endsAtMs: number;
  readonly lines: ReadonlyArray<{ customId: string; body: unknown }>;
  readonly metadata: Record<string, string>;
  readonly inputFileId?: string;
  status: 'in_progress' | 'completed' | 'failed' | 'expired' | 'cancelled';
  endedAtMs?: number;
  cancelAtMs?: number;
  results?: Array<{ customId: string; ok: boolean; line: unknown }>;
  outputFileId?: string;
  errorFileId?: string;
  processing?: Promise<void>;
}

const MAX_BODY = 256 * 1024 * 1024;

export class SimBatches {
  private readonly files = new Map<string, { id: string; filename: string; purpose: string; bytes: number; content: string; createdAt: number }>();
  private readonly list: SimBatch[] = [];

  constructor(private readonly host: BatchHost) {}

  info(): SimBatchInfo[] {
    return this.list.map((b) => ({
      id: b.id,
      provider: b.provider,
      model: b.model,
      lines: b.lines.length,
      ...(b.metadata.switchyard_tag ? { tag: b.metadata.switchyard_tag } : {}),
      status: b.status,
    }));
  }

  reset(): void {
    this.list.length = 0;
    this.files.clear();
  }

  /** Serves a batch route; false when the path is not one. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<boolean> {
    const m = req.method ?? 'GET';
    if (path === '/v1/files' && m === 'POST') return (this.upload(req, res), true);
    let r = /^\/v1\/files\/([^/]+)\/content$/.exec(path);
    if (r && m === 'GET') {
      const f = this.files.get(r[1] ?? '');
      if (!f) return (send(res, 404, openaiError('No such File object')), true);
      res.writeHead(200, { 'content-type': 'application/jsonl' });
      res.end(f.content);
      return true;
    }
    if (path === '/v1/batches' && m === 'POST') return (this.createOpenAI(req, res), true);
    if (path === '/v1/batches' && m === 'GET') {
      const data = await this.page('openai', url);
      return (
        send(res, 200, {
          object: 'list',
          data: data.items.map((b) => this.openaiObject(b)),
          first_id: data.items[0]?.id ?? null,
          last_id: data.items.at(-1)?.id ?? null,
          has_more: data.more,
        }),
        true
      );
    }
    r = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path);
    if (r && ((m === 'GET' && !r[2]) || (m === 'POST' && r[2]))) {
      const b = await this.batch('openai', r[1] ?? '');
      if (!b) return (send(res, 404, openaiError(`No batch found with id '${r[1] ?? ''}'.`)), true);
      if (r[2]) this.cancel(b);
      return (send(res, 200, this.openaiObject(b)), true);
    }
    if (path === '/v1/messages/batches' && m === 'POST') return (this.createAnthropic(req, res), true);
    if (path === '/v1/messages/batches' && m === 'GET') {
      const data = await this.page('anthropic', url);
      return (
        send(res, 200, {
          data: data.items.map((b) => this.anthropicObject(b, req)),
          has_more: data.more,
          first_id: data.items[0]?.id ?? null,
          last_id: data.items.at(-1)?.id ?? null,
        }),
        true
      );
    }
    r = /^\/v1\/messages\/batches\/([^/]+)(\/cancel|\/results)?$/.exec(path);
    if (r) {
      const b = await this.batch('anthropic', r[1] ?? '');
      if (!b) return (send(res, 404, { type: 'error', error: { type: 'not_found_error', message: `batch ${r[1] ?? ''} not found` } }), true);
      if (r[2] === '/cancel' && m === 'POST') this.cancel(b);
      else if (r[2] === '/results' && m === 'GET') {
        if (!b.results) return (send(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'the batch has not ended' } }), true);
        res.writeHead(200, { 'content-type': 'application/binary' });
        res.end(b.results.map((x) => JSON.stringify(x.line)).join('\n') + '\n');
        return true;
      } else if (r[2] || m !== 'GET') return false;
      return (send(res, 200, this.anthropicObject(b, req)), true);
    }
    return false;
  }

  private async upload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Node's own fetch API parses the SDK's multipart body.
    const form = await new Request('http://simulator/upload', {
      method: 'POST',
      headers: req.headers as Record<string, string>,
      body: await readAll(req),
    }).formData();
    const file = form.get('file');
    const purpose = form.get('purpose');
    if (!(file instanceof Blob) || purpose !== 'batch') return send(res, 400, openaiError("upload needs a 'file' and purpose 'batch'"));
    const content = await file.text();
    const id = `file-${randomBytes(12).toString('hex')}`;
    const filename = 'name' in file && typeof file.name === 'string' ? file.name : 'upload.jsonl';
    const f = { id, filename, purpose, bytes: Buffer.byteLength(content), content, createdAt: Math.floor(Date.now() / 1000) };
    this.files.set(id, f);
    send(res, 200, { id, object: 'file', bytes: f.bytes, created_at: f.createdAt, filename, purpose, status: 'processed' });
  }

  private async createOpenAI(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse((await readAll(req)).toString('utf8')) as {
      input_file_id?: string;
      endpoint?: string;
      completion_window?: string;
      metadata?: Record<string, string>;
    };
    const f = this.files.get(body.input_file_id ?? '');
    if (!f) return send(res, 400, openaiError(`input_file_id: no file ${body.input_file_id ?? '(missing)'}`));
    if (body.endpoint !== '/v1/chat/completions') return send(res, 400, openaiError('endpoint: only /v1/chat/completions here'));
    if (body.completion_window !== '24h') return send(res, 400, openaiError("completion_window: must be '24h'"));
    const lines: Array<{ customId: string; body: unknown }> = [];
    for (const raw of f.content.split('\n')) {
      if (raw.trim() === '') continue;
      const l = JSON.parse(raw) as { custom_id: string; body: unknown };
      lines.push({ customId: l.custom_id, body: l.body });
    }
    const model = modelOf(lines[0]?.body);
    const b = this.create('openai', model, lines, body.metadata ?? {}, f.id);
    send(res, 200, this.openaiObject(b));
  }

  private async createAnthropic(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse((await readAll(req)).toString('utf8')) as { requests?: Array<{ custom_id: string; params: unknown }> };
    if (!Array.isArray(body.requests) || body.requests.length === 0)
      return send(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'requests: at least one request' } });
    const lines = body.requests.map((r) => ({ customId: r.custom_id, body: r.params }));
    const model = modelOf(lines[0]?.body);
    send(res, 200, this.anthropicObject(this.create('anthropic', model, lines, {}), req));
  }

  private create(provider: SimBatch['provider'], model: string, lines: SimBatch['lines'], metadata: Record<string, string>, inputFileId?: string): SimBatch {
    const now = Date.now();
    const ms = this.host.batchFault(model)?.processingMs ?? this.host.processingMs;
    const prefix = provider === 'openai' ? 'batch_' : 'msgbatch_';
    const b: SimBatch = {
      id: `${prefix}${randomBytes(12).toString('hex')}`,
      provider,
      model,
      createdAtMs: now,
      endsAtMs: now + ms,
      lines,
      metadata,
      ...(inputFileId ? { inputFileId } : {}),
      status: 'in_progress',
    };
    this.list.push(b);
    return b;
  }

  private cancel(b: SimBatch): void {
    if (b.status === 'in_progress') b.cancelAtMs = Date.now();
  }

  private async batch(provider: SimBatch['provider'], id: string): Promise<SimBatch | undefined> {
    const b = this.list.find((x) => x.id === id && x.provider === provider);
    if (b) await this.advance(b);
    return b;
  }

  private async page(provider: SimBatch['provider'], url: URL): Promise<{ items: SimBatch[]; more: boolean }> {
    const limit = Math.min(100, Number(url.searchParams.get('limit') ?? 20) || 20);
    const after = url.searchParams.get('after') ?? url.searchParams.get('after_id');
    const all = this.list.filter((b) => b.provider === provider).reverse();
    const start = after ? all.findIndex((b) => b.id === after) + 1 : 0;
    const items = all.slice(start, start + limit);
    for (const b of items) await this.advance(b);
    return { items, more: start + limit < all.length };
  }

  /** Processes a batch whose time has come (once; concurrent lookups wait for the same work). */
  private async advance(b: SimBatch): Promise<void> {
    if (b.status !== 'in_progress') return;
    if (b.cancelAtMs === undefined && Date.now() < b.endsAtMs) return;
    b.processing ??= this.process(b);
    await b.processing;
  }

  private async process(b: SimBatch): Promise<void> {
    const fault = this.host.batchFault(b.model);
    const outcome = b.cancelAtMs !== undefined ? 'cancelled' : (fault?.outcome ?? 'ok');
    const results: NonNullable<SimBatch['results']> = [];
    for (const l of b.lines) {
      if (outcome !== 'ok') {
        results.push({ customId: l.customId, ok: false, line: this.unanswered(b, l.customId, outcome === 'failed' ? 'errored' : outcome) });
        continue;
      }
      const errored = (fault?.lineErrorRate ?? 0) > 0 && this.host.random() < (fault?.lineErrorRate ?? 0);
      const a = await this.host.answerLine(b.provider, l.body, errored);
      results.push({ customId: l.customId, ok: a.status === 200, line: this.answered(b, l.customId, a) });
    }
    // Out of order, as the providers say results may be: deterministic, by the seeded random.
    for (let i = results.length - 1; i > 0; i--) {
      const j = Math.floor(this.host.random() * (i + 1));
      [results[i], results[j]] = [results[j]!, results[i]!];
    }
    b.results = results;
    b.status = outcome === 'ok' ? 'completed' : outcome;
    b.endedAtMs = Date.now();
    if (b.provider === 'openai' && outcome !== 'failed') {
      const ok = results.filter((r) => r.ok);
      const bad = results.filter((r) => !r.ok);
      if (ok.length > 0) b.outputFileId = this.store(`${b.id}_output.jsonl`, ok);
      if (bad.length > 0) b.errorFileId = this.store(`${b.id}_error.jsonl`, bad);
    }
  }

  private store(filename: string, lines: Array<{ line: unknown }>): string {
    const id = `file-${randomBytes(12).toString('hex')}`;
    const content = lines.map((l) => JSON.stringify(l.line)).join('\n') + '\n';
    this.files.set(id, { id, filename, purpose: 'batch_output', bytes: Buffer.byteLength(content), content, createdAt: Math.floor(Date.now() / 1000) });
    return id;
  }

  private answered(b: SimBatch, customId: string, a: LineAnswer): unknown {
    if (b.provider === 'openai')
      return {
        id: `batch_req_${randomBytes(8).toString('hex')}`,
        custom_id: customId,
        response: { status_code: a.status, request_id: randomBytes(8).toString('hex'), body: a.body },
        error: null,
      };
    if (a.status === 200) return { custom_id: customId, result: { type: 'succeeded', message: a.body } };
    return { custom_id: customId, result: { type: 'errored', error: a.body } };
  }

  private unanswered(b: SimBatch, customId: string, why: 'errored' | 'expired' | 'cancelled'): unknown {
    if (b.provider === 'openai') {
      const code = why === 'expired' ? 'batch_expired' : why === 'cancelled' ? 'batch_cancelled' : 'batch_failed';
      return {
        id: `batch_req_${randomBytes(8).toString('hex')}`,
        custom_id: customId,
        response: null,
        error: { code, message: `This request was not run: the batch ${why === 'errored' ? 'failed' : why}.` },
      };
    }
    if (why === 'errored')
      return { custom_id: customId, result: { type: 'errored', error: { type: 'error', error: { type: 'api_error', message: 'the batch failed' } } } };
    return { custom_id: customId, result: { type: why === 'cancelled' ? 'canceled' : 'expired' } };
  }

  private openaiObject(b: SimBatch): unknown {
    const s = Math.floor(b.createdAtMs / 1000);
    const ended = b.endedAtMs !== undefined ? Math.floor(b.endedAtMs / 1000) : null;
    const failed = b.results?.filter((r) => !r.ok).length ?? 0;
    const status = b.status === 'in_progress' && b.cancelAtMs !== undefined ? 'cancelling' : b.status;
    return {
      id: b.id,
      object: 'batch',
      endpoint: '/v1/chat/completions',
      errors:
        b.status === 'failed' ? { object: 'list', data: [{ code: 'batch_failed', message: 'the simulated batch failed', param: null, line: null }] } : null,
      input_file_id: b.inputFileId ?? '',
      completion_window: '24h',
      status,
      output_file_id: b.outputFileId ?? null,
      error_file_id: b.errorFileId ?? null,
      created_at: s,
      in_progress_at: s,
      expires_at: s + 86_400,
      finalizing_at: ended,
      completed_at: b.status === 'completed' ? ended : null,
      failed_at: b.status === 'failed' ? ended : null,
      expired_at: b.status === 'expired' ? ended : null,
      cancelling_at: b.cancelAtMs !== undefined ? Math.floor(b.cancelAtMs / 1000) : null,
      cancelled_at: b.status === 'cancelled' ? ended : null,
      request_counts: { total: b.lines.length, completed: (b.results?.length ?? 0) - failed, failed },
      metadata: b.metadata,
    };
  }

  private anthropicObject(b: SimBatch, req: IncomingMessage): unknown {
    const count = (t: string) => b.results?.filter((r) => (r.line as { result: { type: string } }).result.type === t).length ?? 0;
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    return {
      id: b.id,
      type: 'message_batch',
      processing_status: b.status === 'in_progress' ? (b.cancelAtMs !== undefined ? 'canceling' : 'in_progress') : 'ended',
      request_counts: {
        processing: b.results ? 0 : b.lines.length,
        succeeded: count('succeeded'),
        errored: count('errored'),
        canceled: count('canceled'),
        expired: count('expired'),
      },
      ended_at: iso(b.endedAtMs),
      created_at: iso(b.createdAtMs),
      expires_at: iso(b.createdAtMs + 86_400_000),
      cancel_initiated_at: iso(b.cancelAtMs),
      archived_at: null,
      results_url: b.results ? `http://${req.headers.host ?? 'localhost'}/v1/messages/batches/${b.id}/results` : null,
    };
  }
}

function modelOf(body: unknown): string {
  const m = (body as { model?: unknown } | undefined)?.model;
  return typeof m === 'string' ? m : '';
}

function openaiError(message: string): unknown {
  return { error: { message, type: 'invalid_request_error', param: null, code: null } };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
