/**
 * The request workflow, as the process: validate; route and pay for the first model in one
 * activity (classify, select, reserve, call, settle); then, while there is no acceptable answer,
 * act on the outcome (a budget denial, a failed attempt, an answer that fails its checks, an
 * operator's escalation) and try the next candidate; every candidate rate-limited waits for the
 * earliest reset. Search attributes are set once, at the end. Returns the answer with every
 * attempt and the reason for each decision.
 *
 * Each step returns a `Next` (./next.ts); serve() alone applies it. Runs started before this shape
 * (no `request-v3` marker in their history) finish on the code they started with (./v2/).
 */
import { CancellationScope, getExternalWorkflowHandle, log, patched, proxySinks, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { experimentWorkflowId, outcomeSignal } from '../experiment/contract.js';
import type { RoutingReason, SwitchyardSinks } from '../sinks.js';
import { FAILURE_TYPES, type RequestInput, type RequestResult, LlmModel, LlmTier } from './contract.js';
import { onAnswered, onDenied, onEscalation, onFailed } from './decisions.js';
import { Stop } from './failure.js';
import { hedged, hedgeFor } from './hedge.js';
import { type Leg, payCandidate, payFirst, routeLocally, streaming } from './legs.js';
import type { Move, StepDecision } from './next.js';
import { automaticQuality, ended, learningOutcome, summary } from './outcome.js';
import { RequestState, totalCost } from './state.js';
import { legacyLlmRequest } from './v2/llmRequest.js';
import { deferredLeg } from './deferred.js';
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
    await CancellationScope.nonCancellable(() =>
      getExternalWorkflowHandle(experimentWorkflowId(workflowInfo().taskQueue, e.name)).signal(outcomeSignal, outcome),
    );
  } catch (err) {
    log.info('experiment outcome not delivered (the experiment has ended?)', { experiment: e.name, error: err instanceof Error ? err.message : String(err) });
  }
}

/** What a leg's outcome means for the request (each step records it and decides). */
function decide(s: RequestState, leg: Leg, attempt: number): Promise<StepDecision> {
  const o = leg.outcome;
  if (o.kind === 'denied') return onDenied(s, leg, o.grant);
  if (o.kind === 'failed') return onFailed(s, leg, attempt, o);
  return onAnswered(s, leg, o.out);
}

/**
 * The loop: candidates of the chain in order, each tried until its step says otherwise. The only
 * writer of where the loop goes (cursor, chain, skips, rate limits, waits, the routing reason).
 */
async function serve(s: RequestState): Promise<RequestResult> {
  // The first paid call validates the input and routes; a hedged request routes first (the hedge
  // needs the chain while the first call runs).
  const raw = s.raw as Partial<Record<string, unknown>>;
  let first: Leg | undefined;
  // A request with a deadline may be answered by its model's provider batch first (./deferred.ts);
  // runs without one never reach the patch marker.
  if (typeof raw.deadline === 'string' && raw.stream === undefined && patched('deferred')) first = await deferredLeg(s, raw.deadline);
  else if (raw.hedgeAfterMs === undefined && raw.maxLatencyMs === undefined) first = await payFirst(s);
  else await routeLocally(s);
  // A streamed answer is never hedged: two answers would interleave on the client's stream.
  const hedgeAfterMs = streaming(s) ? undefined : (s.req.hedgeAfterMs ?? s.req.maxLatencyMs);
  s.phase = 'calling';
  /** Why the next paid call goes where it goes (reported to the metrics when the request ends). */
  let reason: RoutingReason = first ? 'retry' : 'primary';
  if (first?.outcome.kind === 'denied') reason = 'primary';
  for (let round = 0; ; round++) {
    for (let cand = s.nextCandidate(); cand; cand = s.nextCandidate()) {
      for (let attempt = 1; ;) {
        let leg = first;
        first = undefined;
        if (!leg) {
          // Waits are durable timers; an operator's escalation cuts them short.
          if (s.waitBeforeMs > 0 && !s.escalation)
            await s.waitFor(s.rateLimitWait ? 'rate_limit' : 'backoff', s.waitBeforeMs, () => s.escalation !== undefined);
          s.rateLimitWait = false;
          const escalation = s.takeEscalation();
          if (escalation) {
            reason = apply(s, await onEscalation(s, cand, escalation), reason);
            break;
          }
          const hedgeTo = hedgeAfterMs !== undefined && attempt === 1 ? hedgeFor(s, cand) : undefined;
          leg = hedgeTo && hedgeAfterMs !== undefined ? await hedged(s, cand, hedgeTo, hedgeAfterMs, reason) : await payCandidate(s, cand, attempt, reason);
          // A denied reservation called nothing: the next call keeps this one's reason.
          if (leg.outcome.kind !== 'denied') reason = 'retry';
        }
        const next = await decide(s, leg, attempt);
        if (next.kind === 'done') return next.result;
        reason = apply(s, next, reason);
        if (next.kind === 'retry') {
          attempt += 1;
          continue;
        }
        if (next.kind === 'wait') {
          await s.waitFor(next.on, next.untilMs - Date.now(), () => s.approved || s.escalation !== undefined);
          continue; // the same model, after the wait
        }
        break;
      }
    }
    const reset = rateLimitReset(s, round);
    if (!reset) break;
    reason = apply(s, reset, reason);
  }
  const last = s.attempts.at(-1);
  throw new Stop(FAILURE_TYPES.allCandidatesFailed, last?.decision?.replace(/^next: /, '') ?? 'no candidate left', 'failed');
}

/** Applies a step's decision to the loop's state; returns the routing reason of the next call. */
function apply(s: RequestState, next: Move, reason: RoutingReason): RoutingReason {
  switch (next.kind) {
    case 'retry':
      s.maxRateLimitWaitMs = next.maxRateLimitWaitMs;
      s.waitBeforeMs = next.afterMs;
      s.rateLimitWait = next.on === 'rate_limit';
      return 'retry';
    case 'wait':
      s.waitBeforeMs = 0;
      s.budgetWaitSince ??= next.waitingSince;
      return reason;
    case 'next':
      s.maxRateLimitWaitMs = next.maxRateLimitWaitMs;
      s.waitBeforeMs = 0;
      for (const m of next.skip) s.skipped.add(m);
      if (next.rateLimited) s.rateLimited.set(next.rateLimited.candidate.model, next.rateLimited);
      return next.reason;
    case 'rerouted':
      s.waitBeforeMs = 0;
      for (const m of next.tooDear ?? []) s.tooDear.add(m);
      if (next.qualityFailed !== undefined) s.qualityFailed.push(next.qualityFailed);
      s.useSelection(next.selection);
      if (next.forget !== 'nothing') s.skipped.clear();
      if (next.forget === 'skips-and-rate-limits') s.rateLimited.clear();
      return next.reason;
    case 'reset':
      s.chain = [...next.chain];
      s.cursor = 0;
      for (const c of s.chain) s.skipped.delete(c.model);
      s.rateLimited.clear();
      s.waitBeforeMs = next.afterMs;
      s.rateLimitWait = true;
      return 'rate_limit';
  }
}

/** Every candidate rate-limited: another pass over them after the earliest reset (a Stop if that is too far off). */
function rateLimitReset(s: RequestState, round: number): Extract<Move, { kind: 'reset' }> | undefined {
  if (s.rateLimited.size === 0 || round >= RATE_LIMIT_ROUNDS) return undefined;
  const retryable = [...s.rateLimited.values()].sort((a, b) => a.until - b.until);
  const waitMs = Math.max(0, (retryable[0]?.until ?? 0) - Date.now());
  const maxWait = s.maxRateLimitWaitMs ?? 0;
  if (waitMs > maxWait)
    throw new Stop(
      FAILURE_TYPES.allCandidatesFailed,
      `every candidate is rate-limited; the earliest reset is in ${waitMs} ms > maxRateLimitWaitMs ${maxWait}`,
      'failed',
    );
  log.info('every candidate rate-limited; waiting for the earliest reset', { waitMs });
  return { kind: 'reset', chain: retryable.map((r) => r.candidate), afterMs: waitMs };
}
