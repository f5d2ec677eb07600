/**
 * What a chat call asks of Switchyard beyond OpenAI's body: the model it names (`auto`, a tier
 * `switchyard/<tier>`, a catalog model, or an alias from the config file), Switchyard's options as
 * `x-switchyard-*` headers or `switchyard_*` metadata keys (docs/openai-clients.md), and what the
 * caller's key allows (its scope, categories, models and tiers). Pure (no I/O).
 */
import type { Catalog } from '../catalog/catalog.js';
import { type Tier, TIERS } from '../catalog/tiers.js';
import type { RequestInput } from '../workflows/request/contract.js';
import { type GatewayError, openAIError } from './errors.js';
import type { Principal } from './keys.js';

export const TIER_MODEL_PREFIX = 'switchyard/';

type Fields = Partial<RequestInput>;

const forbidden = (message: string, param: string | null = null): { ok: false; error: GatewayError } => ({
  ok: false,
  error: openAIError(403, 'permission_error', message, param, 'forbidden'),
});

/**
 * The body's model as request fields: `auto` routes (within the key's models and tiers), a tier
 * routes within that tier, a catalog model is pinned; an alias stands for either. The body is
 * returned with `model` replaced by what the request pins (or removed).
 */
export function resolveModel(
  catalog: Catalog,
  model: unknown,
  principal: Principal | undefined,
  aliases: Readonly<Record<string, string>> = {},
  body?: Record<string, unknown> | null,
): { ok: true; body: unknown; fields: Fields } | { ok: false; error: GatewayError } {
  const g = principal?.grant;
  const keyFields: Fields = { ...(g?.models ? { allowedModels: [...g.models] } : {}), ...(g?.tiers ? { allowedTiers: [...g.tiers] } : {}) };
  if (typeof model !== 'string' || model === '' || model === 'auto') return { ok: true, body, fields: keyFields };
  const named = Object.hasOwn(aliases, model) ? (aliases[model] ?? model) : model;
  if (named.startsWith(TIER_MODEL_PREFIX)) {
    const tier = named.slice(TIER_MODEL_PREFIX.length) as Tier;
    if (!TIERS.includes(tier))
      return {
        ok: false,
        error: openAIError(
          404,
          'invalid_request_error',
          `no tier "${tier}": use ${TIERS.map((t) => TIER_MODEL_PREFIX + t).join(', ')}`,
          'model',
          'model_not_found',
        ),
      };
    if (g?.tiers && !g.tiers.includes(tier)) return forbidden(`this key may use the tiers ${g.tiers.join(', ')}, not ${tier}`, 'model');
    const { model: _m, ...rest } = body ?? {};
    return { ok: true, body: rest, fields: { ...keyFields, allowedTiers: [tier] } };
  }
  const spec = catalog.get(named);
  if (!spec)
    return {
      ok: false,
      error: openAIError(
        404,
        'invalid_request_error',
        `the model "${model}" does not exist here; use "auto", a tier, or one of GET /v1/models`,
        'model',
        'model_not_found',
      ),
    };
  if (g?.models && !g.models.includes(spec.name)) return forbidden(`this key may use the models ${g.models.join(', ')}, not ${spec.name}`, 'model');
  if (g?.tiers && !g.tiers.includes(spec.tier)) return forbidden(`this key may use the tiers ${g.tiers.join(', ')}; ${spec.name} is ${spec.tier}`, 'model');
  return { ok: true, body: { ...(body ?? {}), model: spec.name }, fields: keyFields };
}

/** Each option: its header, its metadata key, its request field, and how its text becomes a value. */
const OPTIONS: ReadonlyArray<{ header: string; meta: string; field: keyof RequestInput; kind: 'text' | 'int' | 'number' | 'json' }> = [
  { header: 'x-switchyard-category', meta: 'switchyard_category', field: 'category', kind: 'text' },
  { header: 'x-switchyard-feature', meta: 'switchyard_feature', field: 'feature', kind: 'text' },
  { header: 'x-switchyard-unit', meta: 'switchyard_unit', field: 'unit', kind: 'text' },
  { header: 'x-switchyard-budget-scope', meta: 'switchyard_budget_scope', field: 'budgetScope', kind: 'text' },
  { header: 'x-switchyard-max-latency-ms', meta: 'switchyard_max_latency_ms', field: 'maxLatencyMs', kind: 'int' },
  { header: 'x-switchyard-min-quality', meta: 'switchyard_min_quality', field: 'minQuality', kind: 'number' },
  { header: 'x-switchyard-max-budget-wait-ms', meta: 'switchyard_max_budget_wait_ms', field: 'maxBudgetWaitMs', kind: 'int' },
  // A deadline (6h, or an ISO time): the request may go through its model's batch API (docs/deferred.md); a streamed one never does.
  { header: 'x-switchyard-deadline', meta: 'switchyard_deadline', field: 'deadline', kind: 'text' },
  // Quality checks as the request's `quality` object (JSON), e.g. {"regex": "\\d+", "judge": {"threshold": 0.7}}.
  { header: 'x-switchyard-quality', meta: 'switchyard_quality', field: 'quality', kind: 'json' },
];

export const STREAM_HEADER = 'x-switchyard-stream';

/**
 * A request-schema issue about a field these options set (`feature: must be ...`), named as the
 * caller sent it: the header (or its metadata key). Undefined for other fields.
 */
export function optionRefusal(issue: string): { param: string; message: string } | undefined {
  for (const o of OPTIONS) {
    if (o.field === 'quality' && issue.startsWith('quality.jsonSchema')) return undefined; // response_format's
    const m = new RegExp(`^${o.field}((?:\\.[^:]*)?):(.*)$`, 's').exec(issue);
    if (m) return { param: o.header, message: `header ${o.header} (or metadata.${o.meta})${m[1] ?? ''}:${m[2] ?? ''}` };
  }
  return undefined;
}

/**
 * Switchyard's options from headers (first) and metadata, checked against the key: its scope is
 * the budget scope (another is refused unless the key is the admin's), its categories bound the
 * category (the first is the default). Types are checked here; values by the request schema.
 */
export function optionsFromHeaders(
  headers: Record<string, string | string[] | undefined>,
  metadata: unknown,
  principal: Principal | undefined,
  /** A catalog model's tier (undefined: not in the catalog): a judge the checks name must be one the key may use. */
  tierOf: (model: string) => string | undefined = () => undefined,
): { ok: true; fields: Fields; buffered: boolean } | { ok: false; error: GatewayError } {
  if (metadata !== undefined && metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata)))
    return { ok: false, error: openAIError(400, 'invalid_request_error', 'metadata: must be an object of string values', 'metadata') };
  const meta = (metadata ?? {}) as Record<string, unknown>;
  const fields: Record<string, string | number | Record<string, unknown>> = {};
  for (const o of OPTIONS) {
    const h = headers[o.header];
    const fromHeader = Array.isArray(h) ? h[0] : h;
    const raw = fromHeader ?? meta[o.meta];
    if (raw === undefined) continue;
    const where = fromHeader !== undefined ? `header ${o.header}` : `metadata.${o.meta}`;
    const param = fromHeader !== undefined ? o.header : `metadata.${o.meta}`;
    if (typeof raw !== 'string') return { ok: false, error: openAIError(400, 'invalid_request_error', `${where}: must be a string`, param) };
    if (o.kind === 'text') fields[o.field] = raw;
    else if (o.kind === 'json') {
      let v: unknown;
      try {
        v = JSON.parse(raw);
      } catch {
        v = undefined;
      }
      if (!v || typeof v !== 'object' || Array.isArray(v))
        return {
          ok: false,
          error: openAIError(400, 'invalid_request_error', `${where}: must be a JSON object of quality checks, e.g. {"regex": "\\\\d+"}`, param),
        };
      fields[o.field] = v as Record<string, unknown>;
    } else {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || (o.kind === 'int' && !Number.isInteger(n)))
        return {
          ok: false,
          error: openAIError(400, 'invalid_request_error', `${where}: must be ${o.kind === 'int' ? 'a whole number' : 'a number'} (got "${raw}")`, param),
        };
      fields[o.field] = n;
    }
  }
  const g = principal?.grant;
  if (g) {
    const scope = fields.budgetScope;
    if (scope !== undefined && scope !== g.scope)
      return forbidden(
        `this key spends the budget scope "${g.scope}"; it may not name another ("${typeof scope === 'string' ? scope : '?'}")`,
        'x-switchyard-budget-scope',
      );
    fields.budgetScope = g.scope;
    const judge = (fields.quality as { judge?: { model?: unknown } } | undefined)?.judge?.model;
    if (typeof judge === 'string') {
      const tier = tierOf(judge);
      if ((g.models && !g.models.includes(judge)) || (g.tiers && (tier === undefined || !(g.tiers as readonly string[]).includes(tier))))
        return forbidden(
          `this key may not use the model "${judge}" (as a judge either): it may use ${g.models ? `the models ${g.models.join(', ')}` : `the tiers ${(g.tiers ?? []).join(', ')}`}`,
          'quality.judge.model',
        );
    }
    if (g.categories && g.categories.length > 0) {
      const category = fields.category;
      if (category === undefined) fields.category = g.categories[0] ?? 'standard';
      else if (typeof category !== 'string' || !g.categories.includes(category))
        return forbidden(
          `this key may use the categories ${g.categories.join(', ')}, not "${typeof category === 'string' ? category : '?'}"`,
          'x-switchyard-category',
        );
    }
  }
  if (principal && !principal.admin) fields.keyId = principal.keyId;
  const mode = headers[STREAM_HEADER];
  const m = Array.isArray(mode) ? mode[0] : mode;
  if (m !== undefined && m !== 'live' && m !== 'buffered')
    return { ok: false, error: openAIError(400, 'invalid_request_error', `header ${STREAM_HEADER}: must be live or buffered (got "${m}")`, STREAM_HEADER) };
  return { ok: true, fields: fields, buffered: m === 'buffered' };
}
