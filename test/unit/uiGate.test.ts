/**
 * The UI gate of `switchyard up` (security/uiGate.ts) as an HTTP proxy, over real sockets against a
 * small upstream server: answers cut short upstream are cut short for the client, a client that
 * leaves takes its upstream request with it, hop-by-hop headers stay behind, other Host names are
 * refused, a sign-in link is spent only by a GET, and once detached nothing passes through.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AesGcmPayloadCodec } from '../../src/security/payloadCodec.js';
import { encryptionKeysFromEnv } from '../../src/security/encryptionKeys.js';
import { UiGate } from '../../src/security/uiGate.js';
import { newSignInSecret, signInUrl } from '../../src/security/uiSignIn.js';

const seen: Array<{ url: string; headers: IncomingMessage['headers']; closed: boolean }> = [];
let upstream: Server;
let upstreamUrl = '';
let gate: UiGate;
let gateUrl = '';
const secret = newSignInSecret();

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('aborted')));
    });
    r.on('error', reject);
    r.end();
  });
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const entry = { url: req.url ?? '', headers: req.headers, closed: false };
    seen.push(entry);
    res.on('close', () => (entry.closed = true));
    if (req.url === '/cut') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('half');
      setTimeout(() => res.destroy(), 50);
      return;
    }
    if (req.url === '/slow') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first');
      return; // never ends on its own
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', Connection: 'keep-alive, x-upstream-hop', 'x-upstream-hop': 'no' });
    res.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const keys = encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: randomBytes(32).toString('base64'), SWITCHYARD_ENCRYPTION_KEY_ID: 'g' });
  gate = new UiGate({ codec: new AesGcmPayloadCodec(keys!), namespace: 'default', signInSecret: secret });
  gateUrl = await gate.start(0);
  gate.forwardTo(upstreamUrl);
});
afterAll(async () => {
  await gate.stop();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

describe('the UI gate', () => {
  it('passes requests through without the headers the Connection header names', async () => {
    const r = await get(`${gateUrl}/page`, { Connection: 'keep-alive, x-client-hop', 'x-client-hop': 'secret', 'x-kept': 'yes' });
    expect(r).toEqual({ status: 200, body: 'ok' });
    const req = seen.find((s) => s.url === '/page')!;
    expect(req.headers['x-client-hop']).toBeUndefined();
    expect(req.headers['x-kept']).toBe('yes');
  });

  it('cuts the client short when the upstream answer is cut short (no hang)', async () => {
    await expect(get(`${gateUrl}/cut`)).rejects.toThrow();
  });

  it('drops the upstream request when the client leaves', async () => {
    await new Promise<void>((resolve) => {
      const r = request(`${gateUrl}/slow`, (res) => {
        res.once('data', () => {
          r.destroy();
          resolve();
        });
      });
      r.on('error', () => undefined);
      r.end();
    });
    await expect.poll(() => seen.find((s) => s.url === '/slow')?.closed, { timeout: 5_000 }).toBe(true);
  });

  it('refuses another Host name (DNS rebinding)', async () => {
    const r = await get(`${gateUrl}/page`, { Host: 'attacker.example' });
    expect(r.status).toBe(421);
  });

  it('a sign-in link is spent by a GET only', async () => {
    const link = signInUrl(gateUrl, secret);
    expect((await get(link, {}, 'HEAD')).status).toBe(405);
    expect((await get(link)).status).toBe(303);
    expect((await get(link)).status).toBe(403);
  });

  it('once detached (its dev server gone), passes nothing through', async () => {
    gate.detach('its dev server exited (code 1)');
    const r = await get(`${gateUrl}/page`);
    expect(r.status).toBe(503);
    expect(r.body).toContain('dev server exited');
    gate.forwardTo(upstreamUrl);
  });
});
