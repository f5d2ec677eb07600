/**
 * The OpenAI-compatible gateway (issue 23, first slice): Fastify serving `POST /v1/chat/completions`
 * (non-streaming) and `GET /v1/models`, each chat request run as the request workflow through the
 * SwitchyardClient, so it is routed, budgeted, retried, traced and charged once whoever sends it.
 * Not yet: streaming, keys, idempotency keys, per-key limits (issue 23 items 1, 3, 5, 6).
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Catalog } from '../catalog/catalog.js';
import type { SwitchyardClient } from '../client/client.js';
import { type ProviderName, TIERS } from '../catalog/schema.js';
import { requestIdForCustomId } from '../batch/openaiBatch.js';
import { gatewayErrorOf, openAIError } from './errors.js';
import { chatCompletionOf, requestFromChatBody } from './openaiChat.js';

export interface GatewayOptions {
  readonly client: SwitchyardClient;
  readonly catalog: Catalog;
  /** Largest request body in bytes (413 above it). */
  readonly bodyLimit?: number;
  /** Providers configured where this gateway runs (its models are marked in /v1/models); absent: not said. */
  readonly configured?: (provider: ProviderName) => boolean;
}

/**
 * The request id: the client's Idempotency-Key (any key maps to the same id every time, as an
 * OpenAI batch custom_id does), or a new one.
 */
function requestIdOf(header: string | string[] | undefined): string {
  const v = Array.isArray(header) ? header[0] : header;
  return v ? requestIdForCustomId(v) : `gw-${randomUUID()}`;
}

const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;

export function buildGateway(opts: GatewayOptions): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({ bodyLimit, logger: false });
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
    const e = gatewayErrorOf(err);
    return reply.status(e.status).send(e.body);
  });
  app.setNotFoundHandler((req, reply) => {
    const e = openAIError(404, 'invalid_request_error', `no route ${req.method} ${req.url}; this gateway serves POST /v1/chat/completions and GET /v1/models`);
    return reply.status(e.status).send(e.body);
  });

  app.get('/v1/models', () => {
    const created = 0;
    const data = [
      { id: 'auto', object: 'model', created, owned_by: 'switchyard', switchyard: { routed: true } },
      ...opts.catalog.models.map((m) => ({
        id: m.name,
        object: 'model',
        created,
        owned_by: m.provider,
        switchyard: {
          tier: m.tier,
          inputNanosPerMTok: m.price.inputNanosPerMTok,
          outputNanosPerMTok: m.price.outputNanosPerMTok,
          capabilities: m.capabilities,
          ...(opts.configured ? { configured: opts.configured(m.provider) } : {}),
        },
      })),
    ];
    return { object: 'list', data, switchyard: { tiers: TIERS } };
  });

  app.post('/v1/chat/completions', async (req, reply) => {
    const body = req.body as Record<string, unknown> | null;
    const model = body && typeof body === 'object' ? body.model : undefined;
    if (typeof model === 'string' && model !== '' && model !== 'auto' && opts.catalog.get(model) === undefined) {
      const e = openAIError(
        404,
        'invalid_request_error',
        `the model "${model}" does not exist here; use "auto" or one of GET /v1/models`,
        'model',
        'model_not_found',
      );
      return reply.status(e.status).send(e.body);
    }
    const converted = requestFromChatBody(body, requestIdOf(req.headers['idempotency-key']));
    if (!converted.ok) {
      const e = openAIError(400, 'invalid_request_error', converted.refusal.message, converted.refusal.param);
      return reply.status(e.status).send(e.body);
    }
    try {
      const r = await opts.client.ask(converted.request);
      void reply.headers({
        'x-switchyard-workflow-id': r.workflowId,
        'x-switchyard-model': r.model,
        'x-switchyard-tier': r.tier,
        'x-switchyard-cost-nanos': String(r.costNanos),
        'x-switchyard-premium-baseline-nanos': String(r.premiumBaselineCostNanos),
      });
      return chatCompletionOf(r, Math.floor(Date.now() / 1000));
    } catch (err) {
      const e = gatewayErrorOf(err);
      return reply.status(e.status).send(e.body);
    }
  });
  return app;
}

/** Binding beyond this machine needs keys, which the gateway does not have yet. */
export function assertLoopback(host: string): void {
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) {
    throw new Error(`gateway: --host ${host} would serve every caller on the network without keys; bind 127.0.0.1 until keys exist (issue 23)`);
  }
}
