/**
 * The OpenAI-compatible gateway (docs/openai-clients.md): Fastify serving `POST
 * /v1/chat/completions` (JSON, live streams and buffered streams: ./chat.ts), `GET /v1/models`,
 * `GET /v1/switchyard/requests/{id}`, the admin routes, and the relay its workers stream answers
 * through (./relay.ts). Each chat request runs as the request workflow, so it is routed, budgeted,
 * retried, traced and charged once whoever sends it. Keys: ./keys.ts.
 */
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Catalog } from '../catalog/catalog.js';
import type { SwitchyardClient } from '../client/client.js';
import { type ProviderName, TIERS } from '../catalog/schema.js';
import { chatRoutes } from './chat.js';
import { gatewayErrorOf, openAIError } from './errors.js';
import { Gatekeeper, KeyLimits, type KeyStore, type Principal } from './keys.js';
import { TIER_MODEL_PREFIX } from './options.js';
import { fileAndBatchRoutes } from './batches.js';
import { DirFileStore } from './fileStore.js';
import { relayRoutes, StreamHub } from './relay.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller (set by the key check; undefined while the gateway is open). */
    principal: Principal | undefined;
  }
}

export interface GatewayOptions {
  readonly client: SwitchyardClient;
  readonly catalog: Catalog;
  /** Largest request body in bytes (413 above it). */
  readonly bodyLimit?: number;
  /** Providers configured where this gateway runs (its models are marked in /v1/models); absent: not said. */
  readonly configured?: (provider: ProviderName) => boolean;
  /** Where workers reach this gateway's relay (its URL as seen from the workers, ending in /switchyard/relay). */
  readonly relayUrl: string;
  /** How long a call waits for its answer before answering 504/429 with the workflow id. */
  readonly waitMs?: number;
  readonly aliases?: Readonly<Record<string, string>>;
  /** The key registry; absent: no keys (the admin key alone, or open). */
  readonly keys?: KeyStore;
  /** SWITCHYARD_ADMIN_KEY: guards the admin routes, and may call everything. */
  readonly adminKey?: string;
  /** A client that sends nothing for this long is dropped (slow clients); headers must arrive within it too. */
  readonly idleTimeoutMs?: number;
  /** Streams open at once per key (per gateway instance; default 100). */
  readonly maxStreamsPerKey?: number;
  /**
   * /v1/files and /v1/batches: where files and batch records live (a directory every gateway
   * instance and every worker reads: ./fileStore.ts), requests of a batch in flight at once, and
   * the completion window (24 h; tests shorten it). Absent: those routes answer 404.
   */
  readonly files?: { readonly dir: string; readonly concurrency?: number; readonly windowMs?: number; readonly maxFileBytes?: number };
  readonly log?: Logger;
}

/**
 * Node options for a gateway process of its own (docker-compose, the bench): a smaller young
 * generation. A gateway's objects are short-lived or held for a whole call, so a 16 MB semi-space
 * mostly holds garbage: 8 MB takes resident memory with 1,000 calls open from about 160 to 145 MB,
 * for a little more collector time (BENCHMARKS.md "Gateway").
 */
export const GATEWAY_NODE_OPTIONS = '--max-semi-space-size=8';

const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

export interface Gateway {
  readonly app: FastifyInstance;
  readonly hub: StreamHub;
  /** Stops taking requests, lets open ones (and their streams) finish for up to `graceMs`, then closes. */
  close(graceMs?: number): Promise<void>;
}

export function buildGateway(opts: GatewayOptions): Gateway {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const idle = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const app = Fastify({
    bodyLimit,
    logger: false,
    // Slow clients: headers must arrive within `idle`, and a body may not pause for longer (below).
    // No bound on a whole request: a relay's body lasts as long as its answer.
    connectionTimeout: 0,
    keepAliveTimeout: 5_000,
    requestTimeout: 0,
    // Node checks header timeouts on this interval (30 s by default).
    http: { headersTimeout: idle, requestTimeout: 0, connectionsCheckingInterval: Math.min(1_000, idle) },
    return503OnClosing: true,
    // The router's own refusals (a malformed percent-encoding, a path parameter too long) in OpenAI's shape too.
    frameworkErrors: (err, _req, reply) => {
      const e = openAIError(400, 'invalid_request_error', `the request path is not valid: ${err.message}`);
      // Its reply is typed for the route's generics, which this handler has none of.
      void (reply as unknown as FastifyReply).status(e.status).send(e.body);
    },
  });
  // An empty body with a JSON content type is no body: the official Python client sends one on
  // DELETE /v1/files/{id} and POST /v1/batches/{id}/cancel. Anything else is Fastify's own parser
  // (prototype-poisoning checks included).
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    void json(req, text, done);
  });
  const hub = new StreamHub();
  /** Chat calls whose response has not ended (JSON waits and streams alike). */
  let active = 0;
  const gate = new Gatekeeper(opts.keys, opts.adminKey);
  app.decorateRequest('principal', undefined);

  // Every error in OpenAI's shape: malformed JSON, a body too large, anything thrown.
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const e = openAIError(413, 'invalid_request_error', `the request body is larger than ${bodyLimit} bytes`);
      return reply.status(e.status).send(e.body);
    }
    if (err.statusCode === 400 || err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      const e = openAIError(400, 'invalid_request_error', `the body is not valid JSON: ${err.message}`);
      return reply.status(e.status).send(e.body);
    }
    opts.log?.error({ err: err.message, code: err.code }, 'gateway: unexpected error');
    const e = gatewayErrorOf(err);
    return reply.status(e.status).send(e.body);
  });
  app.setNotFoundHandler((req, reply) => {
    const e = openAIError(
      404,
      'invalid_request_error',
      `no route ${req.method} ${req.url.slice(0, 200)}; this gateway serves POST /v1/chat/completions, GET /v1/models, /v1/files and /v1/batches`,
      null,
      'not_found',
    );
    return reply.status(e.status).send(e.body);
  });

  // A client may not pause for longer than `idle` while it sends its headers or its body (a slow
  // client holding a socket): one timer per connection, re-armed for each request a kept-alive
  // connection carries. Once a chat call's body is read, its answer may take as long as the wait
  // bound; a relay's body lasts as long as its answer (relay.ts lifts the bound once it knows the
  // stream). Node's own headersTimeout is set too, but is checked only now and then.
  app.server.on('connection', (socket: Socket) => socket.setTimeout(idle, () => socket.destroy()));
  // Node lifts a kept-alive connection's timer when its next request arrives: the body is bound again.
  app.addHook('onRequest', async (req) => {
    req.raw.socket.setTimeout(idle);
  });
  app.addHook('onResponse', async (req) => {
    if (!req.raw.socket.destroyed) req.raw.socket.setTimeout(idle);
  });

  // The /v1 routes, each behind the key check. Hooks of this plugin run on its matched routes
  // only, whatever the spelling of the path (percent-encoded or not): the check is the route's,
  // not a prefix test of the raw URL.
  const authenticated = async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = await gate.authenticate(req.headers.authorization);
    if (!auth.ok) return reply.status(auth.error.status).send(auth.error.body);
    req.principal = auth.principal;
    return undefined;
  };
  const adminOnly = async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.principal?.admin) return undefined;
    const e = opts.adminKey
      ? openAIError(403, 'permission_error', 'admin routes need the admin key (SWITCHYARD_ADMIN_KEY)', null, 'forbidden')
      : openAIError(403, 'permission_error', 'admin routes are off: start the gateway with SWITCHYARD_ADMIN_KEY set', null, 'forbidden');
    return reply.status(e.status).send(e.body);
  };
  const bodyRead = async (req: FastifyRequest) => {
    req.raw.socket.setTimeout(0);
  };

  // For load balancers and compose healthchecks: no key, nothing about the stack.
  app.get('/health', () => ({ ok: true, calls: active, streams: hub.openCount }));

  void app.register(async (v1) => {
    v1.addHook('onRequest', authenticated);
    v1.addHook('preHandler', bodyRead);
    v1.get('/v1/models', (req) => {
      const g = req.principal?.grant;
      const created = 0;
      const allowed = (name: string, tier: string) => (!g?.models || g.models.includes(name)) && (!g?.tiers || (g.tiers as readonly string[]).includes(tier));
      const data = [
        { id: 'auto', object: 'model', created, owned_by: 'switchyard', switchyard: { routed: true } },
        ...TIERS.filter((t) => !g?.tiers || g.tiers.includes(t)).map((t) => ({
          id: `${TIER_MODEL_PREFIX}${t}`,
          object: 'model',
          created,
          owned_by: 'switchyard',
          switchyard: { routed: true, tier: t },
        })),
        ...Object.entries(opts.aliases ?? {}).map(([id, to]) => ({ id, object: 'model', created, owned_by: 'switchyard', switchyard: { alias: to } })),
        ...opts.catalog.models
          .filter((m) => allowed(m.name, m.tier))
          .map((m) => ({
            id: m.name,
            object: 'model',
            created,
            owned_by: m.provider,
            switchyard: {
              tier: m.tier,
              inputNanosPerMTok: m.price.inputNanosPerMTok,
              outputNanosPerMTok: m.price.outputNanosPerMTok,
              capabilities: m.capabilities,
              contextWindow: m.contextWindow,
              maxOutputTokens: m.maxOutputTokens,
              ...(opts.configured ? { configured: opts.configured(m.provider) } : {}),
            },
          })),
      ];
      return { object: 'list', data, switchyard: { tiers: TIERS } };
    });

    v1.get('/v1/switchyard/admin/keys', { onRequest: adminOnly }, () => ({
      // Never a secret or its digest: the ids, names and grants.
      data: (opts.keys ? opts.keys.list() : []).map(({ secretSha256: _s, ...k }) => k),
    }));

    chatRoutes(v1, {
      client: opts.client,
      catalog: opts.catalog,
      hub,
      relayUrl: () => opts.relayUrl,
      waitMs: opts.waitMs ?? 600_000,
      aliases: opts.aliases ?? {},
      limits: new KeyLimits(opts.maxStreamsPerKey),
      lineageOf: (keyId) => opts.keys?.lineageOf(keyId) ?? keyId,
      track: () => {
        active += 1;
        let ended = false;
        return () => {
          if (!ended) active -= 1;
          ended = true;
        };
      },
    });
    if (opts.files) {
      const files = opts.files;
      fileAndBatchRoutes(v1, {
        client: opts.client,
        store: new DirFileStore(files.dir),
        // The open gateway's files are everyone's; the admin key sees all; a key its lineage's.
        ownerOf: (p) => (p?.admin ? undefined : p ? `key:${opts.keys?.lineageOf(p.keyId) ?? p.keyId}` : 'open'),
        keyFields: (p) => {
          const g = p?.grant;
          if (!g || !p) return { ok: true, category: 'batch', overrides: {} };
          const category = !g.categories || g.categories.length === 0 || g.categories.includes('batch') ? 'batch' : (g.categories[0] ?? 'batch');
          return {
            ok: true,
            category,
            overrides: {
              budgetScope: g.scope,
              keyId: p.keyId,
              ...(g.models ? { allowedModels: [...g.models] } : {}),
              ...(g.tiers ? { allowedTiers: [...g.tiers] } : {}),
            },
          };
        },
        concurrency: files.concurrency ?? 32,
        ...(files.windowMs !== undefined ? { windowMs: files.windowMs } : {}),
        ...(files.maxFileBytes !== undefined ? { maxFileBytes: files.maxFileBytes } : {}),
        idleTimeoutMs: idle,
        log: opts.log,
      });
    }
  });
  relayRoutes(app, hub);

  return {
    app,
    hub,
    async close(graceMs = 30_000) {
      // No new connections; a request on a kept-alive one gets 503 (return503OnClosing); calls in
      // flight, streams too, get up to graceMs to end (their runs go on regardless, charged once).
      const closing = app.close();
      const deadline = Date.now() + graceMs;
      while ((active > 0 || hub.openCount > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      hub.stop();
      app.server.closeAllConnections();
      await closing;
    },
  };
}

/** Binding beyond this machine needs keys: an open gateway serves whoever reaches it. */
export function assertBindable(host: string, keysExist: boolean): void {
  if (keysExist) return;
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) {
    throw new Error(
      `gateway: --host ${host} would serve every caller on the network without keys; create one first (\`switchyard keys create NAME --scope S\`) or set SWITCHYARD_ADMIN_KEY, or bind 127.0.0.1`,
    );
  }
}
