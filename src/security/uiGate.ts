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
/** A session ends after an hour unused, and after twelve hours in any case. */
const SESSION_IDLE_MS = 60 * 60_000;
const SESSION_MAX_MS = 12 * 60 * 60_000;

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
  private down: string | undefined;
  private hosts = new Set<string>();
  private readonly sessions = new Map<string, { createdAt: number; lastSeen: number }>();
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
        reject(
          e.code === 'EADDRINUSE'
            ? new Error(`port ${port} (UI) on ${host} is already in use: is another Temporal server (or \`switchyard up\`) running? Stop it or pass --ui-port`)
            : e,
        ),
      );
      server.listen(port, host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    const url = `http://${host}:${a.port}`;
    // Requests must name this server (a page on another name resolving here, DNS rebinding, is refused).
    this.hosts = new Set([`${host}:${a.port}`, `localhost:${a.port}`]);
    // The UI's fetches come from this origin (by either loopback name).
    this.codecServer.allowOrigin(url);
    this.codecServer.allowOrigin(`http://localhost:${a.port}`);
    return url;
  }

  /** The dev server's UI, on its private port. */
  forwardTo(uiUrl: string): void {
    this.upstream = new URL(uiUrl);
    this.down = undefined;
  }

  /** Stops passing requests through (the dev server is gone: its port could be anyone's now). */
  detach(reason: string): void {
    this.upstream = undefined;
    this.down = reason;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  private signedIn(req: IncomingMessage): boolean {
    const given = cookie(req, SESSION_COOKIE);
    if (!given) return false;
    const now = Date.now();
    for (const [token, s] of this.sessions) {
      if (now - s.lastSeen > SESSION_IDLE_MS || now - s.createdAt > SESSION_MAX_MS) {
        this.sessions.delete(token);
        continue;
      }
      if (token.length === given.length && timingSafeEqual(Buffer.from(token), Buffer.from(given))) {
        s.lastSeen = now;
        return true;
      }
    }
    return false;
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    if (!this.hosts.has(req.headers.host ?? '')) {
      res.writeHead(421, { 'Content-Type': 'text/plain' });
      res.end(`this server answers as ${[...this.hosts].join(' or ')} only\n`);
      return;
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === SIGN_IN_PATH) return this.signIn(req, res);
    if (path === CODEC_PATH || path.startsWith(`${CODEC_PATH}/`)) return this.codecServer.serve(req, res);
    this.forward(req, res);
  }

  private signIn(req: IncomingMessage, res: ServerResponse): void {
    // Only a browser opening the link signs in (a HEAD or another method does not spend it).
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET', 'Content-Type': 'text/plain' });
      res.end('open the sign-in link in a browser\n');
      return;
    }
    const code = new URL(req.url ?? '/', 'http://x').searchParams.get('code') ?? '';
    const check = this.codes.redeem(code);
    if (!check.ok) {
      const why = { malformed: 'is not a sign-in link', forged: 'was not made by this stack', expired: 'has expired', used: 'was already used' }[check.why];
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(`This link ${why}. Run \`switchyard ui\` (with this stack's TEMPORAL_ADDRESS) for a new one; each works once, for 10 minutes.\n`);
      return;
    }
    const session = randomBytes(32).toString('base64url');
    const now = Date.now();
    this.sessions.set(session, { createdAt: now, lastSeen: now });
    if (this.sessions.size > SESSIONS_MAX) this.sessions.delete(this.sessions.keys().next().value ?? '');
    res.writeHead(303, {
      // Only the codec path needs it; HttpOnly keeps page scripts from reading it. Cookies are not
      // kept apart by port: see docs/security.md for what that leaves open.
      'Set-Cookie': `${SESSION_COOKIE}=${session}; Path=${CODEC_PATH}; HttpOnly; SameSite=Strict; Max-Age=${SESSION_MAX_MS / 1000}`,
      Location: '/',
      'Cache-Control': 'no-store',
    });
    res.end();
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const up = this.upstream;
    if (!up) {
      res.writeHead(503, { 'Content-Type': 'text/plain' });
      res.end(this.down ? `the Temporal UI is not available: ${this.down}\n` : 'the Temporal UI is starting\n');
      return;
    }
    const out = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: endToEnd(req.headers) }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
      answer.pipe(res);
      // An answer cut short upstream is cut short here too (the client must not wait forever).
      answer.on('aborted', () => res.destroy());
      answer.on('error', () => res.destroy());
    });
    // A client that goes away takes its upstream request with it.
    res.on('close', () => {
      if (!res.writableFinished) out.destroy();
    });
    out.on('error', (e) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`Temporal UI unreachable: ${e.message}\n`);
    });
    req.pipe(out);
  }
}

/** The headers that go end to end: hop-by-hop ones, and those the Connection header names, stay behind. */
function endToEnd(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k) && !named.has(k)));
}
