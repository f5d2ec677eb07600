/**
 * The provider simulator: a real HTTP server that speaks the providers' wire formats for every
 * catalog model, with catalog latency x scale, token usage counted by the tokenizer, deterministic
 * answers, and fault injection (per model, "*", or per request with the `x-simulator-faults` header).
 *
 * Admin endpoints: GET /_simulator/stats, PUT /_simulator/faults (replace the faults map),
 * POST /_simulator/reset (clear stats and scripts), GET /health.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Catalog } from '../catalog/catalog.js';
import type { ModelSpec } from '../catalog/schema.js';
import { countChatTokens, countTokens } from '../routing/tokens.js';
import { type Answer, answerFor } from './answers.js';
import { toolCallFor } from './tools.js';
import { drawOutcome, type FaultOutcome, type FaultsFile, faultsFileSchema, faultSpecSchema, type FaultSpec, seededRandom } from './faults.js';
import {
  anthropicFormat,
  BadRequest,
  categoryForStatus,
  type ErrorCategory,
  geminiFormat,
  openaiFormat,
  type SimTurn,
  type StreamFrames,
  type WireFormat,
} from './wireFormats.js';
import { closeServer } from '../util/httpServer.js';
import { batchCostNanos } from '../catalog/pricing.js';
import { type BatchFault, type LineAnswer, SimBatches, type SimBatchInfo } from './batchApis.js';

export interface SimulatorOptions {
  readonly catalog: Catalog;
  /** Multiplies each model's typical latency; 0 answers at once. */
  readonly latencyScale?: number;
  readonly faults?: FaultsFile;
  readonly seed?: number;
  /** Upper bound on a hang, after which the socket is destroyed. */
  readonly maxHangMs?: number;
  /** Keep the last 200 requests' text for `received()` (tests; off by default: it holds prompts). */
  readonly recordRequests?: boolean;
  /** How long a provider batch takes to process (default 1000 ms; a model's `batch.processingMs` fault overrides it). */
  readonly batchProcessingMs?: number;
}

export interface SimulatorStats {
  requests: number;
  byModel: Record<
    string,
    {
      requests: number;
      outcomes: Record<string, number>;
      inputTokens: number;
      outputTokens: number;
      /** Lines answered in provider batches (not counted in `requests`), their tokens, and what they were billed at the batch price. */
      batchLines?: number;
      batchInputTokens?: number;
      batchOutputTokens?: number;
      batchBilledNanos?: number;
    }
  >;
}

/** A request the simulator answered, as it read it off the wire (the most recent 200 are kept). */
export interface ReceivedRequest {
  readonly format: WireFormat['name'];
  readonly model: string;
  readonly system: string;
  readonly turns: readonly SimTurn[];
  readonly inputTokens: number;
  /** The names of the tools offered (absent: none). */
  readonly tools?: readonly string[];
}

export const FAULT_HEADER = 'x-simulator-faults';
const MAX_BODY_BYTES = 32 * 1024 * 1024;

export class Simulator {
  private server: Server | undefined;
  private faults: FaultsFile;
  private readonly random: () => number;
  private readonly scriptPos = new Map<string, number>();
  private stats: SimulatorStats = { requests: 0, byModel: {} };
  private readonly byProviderModel = new Map<string, ModelSpec>();
  private readonly hanging = new Set<ServerResponse>();
  private readonly recent: ReceivedRequest[] = [];
  readonly latencyScale: number;
  private readonly batchApis: SimBatches;

  /** The provider batches created so far, oldest first (tests: exactly one per flush). */
  batches(): SimBatchInfo[] {
    return this.batchApis.info();
  }

  /** The most recent requests it answered, oldest first (for tests and debugging). */
  received(): readonly ReceivedRequest[] {
    return [...this.recent];
  }

  constructor(private readonly opts: SimulatorOptions) {
    this.faults = opts.faults ?? {};
    this.random = seededRandom(opts.seed ?? 42);
    this.latencyScale = opts.latencyScale ?? 1;
    this.batchApis = new SimBatches({
      answerLine: (format, body, errored, model) => this.answerLine(format, body, errored, model),
      batchFault: (model) => this.batchFault(model),
      random: () => this.random(),
      processingMs: opts.batchProcessingMs ?? 1000,
    });
    for (const m of opts.catalog.models) {
      this.byProviderModel.set(m.name, m);
      this.byProviderModel.set(m.providerModel, m);
    }
  }

  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) this.sendJson(res, 500, { error: { message: `simulator bug: ${(e as Error).message}` } });
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    return this.url;
  }

  get url(): string {
    const addr = this.server?.address() as AddressInfo | null | undefined;
    if (!addr) throw new Error('simulator is not running');
    return `http://${addr.address}:${addr.port}`;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  private readonly holds = new Map<string, { promise: Promise<void>; release: () => void; waiting: number }>();

  /**
   * Holds every answer of a catalog model until the returned function is called (tests: a call
   * that is deterministically still out while others route). `heldCount` says how many wait.
   */
  hold(model: string): () => void {
    let release!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    const h = { promise, release: () => undefined as void, waiting: 0 };
    h.release = () => {
      if (this.holds.get(model) === h) this.holds.delete(model);
      release();
    };
    this.holds.set(model, h);
    return h.release;
  }

  heldCount(model: string): number {
    return this.holds.get(model)?.waiting ?? 0;
  }

  setFaults(faults: FaultsFile): void {
    this.faults = faults;
    this.scriptPos.clear();
  }

  /** Requests currently held open by a `hang` fault. */
  hangingCount(): number {
    return this.hanging.size;
  }

  getStats(): SimulatorStats {
    return structuredClone(this.stats);
  }

  resetStats(): void {
    this.stats = { requests: 0, byModel: {} };
    this.scriptPos.clear();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname;
    if (req.method === 'GET' && path === '/health') return this.sendJson(res, 200, { ok: true });
    if (path.startsWith('/_simulator/')) return this.admin(req, res, path);
    if (await this.batchApis.handle(req, res, path, url)) return;
    if (req.method === 'GET' && (path === '/v1/models' || path === '/models')) {
      return this.sendJson(res, 200, {
        object: 'list',
        data: this.opts.catalog.models.map((m) => ({ id: m.providerModel, object: 'model', owned_by: m.provider })),
      });
    }
    if (req.method !== 'POST') return this.sendJson(res, 404, { error: { message: `no route ${req.method} ${path}` } });

    let format: WireFormat;
    let pathModel: string | undefined;
    let geminiStream = false;
    const gemini = /^\/(v1beta|v1)\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(path);
    if (path === '/v1/chat/completions' || path === '/chat/completions') format = openaiFormat;
    else if (path === '/v1/messages') format = anthropicFormat;
    else if (gemini) {
      format = geminiFormat;
      pathModel = decodeURIComponent(gemini[2] ?? '');
      geminiStream = gemini[3] === 'streamGenerateContent';
    } else return this.sendJson(res, 404, { error: { message: `no route POST ${path}` } });

    if (!format.hasKey(req.headers, url)) return this.fail(res, format, 401, 'auth', 'missing API key');
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (e) {
      return this.fail(res, format, 400, 'bad_request', `request body is not JSON: ${(e as Error).message}`);
    }
    let parsed;
    try {
      parsed = format.parse(body, pathModel);
    } catch (e) {
      if (e instanceof BadRequest) return this.fail(res, format, 400, 'bad_request', e.message);
      throw e;
    }
    const spec = this.byProviderModel.get(parsed.model);
    if (!spec) return this.fail(res, format, 404, 'not_found', `model ${parsed.model} does not exist`);

    const fault = this.faultFor(spec, req, parsed.prompt);
    const outcome = fault ? this.nextOutcome(spec, fault) : 'ok';
    this.count(spec.name, String(outcome));

    const held = this.holds.get(spec.name);
    if (held) {
      held.waiting += 1;
      await held.promise;
      held.waiting -= 1;
    }
    if (this.latencyScale > 0 && outcome !== 'hang') await sleep(spec.typicalLatencyMs * this.latencyScale);
    if (outcome === 'drop') {
      req.socket.destroy();
      return;
    }
    if (outcome === 'hang') {
      this.hanging.add(res);
      const timer = setTimeout(() => res.destroy(), this.opts.maxHangMs ?? 600_000);
      res.on('close', () => {
        clearTimeout(timer);
        this.hanging.delete(res);
      });
      return;
    }
    if (outcome === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id": "broken", "choices": [{"index": 0, "message": {"content": "unterminated');
      return;
    }
    if (outcome === 'context') {
      return this.fail(
        res,
        format,
        400,
        'context',
        format === anthropicFormat
          ? `prompt is too long: ${spec.contextWindow + 1} tokens > ${spec.contextWindow} maximum`
          : `This model's maximum context length is ${spec.contextWindow} tokens. Please reduce the length of the messages.`,
      );
    }
    if (outcome === 'refusal') {
      return this.fail(res, format, 400, 'policy', 'The request was rejected because it was flagged by the content policy');
    }
    if (typeof outcome === 'number') {
      const category = categoryForStatus(outcome);
      const headers: Record<string, string> = {};
      if (outcome === 429 || outcome === 503 || outcome === 529) {
        const secs = fault?.retryAfterSeconds ?? 1;
        headers['retry-after'] = String(secs);
        if (format === openaiFormat) headers['x-ratelimit-reset-requests'] = `${secs}s`;
      }
      const messages: Partial<Record<ErrorCategory, string>> = {
        rate_limit: 'Rate limit reached, please retry later',
        server: 'The server had an error while processing your request',
        overloaded: 'Overloaded',
        auth: 'Incorrect API key provided',
        permission: 'Your API key does not have permission to use this model',
        bad_request: 'Invalid request: simulated bad request',
      };
      return this.fail(res, format, outcome, category, messages[category] ?? `simulated ${outcome}`, headers);
    }

    // Tool definitions are billed as input, as the providers bill them.
    const inputTokens = Math.ceil(
      (countChatTokens([...(parsed.system ? [{ content: parsed.system }] : []), ...parsed.turns.map((t) => ({ content: t.text }))]) +
        (parsed.toolText ? countTokens(parsed.toolText) : 0)) *
        (fault?.inputTokenScale ?? 1),
    );
    if (this.opts.recordRequests) {
      this.recent.push({
        format: format.name,
        model: spec.name,
        system: parsed.system,
        turns: parsed.turns,
        inputTokens,
        ...(parsed.tools ? { tools: parsed.tools.tools.map((t) => t.name) } : {}),
      });
      if (this.recent.length > 200) this.recent.shift();
    }
    const maxTokens = parsed.maxTokens ?? spec.maxOutputTokens;
    if (maxTokens > spec.maxOutputTokens) {
      return this.fail(res, format, 400, 'bad_request', `max_tokens: ${maxTokens} > ${spec.maxOutputTokens}, the maximum allowed for ${spec.providerModel}`);
    }
    if (inputTokens + maxTokens > spec.contextWindow) {
      const msg =
        format === anthropicFormat
          ? `prompt is too long: ${inputTokens} tokens + ${maxTokens} max_tokens > ${spec.contextWindow} maximum`
          : `This model's maximum context length is ${spec.contextWindow} tokens. However, you requested ${inputTokens + maxTokens} tokens (${inputTokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`;
      return this.fail(res, format, 400, 'context', msg);
    }
    // 'offformat' and 'refuse' are answers that arrive fine over HTTP but fail quality checks.
    const answer =
      outcome === 'offformat'
        ? answerFor(spec.name, `prose reply to: ${parsed.prompt.replace(/json/gi, 'text')}`, maxTokens)
        : outcome === 'refuse'
          ? answerFor(spec.name, '', maxTokens, "I'm sorry, but I can't help with that request.")
          : answerFor(spec.name, parsed.prompt, maxTokens, fault?.answer);
    const s = this.stats.byModel[spec.name];
    if (s) s.inputTokens += inputTokens;
    const malformed = fault?.malformedToolArgsRate !== undefined && this.random() < fault.malformedToolArgsRate;
    const toolCall = toolCallFor(parsed.tools, spec.name, parsed.prompt, malformed ? (format === openaiFormat ? 'text' : 'object') : undefined);
    if (toolCall) {
      const outputTokens = countTokens(`${toolCall.name} ${toolCall.arguments}`) + 8;
      if (s) s.outputTokens += outputTokens;
      const r = { model: spec.providerModel, inputTokens, includeUsage: parsed.includeUsage === true, wholeCall: spec.provider === 'mistral' };
      if (parsed.stream === true || geminiStream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        res.end(format.toolStream(r, toolCall, outputTokens).join(''));
        return;
      }
      return this.sendJson(res, 200, format.reply({ model: spec.providerModel, text: '', toolCall, inputTokens, outputTokens, truncated: false }));
    }
    if (parsed.stream === true || geminiStream) {
      const frames = format.frames({ model: spec.providerModel, inputTokens, includeUsage: parsed.includeUsage === true });
      const sent = await streamAnswer(req, res, frames, answer, fault);
      // Billed as a provider bills a stream: the text it generated and sent, also when the client left or the connection broke.
      if (s) s.outputTokens += sent === answer.text ? answer.outputTokens : countTokens(sent);
      return;
    }
    if (s) s.outputTokens += answer.outputTokens;
    this.sendJson(
      res,
      200,
      format.reply({ model: spec.providerModel, text: answer.text, inputTokens, outputTokens: answer.outputTokens, truncated: answer.truncated }),
    );
  }

  private batchFault(model: string): BatchFault | undefined {
    const spec = this.byProviderModel.get(model);
    return (spec ? (this.faults[spec.name] ?? this.faults[spec.providerModel]) : undefined)?.batch ?? this.faults['*']?.batch;
  }

  /** A batch line answered as a live call to its model would be (no live faults), billed at the batch price. */
  private async answerLine(which: 'openai' | 'anthropic' | 'gemini', body: unknown, errored: boolean, model?: string): Promise<LineAnswer> {
    const format = which === 'openai' ? openaiFormat : which === 'anthropic' ? anthropicFormat : geminiFormat;
    let parsed;
    try {
      parsed = format.parse(body, which === 'gemini' ? model : undefined);
    } catch (e) {
      if (e instanceof BadRequest) return { status: 400, body: format.error(400, 'bad_request', e.message) };
      throw e;
    }
    const spec = this.byProviderModel.get(parsed.model);
    if (!spec) return { status: 404, body: format.error(404, 'not_found', `model ${parsed.model} does not exist`) };
    if (errored) return { status: 500, body: format.error(500, 'server', 'The server had an error while processing your request') };
    const inputTokens =
      countChatTokens([...(parsed.system ? [{ content: parsed.system }] : []), ...parsed.turns.map((t) => ({ content: t.text }))]) +
      (parsed.toolText ? countTokens(parsed.toolText) : 0);
    const maxTokens = Math.min(parsed.maxTokens ?? spec.maxOutputTokens, spec.maxOutputTokens);
    const fixed = this.faults[spec.name]?.answer;
    const answer = answerFor(spec.name, parsed.prompt, maxTokens, fixed);
    const toolCall = toolCallFor(parsed.tools, spec.name, parsed.prompt, undefined);
    const outputTokens = toolCall ? countTokens(`${toolCall.name} ${toolCall.arguments}`) + 8 : answer.outputTokens;
    const s = (this.stats.byModel[spec.name] ??= { requests: 0, outcomes: {}, inputTokens: 0, outputTokens: 0 });
    s.batchLines = (s.batchLines ?? 0) + 1;
    s.batchInputTokens = (s.batchInputTokens ?? 0) + inputTokens;
    s.batchOutputTokens = (s.batchOutputTokens ?? 0) + outputTokens;
    s.batchBilledNanos = (s.batchBilledNanos ?? 0) + batchCostNanos(spec, { inputTokens, cachedInputTokens: 0, outputTokens });
    await Promise.resolve();
    return {
      status: 200,
      body: format.reply({
        model: spec.providerModel,
        text: toolCall ? '' : answer.text,
        toolCall,
        inputTokens,
        outputTokens,
        truncated: !toolCall && answer.truncated,
      }),
    };
  }

  private faultFor(spec: ModelSpec, req: IncomingMessage, prompt: string): FaultSpec | undefined {
    const h = req.headers[FAULT_HEADER];
    let fault: FaultSpec | undefined;
    if (typeof h === 'string' && h.length > 0) {
      const r = faultSpecSchema.safeParse(safeJson(h));
      if (r.success) fault = r.data;
    }
    fault ??= this.faults[spec.name] ?? this.faults[spec.providerModel] ?? this.faults['*'];
    return fault?.promptPattern === undefined || new RegExp(fault.promptPattern, 'i').test(prompt) ? fault : undefined;
  }

  private nextOutcome(spec: ModelSpec, fault: FaultSpec): FaultOutcome {
    if (fault.script.length > 0) {
      const pos = this.scriptPos.get(spec.name) ?? 0;
      if (pos < fault.script.length) {
        this.scriptPos.set(spec.name, pos + 1);
        return fault.script[pos] ?? 'ok';
      }
    }
    return drawOutcome(fault, this.random);
  }

  private count(model: string, outcome: string): void {
    this.stats.requests += 1;
    const s = (this.stats.byModel[model] ??= { requests: 0, outcomes: {}, inputTokens: 0, outputTokens: 0 });
    s.requests += 1;
    s.outcomes[outcome] = (s.outcomes[outcome] ?? 0) + 1;
  }

  private async admin(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method === 'GET' && path === '/_simulator/stats') return this.sendJson(res, 200, this.getStats());
    if (req.method === 'GET' && path === '/_simulator/batches') return this.sendJson(res, 200, this.batches());
    if (req.method === 'POST' && path === '/_simulator/reset') {
      this.resetStats();
      return this.sendJson(res, 200, { ok: true });
    }
    if (req.method === 'PUT' && path === '/_simulator/faults') {
      const r = faultsFileSchema.safeParse(safeJson(await readBody(req)));
      if (!r.success) return this.sendJson(res, 400, { error: { message: r.error.message } });
      this.setFaults(r.data);
      return this.sendJson(res, 200, { ok: true });
    }
    this.sendJson(res, 404, { error: { message: `no admin route ${req.method ?? ''} ${path}` } });
  }

  private fail(res: ServerResponse, format: WireFormat, status: number, category: ErrorCategory, message: string, headers: Record<string, string> = {}): void {
    this.sendJson(res, status, format.error(status, category, message), headers);
  }

  private sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/**
 * Writes a streamed answer, one piece of text per word, and returns the text sent. Stops when the
 * client goes away, or where the fault cuts the connection (`breakAfterChunks`).
 */
async function streamAnswer(req: IncomingMessage, res: ServerResponse, frames: StreamFrames, answer: Answer, fault: FaultSpec | undefined): Promise<string> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  let gone = false;
  res.on('close', () => (gone = true));
  for (const f of frames.head()) res.write(f);
  const pieces = answer.text.match(/\s*\S+/g) ?? [];
  let sent = '';
  for (const [i, piece] of pieces.entries()) {
    if (i > 0 && fault?.chunkDelayMs) await sleep(fault.chunkDelayMs);
    else if (i > 0) await new Promise((r) => setImmediate(r));
    if (gone) return sent;
    if (fault?.breakAfterChunks !== undefined && i >= fault.breakAfterChunks) {
      req.socket.destroy();
      return sent;
    }
    res.write(frames.delta(piece));
    sent += piece;
  }
  if (gone) return sent;
  res.end(frames.tail(answer.outputTokens, answer.truncated).join(''));
  return answer.text;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export { simulatorEndpoints } from './endpoints.js';
