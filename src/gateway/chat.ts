/**
 * `POST /v1/chat/completions` and `GET /v1/switchyard/requests/{id}`: each chat request runs as the
 * request workflow, answered as one JSON body, as a live stream (the provider's pieces relayed as
 * they arrive: ./relay.ts), or as a buffered stream (`x-switchyard-stream: buffered`: checks and
 * escalation first, then the final answer as events). A request that has not finished within the
 * wait bound answers 504 (or 429 while it waits on its budget or a provider's rate limit) with its
 * workflow id; the run goes on, and `GET /v1/switchyard/requests/{id}` (or the same call with the
 * same Idempotency-Key) collects it, charged once. docs/openai-clients.md, docs/streaming.md.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Catalog } from '../catalog/catalog.js';
import type { SwitchyardClient } from '../client/client.js';
import { requestIdForCustomId } from '../batch/openaiBatch.js';
import { type RequestInput, type RequestResult, type RequestTrace, traceQuery, workflowIdFor } from '../workflows/request/contract.js';
import { type GatewayError, gatewayErrorOf, openAIError } from './errors.js';
import type { KeyLimits } from './keys.js';
import { type ChatDelivery, chatCompletionOf, ChunkWriter, requestFromChatBody } from './openaiChat.js';
import { optionRefusal, optionsFromHeaders, resolveModel } from './options.js';
import { ValidationError } from '../util/validation.js';
import type { HubEvent, OpenStream, StreamHub } from './relay.js';

export interface ChatDeps {
  readonly client: SwitchyardClient;
  readonly catalog: Catalog;
  readonly hub: StreamHub;
  /** Where workers post a stream's pieces: this gateway's relay endpoint as the workers reach it. */
  readonly relayUrl: () => string;
  /** How long a call waits for its answer before answering 504/429 with the workflow id. */
  readonly waitMs: number;
  /** Model names that stand for a catalog model or a tier (the config file's gateway.aliases). */
  readonly aliases: Readonly<Record<string, string>>;
  /** Per-key limits (requests and tokens per minute, requests at once). */
  readonly limits: KeyLimits;
  /** Counts a chat call until its response ends (a graceful stop waits for them); returns its end. */
  readonly track: () => () => void;
  /** The first key of a key's rotations (a rotated key keeps its Idempotency-Keys and its requests). */
  readonly lineageOf: (keyId: string) => string;
}

/** Answers a client should not retry as they are: the run goes on (a retry without the same Idempotency-Key would start another). */
const NO_RETRY = { 'x-should-retry': 'false' } as const;

/** Runs `fn` when the response closes, or now if it already has (the client left while the handler awaited). */
function onClose(raw: ServerResponse, fn: () => void): void {
  if (raw.destroyed || raw.socket?.destroyed !== false) fn();
  else raw.once('close', fn);
}

type Outcome = { ok: true; r: RequestResult } | { ok: false; e: unknown };

/** A digest of the body: the same Idempotency-Key with another body is refused. */
export function fingerprintOf(body: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canonical(body)))
    .digest('hex')
    .slice(0, 32);
}

function header(h: Record<string, string | string[] | undefined>, k: string): string | undefined {
  const v = h[k];
  return Array.isArray(v) ? v[0] : v;
}

function resultHeaders(r: RequestResult): Record<string, string> {
  return {
    'x-switchyard-workflow-id': r.workflowId,
    'x-switchyard-model': r.model,
    'x-switchyard-tier': r.tier,
    'x-switchyard-cost-nanos': String(r.costNanos),
    'x-switchyard-premium-baseline-nanos': String(r.premiumBaselineCostNanos),
  };
}

function sendRaw(raw: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (raw.headersSent || raw.destroyed) return;
  const text = JSON.stringify(body);
  raw.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  raw.end(text);
}

function sendError(reply: FastifyReply, e: GatewayError, headers: Record<string, string> = {}): FastifyReply {
  return reply.status(e.status).headers(headers).send(e.body);
}

function outcomeOf(p: Promise<RequestResult>): Promise<Outcome> {
  return p.then(
    (r): Outcome => ({ ok: true, r }),
    (e: unknown): Outcome => ({ ok: false, e }),
  );
}

/**
 * Waits for a run's result, at most `ms` (or until `gone` fires: its client left); undefined when it
 * is still running. The wait itself is cancelled then: a run that waits days for its budget holds
 * no poll at the server for a client that went away.
 */
async function resultWithin(client: SwitchyardClient, workflowId: string, ms: number, gone?: ServerResponse): Promise<Outcome | undefined> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  const left = () => stop.abort();
  gone?.once('close', left);
  const stopped = new Promise<undefined>((r) => stop.signal.addEventListener('abort', () => r(undefined), { once: true }));
  try {
    return await Promise.race([outcomeOf(client.result(workflowId, stop.signal)), stopped]);
  } finally {
    clearTimeout(timer);
    gone?.removeListener('close', left);
    stop.abort();
  }
}

/**
 * A run still going after the wait bound: 429 while it waits on its budget or a rate limit (with
 * Retry-After), else 504; both name the workflow and where to collect the answer.
 */
async function pending(client: SwitchyardClient, workflowId: string, waitedMs: number): Promise<{ error: GatewayError; headers: Record<string, string> }> {
  const where = `/v1/switchyard/requests/${encodeURIComponent(workflowId)}`;
  let trace: RequestTrace | undefined;
  try {
    trace = await client.temporal.workflow.getHandle(workflowId).query(traceQuery);
  } catch {
    trace = undefined;
  }
  const headers: Record<string, string> = { 'x-switchyard-workflow-id': workflowId, location: where, ...NO_RETRY };
  const still = `the request is still running after ${Math.round(waitedMs / 1000)} s (workflow ${workflowId}); it goes on and is charged once: collect it with GET ${where}, or send the same call again with the same Idempotency-Key`;
  const waiting = trace?.phase === 'waiting' ? trace.waiting : undefined;
  if (waiting && (waiting.on === 'budget' || waiting.on === 'rate_limit')) {
    headers['retry-after'] = String(Math.max(1, Math.ceil((Date.parse(waiting.until) - Date.now()) / 1000)));
    const why = waiting.on === 'budget' ? 'waiting for its budget (the next period or an approval)' : "waiting for a provider's rate limit to reset";
    const code = waiting.on === 'budget' ? 'insufficient_quota' : 'rate_limit_exceeded';
    return { error: openAIError(429, code, `${still}; it is ${why}`, null, code), headers };
  }
  return { error: openAIError(504, 'timeout', still, null, 'request_pending'), headers };
}

function sseHeaders(): Record<string, string> {
  return { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' };
}

/**
 * A stream cut off when its client left: the run holds only what was streamed (charged). Sent again
 * as a whole answer it would look complete; it is refused instead, naming what happened.
 */
function cutOff(r: RequestResult): GatewayError | undefined {
  if (r.streamed !== 'client_left') return undefined;
  return openAIError(
    502,
    'api_error',
    `this request's answer was cut off when its client left mid-stream (workflow ${r.workflowId}; ${r.usage.outputTokens} output tokens streamed and charged); send a new request for a whole answer`,
    null,
    'stream_interrupted',
  );
}

function streamFailure(o: Outcome, workflowId: string): string {
  if (o.ok) return `the stream ended without its answer (workflow ${workflowId})`;
  return gatewayErrorOf(o.e).body.error.message;
}

export function chatRoutes(app: FastifyInstance, deps: ChatDeps): void {
  const { client, catalog, hub } = deps;

  app.post('/v1/chat/completions', async (req, reply) => {
    reply.raw.once('close', deps.track());
    const body = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : null;
    if (!body) return sendError(reply, openAIError(400, 'invalid_request_error', 'the body must be a JSON chat completions request object'));
    const principal = req.principal;
    const resolved = resolveModel(catalog, body.model, principal, deps.aliases, body);
    if (!resolved.ok) return sendError(reply, resolved.error);
    const key = header(req.headers, 'idempotency-key');
    // A key's Idempotency-Keys are its own (and its rotations'): two teams using the same key never share a run.
    const requestId = key ? requestIdForCustomId(principal && !principal.admin ? `${deps.lineageOf(principal.keyId)}/${key}` : key) : `gw-${randomUUID()}`;
    const converted = requestFromChatBody(resolved.body, requestId);
    if (!converted.ok) return sendError(reply, openAIError(400, 'invalid_request_error', converted.refusal.message, converted.refusal.param));
    const options = optionsFromHeaders(req.headers, body.metadata, principal, (m) => catalog.get(m)?.tier);
    if (!options.ok) return sendError(reply, options.error);
    // Checks from the headers join those response_format asked for (a JSON answer), field by field.
    const quality = options.fields.quality && converted.request.quality ? { quality: { ...converted.request.quality, ...options.fields.quality } } : {};
    const request: RequestInput = { ...converted.request, ...resolved.fields, ...options.fields, ...quality };
    // The key's limits: held until the response ends (a stream's too). Tokens are counted only for
    // a key with a tpm limit: the tokenizer is loaded then (~50 MB a gateway without one never holds).
    const tokens =
      principal?.grant?.tpm === undefined
        ? 0
        : (await import('../routing/tokens.js')).countChatTokens([
            ...(request.messages ?? []).map((m) => ({ content: m.content })),
            ...(request.tools ? [{ content: JSON.stringify(request.tools) }] : []),
          ]);
    const held = deps.limits.acquire(principal, tokens);
    if (!held.ok) return sendError(reply, held.error, { 'retry-after': String(held.retryAfterS) });
    onClose(reply.raw, held.release);
    // A stream that offers tools is buffered: its calls are checked (and escalated) before the client sees them.
    const mode = converted.delivery.stream ? (options.buffered || request.tools !== undefined ? 'buffered' : 'live') : 'json';
    if (mode !== 'json') {
      const slot = deps.limits.acquireStream(principal);
      if (!slot.ok) return sendError(reply, slot.error, { 'retry-after': String(slot.retryAfterS) });
      onClose(reply.raw, slot.release);
    }
    // The same key with another body, or other Switchyard headers, is another request (the key's
    // own id is not part of it: its successor after a rotation may retry).
    const { keyId: _keyId, ...asked } = options.fields;
    const fingerprint = key ? fingerprintOf({ body, switchyard: asked }) : undefined;
    const workflowId = workflowIdFor(requestId);

    // A live stream is opened before its run starts: the first piece may come at once.
    const stream = mode === 'live' ? hub.open() : undefined;
    if (stream) stream.workflowId = workflowId;
    let existing: boolean;
    try {
      const started = await client.submit(stream ? { ...request, stream: { relay: deps.relayUrl(), id: stream.id } } : request, {
        ...(fingerprint ? { fingerprint } : {}),
      });
      existing = started.existing;
    } catch (err) {
      if (stream) hub.close(stream);
      // A field an x-switchyard header (or metadata key) set is named as the header.
      const option = err instanceof ValidationError ? optionRefusal(err.fields[0] ?? '') : undefined;
      return sendError(reply, option ? openAIError(400, 'invalid_request_error', option.message, option.param) : gatewayErrorOf(err));
    }
    if (existing) {
      // A retry: the run already going (or done) answers it, never a second one.
      if (stream) hub.close(stream);
      const memo = (await client.temporal.workflow.getHandle(workflowId).describe()).memo as { fingerprint?: unknown } | undefined;
      if (memo?.fingerprint !== fingerprint)
        return sendError(
          reply,
          openAIError(
            422,
            'invalid_request_error',
            `the Idempotency-Key "${key ?? ''}" was used with a different request body (workflow ${workflowId}); use a new key for a new request`,
            null,
            'idempotency_key_reused',
          ),
          NO_RETRY,
        );
    }
    if (mode === 'json') return answerJson(reply, workflowId, await resultWithin(client, workflowId, deps.waitMs, reply.raw), deps.waitMs);
    reply.hijack();
    if (!stream || existing) return bufferedStream(reply.raw, workflowId, converted.delivery);
    return liveStream(reply.raw, stream, workflowId, converted.delivery);
  });

  /** A run's answer as one JSON body; a run still going after `waitedMs`: 504/429 with where to collect it. */
  async function answerJson(reply: FastifyReply, workflowId: string, out: Outcome | undefined, waitedMs: number): Promise<unknown> {
    if (reply.raw.destroyed) return reply;
    if (!out) {
      const p = await pending(client, workflowId, waitedMs);
      return sendError(reply, p.error, p.headers);
    }
    if (!out.ok) return sendError(reply, gatewayErrorOf(out.e), { 'x-switchyard-workflow-id': workflowId });
    const cut = cutOff(out.r);
    if (cut) return sendError(reply, cut, { 'x-switchyard-workflow-id': workflowId, ...NO_RETRY });
    void reply.headers(resultHeaders(out.r));
    return chatCompletionOf(out.r, Math.floor(Date.now() / 1000));
  }

  /** The answer as events once the run has it: buffered mode, and a retry that attached to a run. */
  async function bufferedStream(raw: ServerResponse, workflowId: string, delivery: ChatDelivery, known?: Outcome): Promise<void> {
    const out = known ?? (await resultWithin(client, workflowId, deps.waitMs, raw));
    if (raw.destroyed) return;
    if (!out) {
      const p = await pending(client, workflowId, deps.waitMs);
      return sendRaw(raw, p.error.status, p.error.body, p.headers);
    }
    if (!out.ok) {
      const e = gatewayErrorOf(out.e);
      return sendRaw(raw, e.status, e.body, { 'x-switchyard-workflow-id': workflowId });
    }
    const r = out.r;
    const cut = cutOff(r);
    if (cut) return sendRaw(raw, cut.status, cut.body, { 'x-switchyard-workflow-id': workflowId, ...NO_RETRY });
    raw.writeHead(200, { ...sseHeaders(), ...resultHeaders(r), 'x-switchyard-stream': 'buffered' });
    const w = new ChunkWriter(`chatcmpl-${workflowId}`, r.model, Math.floor(Date.now() / 1000), delivery.includeUsage);
    let text = w.role();
    for (const piece of r.text.match(/\s*\S+\s*/g) ?? []) text += w.delta(piece);
    if (r.toolCalls && r.toolCalls.length > 0) text += w.toolCalls(r.toolCalls);
    raw.end(`${text}${w.end(r)}`);
  }

  /**
   * The provider's pieces as they arrive. Before the first, the run routes, reserves and falls back
   * as any request does, and a failure answers as JSON with its status; after it, the stream ends
   * with the answer's usage, or with an error event (the provider broke off, or its worker died).
   */
  function liveStream(raw: ServerResponse, s: OpenStream, workflowId: string, delivery: ChatDelivery): Promise<void> {
    return new Promise<void>((done) => {
      // Waited on until the run ends, or until its stream is over here (the client left: detach).
      const waiting = new AbortController();
      const result = outcomeOf(client.result(workflowId, waiting.signal));
      let writer: ChunkWriter | undefined;
      let finished = false;
      const finish = (last?: string) => {
        if (finished) return;
        finished = true;
        clearTimeout(bound);
        if (last !== undefined && !raw.destroyed) raw.end(last);
        hub.close(s);
        done();
      };
      /** Before the first piece the client left or the wait bound passed: the run goes on, its answer kept for a retry. */
      const detach = () => {
        finished = true;
        clearTimeout(bound);
        waiting.abort();
        // Forgotten, not closed: a relay that comes later is not told the client left (that would
        // stop the call); its worker finishes the call and the run keeps the whole answer.
        hub.forget(s);
        done();
      };
      const onRelay = (e: HubEvent) => {
        if (finished) return;
        switch (e.t) {
          case 'start':
            writer = new ChunkWriter(`chatcmpl-${workflowId}`, e.model, Math.floor(Date.now() / 1000), delivery.includeUsage);
            raw.writeHead(200, {
              ...sseHeaders(),
              'x-switchyard-workflow-id': workflowId,
              'x-switchyard-model': e.model,
              'x-switchyard-tier': e.tier,
              'x-switchyard-stream': 'live',
            });
            raw.write(writer.role());
            return;
          case 'd':
            if (writer) raw.write(writer.delta(e.v));
            return;
          case 'end': {
            // The run settles the answer; its last chunk carries the usage and the cost. A settlement
            // that does not come within the wait bound (the budget entity unreachable) ends the
            // stream with an error event rather than holding it open.
            const late = setTimeout(() => {
              waiting.abort();
              finish(
                ChunkWriter.error(
                  `the answer was streamed but its settlement did not finish within ${Math.round(deps.waitMs / 1000)} s (workflow ${workflowId}); it goes on and is charged once`,
                  'request_pending',
                ),
              );
            }, deps.waitMs);
            void result.then((o) => {
              clearTimeout(late);
              finish(o.ok && writer ? writer.end(o.r) : ChunkWriter.error(streamFailure(o, workflowId), 'stream_interrupted'));
            });
            return;
          }
          case 'error':
            return finish(ChunkWriter.error(`${e.message} (workflow ${workflowId}; what was streamed is charged)`, 'stream_interrupted'));
          case 'broken':
            return finish(ChunkWriter.error(`the worker streaming this answer was lost (workflow ${workflowId}); what was streamed is charged`, 'worker_lost'));
        }
      };
      s.events.on('relay', onRelay);
      raw.on('close', () => {
        if (finished) return;
        // The client left: mid-answer, the call is stopped (what was sent is charged); before it, the run goes on.
        waiting.abort();
        if (writer) finish();
        else detach();
      });
      const bound = setTimeout(() => {
        if (writer || finished) return;
        void pending(client, workflowId, deps.waitMs).then((p) => {
          if (writer || finished) return;
          sendRaw(raw, p.error.status, p.error.body, p.headers);
          detach();
        });
      }, deps.waitMs);
      // The run ended with no piece relayed (it failed before its first token, or a later attempt settled it): answer from its result.
      void result.then((o) => {
        if (writer || finished) return;
        finished = true;
        clearTimeout(bound);
        hub.close(s);
        void bufferedStream(raw, workflowId, delivery, o).then(done);
      });
    });
  }

  app.get<{ Params: { id: string }; Querystring: { wait?: string } }>('/v1/switchyard/requests/:id', async (req, reply) => {
    const workflowId = req.params.id;
    const principal = req.principal;
    const memo = await client.temporal.workflow
      .getHandle(workflowId)
      .describe()
      .then((d) => (d.memo ?? {}) as { keyId?: unknown })
      .catch(() => undefined);
    // A key sees the requests it (or a key it was rotated from) started; another's answer 404 as an unknown one does.
    const mine = (keyId: unknown) => typeof keyId === 'string' && principal !== undefined && deps.lineageOf(keyId) === deps.lineageOf(principal.keyId);
    if (!memo || (principal && !principal.admin && !mine(memo.keyId)))
      return sendError(reply, openAIError(404, 'invalid_request_error', `no request ${workflowId}${principal ? ' for this key' : ''}`, null, 'not_found'));
    const waitS = req.query.wait === undefined ? undefined : Number(req.query.wait);
    if (waitS !== undefined && !(Number.isFinite(waitS) && waitS >= 0))
      return sendError(reply, openAIError(400, 'invalid_request_error', 'wait: must be a number of seconds >= 0', 'wait'));
    const waitMs = Math.min(waitS === undefined ? deps.waitMs : waitS * 1000, deps.waitMs);
    // Polling counts against the key's requests per minute and at once, as a call does.
    const held = deps.limits.acquire(principal, 0);
    if (!held.ok) return sendError(reply, held.error, { 'retry-after': String(held.retryAfterS) });
    onClose(reply.raw, held.release);
    return answerJson(reply, workflowId, await resultWithin(client, workflowId, waitMs, reply.raw), waitMs);
  });
}
