/**
 * The gateway's side of streamed answers (docs/streaming.md): a stream is opened for each
 * `stream: true` request before its workflow starts; the worker that calls the provider posts the
 * answer's pieces to `POST /switchyard/relay/{id}` as they arrive, and the chat handler forwards
 * them to its client. A client that leaves closes the relay, which stops the worker's call. A relay
 * that breaks without its end (a worker died) ends the client's stream with an error event; a later
 * attempt of the same call reads what was relayed (`GET /switchyard/relay/{id}`) to settle it.
 *
 * The stream id (144 random bits) is the relay's only credential: it is in the run's history, which
 * also holds the answer itself. One writer per stream; a closed stream takes none.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { FastifyInstance } from 'fastify';
import { RELAY_CONTENT_TYPE, type RelayEvent } from '../workflows/request/activities.js';

/** What the chat handler hears from a stream: the relay's events, and `broken` (the relay closed without an end). */
export type HubEvent = RelayEvent | { readonly t: 'broken' };

export interface OpenStream {
  readonly id: string;
  readonly events: EventEmitter;
  /** Relayed text so far (what a later attempt settles when the worker died). */
  text: string;
  started: boolean;
  /** No more writers: the client's stream has ended or the client left. */
  closed: boolean;
  /** The run this stream belongs to (set once started; a relay must name it). */
  workflowId?: string;
  /** The model streaming it (from the relay's start): a later attempt settles what was streamed at its price. */
  model?: string;
  /**
   * Ends the current relay: `left` answers it 410 (the client left: the worker stops the call),
   * `gone` cuts the connection (this gateway is going away: the worker finishes the call, and the
   * run keeps the whole answer for a retry).
   */
  dropRelay?: (how: 'left' | 'gone') => void;
  closedAt?: number;
  /** Read for its settlement by a later attempt: its text is final. */
  frozen?: boolean;
}

/** Largest answer a relay may carry (a stream's text is kept until its record expires). */
const MAX_RELAYED_CHARS = 4 * 1024 * 1024;
/** How long a closed stream's record is kept for a later attempt to read. */
const KEEP_CLOSED_MS = 15 * 60_000;
/** Closed streams kept at most (the oldest go first): a burst of streams cannot hold the gateway's memory. */
const KEEP_CLOSED_MAX = 2_000;

export class StreamHub {
  private readonly streams = new Map<string, OpenStream>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), 60_000).unref();
  }

  open(): OpenStream {
    const s: OpenStream = { id: randomBytes(18).toString('base64url'), events: new EventEmitter(), text: '', started: false, closed: false };
    this.streams.set(s.id, s);
    return s;
  }

  get(id: string): OpenStream | undefined {
    return this.streams.get(id);
  }

  /** The client's side is over (answered, failed, or the client left): the relay, if any, is dropped. */
  close(s: OpenStream, how: 'left' | 'gone' = 'left'): void {
    if (s.closed) return;
    s.closed = true;
    s.closedAt = Date.now();
    s.dropRelay?.(how);
    s.events.removeAllListeners();
    this.closedIds.push(s.id);
    // Map order is insertion order: the oldest closed records go first.
    while (this.closedIds.length > KEEP_CLOSED_MAX) this.streams.delete(this.closedIds.shift() ?? '');
  }

  /**
   * Nobody here reads this stream any more, but its run goes on (its client left, or was answered
   * 504/429, before the first piece): it is forgotten, so that a relay that comes later finds no
   * stream (404) and its worker finishes the call, the whole answer kept for a retry.
   */
  forget(s: OpenStream): void {
    s.events.removeAllListeners();
    this.streams.delete(s.id);
  }

  /** Ids of closed streams still kept, oldest first. */
  private closedIds: string[] = [];

  /** Streams whose client is still connected. */
  get openCount(): number {
    let n = 0;
    for (const s of this.streams.values()) if (!s.closed) n += 1;
    return n;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.streams) if (s.closed && now - (s.closedAt ?? now) > KEEP_CLOSED_MS) this.streams.delete(id);
    this.closedIds = this.closedIds.filter((id) => this.streams.has(id));
  }

  /** The gateway is going away: relays still open are cut (their calls go on to their end). */
  stop(): void {
    clearInterval(this.sweeper);
    for (const s of this.streams.values()) this.close(s, 'gone');
  }
}

/** The relay's routes, on the gateway's server. */
export function relayRoutes(app: FastifyInstance, hub: StreamHub): void {
  // The relay's body is read as it arrives, line by line, not parsed whole.
  app.addContentTypeParser(RELAY_CONTENT_TYPE, (_req, payload, done) => done(null, payload));

  // `?final=1`: a later attempt settling the stream: what it reads is what is charged, so the stream
  // takes nothing more (a worker thought lost but only slow is cut off).
  app.get<{ Params: { id: string }; Querystring: { final?: string } }>('/switchyard/relay/:id', (req, reply) => {
    const s = hub.get(req.params.id);
    if (!s) return reply.status(404).send({ error: { message: 'no such stream', type: 'invalid_request_error', param: null, code: null } });
    if (req.query.final === '1') {
      s.frozen = true;
      s.dropRelay?.('left');
    }
    return { started: s.started, text: s.text, closed: s.closed, ...(s.model ? { model: s.model } : {}) };
  });

  app.post<{ Params: { id: string } }>('/switchyard/relay/:id', (req, reply) => {
    const s = hub.get(req.params.id);
    const workflowId = req.headers['x-switchyard-workflow-id'];
    if (!s) {
      // Not known here (forgotten: nobody reads it; or another gateway's): the worker finishes its call.
      req.raw.resume();
      return reply.status(404).send({ error: { message: 'no such stream', type: 'invalid_request_error', param: null, code: 'stream_unknown' } });
    }
    if (s.closed || s.frozen || s.dropRelay !== undefined || (s.workflowId !== undefined && s.workflowId !== workflowId)) {
      // Its client left (or its stream ended), taken by another writer, or not this run's: stop.
      req.raw.resume();
      return reply.status(410).send({ error: { message: 'stream closed', type: 'invalid_request_error', param: null, code: 'stream_closed' } });
    }
    reply.hijack();
    const raw = req.raw;
    // A known stream's relay lasts as long as its answer: no idle bound (a provider may pause).
    raw.socket.setTimeout(0);
    let ended = false;
    // The client left or its stream ended: the worker is told so (410 while it still writes), and
    // stops its call; a worker that does not hang up is cut off.
    s.dropRelay = (how) => {
      if (how === 'gone') return raw.destroy();
      if (!reply.raw.headersSent && !reply.raw.destroyed) reply.raw.writeHead(410, { 'content-type': 'application/json' }).end('{"error":"stream closed"}');
      setTimeout(() => raw.destroy(), 5_000).unref();
    };
    const lines = createInterface({ input: raw, crlfDelay: Infinity });
    const emit = (e: HubEvent) => s.events.emit('relay', e);
    lines.on('line', (line) => {
      if (ended || s.frozen || line === '') return;
      let e: RelayEvent;
      try {
        e = JSON.parse(line) as RelayEvent;
      } catch {
        return;
      }
      if (e.t === 'start') {
        s.started = true;
        if (typeof e.model === 'string') s.model = e.model;
      } else if (e.t === 'd') {
        if (typeof e.v !== 'string' || s.text.length + e.v.length > MAX_RELAYED_CHARS) return raw.destroy();
        s.text += e.v;
      } else if (e.t === 'end' || e.t === 'error') {
        ended = true;
      }
      emit(e);
    });
    let over = false;
    /** The relay's end: its last line, or its connection lost (a worker that died: `broken`). */
    const onClose = () => {
      if (over) return;
      over = true;
      s.dropRelay = undefined;
      if (!ended) emit({ t: 'broken' });
      if (!reply.raw.headersSent && !reply.raw.destroyed) reply.raw.writeHead(ended ? 200 : 410).end();
    };
    lines.on('close', onClose);
    lines.on('error', onClose);
    // A worker that dies mid-stream resets the connection: that is the relay's end, not the gateway's error.
    raw.on('error', onClose);
    raw.on('close', onClose);
  });
}
