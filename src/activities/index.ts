/**
 * Activities: thin wrappers from the workflow to the pure routing code, the provider adapters and
 * the ledger. Provider errors become non-retryable ApplicationFailures carrying the error kind, so
 * the workflow (not a hidden activity retry) decides between retry, wait, next model and fail;
 * Temporal's own activity retry covers only infrastructure failures (timeouts, lost workers).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { type BudgetDeps, createBudgetActivities } from './budget.js';
import { createBatchActivities } from './batch.js';
import { checkAnswer, type QualityVerdict } from '../quality/checks.js';
import type { QualitySpec } from '../quality/spec.js';
import type { Logger } from 'pino';
import type { HealthTracker } from '../health/tracker.js';
import { countsAsFailure } from '../health/circuits.js';
import type { Catalog } from '../catalog/catalog.js';
import { costNanos, estimateCostNanos, type Usage } from '../catalog/pricing.js';
import type { Capability, Tier } from '../catalog/schema.js';
import { ProviderError } from '../providers/errors.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { type Classification, classify as classifyPure } from '../routing/classifier.js';
import type { RetryPolicy } from '../routing/retryDecision.js';
import { type Candidate, NoEligibleModelError, route, type RouteDecision, type RoutingPolicy } from '../routing/router.js';
import type { ValidRequest } from '../workflows/requestTypes.js';
import { FAILURE_TYPES } from '../workflows/requestTypes.js';

export interface ActivityDeps extends BudgetDeps {
  readonly catalog: Catalog;
  readonly providers: ProviderRegistry;
  readonly routing: RoutingPolicy;
  readonly retry: RetryPolicy;
  readonly modelRetry?: Record<string, Partial<RetryPolicy>>;
  readonly tierFallbacks?: Partial<Record<Tier, string[]>>;
  readonly callTimeoutMs: number;
  readonly log: Logger;
  /** Circuit breakers; absent = no health tracking. */
  readonly health?: HealthTracker | undefined;
}

export interface SelectInput {
  readonly request: Omit<ValidRequest, 'prompt' | 'system' | 'context' | 'quality'>;
  readonly classification: Pick<Classification, 'complexity' | 'capabilities' | 'inputTokens'>;
  readonly excludeModels?: string[];
  readonly minTier?: Tier;
  /** A judge model named by the request's quality spec. */
  readonly judgeModel?: string;
}

export interface SelectOutput {
  readonly decision: RouteDecision;
  readonly retry: RetryPolicy;
  /** Per-model retry policies for the chain's models, where configured. */
  readonly retryByModel?: Record<string, RetryPolicy>;
  readonly callTimeoutMs: number;
  readonly contextWindows: Record<string, number>;
  /** The cheapest model of the catalog (the default judge). */
  readonly cheapestModel?: string;
  /** Judge candidates (cheapest model and any named judge), with upper-bound estimates. */
  readonly judgeModels?: Record<string, { provider: Candidate['provider']; tier: Candidate['tier']; estimatedCostNanos: number }>;
}

export interface CallModelInput {
  readonly workflowId: string;
  readonly attemptId: string;
  readonly model: string;
  readonly system?: string | undefined;
  readonly prompt: string;
  readonly maxOutputTokens: number;
  readonly temperature?: number | undefined;
}

export interface CallModelOutput {
  readonly text: string;
  readonly usage: Usage;
  readonly costNanos: number;
  readonly premiumBaselineCostNanos: number;
  readonly finishReason: string;
  readonly latencyMs: number;
}


export function createActivities(deps: ActivityDeps) {
  const { catalog, providers, log } = deps;
  // Fixed for the worker's life: computed once, not per request.
  const baselineModel = catalog.premiumBaseline();
  const cheapest = [...catalog.models].sort((x, y) => x.price.inputNanosPerMTok + x.price.outputNanosPerMTok - (y.price.inputNanosPerMTok + y.price.outputNanosPerMTok))[0];
  return {
    ...createBudgetActivities(deps),
    ...createBatchActivities(deps),
    async classify(input: { prompt: string; system?: string | undefined; context?: string | undefined }): Promise<Classification> {
      return classifyPure(input);
    },

    async checkQuality(input: { text: string; spec: QualitySpec }): Promise<QualityVerdict> {
      return checkAnswer(input.text, input.spec);
    },

    async selectModels(input: SelectInput): Promise<SelectOutput> {
      const r = input.request;
      const caps = [...new Set<Capability>([...input.classification.capabilities, ...(r.requiredCapabilities ?? [])])];
      const open = (await deps.health?.openModels()) ?? [];
      const routeWith = (excludeOpen: boolean) =>
        route(
          catalog,
          {
            complexity: input.classification.complexity,
            capabilities: caps,
            inputTokens: input.classification.inputTokens,
            maxOutputTokens: r.maxOutputTokens,
            maxLatencyMs: r.maxLatencyMs,
            minQuality: r.minQuality,
            provider: r.provider,
            costCapNanos: r.costCapNanos,
            model: r.model,
            noFallback: r.noFallback,
            excludeModels: [...(input.excludeModels ?? []), ...(excludeOpen ? open.filter((m) => m !== r.model) : [])],
            minTier: input.minTier ?? r.minTier,
            fallbacks: r.fallbacks,
            tierFallbacks: deps.tierFallbacks,
          },
          deps.routing,
        );
      try {
        let decision: RouteDecision;
        try {
          decision = routeWith(open.length > 0);
        } catch (e) {
          // Every eligible model's circuit is open: trying one beats failing outright.
          if (!(e instanceof NoEligibleModelError) || open.length === 0) throw e;
          decision = routeWith(false);
        }
        const contextWindows = Object.fromEntries(decision.chain.map((c) => [c.model, catalog.require(c.model).contextWindow]));
        const retryByModel = Object.fromEntries(
          decision.chain.filter((c) => deps.modelRetry?.[c.model]).map((c) => [c.model, { ...deps.retry, ...deps.modelRetry?.[c.model] }]),
        );
        const judgeNames = new Set<string>();
        if (cheapest) judgeNames.add(cheapest.name);
        if (input.judgeModel && catalog.get(input.judgeModel)) judgeNames.add(input.judgeModel);
        // A judge reads the request and an answer of up to the chain's output budget, and writes a number.
        const judgeInput = input.classification.inputTokens + Math.max(...decision.chain.map((c) => c.maxOutputTokens)) + 64;
        const judgeModels = Object.fromEntries(
          [...judgeNames].map((name) => {
            const m = catalog.require(name);
            return [name, { provider: m.provider, tier: m.tier, estimatedCostNanos: estimateCostNanos(m, judgeInput, 16) }];
          }),
        );
        return { decision, retry: deps.retry, retryByModel, callTimeoutMs: deps.callTimeoutMs, contextWindows, ...(cheapest ? { cheapestModel: cheapest.name } : {}), judgeModels };
      } catch (e) {
        if (e instanceof NoEligibleModelError) {
          throw ApplicationFailure.create({ message: e.message, type: FAILURE_TYPES.noEligibleModel, nonRetryable: true, details: [{ constraint: e.constraint }] });
        }
        if (e instanceof Error && e.name === 'ValidationError') {
          throw ApplicationFailure.create({ message: e.message, type: FAILURE_TYPES.invalidInput, nonRetryable: true });
        }
        throw e;
      }
    },

    async callModel(input: CallModelInput): Promise<CallModelOutput> {
      const ctx = Context.current();
      const spec = catalog.require(input.model);
      const adapter = providers.get(spec.provider);
      const started = Date.now();
      // Heartbeat while the call runs: a lost worker is noticed within the heartbeat timeout, and
      // a cancellation from the workflow reaches the SDK through the abort signal.
      const beat = setInterval(() => ctx.heartbeat({ attemptId: input.attemptId }), 1_000);
      try {
        const res = await adapter.chat({
          model: spec.providerModel,
          system: input.system,
          prompt: input.prompt,
          maxOutputTokens: input.maxOutputTokens,
          temperature: input.temperature,
          requestId: `${input.workflowId}/${input.attemptId}`,
          signal: ctx.cancellationSignal,
          timeoutMs: deps.callTimeoutMs,
        });
        const latencyMs = Date.now() - started;
        deps.health?.report(spec.name, true);
        const cost = costNanos(spec, res.usage);
        const baseline = costNanos(baselineModel, res.usage);
        log.info({ workflowId: input.workflowId, attemptId: input.attemptId, model: spec.name, latencyMs, costNanos: cost, usage: res.usage }, 'provider call succeeded');
        return { text: res.text, usage: res.usage, costNanos: cost, premiumBaselineCostNanos: baseline, finishReason: res.finishReason, latencyMs };
      } catch (e) {
        if (e instanceof ProviderError) {
          if (countsAsFailure(e.kind)) deps.health?.report(spec.name, false, e.kind);
          log.warn({ workflowId: input.workflowId, attemptId: input.attemptId, model: spec.name, kind: e.kind, status: e.status, retryAfterMs: e.retryAfterMs }, 'provider call failed');
          throw ApplicationFailure.create({ message: e.message, type: e.kind, nonRetryable: true, details: [e.toInfo()] });
        }
        throw e;
      } finally {
        clearInterval(beat);
      }
    },

  };
}

export type Activities = ReturnType<typeof createActivities>;
