/**
 * The request workflow's activities: thin wrappers from the workflow to the pure routing code, the provider adapters and
 * the ledger. Provider errors become non-retryable ApplicationFailures carrying the error kind, so
 * the workflow (not a hidden activity retry) decides between retry, wait, next model and fail;
 * Temporal's own activity retry covers only infrastructure failures (timeouts, lost workers).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { BudgetDeps } from '../budget/index.js';
import type { PolicyCache } from '../../learning/worker/policyCache.js';
import type { ClassifyPool } from './classifyPool.js';
import type { ControlSettings } from '../../learning/routingControl.js';
import { type CollectorSettings, DEFAULT_COLLECTOR } from '../../deferred/deadline.js';
import { type ArmSpec, assignArm, matchesFilter, unitHash } from '../../learning/experiments.js';
import { bandOf, explores } from '../../learning/tuner.js';
import { checkAnswer, checkToolCalls, type QualityVerdict } from '../../quality/checks.js';
import { judgePrompt, type QualitySpec } from '../../quality/spec.js';
import { RequestInputReader } from './requestInput.js';
import type { Logger } from 'pino';
import type { HealthTracker } from '../../health/tracker.js';
import { countsAsFailure } from '../../health/circuits.js';
import type { Catalog } from '../../catalog/catalog.js';
import { costNanos, estimateCostNanos } from '../../catalog/pricing.js';
import { type Capability, type Tier, PROVIDERS, type ProviderName } from '../../catalog/schema.js';
import { ProviderError } from '../../providers/errors.js';
import type { ChatResponse } from '../../providers/types.js';
import { countChatTokens, countTokens } from '../../routing/tokens.js';
import { relayedSoFar, StreamRelay } from './streamRelay.js';
import { heartbeatFor, streamedSoFar } from './heartbeat.js';
import { envHint, ProviderNotConfiguredError, type ProviderRegistry } from '../../providers/registry.js';
import { type Classification, type ClassifyInput, classify as classifyPure } from '../../routing/classifier.js';
import { decideAfterFailure, type FailureFacts, type RetryPolicy, type RetryVerdict } from '../../routing/retryDecision.js';
import { NoEligibleModelError, route, type RouteDecision, type RoutingPolicy } from '../../routing/router.js';
import { type RequestInput, FAILURE_TYPES } from '../../workflows/request/contract.js';
import type { StreamTarget } from '../../workflows/request/activities.js';
import { type Conversation, conversationOf, judgeQuestionOf } from '../../workflows/conversation.js';

export interface ActivityDeps extends BudgetDeps {
  readonly catalog: Catalog;
  readonly providers: ProviderRegistry;
  readonly routing: RoutingPolicy;
  readonly retry: RetryPolicy;
  readonly modelRetry?: Record<string, Partial<RetryPolicy>>;
  readonly tierFallbacks?: Partial<Record<Tier, string[]>>;
  readonly callTimeoutMs: number;
  readonly log: Logger;
  /**
   * Payloads are encrypted: failure messages (plaintext in history) leave out the provider's own
   * error text, which can quote the prompt; it stays in the failure's details (encrypted).
   */
  readonly redactProviderMessages?: boolean;
  /** Safety margin on counted input tokens per provider, for reservations (0.2 = +20%). */
  readonly reservationMargin?: Partial<Record<ProviderName, number>>;
  /** Circuit breakers; absent = no health tracking. */
  readonly health?: HealthTracker | undefined;
  /** Classifies large prompts in worker threads; absent = on the main thread. */
  readonly classifier?: ClassifyPool | undefined;
  /** The routing policy (tuned thresholds, rules, experiments, anomaly actions); absent = the configuration alone. */
  readonly policy?: PolicyCache | undefined;
  /** Settings a routing entity this worker starts is given. */
  readonly controlSettings?: () => ControlSettings;
  /** The deferred lane's collector settings (docs/deferred.md); absent: the defaults. */
  readonly deferred?: CollectorSettings | undefined;
}

/** The longest a streamed call may last: inside the paid call's 15-minute timeout (workflows/request/legs.ts), with room to settle. */
const STREAM_MAX_MS = 14 * 60_000;

export type { CallModelInput, CallModelOutput, RouteLearning, RouteSelection, SelectInput, SelectOutput } from './types.js';
import type { CallModelInput, CallModelOutput, RouteLearning, RouteSelection, SelectInput, SelectOutput } from './types.js';

function unavailable(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: 'unavailable', nonRetryable: true, details: [{ kind: 'unavailable', message }] });
}

/** The request workflow's activities (routing, the provider call, quality checks) that the paid call is made of with the budget's. */
export function createRequestActivities(deps: ActivityDeps) {
  const { catalog, providers, log } = deps;
  // Fixed for the worker's life: computed once, not per request.
  const baselineModel = catalog.premiumBaseline();
  /** A relay URL this worker could not reach, said once per URL (a wrong --relay-url otherwise fails quietly: answers come buffered). */
  const unreachableSaid = new Set<string>();
  const warnUnreachable = (target: StreamTarget | undefined) => {
    if (!target || unreachableSaid.has(target.relay)) return;
    if (unreachableSaid.size < 100) unreachableSaid.add(target.relay);
    log.warn(
      { relay: target.relay },
      "cannot reach the gateway's relay to stream an answer: the answer is sent whole when the call ends; check the gateway's --relay-url (the gateway as workers reach it)",
    );
  };
  const configuredProviders = PROVIDERS.filter((p) => providers.isConfigured(p));
  const cheapest = [...catalog.models]
    .filter((m) => configuredProviders.includes(m.provider))
    .sort((x, y) => x.price.inputNanosPerMTok + x.price.outputNanosPerMTok - (y.price.inputNanosPerMTok + y.price.outputNanosPerMTok))[0];
  const inputs = new RequestInputReader(deps.temporal);
  /** Counted input tokens with the provider's margin: our tokenizer is not every provider's. */
  const withMargin = (p: ProviderName, tokens: number): number => Math.ceil(tokens * (1 + (deps.reservationMargin?.[p] ?? 0)));
  /** The text to send: inline, or read from the run's start input. */
  const conversationFor = async (input: CallModelInput): Promise<Conversation> => {
    let request: Awaited<ReturnType<RequestInputReader['get']>> | undefined;
    if (input.promptRef) {
      if (!input.runId) throw ApplicationFailure.create({ message: 'callModel: promptRef needs runId', type: 'internal', nonRetryable: true });
      request = await inputs.get(input.workflowId, input.runId);
    }
    if (input.judge) {
      const asked = input.judge.prompt ?? (request ? judgeQuestionOf(request) : undefined);
      if (asked === undefined)
        throw ApplicationFailure.create({ message: 'callModel: a judge call needs the request prompt', type: 'internal', nonRetryable: true });
      return { turns: [{ role: 'user', content: judgePrompt(asked, input.judge.answer) }] };
    }
    if (request) return conversationOf(request);
    const tools = { tools: input.tools, toolChoice: input.toolChoice, parallelToolCalls: input.parallelToolCalls };
    if (input.messages) return conversationOf({ messages: input.messages, system: input.system, context: input.context, ...tools });
    if (input.prompt === undefined) throw ApplicationFailure.create({ message: 'callModel: no prompt in the input', type: 'internal', nonRetryable: true });
    // The workflow put the context in front of the prompt already.
    return conversationOf({ prompt: input.prompt, system: input.system, ...tools });
  };
  /** Select a chain for a classified request: the routing decision and its chain's catalog facts. */
  /**
   * The routing policy applied to one request: an anomaly's pause or downgrade of its category, a
   * promoted rule or an experiment's arm (first selection only; a request that pins a model is in
   * neither), and the category's tuned thresholds (an exploration share keeps the base ones).
   */
  const applyPolicy = async (input: SelectInput): Promise<{ policy: RoutingPolicy; model?: string; minTier?: Tier; learning: RouteLearning }> => {
    const r = input.request;
    const base = deps.routing;
    const band = bandOf(input.classification.complexity, base.thresholds);
    const view = await deps.policy?.view();
    if (!view) return { policy: base, learning: { band, explore: false } };
    const caps = [...new Set<string>([...input.classification.capabilities, ...(r.requiredCapabilities ?? [])])];
    const action = view.actions[`${r.budgetScope}|${r.category}`];
    if (action?.action === 'pause') {
      throw ApplicationFailure.create({
        type: FAILURE_TYPES.categoryPaused,
        nonRetryable: true,
        message: `category "${r.category}" of budget scope "${r.budgetScope}" is paused by spend anomaly ${action.alertId}; nothing was charged. Acknowledge it to resume: \`switchyard anomalies ack ${action.alertId}\``,
      });
    }
    let policy: RoutingPolicy = base;
    let learning: RouteLearning = { band, explore: false, policyVersion: view.version };
    let arm: ArmSpec | undefined;
    const requestKey = r.requestId ?? workflowIdOfActivity();
    // An anomaly's downgrade overrides arms and rules: the category goes to the cheapest adequate tier.
    const first = input.minTier === undefined && (input.excludeModels ?? []).length === 0 && r.model === undefined && action?.action !== 'downgrade';
    const traffic = { category: r.category, feature: r.feature, capabilities: caps };
    if (first) {
      // (The policy cache keeps only well-formed experiments and rules: see policyCache.ts.)
      const experiment = view.experiments.find((e) => matchesFilter(e.filter, traffic));
      const rule = [...view.rules].reverse().find((x) => matchesFilter(x.filter, traffic));
      if (experiment) {
        arm = assignArm(experiment, r.unit ?? requestKey);
        learning = { ...learning, experiment: { name: experiment.name, arm: arm.name } };
      } else if (rule) {
        arm = rule.arm;
        learning = { ...learning, rule: rule.experiment };
      }
    }
    const tuned = view.categories[r.category];
    if (arm?.thresholds) policy = { ...base, thresholds: arm.thresholds };
    else if (tuned) {
      if (explores(unitHash(`${requestKey}\u0000explore`), { explore: view.explore })) learning = { ...learning, explore: true };
      else policy = { ...base, thresholds: tuned };
    }
    if (action?.action === 'downgrade') {
      // Everything to the cheapest tier that meets the request's constraints, until acknowledged.
      policy = { ...policy, thresholds: { standard: Number.POSITIVE_INFINITY, premium: Number.POSITIVE_INFINITY } };
      learning = { ...learning, downgradedBy: action.alertId };
    }
    return { policy, ...(arm?.model ? { model: arm.model } : {}), ...(arm?.minTier ? { minTier: arm.minTier } : {}), learning };
  };

  const selectRoute = async (input: SelectInput): Promise<RouteSelection> => {
    const r = input.request;
    const caps = [...new Set<Capability>([...input.classification.capabilities, ...(r.requiredCapabilities ?? [])])];
    let shaped = await applyPolicy(input);
    const circuits = (await deps.health?.circuits()) ?? { open: [], halfOpen: [] };
    // Half-open models wait for one trial: left out unless this request is granted it below.
    let open = [...circuits.open, ...circuits.halfOpen];
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
          model: r.model ?? shaped.model,
          noFallback: r.noFallback,
          excludeModels: [...(input.excludeModels ?? []), ...(excludeOpen ? open.filter((m) => m !== (r.model ?? shaped.model)) : [])],
          minTier: input.minTier ?? r.minTier ?? shaped.minTier,
          allowedModels: r.allowedModels,
          allowedTiers: r.allowedTiers,
          fallbacks: r.fallbacks,
          tierFallbacks: deps.tierFallbacks,
          configuredProviders,
          configureHint: (p) => `${p}: ${envHint(p)}`,
          // A request that may wait for a provider's batch (docs/deferred.md) may go to a stronger model there.
          batchUpgrade: r.deadline !== undefined && r.stream === undefined ? (deps.deferred?.upgrade ?? DEFAULT_COLLECTOR.upgrade) : undefined,
        },
        shaped.policy,
      );
    try {
      let decision: RouteDecision;
      try {
        if (shaped.model !== undefined) {
          // An arm or a rule pins a model the request cannot use (a capability, the context
          // window, a provider without a key, a model gone from the catalog): route it as usual.
          try {
            routeWith(false);
          } catch (e) {
            if (!(e instanceof NoEligibleModelError) && !(e instanceof Error && e.name === 'ValidationError')) throw e;
            log.warn(
              { model: shaped.model, experiment: shaped.learning.experiment?.name, rule: shaped.learning.rule, err: e.message },
              "the policy's model cannot serve this request; routing it as usual",
            );
            shaped = {
              policy: shaped.policy,
              learning: {
                band: shaped.learning.band,
                explore: shaped.learning.explore,
                ...(shaped.learning.policyVersion !== undefined ? { policyVersion: shaped.learning.policyVersion } : {}),
              },
            };
          }
        }
        if (circuits.halfOpen.length > 0 && deps.health) {
          // Would this request lead with a half-open model? Then it may be that model's trial.
          open = circuits.open;
          const lead = routeWith(true).chain[0]?.model;
          const trial =
            lead !== undefined && circuits.halfOpen.includes(lead) && (await deps.health.claimTrial(lead, deps.callTimeoutMs + 30_000)) ? lead : undefined;
          open = [...circuits.open, ...circuits.halfOpen.filter((m) => m !== trial)];
        }
        decision = routeWith(open.length > 0);
      } catch (e) {
        // Every eligible model's circuit is open: trying one beats failing outright.
        if (!(e instanceof NoEligibleModelError) || open.length === 0) throw e;
        decision = routeWith(false);
      }
      const contextWindows = Object.fromEntries(decision.chain.map((c) => [c.model, catalog.require(c.model).contextWindow]));
      const judgeNames = new Set<string>();
      if (cheapest) judgeNames.add(cheapest.name);
      const named = input.judgeModel !== undefined ? catalog.get(input.judgeModel) : undefined;
      if (named && configuredProviders.includes(named.provider)) judgeNames.add(named.name);
      // A judge reads the request and an answer of up to the chain's output budget, and writes a number.
      const judgeInput = input.classification.inputTokens + Math.max(...decision.chain.map((c) => c.maxOutputTokens)) + 64;
      const judgeModels = Object.fromEntries(
        [...judgeNames].map((name) => {
          const m = catalog.require(name);
          return [name, { provider: m.provider, tier: m.tier, estimatedCostNanos: estimateCostNanos(m, withMargin(m.provider, judgeInput), 16) }];
        }),
      );
      const reserveNanos = Object.fromEntries(
        decision.chain.map((c) => [
          c.model,
          estimateCostNanos(catalog.require(c.model), withMargin(c.provider, input.classification.inputTokens), c.maxOutputTokens),
        ]),
      );
      const skipped = decision.excluded
        .filter((e) => e.constraint === 'providerConfigured' || (e.constraint === 'excludeModels' && open.includes(e.model)))
        .map((e) => ({ model: e.model, why: e.constraint === 'providerConfigured' ? e.detail : 'circuit open' }));
      const leftOut = skipped.filter((k) => catalog.get(k.model)?.tier === decision.preferredTier);
      const preferredTierSkipped =
        leftOut.length === 0 ? undefined : leftOut.some((k) => k.why === 'circuit open') ? ('circuit_open' as const) : ('unavailable' as const);
      return {
        decision,
        contextWindows,
        ...(cheapest ? { cheapestModel: cheapest.name } : {}),
        judgeModels,
        skipped,
        reserveNanos,
        ...(preferredTierSkipped ? { preferredTierSkipped } : {}),
        learning: shaped.learning,
      };
    } catch (e) {
      if (e instanceof NoEligibleModelError) {
        throw ApplicationFailure.create({
          message: e.message,
          type: FAILURE_TYPES.noEligibleModel,
          nonRetryable: true,
          details: [{ constraint: e.constraint }],
        });
      }
      if (e instanceof Error && e.name === 'ValidationError') {
        throw ApplicationFailure.create({ message: e.message, type: FAILURE_TYPES.invalidInput, nonRetryable: true });
      }
      throw e;
    }
  };
  const retryPolicyFor = (model: string): RetryPolicy => ({ ...deps.retry, ...deps.modelRetry?.[model] });
  /** The worker's retry policy applied to a failed attempt on `model`. */
  const retryVerdictFor = (model: string, failure: FailureFacts): RetryVerdict => ({
    decision: decideAfterFailure(failure, retryPolicyFor(model)),
    maxRateLimitWaitMs: deps.retry.maxRateLimitWaitMs,
  });
  return {
    async classify(input: ClassifyInput): Promise<Classification> {
      // Large prompts off the event loop (classifyPool.ts); without a pool (tests of parts), inline.
      return deps.classifier ? deps.classifier.classify(input) : classifyPure(input);
    },

    /** A run's start input (a large request: the workflow sends a reference to its run). */
    async readRequestInput(input: { workflowId: string; runId: string }): Promise<RequestInput> {
      return inputs.get(input.workflowId, input.runId);
    },

    async checkQuality(input: { text: string; spec: QualitySpec }): Promise<QualityVerdict> {
      return checkAnswer(input.text, input.spec);
    },

    async selectModels(input: SelectInput): Promise<SelectOutput> {
      const selection = await selectRoute(input);
      const retryByModel = Object.fromEntries(
        selection.decision.chain.filter((c) => deps.modelRetry?.[c.model]).map((c) => [c.model, retryPolicyFor(c.model)]),
      );
      return { ...selection, retry: deps.retry, retryByModel, callTimeoutMs: deps.callTimeoutMs };
    },

    /** Select a chain (the re-route step; the paid call selects in-line). */
    selectRoute,

    /** What the worker's retry policy says about a failed attempt (one that failed as an activity). */
    async retryVerdict(input: { model: string; failure: FailureFacts }): Promise<RetryVerdict> {
      return retryVerdictFor(input.model, input.failure);
    },

    async callModel(input: CallModelInput): Promise<CallModelOutput> {
      const ctx = Context.current();
      const spec = catalog.get(input.model);
      // What this worker cannot do is not worth a retry here: the workflow moves to another model.
      if (!spec) throw unavailable(`model ${input.model} is not in this worker's catalog (check SWITCHYARD_CATALOG on every worker)`);
      let adapter;
      try {
        adapter = await providers.get(spec.provider);
      } catch (e) {
        if (e instanceof ProviderNotConfiguredError) throw unavailable(e.message);
        // The adapter's module (its SDK) did not load on this worker: another model may work.
        throw unavailable(`the ${spec.provider} provider's SDK did not load on this worker: ${(e as Error).message}`);
      }
      const { system, turns, tools } = await conversationFor(input);
      const started = Date.now();
      /** The answer priced, logged and returned (also a stream that broke off: what it sent is paid for). */
      const priced = (res: ChatResponse, streamed?: CallModelOutput['streamed']): CallModelOutput => {
        const latencyMs = Date.now() - started;
        let cost: number;
        let baseline: number;
        try {
          cost = costNanos(spec, res.usage);
          baseline = costNanos(baselineModel, res.usage);
        } catch (e) {
          // The provider answered (and billed) but its usage cannot be priced: not retried here,
          // which would pay for the call again; the workflow moves on (the cost is unknown).
          log.error(
            { workflowId: input.workflowId, attemptId: input.attemptId, model: spec.name, usage: res.usage },
            'provider reported usage that cannot be priced',
          );
          throw ApplicationFailure.create({
            type: 'internal',
            nonRetryable: true,
            message: `provider ${spec.provider} reported malformed usage for ${spec.name}: ${(e as Error).message}`,
            details: [{ kind: 'internal', message: (e as Error).message }],
          });
        }
        log.info(
          { workflowId: input.workflowId, attemptId: input.attemptId, model: spec.name, latencyMs, costNanos: cost, usage: res.usage, streamed: streamed?.end },
          'provider call succeeded',
        );
        const calls = res.toolCalls && res.toolCalls.length > 0 ? res.toolCalls : undefined;
        const callFailures = calls ? checkToolCalls(calls, tools?.tools ?? []) : [];
        return {
          text: res.text,
          ...(calls ? { toolCalls: calls } : {}),
          ...(callFailures.length > 0 ? { toolCallFailures: callFailures } : {}),
          usage: res.usage,
          costNanos: cost,
          premiumBaselineCostNanos: baseline,
          finishReason: res.finishReason,
          latencyMs,
          ...(streamed ? { streamed } : {}),
        };
      };
      /** A stream's usage when the provider did not report it (it broke off): counted as the simulator and most providers bill. */
      const counted = (text: string, finishReason: string): ChatResponse => ({
        text,
        usage: {
          inputTokens: countChatTokens([...(system ? [{ content: system }] : []), ...turns.map((t) => ({ content: t.content }))]),
          cachedInputTokens: 0,
          outputTokens: countTokens(text),
        },
        finishReason,
        providerModel: spec.providerModel,
      });
      if (input.stream && ctx.info.attempt > 1) {
        // A worker died mid-stream? Then what the gateway relayed was paid for and is the answer: never call again.
        const prior = await relayedSoFar(input.stream);
        const beat = streamedSoFar(ctx);
        if (prior?.started || beat.streamedTokens > 0) {
          const seen = counted(prior?.text ?? '', 'worker_lost');
          // The gateway unreachable: the last count the worker reported (a heartbeat, up to seconds old).
          const res = prior?.started ? seen : { ...seen, usage: { ...seen.usage, outputTokens: beat.streamedTokens } };
          log.warn({ workflowId: input.workflowId, attemptId: input.attemptId, model: spec.name }, 'a worker was lost mid-stream; settling what was streamed');
          return priced(res, { end: 'worker_lost', message: 'the worker streaming this answer was lost; what was streamed is charged' });
        }
      }
      // Heartbeat while the call runs (joined with the paid call's, if any): a lost worker is noticed
      // within the heartbeat timeout, a cancellation from the workflow reaches the SDK through the
      // abort signal, and a stream's progress is in the details for a later attempt to settle.
      let streamedTokens = 0;
      const beat = heartbeatFor(ctx);
      if (input.stream) Object.assign(beat.details, { attemptId: input.attemptId, model: spec.name });
      const callEnded = deps.metrics?.callStarted();
      const relay = input.stream
        ? new StreamRelay(input.stream, {
            workflowId: input.workflowId,
            attemptId: input.attemptId,
            model: spec.name,
            provider: spec.provider,
            tier: spec.tier,
          })
        : undefined;
      // A stream whose client left is stopped: text nobody reads is not worth paying for.
      const abort = new AbortController();
      const onCancel = () => abort.abort(ctx.cancellationSignal.reason);
      ctx.cancellationSignal.addEventListener('abort', onCancel);
      relay?.onGone(() => abort.abort('client_left'));
      // A stream is bounded by its pauses, not its length: no piece for callTimeoutMs (from its start
      // or its last piece) is a stalled provider, whatever the provider's SDK does with a timeout.
      let stalled = false;
      let stallTimer: NodeJS.Timeout | undefined;
      const armStall = () => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(() => {
          stalled = true;
          abort.abort('stalled');
        }, deps.callTimeoutMs);
      };
      if (relay) armStall();
      let text = '';
      try {
        const req = {
          model: spec.providerModel,
          system,
          turns,
          ...(tools ? { tools } : {}),
          maxOutputTokens: input.maxOutputTokens,
          temperature: input.temperature,
          requestId: `${input.workflowId}/${input.attemptId}`,
          signal: abort.signal,
          // A stream's whole length is bounded by the activity's own timeout (its pauses above).
          timeoutMs: relay ? STREAM_MAX_MS : deps.callTimeoutMs,
        };
        const res = relay
          ? await adapter.chatStream(req, (piece) => {
              text += piece;
              streamedTokens += countTokens(piece);
              beat.details.streamedTokens = streamedTokens;
              armStall();
              relay.send(piece);
            })
          : await adapter.chat(req);
        deps.health?.report(spec.name, true);
        deps.metrics?.providerAttempt(spec.name, spec.provider, 'ok');
        if (!relay) return priced(res);
        await relay.end(res.finishReason);
        if (relay.unreachable) warnUnreachable(input.stream);
        return priced(res, { end: relay.gone ? 'client_left' : 'complete' });
      } catch (e) {
        if (relay && text !== '') {
          // Text reached the client: no retry and no other model (no silent switch mid-answer); what was sent is paid for.
          const end = relay.gone ? 'client_left' : 'provider_failed';
          // The provider's own words stay out of the run's history when its messages are redacted.
          const message =
            end === 'client_left'
              ? 'the client left mid-stream; the call was stopped'
              : stalled
                ? `the provider sent nothing for ${Math.round(deps.callTimeoutMs / 1000)} s mid-stream; the call was stopped`
                : deps.redactProviderMessages
                  ? 'the provider broke off mid-stream'
                  : `the provider broke off mid-stream: ${e instanceof Error ? e.message : String(e)}`;
          if (end === 'provider_failed') {
            deps.metrics?.providerAttempt(spec.name, spec.provider, e instanceof ProviderError ? e.kind : 'transient');
            await relay.fail(message);
          }
          return priced(counted(text, end), { end, message });
        }
        if (e instanceof ProviderError) {
          // A call the workflow cancelled (a hedge that lost) says nothing about the provider.
          const cancelled = ctx.cancellationSignal.aborted;
          deps.metrics?.providerAttempt(spec.name, spec.provider, cancelled ? 'cancelled' : e.kind);
          if (!cancelled && countsAsFailure(e.kind)) deps.health?.report(spec.name, false, e.kind);
          log.warn(
            { workflowId: input.workflowId, attemptId: input.attemptId, model: spec.name, kind: e.kind, status: e.status, retryAfterMs: e.retryAfterMs },
            'provider call failed',
          );
          const message = deps.redactProviderMessages
            ? `${e.provider}${e.status ? ` ${e.status}` : ''}: ${e.kind} (the provider's message is in the failure details, encrypted)`
            : e.message;
          throw ApplicationFailure.create({ message, type: e.kind, nonRetryable: true, details: [e.toInfo()] });
        }
        throw e;
      } finally {
        ctx.cancellationSignal.removeEventListener('abort', onCancel);
        if (ctx.cancellationSignal.aborted) relay?.destroy();
        clearTimeout(stallTimer);
        beat.stop();
        callEnded?.();
      }
    },
  };
}

/** The workflow an activity (or local activity) runs for; empty outside one (unit tests of selectRoute). */
function workflowIdOfActivity(): string {
  try {
    return Context.current().info.workflowExecution?.workflowId ?? '';
  } catch {
    return '';
  }
}
