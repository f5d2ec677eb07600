/**
 * The router: from a classified request and its constraints to an ordered chain of candidate
 * models, each with the reason it is there and an upper-bound cost estimate. Pure.
 *
 * Differences from the seed's router, each covered by a unit test:
 * - no eligible model is an error naming the constraint that excluded the last candidates;
 * - cost is estimated as input tokens x input price + max output tokens x output price;
 * - "cheapest" compares that estimate, not the input price alone;
 * - a model that another eligible model beats on both cost and quality is ranked after it,
 *   whatever its tier label says (mistral-large is "economy" but dearer than standard models);
 * - fallbacks are ranked best-fit: same tier next cheapest from another provider first, then
 *   up the tiers, then down.
 */
import type { Capability, ModelSpec, ProviderName, Tier } from '../catalog/schema.js';
import type { BatchUpgrade } from '../deferred/deadline.js';
import { TIERS } from '../catalog/schema.js';
import type { Catalog } from '../catalog/catalog.js';
import { estimateCostNanos, formatUsd } from '../catalog/pricing.js';

export interface RouteRequest {
  readonly complexity: number;
  readonly capabilities: readonly Capability[];
  readonly inputTokens: number;
  /** Requested output budget; each model gets min(this, its own limit) unless `strictMaxOutput`. */
  readonly maxOutputTokens?: number | undefined;
  readonly maxLatencyMs?: number | undefined;
  readonly minQuality?: number | undefined;
  readonly provider?: ProviderName | undefined;
  readonly costCapNanos?: number | undefined;
  /** Pin a model: it leads the chain; the usual fallbacks follow unless `noFallback`. */
  readonly model?: string | undefined;
  readonly noFallback?: boolean | undefined;
  /** Models to leave out (open circuits, exhausted budgets, failed attempts). */
  readonly excludeModels?: readonly string[] | undefined;
  /** Force the starting tier (escalation) instead of deriving it from complexity. */
  readonly minTier?: Tier | undefined;
  /** Only these models may serve the request (a gateway key's allow-list). */
  readonly allowedModels?: readonly string[] | undefined;
  /** Only models of these tiers may serve it (a key's allow-list, or a tier the client named). */
  readonly allowedTiers?: readonly Tier[] | undefined;
  /**
   * Fallback order to use after the primary (from config per tier, or per request): the eligible
   * ones are tried in this order, then the automatic ranking continues.
   */
  readonly fallbacks?: readonly string[] | undefined;
  /** Fallback chains per preferred tier, from configuration; `fallbacks` overrides them. */
  readonly tierFallbacks?: Partial<Record<Tier, readonly string[]>> | undefined;
  /** Providers the workers can call (credentials or endpoint set); absent = all of them. */
  readonly configuredProviders?: readonly ProviderName[] | undefined;
  /** How to configure a provider, for the error when none of the eligible ones is (e.g. the env var). */
  readonly configureHint?: ((p: ProviderName) => string) | undefined;
  /**
   * The request may wait for a provider's batch (it has a deadline): a stronger model may serve it
   * there when its batch price is at or below the routed model's price (see BatchUpgrade).
   */
  readonly batchUpgrade?: BatchUpgrade | undefined;
}

/** The model a deferred request waits for in a provider's batch, when it is not the chain's first. */
export interface DeferredPick extends Candidate {
  /** The chain's first model, which a live call still starts from. */
  readonly instead: string;
  /** The pick's estimate at its batch price, and what it is compared with. */
  readonly batchCostNanos: number;
  readonly comparedNanos: number;
}

export interface RoutingPolicy {
  /** Complexity at or above which the standard / premium tier is preferred. */
  readonly thresholds: { readonly standard: number; readonly premium: number };
  readonly defaultMaxOutputTokens: number;
  readonly maxCandidates: number;
}

export const DEFAULT_ROUTING_POLICY: RoutingPolicy = {
  thresholds: { standard: 0.35, premium: 0.7 },
  defaultMaxOutputTokens: 1024,
  maxCandidates: 4,
};

export interface Candidate {
  readonly model: string;
  readonly provider: ProviderName;
  readonly tier: Tier;
  readonly quality: number;
  readonly maxOutputTokens: number;
  readonly estimatedCostNanos: number;
  readonly reason: string;
}

export interface Exclusion {
  readonly model: string;
  readonly constraint: string;
  readonly detail: string;
}

export interface RouteDecision {
  readonly preferredTier: Tier;
  readonly chain: Candidate[];
  readonly excluded: Exclusion[];
  /** A stronger model for the provider's batch (batchUpgrade); the live chain is unchanged. */
  readonly deferredPick?: DeferredPick;
}

export class NoEligibleModelError extends Error {
  override readonly name = 'NoEligibleModelError';
  constructor(
    readonly constraint: string,
    readonly excluded: Exclusion[],
    readonly hint: string,
  ) {
    const last = excluded.filter((e) => e.constraint === constraint);
    super(`no eligible model: constraint "${constraint}" excluded the last candidates (${last.map((e) => `${e.model}: ${e.detail}`).join('; ')}); ${hint}`);
  }
}

export function tierForComplexity(complexity: number, policy: RoutingPolicy = DEFAULT_ROUTING_POLICY): Tier {
  if (complexity >= policy.thresholds.premium) return 'premium';
  if (complexity >= policy.thresholds.standard) return 'standard';
  return 'economy';
}

/** A model's estimate at its batch price; undefined when it has no batch API. */
function batchEstimate(m: ModelSpec, req: RouteRequest, policy: RoutingPolicy): number | undefined {
  return m.batchPrice ? estimateCostNanos({ ...m, price: m.batchPrice }, req.inputTokens, outputTokensFor(m, req, policy)) : undefined;
}

/**
 * The strongest eligible model with a batch API whose batch estimate is at or below the routed
 * model's price (its live price for `up_to_live`; for `no_dearer` its batch price, or its live price
 * when it has no batch API); ties go to the cheaper batch, then the name. Undefined when none is stronger.
 */
export function batchUpgradeFor(
  head: ModelSpec,
  pool: readonly ModelSpec[],
  mode: Exclude<BatchUpgrade, 'off'>,
  prices: (m: ModelSpec) => readonly [live: number, batch: number | undefined],
): ModelSpec | undefined {
  const [live, batch] = prices(head);
  const bound = mode === 'up_to_live' || batch === undefined ? live : batch;
  let best: { m: ModelSpec; nanos: number } | undefined;
  for (const m of pool) {
    const nanos = prices(m)[1];
    if (m === head || nanos === undefined || nanos > bound || m.quality <= head.quality) continue;
    if (!best || m.quality > best.m.quality || (m.quality === best.m.quality && (nanos < best.nanos || (nanos === best.nanos && m.name < best.m.name))))
      best = { m, nanos };
  }
  return best?.m;
}

function outputTokensFor(model: ModelSpec, req: RouteRequest, policy: RoutingPolicy): number {
  return Math.min(req.maxOutputTokens ?? policy.defaultMaxOutputTokens, model.maxOutputTokens);
}

interface Constraint {
  readonly name: string;
  readonly excludes: (m: ModelSpec) => string | undefined;
  readonly hint: (excluded: ModelSpec[]) => string;
}

function constraintsFor(req: RouteRequest, policy: RoutingPolicy): Constraint[] {
  const cs: Constraint[] = [];
  if (req.configuredProviders !== undefined) {
    const ok = new Set(req.configuredProviders);
    cs.push({
      name: 'providerConfigured',
      excludes: (m) => (ok.has(m.provider) ? undefined : `provider ${m.provider} is not configured on the workers`),
      hint: (ms) => {
        const missing = [...new Set(ms.map((m) => m.provider))];
        return `configure one of these providers on the workers: ${missing.map((p) => (req.configureHint ? req.configureHint(p) : p)).join('; ')}`;
      },
    });
  }
  if (req.allowedModels !== undefined) {
    const allowed = new Set(req.allowedModels);
    cs.push({
      name: 'allowedModels',
      excludes: (m) => (allowed.has(m.name) ? undefined : 'not among the models this request may use'),
      hint: () => `use one of ${[...allowed].join(', ')}, or a key that allows more models`,
    });
  }
  if (req.allowedTiers !== undefined) {
    const allowed = new Set(req.allowedTiers);
    cs.push({
      name: 'allowedTiers',
      excludes: (m) => (allowed.has(m.tier) ? undefined : `tier ${m.tier} is not among the tiers this request may use`),
      hint: () => `ask for one of the tiers ${[...allowed].join(', ')}, or use a key that allows more tiers`,
    });
  }
  const excluded = new Set(req.excludeModels ?? []);
  if (excluded.size > 0) {
    cs.push({
      name: 'excludeModels',
      excludes: (m) => (excluded.has(m.name) ? 'excluded for this request (failed, circuit open or over budget)' : undefined),
      hint: () => 'every remaining model was already tried or is unavailable',
    });
  }
  if (req.capabilities.length > 0) {
    cs.push({
      name: 'capabilities',
      excludes: (m) => {
        const missing = req.capabilities.filter((c) => !m.capabilities.includes(c));
        return missing.length > 0 ? `lacks ${missing.join(', ')}` : undefined;
      },
      hint: () => `add a catalog model with capabilities ${req.capabilities.join(', ')}, or drop the requirement`,
    });
  }
  if (req.maxOutputTokens !== undefined) {
    const wanted = req.maxOutputTokens;
    cs.push({
      name: 'maxOutputTokens',
      excludes: (m) => (m.maxOutputTokens < wanted ? `outputs at most ${m.maxOutputTokens} tokens < ${wanted}` : undefined),
      hint: (ms) => `lower maxOutputTokens to ${Math.max(...ms.map((m) => m.maxOutputTokens))} or less`,
    });
  }
  cs.push({
    name: 'contextWindow',
    excludes: (m) => {
      const need = req.inputTokens + outputTokensFor(m, req, policy);
      return need > m.contextWindow ? `needs ${need} tokens > window ${m.contextWindow}` : undefined;
    },
    hint: () => `shorten the input (${req.inputTokens} tokens) or add a model with a larger context window`,
  });
  if (req.provider !== undefined) {
    const p = req.provider;
    cs.push({
      name: 'provider',
      excludes: (m) => (m.provider !== p ? `provider is ${m.provider}, not ${p}` : undefined),
      hint: () => `drop provider=${p} or add a ${p} model that meets the other constraints`,
    });
  }
  if (req.maxLatencyMs !== undefined) {
    const max = req.maxLatencyMs;
    cs.push({
      name: 'maxLatencyMs',
      excludes: (m) => (m.typicalLatencyMs > max ? `typical latency ${m.typicalLatencyMs} ms > ${max} ms` : undefined),
      hint: (ms) => `raise maxLatencyMs to at least ${Math.min(...ms.map((m) => m.typicalLatencyMs))}`,
    });
  }
  if (req.minQuality !== undefined) {
    const min = req.minQuality;
    cs.push({
      name: 'minQuality',
      excludes: (m) => (m.quality < min ? `quality ${m.quality} < ${min}` : undefined),
      hint: (ms) => `lower minQuality to ${Math.max(...ms.map((m) => m.quality))} or less`,
    });
  }
  if (req.costCapNanos !== undefined) {
    const cap = req.costCapNanos;
    cs.push({
      name: 'costCap',
      excludes: (m) => {
        const est = estimateCostNanos(m, req.inputTokens, outputTokensFor(m, req, policy));
        return est > cap ? `estimated ${formatUsd(est)} > cap ${formatUsd(cap)}` : undefined;
      },
      hint: (ms) =>
        `raise the cost cap to at least ${formatUsd(Math.min(...ms.map((m) => estimateCostNanos(m, req.inputTokens, outputTokensFor(m, req, policy)))))}, or lower maxOutputTokens`,
    });
  }
  return cs;
}

/** Order of tiers to try: the preferred one, then up (better answers), then down (still answers). */
export function tierOrder(preferred: Tier): Tier[] {
  const i = TIERS.indexOf(preferred);
  return [preferred, ...TIERS.slice(i + 1), ...TIERS.slice(0, i).reverse()];
}

export function route(catalog: Catalog, req: RouteRequest, policy: RoutingPolicy = DEFAULT_ROUTING_POLICY): RouteDecision {
  if (!(req.complexity >= 0 && req.complexity <= 1)) throw new RangeError('complexity must be in [0,1]');
  let pool: ModelSpec[] = [...catalog.models];
  if (req.model !== undefined) catalog.require(req.model);
  const excluded: Exclusion[] = [];
  for (const c of constraintsFor(req, policy)) {
    const kept: ModelSpec[] = [];
    const dropped: ModelSpec[] = [];
    for (const m of pool) {
      const why = c.excludes(m);
      if (why === undefined) kept.push(m);
      else {
        dropped.push(m);
        excluded.push({ model: m.name, constraint: c.name, detail: why });
      }
    }
    if (kept.length === 0) throw new NoEligibleModelError(c.name, excluded, c.hint(dropped));
    pool = kept;
  }

  const derived = tierForComplexity(req.complexity, policy);
  const preferredTier = req.minTier !== undefined && TIERS.indexOf(req.minTier) > TIERS.indexOf(derived) ? req.minTier : derived;
  const order = tierOrder(preferredTier);
  const est = new Map(pool.map((m) => [m.name, estimateCostNanos(m, req.inputTokens, outputTokensFor(m, req, policy))]));
  const cost = (m: ModelSpec): number => est.get(m.name) ?? Number.MAX_SAFE_INTEGER;
  const dominatedBy = new Map<string, ModelSpec>();
  for (const m of pool) {
    const better = pool.find((o) => o !== m && cost(o) <= cost(m) && o.quality >= m.quality && (cost(o) < cost(m) || o.quality > m.quality));
    if (better) dominatedBy.set(m.name, better);
  }

  const rank = (m: ModelSpec): [number, number, number] => [dominatedBy.has(m.name) ? 1 : 0, order.indexOf(m.tier), cost(m)];
  const sorted = [...pool].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    return ra[0] - rb[0] || ra[1] - rb[1] || ra[2] - rb[2] || a.name.localeCompare(b.name);
  });

  let ordered: ModelSpec[] = [];
  const pinned = req.model !== undefined ? pool.find((m) => m.name === req.model) : undefined;
  if (req.model !== undefined && !pinned) {
    const why = excluded.find((e) => e.model === req.model);
    const spec = catalog.require(req.model);
    const hint =
      why?.constraint === 'providerConfigured' && req.configureHint
        ? `the pinned model ${req.model} needs its provider configured on the workers: ${req.configureHint(spec.provider)}`
        : `the pinned model ${req.model} does not meet the constraints`;
    throw new NoEligibleModelError(why?.constraint ?? 'model', excluded, hint);
  }
  const rest = sorted.filter((m) => m !== pinned);
  if (pinned) ordered.push(pinned);
  // Provider diversity: after each pick, prefer the next candidate from another provider within the
  // same tier, so that one provider's outage does not spend the whole chain.
  while (rest.length > 0) {
    const last = ordered[ordered.length - 1];
    let idx = 0;
    if (last) {
      const head = rest[0];
      const alt = rest.findIndex((m) => m.provider !== last.provider && m.tier === head?.tier && !dominatedBy.has(m.name));
      if (head && head.provider === last.provider && alt > 0) idx = alt;
    }
    const [next] = rest.splice(idx, 1);
    if (next) ordered.push(next);
  }
  const preferred = req.fallbacks ?? req.tierFallbacks?.[preferredTier];
  if (preferred && preferred.length > 0 && ordered.length > 1) {
    const [head, ...tail] = ordered;
    const named = preferred.map((n) => tail.find((m) => m.name === n)).filter((m): m is ModelSpec => m !== undefined);
    ordered = [head as ModelSpec, ...named, ...tail.filter((m) => !named.includes(m))];
  }
  if (req.noFallback) ordered = ordered.slice(0, 1);
  ordered = ordered.slice(0, Math.max(1, policy.maxCandidates));

  const chain: Candidate[] = ordered.map((m, i) => {
    const prev = ordered[i - 1];
    const dom = dominatedBy.get(m.name);
    let reason: string;
    if (i === 0) {
      reason = pinned
        ? `pinned model ${m.name}`
        : m.tier === preferredTier
          ? `cheapest eligible ${m.tier} model for complexity ${req.complexity.toFixed(2)} (${preferredTier} tier)`
          : `no eligible ${preferredTier} model; cheapest ${m.tier} model instead`;
    } else if (preferred?.includes(m.name) && i <= preferred.length) {
      reason = `configured fallback #${preferred.indexOf(m.name) + 1}`;
    } else if (dom) {
      reason = `last resort: ${dom.name} is cheaper and at least as good`;
    } else if (prev && m.tier === prev.tier && m.provider !== prev.provider) {
      reason = `fallback on another provider (${m.provider}) in the ${m.tier} tier`;
    } else if (prev && TIERS.indexOf(m.tier) > TIERS.indexOf(prev.tier)) {
      reason = `fallback up to the ${m.tier} tier`;
    } else if (prev && TIERS.indexOf(m.tier) < TIERS.indexOf(prev.tier)) {
      reason = `fallback down to the ${m.tier} tier`;
    } else {
      reason = `fallback: next cheapest ${m.tier} model`;
    }
    return {
      model: m.name,
      provider: m.provider,
      tier: m.tier,
      quality: m.quality,
      maxOutputTokens: outputTokensFor(m, req, policy),
      estimatedCostNanos: cost(m),
      reason,
    };
  });
  const head = chain[0];
  const headSpec = ordered[0];
  const pick =
    head && headSpec && !pinned && req.batchUpgrade !== undefined && req.batchUpgrade !== 'off'
      ? batchUpgradeFor(headSpec, pool, req.batchUpgrade, (m) => [cost(m), batchEstimate(m, req, policy)])
      : undefined;
  if (!pick || !head) return { preferredTier, chain, excluded };
  const [liveHead, batchHead] = [cost(headSpec as ModelSpec), batchEstimate(headSpec as ModelSpec, req, policy)];
  const compared = req.batchUpgrade === 'up_to_live' || batchHead === undefined ? liveHead : batchHead;
  const batchCost = batchEstimate(pick, req, policy) ?? 0;
  const deferredPick: DeferredPick = {
    model: pick.name,
    provider: pick.provider,
    tier: pick.tier,
    quality: pick.quality,
    maxOutputTokens: outputTokensFor(pick, req, policy),
    estimatedCostNanos: cost(pick),
    instead: head.model,
    batchCostNanos: batchCost,
    comparedNanos: compared,
    reason: `deferred to the stronger ${pick.name} (quality ${pick.quality}): its batch price, ${formatUsd(batchCost)} for this request, is at or below ${head.model}'s ${compared === liveHead ? 'live' : 'batch'} price, ${formatUsd(compared)}`,
  };
  return { preferredTier, chain, excluded, deferredPick };
}
