/**
 * What the request does after each outcome of a paid call: a budget denial (the category's policy:
 * reject, downgrade, or wait for the next period or an approval), a failed attempt (the retry
 * decision: retry on a durable timer, next model, or fail), an answer (quality checks and the
 * judge, escalating a tier when they fail), and an operator's escalation. Each records what
 * happened and returns the request's `Next` (./next.ts), or throws a Stop that ends it; none
 * moves the loop itself.
 */
import { isCancellation, log, patched, proxyLocalActivities } from '@temporalio/workflow';
import type { CallModelOutput, PaidCallOutcome, RequestActivities } from './activities.js';
import type { FailureFacts, RetryVerdict } from '../../routing/retryDecision.js';
import type { DenialPolicy } from '../../budget/book.js';
import type { Candidate } from '../../routing/router.js';
import { own } from '../../util/names.js';
import { parseJudgeScore } from '../../quality/judge.js';
import { judgeQuestionOf } from '../conversation.js';
import { FAILURE_TYPES } from './contract.js';
import { Stop } from './failure.js';
import { attemptOf, type Leg, payJudge } from './legs.js';
import type { Next, StepDecision } from './next.js';
import { resultOf } from './outcome.js';
import { reroute } from './reroute.js';
import { type RequestState, tierAbove } from './state.js';
import { recordedVerdict } from './v4/recorded.js';

const { checkQuality, retryVerdict } = proxyLocalActivities<RequestActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 ms' },
});

function usd(nanos: number): string {
  return `$${(nanos / 1e9).toFixed(9)}`;
}

const at = attemptOf;

type Grant = Extract<PaidCallOutcome, { kind: 'denied' }>['grant'];

/** A denial: wait and try the same model again, re-route to a cheaper one, or stop (the category's policy). */
export async function onDenied(s: RequestState, leg: Leg, grant: Grant): Promise<StepDecision> {
  const cand = leg.cand;
  const what = `category "${grant.category}" in budget "${s.req.budgetScope}" has ${usd(grant.remainingNanos)} left; ${cand.model} may cost up to ${usd(grant.requestedNanos)}`;
  s.record({ ...at(leg), outcome: 'budget_denied', message: what, decision: `policy ${grant.policy}` });
  const policy: DenialPolicy = grant.policy;
  switch (policy) {
    case 'reject':
      throw new Stop(FAILURE_TYPES.budgetExceeded, `budget exceeded: ${what}`, 'budget_exceeded');
    case 'downgrade':
      return downgrade(s, leg, grant, what);
    case 'wait':
      return budgetWait(s, grant, what);
    default: {
      // A policy name added to DENIAL_POLICIES without a step here fails to compile.
      const unhandled: never = policy;
      throw new Stop(FAILURE_TYPES.internal, `budget policy ${String(unhandled)} has no step in the request workflow`, 'failed');
    }
  }
}

/** The downgrade policy: select again under what the budget has left, leaving out every model found too dear. */
async function downgrade(s: RequestState, leg: Leg, grant: Grant, what: string): Promise<StepDecision> {
  const cand = leg.cand;
  // Every model found too dear stays excluded, so each downgrade leaves out at least one more.
  const tooDear = new Set(s.tooDear);
  for (const c of s.chain) if (s.reserveFor(c) > grant.remainingNanos) tooDear.add(c.model);
  tooDear.add(cand.model);
  let selection;
  try {
    selection = await reroute(s, { costCapNanos: grant.remainingNanos, excludeModels: [...new Set([...s.skipped, ...tooDear])], unpin: true });
  } catch (e) {
    if (e instanceof Stop)
      throw new Stop(FAILURE_TYPES.budgetExceeded, `budget exceeded: ${what}, and no cheaper eligible model fits (${e.message})`, 'budget_exceeded');
    throw e;
  }
  log.info('budget denied; downgraded', { model: cand.model, next: selection.decision.chain[0]?.model });
  return { kind: 'rerouted', reason: 'budget_downgrade', selection, forget: 'nothing', tooDear: [...tooDear] };
}

/**
 * The wait policy: for the next period or an operator's approval; all waits of this request
 * together last at most maxWaitMs (the request's maxBudgetWaitMs if lower).
 */
function budgetWait(s: RequestState, grant: Grant, what: string): StepDecision {
  const maxWait = Math.min(grant.maxWaitMs, s.req.maxBudgetWaitMs ?? Number.MAX_SAFE_INTEGER);
  const now = Date.now();
  const since = s.budgetWaitSince ?? now;
  const deadline = since + maxWait;
  if (now >= deadline) {
    throw new Stop(
      FAILURE_TYPES.budgetExceeded,
      `budget exceeded: ${what}; waited ${now - since} ms (maxWaitMs ${maxWait}) without a new period or an approval`,
      'budget_exceeded',
    );
  }
  // The entity closes its period on its own timer: wake a second after the boundary.
  return { kind: 'wait', on: 'budget', untilMs: Math.min(Math.max(grant.periodEnd, now) + 1_000, deadline), waitingSince: since };
}

/**
 * The worker's verdict on a failed attempt: from the paid call's outcome; for an attempt that
 * failed as an activity, from the worker in a local activity; in runs recorded when selections
 * carried the worker's retry policy (v4 histories), from that policy.
 */
async function verdictOn(s: RequestState, model: string, facts: FailureFacts, given: RetryVerdict | undefined): Promise<RetryVerdict> {
  if (given) return given;
  const recorded = recordedVerdict(s.sel, model, facts);
  if (recorded) return recorded;
  try {
    return await retryVerdict({ model, failure: facts });
  } catch (e) {
    if (isCancellation(e)) throw e;
    // The worker could not say (a local activity that failed five times): move on, never end here.
    log.warn('no retry verdict from the worker; trying the next model', { model, error: e instanceof Error ? e.message : String(e) });
    return { decision: { action: 'next', why: `${facts.kind}; no retry verdict from the worker` }, maxRateLimitWaitMs: 0 };
  }
}

/** A failed attempt: the same model again after a backoff, the next model, or stop (the worker's verdict). */
export async function onFailed(s: RequestState, leg: Leg, attempt: number, failed: Extract<PaidCallOutcome, { kind: 'failed' }>): Promise<StepDecision> {
  const cand = leg.cand;
  const sel = s.sel;
  if (!sel) throw new Stop(FAILURE_TYPES.internal, 'an attempt failed before the request was routed', 'failed');
  const failure = failed.failure;
  const verdict = await verdictOn(s, cand.model, { ...failure, attempt }, failed.verdict);
  const d = verdict.decision;
  s.record({
    ...at(leg),
    outcome: failure.kind,
    status: failure.status,
    message: failure.message,
    decision: d.action === 'retry' ? `retry in ${d.delayMs} ms (${d.why})` : `${d.action}: ${d.why}`,
  });
  log.info('provider attempt failed', { attemptId: leg.attemptId, model: cand.model, kind: failure.kind, decision: d.action });
  const maxRateLimitWaitMs = verdict.maxRateLimitWaitMs;
  if (d.action === 'retry') return { kind: 'retry', afterMs: d.delayMs, on: failure.kind === 'rate_limited' ? 'rate_limit' : 'backoff', maxRateLimitWaitMs };
  if (d.action === 'fail') throw new Stop(FAILURE_TYPES.nonRetryable, d.why, 'failed');
  const skip = new Set<string>();
  if (d.needLargerContext) {
    const window = own(sel.contextWindows, cand.model) ?? 0;
    for (const c of s.chain) if ((own(sel.contextWindows, c.model) ?? 0) <= window) skip.add(c.model);
  }
  if (d.otherProvider) for (const c of s.chain) if (c.provider === cand.provider) skip.add(c.model);
  skip.add(cand.model);
  return {
    kind: 'next',
    reason: failure.kind === 'rate_limited' ? 'rate_limit' : failure.kind === 'unavailable' ? 'unavailable' : 'fallback',
    skip: [...skip],
    ...(d.rateLimitedForMs !== undefined ? { rateLimited: { until: Date.now() + d.rateLimitedForMs, candidate: cand } } : {}),
    maxRateLimitWaitMs,
  };
}

/** A judge call, paid for like an attempt; its score, or undefined when it could not score. */
async function judge(s: RequestState, model: string, answer: string): Promise<number | undefined> {
  const spec = s.sel?.judgeModels ? own(s.sel.judgeModels, model) : undefined;
  if (!spec) return undefined;
  const cand: Candidate = {
    model,
    provider: spec.provider,
    tier: spec.tier,
    quality: 0,
    maxOutputTokens: 16,
    estimatedCostNanos: spec.estimatedCostNanos,
    reason: 'judge',
  };
  const leg = await payJudge(s, cand, { answer, question: judgeQuestionOf(s.req), reserveNanos: spec.estimatedCostNanos });
  if (leg.outcome.kind !== 'answered') return undefined;
  const score = parseJudgeScore(leg.outcome.out.text);
  s.record({ ...at(leg), outcome: 'ok', costNanos: leg.outcome.out.costNanos, decision: `judge: ${score ?? 'no score'}` });
  return score;
}

/** An answer: done when it passes the request's checks; otherwise escalated a tier (or stop, escalations spent). */
export async function onAnswered(s: RequestState, leg: Leg, out: CallModelOutput): Promise<StepDecision> {
  const q = s.req.quality;
  const cand = leg.cand;
  if (out.streamed) return onStreamed(s, leg, out, out.streamed);
  if (out.toolCalls && out.toolCalls.length > 0 && patched('tool-calls')) {
    // A tool call is checked as a call: the tool it names and its arguments against that tool's
    // schema (on whenever tools are offered, unless quality.toolArguments is false); the text
    // checks and the judge are for answers in words.
    const checked = q?.toolArguments !== false;
    const failures = checked ? [...(out.toolCallFailures ?? [])] : [];
    if (checked) s.qualityScores.push({ model: cand.model, score: failures.length === 0 ? 1 : 0 });
    if (failures.length > 0) return escalateOnQuality(s, leg, out, failures, q?.maxEscalations ?? DEFAULT_MAX_ESCALATIONS);
    s.record({ ...at(leg), outcome: 'ok', costNanos: out.costNanos });
    return { kind: 'done', result: resultOf(s, leg, out) };
  }
  if (q) {
    let verdict = await checkQuality({ text: out.text, spec: q });
    if (verdict.passed && q.judge) {
      const judgeModel = q.judge.model ?? s.sel?.cheapestModel ?? cand.model;
      const score = await judge(s, judgeModel, out.text);
      if (score !== undefined) s.qualityScores.push({ model: cand.model, score });
      if (score === undefined || score < q.judge.threshold) {
        verdict = {
          passed: false,
          failures: [score === undefined ? `judge ${judgeModel} gave no score` : `judge ${judgeModel} scored ${score} < ${q.judge.threshold}`],
        };
      }
    }
    if (!q.judge) s.qualityScores.push({ model: cand.model, score: verdict.passed ? 1 : 0 });
    if (!verdict.passed) return escalateOnQuality(s, leg, out, verdict.failures, q.maxEscalations);
  }
  s.record({ ...at(leg), outcome: 'ok', costNanos: out.costNanos });
  return { kind: 'done', result: resultOf(s, leg, out) };
}

/** Escalations a failed check may make when the request set no quality spec (tool-call checks): qualitySpecSchema's default. */
const DEFAULT_MAX_ESCALATIONS = 2;

/** An answer that failed its checks: escalated to the next tier up (recorded with why), or the request stops when escalations are spent. */
async function escalateOnQuality(s: RequestState, leg: Leg, out: CallModelOutput, failures: string[], maxEscalations: number): Promise<StepDecision> {
  const cand = leg.cand;
  const why = failures.join('; ');
  s.qualityEscalations += 1;
  const up = tierAbove(cand.tier);
  const spent = s.qualityEscalations > maxEscalations;
  s.record({
    ...at(leg),
    outcome: 'ok',
    costNanos: out.costNanos,
    qualityFailures: failures,
    decision: spent ? 'fail: quality checks failed, escalations spent' : `escalate to the ${up} tier: ${why}`,
  });
  if (spent)
    throw new Stop(FAILURE_TYPES.qualityCheckFailed, `the answer failed its quality checks after ${maxEscalations} escalation(s): ${why}`, 'quality_failed');
  let selection;
  try {
    selection = await reroute(s, { unpin: true, minTier: up, excludeModels: [...s.qualityFailed, cand.model] });
  } catch (err) {
    if (err instanceof Stop && err.type === FAILURE_TYPES.categoryPaused) throw err;
    if (err instanceof Stop)
      throw new Stop(
        FAILURE_TYPES.qualityCheckFailed,
        `the answer failed its quality checks (${why}) and no higher-tier model is left: ${err.message}`,
        'quality_failed',
      );
    throw err;
  }
  const to = selection.decision.chain[0]?.model;
  s.escalations.push({ from: cand.model, to: to ?? '?', reason: `quality: ${why}` });
  log.info('quality check failed; escalating', { model: cand.model, next: to, why });
  return { kind: 'rerouted', reason: 'quality_escalation', selection, forget: 'skips', qualityFailed: cand.model };
}

/**
 * A streamed answer (already settled): the client has its text, so nothing escalates it. Its
 * checks still run and are recorded (never the judge: a paid call whose verdict could change
 * nothing). One that broke off ends the request as StreamInterrupted, its spend charged.
 */
async function onStreamed(s: RequestState, leg: Leg, out: CallModelOutput, streamed: NonNullable<CallModelOutput['streamed']>): Promise<StepDecision> {
  const q = s.req.quality;
  const verdict = q && streamed.end !== 'provider_failed' && streamed.end !== 'worker_lost' ? await checkQuality({ text: out.text, spec: q }) : undefined;
  if (verdict) s.qualityScores.push({ model: leg.cand.model, score: verdict.passed ? 1 : 0 });
  const checks = verdict && !verdict.passed ? `; checks failed, not escalated (the answer was streamed): ${verdict.failures.join('; ')}` : '';
  s.record({
    ...at(leg),
    outcome: 'ok',
    costNanos: out.costNanos,
    ...(verdict && !verdict.passed ? { qualityFailures: verdict.failures } : {}),
    decision: `streamed: ${streamed.end}${checks}`,
  });
  if (streamed.end === 'provider_failed' || streamed.end === 'worker_lost')
    throw new Stop(FAILURE_TYPES.streamInterrupted, streamed.message ?? `the stream broke off (${streamed.end})`, 'failed');
  return { kind: 'done', result: { ...resultOf(s, leg, out), streamed: streamed.end } };
}

/** An operator's escalation signal: re-route to the named model, or one tier up. */
export async function onEscalation(s: RequestState, cand: Candidate, e: { model?: string; reason?: string }): Promise<Extract<Next, { kind: 'rerouted' }>> {
  const up = tierAbove(cand.tier);
  s.record({
    attemptId: s.escalationId(),
    model: cand.model,
    provider: cand.provider,
    tier: cand.tier,
    outcome: 'escalated',
    message: e.reason ?? 'operator escalation',
    startedAt: new Date(Date.now()).toISOString(),
    durationMs: 0,
    decision: e.model ? `escalate to ${e.model}` : `escalate to the ${up} tier`,
  });
  const selection = await reroute(s, e.model ? { model: e.model } : { unpin: true, minTier: up, excludeModels: [cand.model] });
  s.escalations.push({ from: cand.model, to: selection.decision.chain[0]?.model ?? '?', reason: `operator: ${e.reason ?? 'escalate'}` });
  return { kind: 'rerouted', reason: 'operator', selection, forget: 'skips-and-rate-limits' };
}
