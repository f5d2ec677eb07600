/**
 * The worker's side of a streamed answer: one HTTP request to the gateway that holds the client's
 * connection, its body a line of JSON per event, written as the provider's pieces arrive
 * (docs/streaming.md). It opens at the first piece, so everything before that (routing, the budget,
 * retries, fallbacks) works as for any request. The gateway closing it (its client left, or it
 * stopped) makes the relay `gone` (it answers 410), and the caller stops the provider's call so as
 * not to pay for text nobody reads. A gateway that cannot be reached is not a client that left: the
 * call goes on, and the gateway (or a retry) answers from the run's result.
 *
 * Written with node:http rather than fetch: a request body written piece by piece, with each piece
 * sent at once, and the gateway's early answer seen while the body is still being written.
 */
import { type ClientRequest, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { RELAY_CONTENT_TYPE, type RelayEvent, type RelayStart, type StreamTarget } from '../../workflows/request/activities.js';

function urlOf(target: StreamTarget): URL {
  return new URL(`${target.relay.replace(/\/+$/, '')}/${encodeURIComponent(target.id)}`);
}

export class StreamRelay {
  private req: ClientRequest | undefined;
  /** No more writes: the gateway said the stream is closed (`left`), or its connection failed (`unreachable`). */
  private over: 'left' | 'unreachable' | undefined;
  private readonly goneListeners: Array<() => void> = [];
  private finished: Promise<void> | undefined;

  constructor(
    private readonly target: StreamTarget,
    private readonly start: RelayStart,
  ) {}

  /** The gateway closed the stream: its client left (the call is worth stopping). */
  get gone(): boolean {
    return this.over === 'left';
  }

  /**
   * The gateway could not be reached (a wrong relay URL, or it went away): the call goes on to its
   * end, so the run has the whole answer for the gateway to send from its result (or a retry).
   */
  get unreachable(): boolean {
    return this.over === 'unreachable';
  }

  get opened(): boolean {
    return this.req !== undefined;
  }

  /** Called when the client leaves (not when the gateway cannot be reached). */
  onGone(fn: () => void): void {
    if (this.gone) fn();
    else this.goneListeners.push(fn);
  }

  private markOver(why: 'left' | 'unreachable'): void {
    if (this.over) return;
    this.over = why;
    if (why === 'left') for (const fn of this.goneListeners.splice(0)) fn();
  }

  private open(): ClientRequest {
    const url = urlOf(this.target);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    let ended!: () => void;
    this.finished = new Promise<void>((r) => (ended = r));
    const req = send(url, {
      method: 'POST',
      headers: { 'content-type': RELAY_CONTENT_TYPE, 'x-switchyard-workflow-id': this.start.workflowId },
    });
    req.on('response', (res) => {
      res.resume();
      // 410: the gateway does not want more (its client left). Another refusal (a gateway that is
      // stopping answers 503) is a relay it cannot take: the call goes on, answered from its result.
      if (res.statusCode === 410 || (res.statusCode === 200 && !req.writableEnded)) this.markOver('left');
      else if (res.statusCode !== 200) this.markOver('unreachable');
      res.on('end', ended);
      res.on('error', ended);
    });
    req.on('error', () => {
      this.markOver('unreachable');
      ended();
    });
    req.on('close', ended);
    req.flushHeaders();
    this.write(req, { t: 'start', ...this.start });
    return req;
  }

  private write(req: ClientRequest, e: RelayEvent): void {
    if (!this.over) req.write(`${JSON.stringify(e)}\n`);
  }

  /** A piece of the answer (opens the relay on the first). */
  send(text: string): void {
    if (this.over) return;
    this.req ??= this.open();
    this.write(this.req, { t: 'd', v: text });
  }

  /** The answer is complete (`finish`: the provider's finish reason). */
  async end(finish: string): Promise<void> {
    await this.close({ t: 'end', finish });
  }

  /** The answer broke off: the client gets an error event with this message. */
  async fail(message: string): Promise<void> {
    await this.close({ t: 'error', message });
  }

  private async close(last: RelayEvent): Promise<void> {
    const req = this.req;
    if (!req || req.writableEnded) return;
    this.write(req, last);
    req.end();
    // The gateway's answer, briefly: the client's last event is on its way when this returns.
    await Promise.race([this.finished, new Promise((r) => setTimeout(r, 2_000).unref())]);
  }

  /** Drops the connection (the call was cancelled). */
  destroy(): void {
    this.req?.destroy();
  }
}

/**
 * What a gateway relayed of a stream: asked by a later attempt of the same call (a worker died
 * mid-stream) to settle what was streamed instead of calling again. The read is final: the gateway
 * takes no more of that stream, so what is settled is what the client got. Undefined when the
 * gateway cannot be reached or does not know the stream.
 */
export async function relayedSoFar(target: StreamTarget, timeoutMs = 3_000): Promise<{ started: boolean; text: string; model?: string } | undefined> {
  try {
    const url = urlOf(target);
    url.searchParams.set('final', '1');
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.status !== 200) return undefined;
    const body = (await res.json()) as { started?: unknown; text?: unknown; model?: unknown };
    return {
      started: body.started === true,
      text: typeof body.text === 'string' ? body.text : '',
      ...(typeof body.model === 'string' ? { model: body.model } : {}),
    };
  } catch {
    return undefined;
  }
}
