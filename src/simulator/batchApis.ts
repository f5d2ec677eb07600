/**
 * The providers' batch APIs, as the simulator serves them: OpenAI's files + batches, Anthropic's
 * message batches, Gemini's batch mode (inlined requests) and Mistral's batch jobs, in their wire
 * formats. A batch is processed after
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
    /** Only this many of the model's batches get this fault, outcome and line errors (counted from when it is set); later ones are answered. Absent: all. */
    faultBatches: z.number().int().min(1).optional(),
    /** The share of lines answered with an error (500) instead of an answer. */
    lineErrorRate: z.number().min(0).max(1).default(0),
    /** How long the batch takes, instead of the simulator's default. */
    processingMs: z.number().int().min(0).max(86_400_000).optional(),
    /** Refuse every create of this model's batches with a 400 in the provider's own shape (nothing is created). */
    refuseCreate: z.boolean().optional(),
    /** Hold the answer to a create this long after the batch exists (tests: a worker killed while it waits). */
    createDelayMs: z.number().int().min(0).max(600_000).optional(),
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
  answerLine(format: 'openai' | 'anthropic' | 'gemini', body: unknown, errored: boolean, model?: string): Promise<LineAnswer>;
  batchFault(model: string): BatchFault | undefined;
  random(): number;
  readonly processingMs: number;
}

/** A provider batch the simulator has created (for tests: `Simulator.batches()`). */
export interface SimBatchInfo {
  readonly id: string;
  readonly provider: SimProvider;
  readonly model: string;
  readonly lines: number;
  readonly tag?: string;
  readonly status: string;
}

type SimProvider = 'openai' | 'anthropic' | 'gemini' | 'mistral';

interface SimBatch {
  readonly id: string;
  readonly provider: SimProvider;
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
  /** How many batches each fault (as set) has applied to, for `faultBatches`. */
  private readonly ended = new WeakMap<BatchFault, number>();

  constructor(private readonly host: BatchHost) {}

  info(): SimBatchInfo[] {
    return this.list.map((b) => ({
      // As the provider names it (Gemini: batches/<id>).
      id: b.provider === 'gemini' ? `batches/${b.id}` : b.id,
      provider: b.provider,
      model: b.model,
      lines: b.lines.length,
      ...(b.metadata.switchyard_tag ? { tag: b.metadata.switchyard_tag } : b.metadata.displayName ? { tag: b.metadata.displayName } : {}),
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
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
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
    r = /^\/(v1beta|v1)\/models\/([^/:]+):batchGenerateContent$/.exec(path);
    if (r && m === 'POST') return (this.createGemini(req, res, decodeURIComponent(r[2] ?? '')), true);
    if (/^\/(v1beta|v1)\/batches$/.test(path) && m === 'GET') {
      const data = await this.page('gemini', url, 'pageSize', 'pageToken');
      return (
        send(res, 200, { operations: data.items.map((b) => this.geminiObject(b)), ...(data.more ? { nextPageToken: data.items.at(-1)?.id } : {}) }),
        true
      );
    }
    r = /^\/(v1beta|v1)\/batches\/([^/:]+)(:cancel)?$/.exec(path);
    if (r && ((m === 'GET' && !r[3]) || (m === 'POST' && r[3]))) {
      const b = await this.batch('gemini', r[2] ?? '');
      if (!b) return (send(res, 404, { error: { code: 404, message: `batch ${r[2] ?? ''} not found`, status: 'NOT_FOUND' } }), true);
      if (r[3]) {
        this.cancel(b);
        return (send(res, 200, {}), true);
      }
      return (send(res, 200, this.geminiObject(b)), true);
    }
    if (path === '/v1/batch/jobs' && m === 'POST') return (this.createMistral(req, res), true);
    if (path === '/v1/batch/jobs' && m === 'GET') {
      const data = await this.page('mistral', url, 'page_size', undefined, 'page');
      return (
        send(res, 200, { data: data.items.map((b) => this.mistralObject(b)), object: 'list', total: this.list.filter((b) => b.provider === 'mistral').length }),
        true
      );
    }
    r = /^\/v1\/batch\/jobs\/([^/]+)(\/cancel)?$/.exec(path);
    if (r && ((m === 'GET' && !r[2]) || (m === 'POST' && r[2]))) {
      const b = await this.batch('mistral', r[1] ?? '');
      if (!b) return (send(res, 404, { detail: `batch job ${r[1] ?? ''} not found` }), true);
      if (r[2]) this.cancel(b);
      return (send(res, 200, this.mistralObject(b)), true);
    }
    return false;
  }

  private async createGemini(req: IncomingMessage, res: ServerResponse, model: string): Promise<void> {
    const body = JSON.parse((await readAll(req)).toString('utf8')) as {
      batch?: { displayName?: string; inputConfig?: { requests?: { requests?: Array<{ request: unknown; metadata?: { key?: string } }> } } };
    };
    const reqs = body.batch?.inputConfig?.requests?.requests;
    if (!Array.isArray(reqs) || reqs.length === 0)
      return send(res, 400, { error: { code: 400, message: 'batch.inputConfig.requests.requests: at least one request', status: 'INVALID_ARGUMENT' } });
    if (this.host.batchFault(model)?.refuseCreate)
      return send(res, 400, { error: { code: 400, message: 'batch refused (simulator fault)', status: 'INVALID_ARGUMENT' } });
    const lines = reqs.map((r, i) => ({ customId: r.metadata?.key ?? String(i), body: r.request }));
    const b = this.create('gemini', model, lines, body.batch?.displayName ? { displayName: body.batch.displayName } : {});
    await this.createDelay(model);
    send(res, 200, this.geminiObject(b));
  }

  private async createMistral(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse((await readAll(req)).toString('utf8')) as {
      requests?: Array<{ custom_id?: string; body: Record<string, unknown> }>;
      model?: string;
      endpoint?: string;
      metadata?: Record<string, string>;
    };
    if (!Array.isArray(body.requests) || body.requests.length === 0) return send(res, 422, { detail: 'requests: at least one request (or input_files)' });
    if (body.endpoint !== '/v1/chat/completions') return send(res, 422, { detail: 'endpoint: only /v1/chat/completions here' });
    const model = body.model ?? '';
    if (this.host.batchFault(model)?.refuseCreate) return send(res, 422, { detail: 'batch refused (simulator fault)' });
    // The job names the model; each line's body is a chat request without it.
    const lines = body.requests.map((r, i) => ({ customId: r.custom_id ?? String(i), body: { ...r.body, model } }));
    const b = this.create('mistral', model, lines, body.metadata ?? {});
    await this.createDelay(model);
    send(res, 200, this.mistralObject(b));
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
    if (this.host.batchFault(model)?.refuseCreate) return send(res, 400, openaiError('batch refused (simulator fault)'));
    const b = this.create('openai', model, lines, body.metadata ?? {}, f.id);
    await this.createDelay(model);
    send(res, 200, this.openaiObject(b));
  }

  private async createAnthropic(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse((await readAll(req)).toString('utf8')) as { requests?: Array<{ custom_id: string; params: unknown }> };
    if (!Array.isArray(body.requests) || body.requests.length === 0)
      return send(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'requests: at least one request' } });
    const lines = body.requests.map((r) => ({ customId: r.custom_id, body: r.params }));
    const model = modelOf(lines[0]?.body);
    if (this.host.batchFault(model)?.refuseCreate)
      return send(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'batch refused (simulator fault)' } });
    const b = this.create('anthropic', model, lines, {});
    await this.createDelay(model);
    send(res, 200, this.anthropicObject(b, req));
  }

  private create(provider: SimProvider, model: string, lines: SimBatch['lines'], metadata: Record<string, string>, inputFileId?: string): SimBatch {
    const now = Date.now();
    const ms = this.host.batchFault(model)?.processingMs ?? this.host.processingMs;
    const prefix = { openai: 'batch_', anthropic: 'msgbatch_', gemini: '', mistral: '' }[provider];
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

  private async createDelay(model: string): Promise<void> {
    const ms = this.host.batchFault(model)?.createDelayMs;
    if (ms) await new Promise((r) => setTimeout(r, ms));
  }

  private cancel(b: SimBatch): void {
    if (b.status === 'in_progress') b.cancelAtMs = Date.now();
  }

  private async batch(provider: SimProvider, id: string): Promise<SimBatch | undefined> {
    const b = this.list.find((x) => x.id === id && x.provider === provider);
    if (b) await this.advance(b);
    return b;
  }

  private async page(
    provider: SimProvider,
    url: URL,
    sizeParam = 'limit',
    afterParam: string | undefined = 'after',
    pageParam?: string,
  ): Promise<{ items: SimBatch[]; more: boolean }> {
    const limit = Math.min(100, Number(url.searchParams.get(sizeParam) ?? 20) || 20);
    const after = afterParam ? (url.searchParams.get(afterParam) ?? url.searchParams.get('after_id')) : null;
    const all = this.list.filter((b) => b.provider === provider).reverse();
    const pageNo = pageParam ? Number(url.searchParams.get(pageParam) ?? 0) || 0 : 0;
    const start = after ? all.findIndex((b) => b.id === after) + 1 : pageNo * limit;
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
    const set = this.host.batchFault(b.model);
    const used = set ? (this.ended.get(set) ?? 0) : 0;
    const fault = set && (set.faultBatches === undefined || used < set.faultBatches) ? set : undefined;
    if (set && fault) this.ended.set(set, used + 1);
    const outcome = b.cancelAtMs !== undefined ? 'cancelled' : (fault?.outcome ?? 'ok');
    const results: NonNullable<SimBatch['results']> = [];
    for (const l of b.lines) {
      if (outcome !== 'ok') {
        results.push({ customId: l.customId, ok: false, line: this.unanswered(b, l.customId, outcome === 'failed' ? 'errored' : outcome) });
        continue;
      }
      const errored = (fault?.lineErrorRate ?? 0) > 0 && this.host.random() < (fault?.lineErrorRate ?? 0);
      const a = await this.host.answerLine(b.provider === 'mistral' ? 'openai' : b.provider, l.body, errored, b.model);
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
    if ((b.provider === 'openai' || b.provider === 'mistral') && outcome !== 'failed') {
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
    if (b.provider === 'gemini')
      return a.status === 200 ? { response: a.body, metadata: { key: customId } } : { error: geminiError(a), metadata: { key: customId } };
    if (b.provider === 'openai' || b.provider === 'mistral')
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
    if (b.provider === 'gemini')
      return { error: { code: why === 'errored' ? 500 : 499, message: `the batch ${why === 'errored' ? 'failed' : why}` }, metadata: { key: customId } };
    if (b.provider === 'openai' || b.provider === 'mistral') {
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

  private geminiObject(b: SimBatch): unknown {
    const state = {
      in_progress: 'BATCH_STATE_RUNNING',
      completed: 'BATCH_STATE_SUCCEEDED',
      failed: 'BATCH_STATE_FAILED',
      expired: 'BATCH_STATE_EXPIRED',
      cancelled: 'BATCH_STATE_CANCELLED',
    }[b.status];
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    return {
      name: `batches/${b.id}`,
      metadata: {
        '@type': 'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch',
        model: `models/${b.model}`,
        displayName: b.metadata.displayName ?? '',
        state,
        createTime: iso(b.createdAtMs),
        ...(b.endedAtMs !== undefined ? { endTime: iso(b.endedAtMs) } : {}),
        updateTime: iso(b.endedAtMs ?? b.createdAtMs),
        batchStats: { requestCount: String(b.lines.length) },
        ...(b.results && b.status !== 'failed' ? { output: { inlinedResponses: { inlinedResponses: b.results.map((r) => r.line) } } } : {}),
      },
      done: b.status !== 'in_progress',
    };
  }

  private mistralObject(b: SimBatch): unknown {
    const s = Math.floor(b.createdAtMs / 1000);
    const failed = b.results?.filter((r) => !r.ok).length ?? 0;
    const status = {
      in_progress: b.cancelAtMs !== undefined ? 'CANCELLATION_REQUESTED' : 'RUNNING',
      completed: 'SUCCESS',
      failed: 'FAILED',
      expired: 'TIMEOUT_EXCEEDED',
      cancelled: 'CANCELLED',
    }[b.status];
    return {
      id: b.id,
      object: 'batch',
      input_files: [],
      metadata: b.metadata,
      endpoint: '/v1/chat/completions',
      model: b.model,
      output_file: b.outputFileId ?? null,
      error_file: b.errorFileId ?? null,
      errors: b.status === 'failed' ? [{ message: 'the simulated batch failed', count: b.lines.length }] : [],
      status,
      created_at: s,
      total_requests: b.lines.length,
      completed_requests: b.results?.length ?? 0,
      succeeded_requests: (b.results?.length ?? 0) - failed,
      failed_requests: failed,
      started_at: s,
      completed_at: b.endedAtMs !== undefined ? Math.floor(b.endedAtMs / 1000) : null,
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

function geminiError(a: LineAnswer): { code: number; message: string } {
  const e = (a.body as { error?: { message?: unknown } } | undefined)?.error;
  return { code: a.status, message: typeof e?.message === 'string' ? e.message : `status ${a.status}` };
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
