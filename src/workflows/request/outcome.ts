/**
 * How a request ends, as its caller and the Temporal UI see it: the result of an answered request,
 * the typed failure of one that ended without an answer (with every attempt and any spend it could
 * not settle), the search attributes set once at the end, and what the learning loop is told.
 */
import { ApplicationFailure, isCancellation, log, upsertSearchAttributes } from '@temporalio/workflow';
import type { CallModelOutput } from './activities.js';
import {
  FAILURE_TYPES,
  type RequestFailureDetails,
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
import { asStop } from './failure.js';
import type { Leg } from './legs.js';
import { type RequestState, totalCost } from './state.js';

/** The quality the outcome counts: the first answer's judge score or check (1/0), else 1 if answered. */
export function automaticQuality(s: RequestState, completed: boolean): number {
  return s.qualityScores[0]?.score ?? (completed ? 1 : 0);
}

/** The tier of the first paid call (a budget denial called nothing). */
function firstTierOf(s: RequestState) {
  return s.attempts.find((a) => a.outcome !== 'budget_denied')?.tier;
}

export function learningOutcome(s: RequestState, completed: boolean) {
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

export function resultOf(s: RequestState, leg: Leg, out: CallModelOutput): RequestResult {
  const { cand } = leg;
  const cls = s.cls;
  return {
    workflowId: s.workflowId,
    requestId: s.requestId,
    category: s.req.category,
    feature: s.req.feature ?? UNSPECIFIED_FEATURE,
    text: out.text,
    ...(out.toolCalls ? { toolCalls: out.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })) } : {}),
    model: cand.model,
    provider: cand.provider,
    tier: cand.tier,
    usage: out.usage,
    ...(out.finishReason ? { finishReason: out.finishReason } : {}),
    costNanos: totalCost(s.attempts),
    premiumBaselineCostNanos: out.premiumBaselineCostNanos,
    ...(s.skippedModels.length > 0 ? { skipped: s.skippedModels } : {}),
    ...(s.deferral ? { deferred: s.deferral } : {}),
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
export function summary(s: RequestState, outcome: string, costNanos = totalCost(s.attempts)) {
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
export function ended(s: RequestState, e: unknown): unknown {
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
  const details: RequestFailureDetails = {
    reason: stop.message,
    costNanos,
    attempts: s.attempts,
    candidates: s.chain,
    ...(stop.unsettled.length > 0 ? { unsettled: stop.unsettled } : {}),
  };
  const models = new Set(s.attempts.filter((a) => a.outcome !== 'budget_denied').map((a) => a.model)).size;
  return ApplicationFailure.create({
    type: stop.type,
    nonRetryable: true,
    message:
      s.attempts.length > 0 && stop.type !== FAILURE_TYPES.budgetExceeded
        ? `request failed after ${s.attempts.length} attempt(s) on ${models} model(s): ${stop.message}`
        : stop.message,
    details: [details],
  });
}
