/**
 * The front door of `switchyard up`'s Temporal UI when payloads are encrypted. The dev server's UI
 * runs on a private port; this server, on the UI's public port, passes every request through to it
 * and serves the codec endpoint at `/codec` on the same origin, so the browser sends the codec its
 * session cookie (the UI's fetch sends cookies only to its own origin). The endpoint decodes only
 * for a browser that signed in with a one-time link (uiSignIn.ts). What a local process can find
 * (the UI's settings API, the dev server's command line) is the endpoint's URL, which alone decodes
 * nothing.
 *
 * The pass-through is node:http piping by hand (about 20 lines): no proxy library is a dependency
 * yet, and the gateway's HTTP framework (issue 23) is the place to bring one in.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import { CodecServer } from './codecServer.js';
import { SESSION_COOKIE, SIGN_IN_PATH, SignInCodes } from './uiSignIn.js';
import { closeServer } from '../util/httpServer.js';

export const CODEC_PATH = '/codec';
const SESSIONS_MAX = 1_000;

export interface UiGateOptions {
  readonly codec: PayloadCodec;
  readonly namespace: string;
  /** Signs the sign-in codes (uiSignIn.ts). */
  readonly signInSecret: string;
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer']);

export class UiGate {
  private server: Server | undefined;
  private upstream: URL | undefined;
  private readonly sessions = new Set<string>();
  private readonly codes: SignInCodes;
  private readonly codecServer: CodecServer;

  constructor(opts: UiGateOptions) {
    this.codes = new SignInCodes(opts.signInSecret);
    this.codecServer = new CodecServer({ codec: opts.codec, allowedOrigins: [], namespace: opts.namespace, authorize: (req) => this.signedIn(req) });
  }

  /** Listens on the UI's public port; returns its URL. The UI itself is attached with `forwardTo`. */
  async start(port: number, host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => this.route(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'EADDRINUSE' ? new Error(`port ${port} (UI) on ${host} is already in use: is another Temporal server (or \`switchyard up\`) running? Stop it or pass --ui-port`) : e),
      );
      server.listen(port, host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    const url = `http://${host}:${a.port}`;
    // The UI's fetches come from this origin (by either loopback name).
    this.codecServer.allowOrigin(url);
    this.codecServer.allowOrigin(`http://localhost:${a.port}`);
    return url;
  }

  /** The dev server's UI, on its private port. */
  forwardTo(uiUrl: string): void {
    this.upstream = new URL(uiUrl);
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  private signedIn(req: IncomingMessage): boolean {
    const given = cookie(req, SESSION_COOKIE);
    if (!given) return false;
    for (const s of this.sessions) {
      if (s.length === given.length && timingSafeEqual(Buffer.from(s), Buffer.from(given))) return true;
    }
    return false;
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === SIGN_IN_PATH) return this.signIn(req, res);
    if (path === CODEC_PATH || path.startsWith(`${CODEC_PATH}/`)) return this.codecServer.serve(req, res);
    this.forward(req, res);
  }

  private signIn(req: IncomingMessage, res: ServerResponse): void {
    const code = new URL(req.url ?? '/', 'http://x').searchParams.get('code') ?? '';
    const check = this.codes.redeem(code);
    if (!check.ok) {
      const why = { malformed: 'is not a sign-in link', forged: 'was not made by this stack', expired: 'has expired', used: 'was already used' }[check.why];
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(`This link ${why}. Run \`switchyard ui\` (with this stack's TEMPORAL_ADDRESS) for a new one; each works once, for 10 minutes.\n`);
      return;
    }
    const session = randomBytes(32).toString('base64url');
    this.sessions.add(session);
    if (this.sessions.size > SESSIONS_MAX) this.sessions.delete(this.sessions.values().next().value ?? '');
    res.writeHead(303, {
      // Only the codec path needs it; HttpOnly keeps page scripts from reading it.
      'Set-Cookie': `${SESSION_COOKIE}=${session}; Path=${CODEC_PATH}; HttpOnly; SameSite=Strict`,
      Location: '/',
      'Cache-Control': 'no-store',
    });
    res.end();
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const up = this.upstream;
    if (!up) {
      res.writeHead(503, { 'Content-Type': 'text/plain' });
      res.end('the Temporal UI is starting\n');
      return;
    }
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !HOP_BY_HOP.has(k)));
    const out = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers }, (answer) => {
      const back = Object.fromEntries(Object.entries(answer.headers).filter(([k]) => !HOP_BY_HOP.has(k)));
      res.writeHead(answer.statusCode ?? 502, back);
      answer.pipe(res);
    });
    out.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`Temporal UI unreachable: ${e.message}\n`);
    });
    req.pipe(out);
  }
}
