/**
 * The remote codec endpoint: the Temporal UI (`--ui-codec-endpoint`, or the UI's "Data Encoder"
 * setting) and the Temporal CLI (`--codec-endpoint`) send it payloads to decode, so that people
 * allowed to read prompts see them in plaintext while the server only ever stores ciphertext.
 *
 * Protocol (Temporal's remote codec): POST {base}/decode and {base}/encode with a JSON body
 * `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`; the answer has the same shape.
 * Access: browsers only from the allowed origins (CORS), only for the configured namespace
 * (`X-Namespace`), and, when a token is set, only with `Authorization: Bearer <token>`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { z } from 'zod';
import { closeServer } from '../util/httpServer.js';

// @temporalio/proto is CommonJS: its namespaces come through the default export under Node's ESM.
const { temporal } = proto;

export interface CodecServerOptions {
  readonly codec: PayloadCodec;
  /** Browser origins allowed to call it (the Temporal UI's), e.g. http://localhost:8233. */
  readonly allowedOrigins: readonly string[];
  /** Requests naming another namespace in X-Namespace are refused. */
  readonly namespace: string;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  readonly token?: string;
  /**
   * When set, a request it returns false for is refused (403): the UI gate's sign-in cookie, for
   * the embedded UI, which cannot send a token (uiGate.ts).
   */
  readonly authorize?: (req: IncomingMessage) => boolean;
  /** Larger bodies are refused (default 8 MB: a few 2 MB payloads). */
  readonly maxBodyBytes?: number;
}

const wirePayloads = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), z.string()).optional(), data: z.string().optional() })),
});

function toWire(p: Payload): { metadata: Record<string, string>; data: string } {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

function fromWire(p: { metadata?: Record<string, string> | undefined; data?: string | undefined }): Payload {
  return temporal.api.common.v1.Payload.create({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
    data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
  });
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class CodecServer {
  private server: Server | undefined;

  private readonly origins: Set<string>;

  constructor(private readonly opts: CodecServerOptions) {
    this.origins = new Set(opts.allowedOrigins);
  }

  /** Allows one more browser origin (the embedded UI's, once its port is known). */
  allowOrigin(origin: string): void {
    this.origins.add(origin);
  }

  /** Starts listening; returns the endpoint URL to give the UI and CLI. */
  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => {
      this.serve(req, res);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    return `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  private cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (origin && this.origins.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Vary', 'Origin');
    }
  }

  private send(res: ServerResponse, req: IncomingMessage, status: number, body: unknown): void {
    if (res.headersSent) return;
    // An answer before the body was read (refused early): drain it, or the browser can wait on it.
    if (!req.complete) req.resume();
    this.cors(req, res);
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** Answers one request (also for a server that mounts the endpoint under a path: only the last part counts). */
  serve(req: IncomingMessage, res: ServerResponse): void {
    this.handle(req, res).catch((e: unknown) => this.send(res, req, 500, { message: `codec: ${(e as Error).message}` }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const origin = req.headers.origin;
    if (origin && !this.origins.has(origin)) {
      this.send(res, req, 403, { message: `origin ${origin} is not allowed; add it with --ui-origin` });
      return;
    }
    if (req.method === 'OPTIONS') {
      this.cors(req, res);
      res.writeHead(204);
      res.end();
      return;
    }
    const op = ((req.url ?? '').split('?')[0] ?? '').replace(/\/+$/, '').split('/').pop();
    if (req.method !== 'POST' || (op !== 'decode' && op !== 'encode')) {
      this.send(res, req, 404, { message: 'POST /encode or /decode' });
      return;
    }
    if (this.opts.authorize && !this.opts.authorize(req)) {
      // 403, not 401: Chromium leaves a 401 without an auth challenge pending (it never finishes).
      this.send(res, req, 403, { message: 'not signed in: open the sign-in link `switchyard up` printed, or run `switchyard ui` for a new one' });
      return;
    }
    if (this.opts.token !== undefined) {
      const auth = req.headers.authorization ?? '';
      if (!sameSecret(auth, `Bearer ${this.opts.token}`)) {
        this.send(res, req, 401, { message: 'missing or wrong Authorization: Bearer token' });
        return;
      }
    }
    const ns = req.headers['x-namespace'];
    if (typeof ns === 'string' && ns !== '' && ns !== this.opts.namespace) {
      this.send(res, req, 403, { message: `namespace ${ns} is not served here (this endpoint serves ${this.opts.namespace})` });
      return;
    }
    const max = this.opts.maxBodyBytes ?? 8 * 1024 * 1024;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      this.send(res, req, 413, { message: `body over ${max} bytes` });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > max) {
        this.send(res, req, 413, { message: `body over ${max} bytes` });
        return;
      }
      chunks.push(chunk as Buffer);
    }
    let parsed;
    try {
      parsed = wirePayloads.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      this.send(res, req, 400, { message: 'body must be JSON {"payloads": [{"metadata": {...base64}, "data": base64}]}' });
      return;
    }
    const payloads = parsed.data.payloads.map(fromWire);
    try {
      const out = op === 'decode' ? await this.opts.codec.decode(payloads) : await this.opts.codec.encode(payloads);
      this.send(res, req, 200, { payloads: out.map(toWire) });
    } catch (e) {
      this.send(res, req, 422, { message: (e as Error).message });
    }
  }
}
