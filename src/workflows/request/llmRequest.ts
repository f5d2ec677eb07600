/**
 * The request workflow, as the process: validate; route and pay for the first model in one
 * activity (classify, select, reserve, call, settle); then, while there is no acceptable answer,
 * act on the outcome (a budget denial, a failed attempt, an answer that fails its checks, an
 * operator's escalation) and try the next candidate; every candidate rate-limited waits for the
 * earliest reset. Search attributes are set once, at the end. Returns the answer with every
 * attempt and the reason for each decision.
 *
 * Runs started before this shape (no `request-v3` marker in their history) finish on the code
 * they started with (./legacy.ts).
 */
import { ApplicationFailure, CancellationScope, getExternalWorkflowHandle, isCancellation, log, patched, proxySinks, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { experimentWorkflowId, outcomeSignal } from '../experiment/contract.js';
import type { SwitchyardSinks } from '../sinks.js';
import {
  FAILURE_TYPES,
  type RequestFailureDetails,
  type RequestInput,
  type RequestResult,
  LlmCategory,
  LlmComplexity,
  LlmCostNanos,
  LlmFeature,
  LlmModel,
  LlmOutcome,
  LlmTier,
  UNSPECIFIED_FEATURE,
} from './contract.js';
import { onAnswered, onDenied, onEscalation, onFailed } from './decisions.js';
import { asStop, Stop } from './failure.js';
import { legacyLlmRequest } from './legacy.js';
import { hedged, hedgeFor, type Leg, pay, routeLocally } from './paidCall.js';
import { RequestState, totalCost } from './state.js';
import { refusePlaintext } from '../messages.js';

/** How many times a request waits for rate-limited models to reset before giving up. */
const RATE_LIMIT_ROUNDS = 5;

const { metrics } = proxySinks<SwitchyardSinks>();

export async function llmRequest(rawInput: RequestInput): Promise<RequestResult> {
  refusePlaintext([rawInput], 'llmRequest');
  if (!patched('request-v3')) return legacyLlmRequest(rawInput);
  const s = new RequestState(rawInput);
  let completed = false;
  try {
    const result = await serve(s);
    completed = true;
    upsertSearchAttributes([...summary(s, 'completed'), { key: LlmModel, value: result.model }, { key: LlmTier, value: result.tier }]);
    return result;
  } catch (e) {
    throw ended(s, e);
  } finally {
    // Counted once: the SDK calls sinks only when this code runs for the first time, not in replay.
    const learning = learningOutcome(s, completed);
    metrics.requestEnded({ routing: s.routes, quality: s.qualityScores, ...(learning ? { learning } : {}) });
    await reportToExperiment(s, completed);
  }
}

/** The quality the outcome counts: the first answer's judge score or check (1/0), else 1 if answered. */
function automaticQuality(s: RequestState, completed: boolean): number {
  return s.qualityScores[0]?.score ?? (completed ? 1 : 0);
}

/** The tier of the first paid call (a budget denial called nothing). */
function firstTierOf(s: RequestState) {
  return s.attempts.find((a) => a.outcome !== 'budget_denied')?.tier;
}

function learningOutcome(s: RequestState, completed: boolean) {
  const l = s.reportedLearning;
  if (!l || !s.isValidated) return undefined;
  const spend = new Map<string, number>();
  for (const a of s.attempts) if (a.costNanos > 0) spend.set(a.model, (spend.get(a.model) ?? 0) + a.costNanos);
  return {
    category: s.req.category,
    scope: s.req.budgetScope,
    feature: s.req.feature ?? UNSPECIFIED_FEATURE,
    firstTier: firstTierOf(s),
    band: l.band,
    explore: l.explore,
    // What the tuner learns from: requests its thresholds routed (not an experiment's arm, a
    // promoted rule or an anomaly's downgrade), judged on quality (a provider outage is not).
    byThresholds: !l.experiment && !l.rule && !l.downgradedBy,
    judged: s.qualityEscalations > 0 || s.qualityScores.length > 0 || completed,
    good: completed && s.qualityEscalations === 0,
    spend: [...spend].map(([model, costNanos]) => ({ model, costNanos })),
  };
}

/**
 * A request assigned to an experiment reports its outcome there (a signal; the experiment ignores
 * a second report of the same request). An experiment that has ended is not an error of the request.
 */
async function reportToExperiment(s: RequestState, completed: boolean): Promise<void> {
  const e = s.reportedLearning?.experiment;
  if (!e) return;
  const outcome = {
    workflowId: s.workflowId,
    arm: e.arm,
    costNanos: totalCost(s.attempts),
    latencyMs: Date.now() - s.startedAt,
    quality: automaticQuality(s, completed),
    failed: !completed,
    escalations: s.qualityEscalations,
  };
  try {
    // Not cancelled with the request: a cancelled request still reports.
    await CancellationScope.nonCancellable(() => getExternalWorkflowHandle(experimentWorkflowId(workflowInfo().taskQueue, e.name)).signal(outcomeSignal, outcome));
  } catch (err) {
    log.info('experiment outcome not delivered (the experiment has ended?)', { experiment: e.name, error: err instanceof Error ? err.message : String(err) });
  }
}

async function serve(s: RequestState): Promise<RequestResult> {
  // The first paid call validates the input and routes; a hedged request routes first (the hedge
  // needs the chain while the first call runs).
  const raw = s.raw as Partial<Record<string, unknown>>;
  let first: Leg | undefined;
  if (raw.hedgeAfterMs === undefined && raw.maxLatencyMs === undefined) first = await pay(s, { route: true });
  else await routeLocally(s);
  const hedgeAfterMs = s.req.hedgeAfterMs ?? s.req.maxLatencyMs;
  s.phase = 'calling';
  for (let round = 0; ; round++) {
    for (let cand = s.nextCandidate(); cand; cand = s.nextCandidate()) {
      for (let attempt = 1; ;) {
        let leg = first;
        first = undefined;
        if (!leg) {
          // Waits are durable timers; an operator's escalation cuts them short.
          if (s.waitBeforeMs > 0 && !s.escalation) await s.waitFor(s.rateLimitWait ? 'rate_limit' : 'backoff', s.waitBeforeMs, () => s.escalation !== undefined);
          s.rateLimitWait = false;
          if (s.escalation) {
            await onEscalation(s, cand);
            break;
          }
          const hedgeTo = hedgeAfterMs !== undefined && attempt === 1 ? hedgeFor(s, cand) : undefined;
          leg = hedgeTo && hedgeAfterMs !== undefined ? await hedged(s, cand, hedgeTo, hedgeAfterMs) : await pay(s, { cand, attempt });
        }
        const o = leg.outcome;
        if (o.kind === 'denied') {
          if (await onDenied(s, leg, o.grant)) continue; // same model, after the wait
          break;
        }
        if (o.kind === 'failed') {
          if ((await onFailed(s, leg, attempt, o)) === 'retry') {
            attempt += 1;
            continue;
          }
          break;
        }
        if (await onAnswered(s, leg, o.out)) return resultOf(s, leg, o.out);
        break;
      }
    }
    if (!(await waitForRateLimits(s, round))) break;
  }
  const last = s.attempts.at(-1);
  throw new Stop(FAILURE_TYPES.allCandidatesFailed, last?.decision?.replace(/^next: /, '') ?? 'no candidate left', 'failed');
}

/** Every candidate rate-limited: wait durably for the earliest reset, then try those again. */
async function waitForRateLimits(s: RequestState, round: number): Promise<boolean> {
  if (s.rateLimited.size === 0 || round >= RATE_LIMIT_ROUNDS) return false;
  const retryable = [...s.rateLimited.values()].sort((a, b) => a.until - b.until);
  const waitMs = Math.max(0, (retryable[0]?.until ?? 0) - Date.now());
  const maxWait = s.maxRateLimitWaitMs ?? 0;
  if (waitMs > maxWait) throw new Stop(FAILURE_TYPES.allCandidatesFailed, `every candidate is rate-limited; the earliest reset is in ${waitMs} ms > maxRateLimitWaitMs ${maxWait}`, 'failed');
  log.info('every candidate rate-limited; waiting for the earliest reset', { waitMs });
  s.chain = retryable.map((r) => r.candidate);
  s.cursor = 0;
  for (const c of s.chain) s.skipped.delete(c.model);
  s.rateLimited.clear();
  s.nextReason = 'rate_limit';
  s.waitBeforeMs = waitMs;
  s.rateLimitWait = true;
  return true;
}

function resultOf(s: RequestState, leg: Leg, out: Extract<Leg['outcome'], { kind: 'answered' }>['out']): RequestResult {
  const { cand } = leg;
  const cls = s.cls;
  return {
    workflowId: s.workflowId,
    requestId: s.requestId,
    category: s.req.category,
    feature: s.req.feature ?? UNSPECIFIED_FEATURE,
    text: out.text,
    model: cand.model,
    provider: cand.provider,
    tier: cand.tier,
    usage: out.usage,
    ...(out.finishReason ? { finishReason: out.finishReason } : {}),
    costNanos: totalCost(s.attempts),
    premiumBaselineCostNanos: out.premiumBaselineCostNanos,
    ...(s.skippedModels.length > 0 ? { skipped: s.skippedModels } : {}),
    classification: {
      complexity: cls?.complexity ?? 0,
      capabilities: cls?.capabilities ?? [],
      inputTokens: cls?.inputTokens ?? 0,
      signals: cls?.signals ?? [],
      preferredTier: s.sel?.decision.preferredTier ?? cand.tier,
    },
    candidates: s.chain,
    attempts: s.attempts,
    escalations: s.escalations,
    durationMs: Date.now() - s.startedAt,
    ...(s.reportedLearning
      ? {
          learning: {
            band: s.reportedLearning.band,
            explore: s.reportedLearning.explore,
            firstTier: firstTierOf(s),
            ...(s.reportedLearning.experiment ? { experiment: s.reportedLearning.experiment } : {}),
            ...(s.reportedLearning.rule ? { rule: s.reportedLearning.rule } : {}),
            ...(s.reportedLearning.policyVersion !== undefined ? { policyVersion: s.reportedLearning.policyVersion } : {}),
            automaticQuality: automaticQuality(s, true),
          },
        }
      : {}),
  };
}

/** The search attributes every ended request gets (one upsert). */
function summary(s: RequestState, outcome: string, costNanos = totalCost(s.attempts)) {
  return [
    ...(s.isValidated
      ? [
          { key: LlmCategory, value: s.req.category },
          { key: LlmFeature, value: s.req.feature ?? UNSPECIFIED_FEATURE },
        ]
      : []),
    ...(s.cls ? [{ key: LlmComplexity, value: s.cls.complexity }] : []),
    { key: LlmOutcome, value: outcome },
    { key: LlmCostNanos, value: costNanos },
  ];
}

/** The model and tier a request that ended without an answer tried last (or would have). */
function lastTried(s: RequestState) {
  const m = s.attempts.at(-1) ?? s.chain[0];
  return m
    ? [
        { key: LlmModel, value: m.model },
        { key: LlmTier, value: m.tier },
      ]
    : [];
}

/** A request that ends without an answer: cancelled (rethrown), or a typed failure with every attempt. */
function ended(s: RequestState, e: unknown): unknown {
  if (isCancellation(e)) {
    upsertSearchAttributes([...summary(s, 'cancelled'), ...lastTried(s)]);
    return e;
  }
  const stop = asStop(e);
  if (stop.outcome === 'invalid' && s.attempts.length === 0) {
    // Refused at the boundary, before anything was reserved or called.
    upsertSearchAttributes([{ key: LlmOutcome, value: 'invalid' }]);
    return ApplicationFailure.create({ type: FAILURE_TYPES.invalidInput, nonRetryable: true, message: stop.message });
  }
  if (stop.type === FAILURE_TYPES.internal) log.error('request ended by an internal error', { reason: stop.message });
  const costNanos = totalCost(s.attempts) + stop.unsettled.reduce((n, u) => n + u.costNanos, 0);
  upsertSearchAttributes([...summary(s, stop.unsettled.length > 0 ? 'unsettled' : stop.outcome, costNanos), ...lastTried(s)]);
  const details: RequestFailureDetails = { reason: stop.message, costNanos, attempts: s.attempts, candidates: s.chain, ...(stop.unsettled.length > 0 ? { unsettled: stop.unsettled } : {}) };
  const models = new Set(s.attempts.filter((a) => a.outcome !== 'budget_denied').map((a) => a.model)).size;
  return ApplicationFailure.create({
    type: stop.type,
    nonRetryable: true,
    message: s.attempts.length > 0 && stop.type !== FAILURE_TYPES.budgetExceeded ? `request failed after ${s.attempts.length} attempt(s) on ${models} model(s): ${stop.message}` : stop.message,
    details: [details],
  });
}
