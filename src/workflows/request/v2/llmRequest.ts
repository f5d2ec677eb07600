/**
 * The request workflow: validate, classify, select a chain of candidates, then try them in order:
 * reserve the attempt's upper-bound cost in the budget entity, call the provider, settle the actual
 * cost (or release the reservation), with the retry policy applied on durable timers. Returns the
 * answer with every attempt and the reason for each decision.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  sleep,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CallModelOutput, RequestActivities, SelectOutput, ShardedReserveResult } from '../activities.js';
import type { ProviderErrorInfo } from '../../../providers/errors.js';
import { decideAfterFailure, type FailureKind, isFailureKind } from '../../../routing/retryDecision.js';
import type { Candidate } from '../../../routing/router.js';
import { type Tier, TIERS } from '../../../catalog/tiers.js';
import { utf8Bytes } from '../../../util/bytes.js';
import { own } from '../../../util/names.js';
import { parseJudgeScore } from '../../../quality/judge.js';
import { conversationOf, earlierTurnsOf, instructionOf, judgeQuestionOf, textParts } from '../../conversation.js';
import {
  type Attempt,
  FAILURE_TYPES,
  type RequestFailureDetails,
  type RequestInput,
  requestLimitIssues,
  type RequestResult,
  type UnsettledSpend,
  type ValidRequest,
} from '../contract.js';
import { Stop } from '../failure.js';
import {
  approveSpendSignal,
  escalateSignal,
  type RequestTrace,
  traceQuery,
  LlmCategory,
  LlmComplexity,
  LlmCostNanos,
  LlmModel,
  LlmOutcome,
  LlmTier,
} from '../contract.js';

const local = proxyLocalActivities<RequestActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 ms' },
});

/**
 * Budget messages and spend records must not be lost: they retry until the entity answers. They
 * stay activities: as local activities (measured, BENCHMARKS "Request path") each request held its
 * workflow task open while the entity worked through a queue of updates, and at 200 concurrent
 * requests on one scope workflow tasks timed out (8 s) and the run crawled.
 */
const budget = proxyActivities<RequestActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 ms', maximumInterval: '30 seconds', nonRetryableErrorTypes: ['BudgetRejected'] },
});

function callProxy(callTimeoutMs: number) {
  return proxyActivities<RequestActivities>({
    // The SDK times the provider call out first; this bound only catches a stuck worker.
    startToCloseTimeout: callTimeoutMs + 30_000,
    // Short, so that a cancellation (hedging, operator cancel) reaches the SDK within ~3 s: the
    // SDK sends heartbeats at most every 0.8 x this timeout.
    heartbeatTimeout: '4 seconds',
    retry: { maximumAttempts: 2, initialInterval: '1 second', nonRetryableErrorTypes: ['rate_limited', 'transient', 'context_too_long', 'fatal'] },
  });
}

interface FailureInfo {
  readonly kind: FailureKind;
  readonly status?: number | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly message: string;
}

function failureInfo(err: unknown): FailureInfo {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) {
      const d = cause.details?.[0] as Partial<ProviderErrorInfo> | undefined;
      const raw = d?.kind ?? cause.type;
      // Anything that is not one of ours (a plain Error from a bug, a malformed usage block) is an
      // internal failure of this attempt: it ends in a decision, never in a workflow-task retry loop.
      if (!isFailureKind(raw)) return { kind: 'internal', message: `${cause.type ?? 'Error'}: ${cause.message}` };
      const retryAfterMs = typeof d?.retryAfterMs === 'number' && Number.isFinite(d.retryAfterMs) && d.retryAfterMs >= 0 ? d.retryAfterMs : undefined;
      return { kind: raw, status: typeof d?.status === 'number' ? d.status : undefined, retryAfterMs, message: cause.message };
    }
    if (cause instanceof TimeoutFailure) return { kind: 'timeout', message: `activity ${cause.timeoutType} timeout` };
    return { kind: 'transient', message: cause?.message ?? err.message };
  }
  throw err;
}

function seqOf(g: ShardedReserveResult): number | undefined {
  return g.granted ? g.seq : undefined;
}

/** Prompts above this size travel by reference: the call activity reads them from the run's input. */
const INLINE_PROMPT_BYTES = 16 * 1024;

function usd(nanos: number): string {
  return `$${(nanos / 1e9).toFixed(9)}`;
}

/**
 * Any other error ends the request too, with a reason: a budget entity that cannot take
 * reservations, an activity that failed for good, a bug. Never a workflow-task retry loop.
 */
function asStop(e: unknown): Stop {
  if (e instanceof Stop) return e;
  if (e instanceof ApplicationFailure) {
    // A failure of our own making (e.g. a local activity's NoEligibleModel): keep its type.
    const type = e.type ?? FAILURE_TYPES.internal;
    return new Stop(type, e.message, type === FAILURE_TYPES.noEligibleModel ? 'no_model' : type === FAILURE_TYPES.invalidInput ? 'invalid' : 'failed');
  }
  if (e instanceof ActivityFailure) {
    const cause = e.cause;
    if (cause instanceof ApplicationFailure && (cause.type === 'BudgetUnavailable' || cause.type === 'BudgetRejected')) {
      const u = (cause.details?.[0] as { unsettled?: UnsettledSpend } | undefined)?.unsettled;
      const unsettled = u && typeof u.costNanos === 'number' && typeof u.reservationId === 'string' ? [u] : [];
      return new Stop(FAILURE_TYPES.budgetUnavailable, `budget unavailable: ${cause.message}`, 'budget_unavailable', unsettled);
    }
    return new Stop(FAILURE_TYPES.internal, `${e.activityType ?? 'activity'} failed: ${cause?.message ?? e.message}`, 'failed');
  }
  return new Stop(FAILURE_TYPES.internal, `internal error: ${e instanceof Error ? e.message : String(e)}`, 'failed');
}

/**
 * The request as the old shape validated it at its start (zod), without zod (the workflow bundle
 * no longer loads it: BENCHMARKS "Request path"). This code runs only when replaying a run that
 * started before `request-v3`, whose input passed (or failed) that check in its first workflow
 * task; for a valid input this gives zod's output (defaults applied, prompt trimmed, quality
 * defaults). An input zod refused for its shape is refused here for the common shapes (not an
 * object, a prompt or name that is not a string of the allowed form); docs/operations.md "Replay and
 * versioning" says what that means for replaying such a failed run.
 */
function legacyParse(raw: unknown): { success: true; data: ValidRequest } | { success: false; issues: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { success: false, issues: ['(root): expected an object'] };
  const r = raw as Record<string, unknown>;
  const issues: string[] = [];
  const prompt = typeof r.prompt === 'string' ? r.prompt.trim() : r.prompt;
  if (prompt !== undefined && (typeof prompt !== 'string' || prompt === '')) issues.push('prompt: must be a non-empty string');
  if (r.messages !== undefined && !Array.isArray(r.messages)) issues.push('messages: must be a list of messages');
  const category = r.category ?? 'standard';
  if (typeof category !== 'string' || !/^[a-z][a-z0-9_-]{0,63}$/.test(category))
    issues.push('category: must be a lowercase name such as critical, standard or batch');
  const budgetScope = r.budgetScope ?? 'default';
  if (typeof budgetScope !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(budgetScope)) issues.push('budgetScope: may contain only letters, digits and . _ -');
  if (issues.length > 0) return { success: false, issues };
  const q = r.quality as Record<string, unknown> | undefined;
  const quality = q === undefined ? undefined : { nonEmpty: true, noRefusal: true, json: false, maxEscalations: 2, ...q };
  const data = { ...r, category, budgetScope, ...(prompt !== undefined ? { prompt } : {}), ...(quality ? { quality } : {}) };
  // Validated when the run started (see above).
  return { success: true, data: data as unknown as ValidRequest };
}

export async function legacyLlmRequest(rawInput: RequestInput): Promise<RequestResult> {
  const info = workflowInfo();
  const startedAt = Date.now();
  // Versioned change (docs/operations.md): search attributes set once at the end (the client sets
  // LlmCategory at start) instead of three times, and every earlier patch below implied. Each
  // patched() call of a new run costs a search-attribute upsert (the SDK records
  // TemporalChangeVersion), so a new run makes this one call instead of two or more. Runs started
  // before it keep their patches and upserts until they finish.
  const lean = patched('lean-request-path');
  const parsed = legacyParse(rawInput);
  // Versioned change: runs started before the size and reserved-name limits are not checked against them.
  // A request without text failed zod's check before `prompt` became optional (for `messages`): it
  // still fails before the patch marker, as runs recorded then did.
  const noText =
    parsed.success && parsed.data.prompt === undefined && parsed.data.messages === undefined
      ? ['prompt: is required: the text to send to the model (or send `messages`, a chat conversation)']
      : [];
  const limits =
    parsed.success && noText.length === 0 && (lean || patched('request-limits'))
      ? requestLimitIssues(parsed.data).map((i) => `${i.path.replace(/\.(\d+)/g, '[$1]')}: ${i.message}`)
      : noText;
  if (!parsed.success || limits.length > 0) {
    upsertSearchAttributes([{ key: LlmOutcome, value: 'invalid' }]);
    throw ApplicationFailure.create({
      type: FAILURE_TYPES.invalidInput,
      nonRetryable: true,
      message: `invalid request: ${(parsed.success ? limits : parsed.issues).join('; ')}`,
    });
  }
  const req: ValidRequest = parsed.data;
  const requestId = req.requestId ?? info.workflowId;
  // Versioned change (see docs/operations.md): reservation ids carry the run id, so that a
  // re-driven request (same workflow id, new run) never collides with its earlier run's settled
  // attempts. Runs started before this change keep the old ids until they finish.
  const reservationIdFor =
    lean || patched('run-scoped-reservation-ids')
      ? (attemptId: string): string => `${info.workflowId}/${info.runId}/${attemptId}`
      : (attemptId: string): string => `${info.workflowId}/${attemptId}`;
  // Small prompts ride along in each call's input; large ones are read by the activity from this
  // run's start input, so the history holds one copy however many attempts there are.
  // (A prompt request's inline part is what it always was: runs in flight are unaffected.)
  const promptBytes = textParts(req).reduce((n, t) => n + utf8Bytes(t), 0);
  const promptPart =
    promptBytes > INLINE_PROMPT_BYTES
      ? { promptRef: true as const }
      : req.messages
        ? { system: req.system, messages: req.messages, context: req.context }
        : { system: req.system, prompt: req.context ? `${req.context}\n\n${req.prompt ?? ''}` : (req.prompt ?? '') };
  const instruction = instructionOf(req);
  let approved = false;
  setHandler(approveSpendSignal, () => {
    approved = true;
  });
  let escalation: { model?: string; reason?: string } | undefined;
  setHandler(escalateSignal, (e) => {
    escalation = e ?? {};
  });

  const trace: {
    phase: RequestTrace['phase'];
    classification: RequestTrace['classification'];
    waiting: RequestTrace['waiting'];
    skipped: RequestTrace['skipped'];
  } = {
    phase: 'classifying',
    classification: null,
    waiting: undefined,
    skipped: [],
  };
  /** A durable wait, visible in the trace (what the request waits on and until when). */
  const waitFor = async (on: NonNullable<RequestTrace['waiting']>['on'], ms: number, done: () => boolean): Promise<boolean> => {
    trace.phase = 'waiting';
    trace.waiting = { on, until: new Date(Date.now() + ms).toISOString() };
    try {
      return await condition(done, Math.max(1, ms));
    } finally {
      trace.phase = 'calling';
      trace.waiting = undefined;
    }
  };
  const attempts: Attempt[] = [];
  let chain: Candidate[] = [];
  const escalations: RequestResult['escalations'] = [];
  setHandler(traceQuery, (): RequestTrace => ({
    workflowId: info.workflowId,
    requestId,
    category: req.category,
    phase: trace.phase,
    ...(trace.waiting ? { waiting: trace.waiting } : {}),
    classification: trace.classification,
    skipped: trace.skipped,
    candidates: chain,
    attempts,
    escalations,
    costNanos: attempts.reduce((s, a) => s + a.costNanos, 0),
  }));

  let cls: Awaited<ReturnType<typeof local.classify>>;
  try {
    cls = await local.classify(
      req.messages
        ? { prompt: instruction, system: conversationOf(req).system, context: req.context, history: earlierTurnsOf(req) }
        : { prompt: instruction, system: req.system, context: req.context },
    );
  } catch (e) {
    // A classifier that fails for good ends the request with a reason, like any other failure.
    upsertSearchAttributes([{ key: LlmOutcome, value: 'failed' }]);
    throw ApplicationFailure.create({
      type: FAILURE_TYPES.internal,
      nonRetryable: true,
      message: `classification failed: ${e instanceof ActivityFailure ? (e.cause?.message ?? e.message) : e instanceof Error ? e.message : String(e)}`,
    });
  }
  trace.classification = { complexity: cls.complexity, capabilities: cls.capabilities, inputTokens: cls.inputTokens, signals: cls.signals };
  trace.phase = 'routing';
  if (!lean) {
    upsertSearchAttributes([
      { key: LlmCategory, value: req.category },
      { key: LlmComplexity, value: cls.complexity },
    ]);
  }
  /** What the final upsert adds on the lean path (set once, at the end). */
  const atEnd = lean
    ? [
        { key: LlmCategory, value: req.category },
        { key: LlmComplexity, value: cls.complexity },
      ]
    : [];
  /** Lean path, a request that ends without an answer: the model and tier it tried last (or would have). */
  const lastTried = () => {
    const a = attempts.at(-1);
    const m = a ?? chain[0];
    return lean && m
      ? [
          { key: LlmModel, value: m.model },
          { key: LlmTier, value: m.tier },
        ]
      : [];
  };

  const { prompt: _p, messages: _m, system: _s, context: _c, quality: _q, ...constraints } = req;
  let qualityEscalations = 0;
  const qualityFailed: string[] = [];
  const select = async (
    extra: { costCapNanos?: number; excludeModels?: string[]; unpin?: boolean; model?: string; minTier?: Tier } = {},
  ): Promise<SelectOutput> => {
    try {
      const request = {
        ...constraints,
        ...(extra.costCapNanos !== undefined ? { costCapNanos: Math.min(extra.costCapNanos, constraints.costCapNanos ?? Number.MAX_SAFE_INTEGER) } : {}),
      };
      if (extra.unpin) delete request.model;
      if (extra.model !== undefined) request.model = extra.model;
      const out = await local.selectModels({
        request,
        classification: cls,
        ...(extra.excludeModels ? { excludeModels: extra.excludeModels } : {}),
        ...(extra.minTier ? { minTier: extra.minTier } : {}),
        ...(req.quality?.judge?.model ? { judgeModel: req.quality.judge.model } : {}),
      });
      for (const s of out.skipped ?? []) if (!trace.skipped.some((k) => k.model === s.model)) trace.skipped.push(s);
      return out;
    } catch (e) {
      const cause = e instanceof ActivityFailure ? e.cause : e;
      if (cause instanceof ApplicationFailure) throw new Stop(cause.type ?? FAILURE_TYPES.noEligibleModel, cause.message, 'no_model');
      throw e;
    }
  };

  const hedgeAfterMs = req.hedgeAfterMs ?? req.maxLatencyMs;
  interface Leg {
    cand: Candidate;
    attemptId: string;
    reservationId: string;
    grant: ShardedReserveResult;
    t0: number;
  }
  type Settled = { leg: Leg; ok: true; out: CallModelOutput } | { leg: Leg; ok: false; err: unknown };
  /** The hedge for a candidate: the first later candidate of a higher tier, else the next one. */
  const pickHedge = (ch: Candidate[], c: Candidate, skip: Set<string>): Candidate | undefined => {
    const rest = ch.filter((x) => x.model !== c.model && !skip.has(x.model));
    return rest.find((x) => TIERS.indexOf(x.tier) > TIERS.indexOf(c.tier)) ?? rest[0];
  };
  try {
    let sel = await select();
    trace.phase = 'calling';
    chain = sel.decision.chain;
    const call = callProxy(sel.callTimeoutMs);
    let seq = 0;
    let waitBeforeMs = 0;
    let rateLimitWait = false;
    let budgetWaitSince: number | undefined;
    const tooDear = new Set<string>();
    const skipped = new Set<string>();
    const primary = chain[0];
    if (primary && !lean)
      upsertSearchAttributes([
        { key: LlmModel, value: primary.model },
        { key: LlmTier, value: primary.tier },
      ]);
    /** The reservation: the estimate with the provider's safety margin on input tokens (see budget.reservationMargin). */
    const reserveFor = (c: Candidate): number => (sel.reserveNanos ? own(sel.reserveNanos, c.model) : undefined) ?? c.estimatedCostNanos;
    const callInput = (attemptId: string, c: Pick<Candidate, 'model' | 'maxOutputTokens'>) => ({
      workflowId: info.workflowId,
      runId: info.runId,
      attemptId,
      model: c.model,
      maxOutputTokens: c.maxOutputTokens,
      temperature: req.temperature,
      ...promptPart,
    });
    const record = (a: Omit<Attempt, 'waitBeforeMs' | 'costNanos'> & { costNanos?: number }): void => {
      attempts.push({ waitBeforeMs, costNanos: 0, ...a });
    };
    const callLeg = (leg: Leg, scope: CancellationScope): Promise<Settled> =>
      scope
        .run(() => call.callModel(callInput(leg.attemptId, leg.cand)))
        .then(
          (out): Settled => ({ leg, ok: true, out }),
          (err: unknown): Settled => ({ leg, ok: false, err }),
        );
    const hedgedCall = async (a: Leg, hedgeTo: Candidate, afterMs: number): Promise<{ leg: Leg; out: CallModelOutput }> => {
      const scopeA = new CancellationScope();
      const pA = callLeg(a, scopeA);
      const timerScope = new CancellationScope();
      const timer = timerScope
        .run(() => sleep(afterMs))
        .then(
          () => 'timer' as const,
          () => 'timer' as const,
        );
      const first = await Promise.race([pA.then(() => 'answer' as const), timer]);
      if (first === 'answer') {
        timerScope.cancel();
        const r = await pA;
        if (r.ok) return { leg: a, out: r.out };
        throw r.err;
      }
      seq += 1;
      const bId = `a${seq}`;
      const b: Leg = { cand: hedgeTo, attemptId: bId, reservationId: reservationIdFor(bId), grant: a.grant, t0: Date.now() };
      b.grant = await CancellationScope.nonCancellable(() =>
        budget.reserveBudget({
          scope: req.budgetScope,
          reservationId: b.reservationId,
          category: req.category,
          amountNanos: reserveFor(hedgeTo),
          workflowId: info.workflowId,
          force: approved,
        }),
      );
      if (!b.grant.granted) {
        const r = await pA; // no budget for a hedge: wait for the first call
        if (r.ok) return { leg: a, out: r.out };
        throw r.err;
      }
      log.info('latency SLO missed; hedging', { first: a.cand.model, hedge: hedgeTo.model, afterMs });
      const scopeB = new CancellationScope();
      const pB = callLeg(b, scopeB);
      let done = await Promise.race([pA, pB]);
      if (!done.ok) {
        const other = await (done.leg === a ? pB : pA);
        if (!other.ok) {
          // Both failed: account for the hedge here; the first call's failure goes the usual way.
          await CancellationScope.nonCancellable(() => budget.releaseBudget({ scope: req.budgetScope, shard: b.grant.shard, reservationId: b.reservationId }));
          const fb = failureInfo(other.leg === b ? other.err : done.err);
          record({
            attemptId: b.attemptId,
            model: b.cand.model,
            provider: b.cand.provider,
            tier: b.cand.tier,
            outcome: fb.kind,
            status: fb.status,
            message: fb.message,
            startedAt: new Date(b.t0).toISOString(),
            durationMs: Date.now() - b.t0,
            decision: 'hedge failed too',
          });
          throw (done.leg === a ? done : other).err;
        }
        done = other;
      }
      const winner = done;
      const loser = winner.leg === a ? b : a;
      (loser === a ? scopeA : scopeB).cancel();
      const lost = await (loser === a ? pA : pB);
      if (lost.ok) {
        // Both answered: both were paid for.
        await CancellationScope.nonCancellable(() =>
          budget.recordSpend({
            scope: req.budgetScope,
            shard: loser.grant.shard,
            workflowId: info.workflowId,
            attemptId: loser.attemptId,
            reservationId: loser.reservationId,
            model: loser.cand.model,
            category: req.category,
            usage: lost.out.usage,
            costNanos: lost.out.costNanos,
            seq: seqOf(loser.grant),
          }),
        );
        record({
          attemptId: loser.attemptId,
          model: loser.cand.model,
          provider: loser.cand.provider,
          tier: loser.cand.tier,
          outcome: 'ok',
          startedAt: new Date(loser.t0).toISOString(),
          durationMs: Date.now() - loser.t0,
          costNanos: lost.out.costNanos,
          decision: `hedge: ${winner.leg.cand.model} answered first`,
        });
      } else {
        await CancellationScope.nonCancellable(() =>
          budget.releaseBudget({ scope: req.budgetScope, shard: loser.grant.shard, reservationId: loser.reservationId }),
        );
        record({
          attemptId: loser.attemptId,
          model: loser.cand.model,
          provider: loser.cand.provider,
          tier: loser.cand.tier,
          outcome: 'hedged_out',
          startedAt: new Date(loser.t0).toISOString(),
          durationMs: Date.now() - loser.t0,
          decision: `cancelled: ${winner.leg.cand.model} answered first`,
        });
      }
      if (winner.leg === b) escalations.push({ from: a.cand.model, to: b.cand.model, reason: `latency: no answer within ${afterMs} ms` });
      return { leg: winner.leg, out: winner.out };
    };

    /** A judge call: reserved, called and settled like an attempt; returns its score. */
    const judge = async (model: string, answer: string): Promise<number | undefined> => {
      const spec = sel.judgeModels ? own(sel.judgeModels, model) : undefined;
      if (!spec) return undefined;
      seq += 1;
      const attemptId = `j${seq}`;
      const reservationId = reservationIdFor(attemptId);
      const t0 = Date.now();
      const g = await CancellationScope.nonCancellable(() =>
        budget.reserveBudget({
          scope: req.budgetScope,
          reservationId,
          category: req.category,
          amountNanos: spec.estimatedCostNanos,
          workflowId: info.workflowId,
          force: approved,
        }),
      );
      if (!g.granted) return undefined;
      let r: CallModelOutput;
      try {
        r = await call.callModel({
          workflowId: info.workflowId,
          runId: info.runId,
          attemptId,
          model,
          maxOutputTokens: 16,
          judge: { answer, ...(promptPart.promptRef ? {} : { prompt: judgeQuestionOf(req) }) },
          ...(promptPart.promptRef ? { promptRef: true as const } : {}),
        });
      } catch (err) {
        await CancellationScope.nonCancellable(() => budget.releaseBudget({ scope: req.budgetScope, shard: g.shard, reservationId }));
        if (isCancellation(err)) throw err;
        return undefined;
      }
      await CancellationScope.nonCancellable(() =>
        budget.recordSpend({
          scope: req.budgetScope,
          shard: g.shard,
          workflowId: info.workflowId,
          attemptId,
          reservationId,
          model,
          category: req.category,
          usage: r.usage,
          costNanos: r.costNanos,
          seq: seqOf(g),
        }),
      );
      const score = parseJudgeScore(r.text);
      record({
        attemptId,
        model,
        provider: spec.provider,
        tier: spec.tier,
        outcome: 'ok',
        startedAt: new Date(t0).toISOString(),
        durationMs: Date.now() - t0,
        costNanos: r.costNanos,
        decision: `judge: ${score ?? 'no score'}`,
      });
      return score;
    };
    // Every candidate rate-limited: wait durably for the earliest reset, then try those again.
    const rateLimited = new Map<string, { until: number; candidate: Candidate }>();
    for (let round = 0; ; round++) {
      let ci = 0;
      candidates: while (ci < chain.length) {
        const next = chain[ci];
        ci += 1;
        if (!next || skipped.has(next.model)) continue;
        let cand: Candidate = next;
        for (let attempt = 1; ;) {
          // Waits are durable timers; an operator's escalation cuts them short.
          if (waitBeforeMs > 0 && !escalation) {
            await waitFor(rateLimitWait ? 'rate_limit' : 'backoff', waitBeforeMs, () => escalation !== undefined);
          }
          rateLimitWait = false;
          if (escalation) {
            const e = escalation;
            escalation = undefined;
            const up = TIERS[Math.min(TIERS.length - 1, TIERS.indexOf(cand.tier) + 1)];
            record({
              attemptId: `e${seq}`,
              model: cand.model,
              provider: cand.provider,
              tier: cand.tier,
              outcome: 'escalated',
              message: e.reason ?? 'operator escalation',
              startedAt: new Date(Date.now()).toISOString(),
              durationMs: 0,
              decision: e.model ? `escalate to ${e.model}` : `escalate to the ${up} tier`,
            });
            sel = await select(e.model ? { model: e.model } : { unpin: true, ...(up ? { minTier: up } : {}), excludeModels: [cand.model] });
            chain = sel.decision.chain;
            escalations.push({ from: cand.model, to: chain[0]?.model ?? '?', reason: `operator: ${e.reason ?? 'escalate'}` });
            ci = 0;
            skipped.clear();
            rateLimited.clear();
            waitBeforeMs = 0;
            continue candidates;
          }
          seq += 1;
          let attemptId = `a${seq}`;
          let reservationId = reservationIdFor(attemptId);
          let t0 = Date.now();

          // Budget messages run to completion even when the request is being cancelled, so that a
          // reservation is never left behind and a settled call is never lost.
          let grant: ShardedReserveResult = await CancellationScope.nonCancellable(() =>
            budget.reserveBudget({
              scope: req.budgetScope,
              reservationId,
              category: req.category,
              amountNanos: reserveFor(cand),
              workflowId: info.workflowId,
              force: approved,
            }),
          );
          if (!grant.granted) {
            const what = `category "${grant.category}" in budget "${req.budgetScope}" has ${usd(grant.remainingNanos)} left; ${cand.model} may cost up to ${usd(grant.requestedNanos)}`;
            record({
              attemptId,
              model: cand.model,
              provider: cand.provider,
              tier: cand.tier,
              outcome: 'budget_denied',
              message: what,
              startedAt: new Date(t0).toISOString(),
              durationMs: Date.now() - t0,
              decision: `policy ${grant.policy}`,
            });
            waitBeforeMs = 0;
            if (grant.policy === 'reject') throw new Stop(FAILURE_TYPES.budgetExceeded, `budget exceeded: ${what}`, 'budget_exceeded');
            if (grant.policy === 'downgrade') {
              // What a model would reserve (its estimate plus the provider's margin) decides whether it
              // fits. Every model found too dear stays excluded, so each downgrade leaves out at
              // least one more model and the loop ends.
              for (const c of chain) if (reserveFor(c) > grant.remainingNanos) tooDear.add(c.model);
              tooDear.add(cand.model);
              try {
                sel = await select({ costCapNanos: grant.remainingNanos, excludeModels: [...new Set([...skipped, ...tooDear])], unpin: true });
              } catch (e) {
                if (e instanceof Stop)
                  throw new Stop(
                    FAILURE_TYPES.budgetExceeded,
                    `budget exceeded: ${what}, and no cheaper eligible model fits (${e.message})`,
                    'budget_exceeded',
                  );
                throw e;
              }
              chain = sel.decision.chain;
              ci = 0;
              log.info('budget denied; downgraded', { model: cand.model, next: chain[0]?.model });
              continue candidates;
            }
            if (!(lean || patched('bounded-budget-waits'))) {
              // Runs started before waits were bounded keep the old rule until they finish.
              const now = Date.now();
              const limit = Math.min(grant.periodEnd - now, grant.maxWaitMs);
              const got = await waitFor('budget', Math.max(1, limit), () => approved || escalation !== undefined);
              if (escalation) continue;
              if (!got && Date.now() < grant.periodEnd) {
                throw new Stop(
                  FAILURE_TYPES.budgetExceeded,
                  `budget exceeded: ${what}; waited ${limit} ms (maxWaitMs) without a new period or an approval`,
                  'budget_exceeded',
                );
              }
              continue;
            }
            // wait: for the next period or an operator's approval; all waits of this request
            // together last at most maxWaitMs (the request's maxBudgetWaitMs if lower).
            const maxWait = Math.min(grant.maxWaitMs, req.maxBudgetWaitMs ?? Number.MAX_SAFE_INTEGER);
            budgetWaitSince ??= Date.now();
            const deadline = budgetWaitSince + maxWait;
            const now = Date.now();
            if (now >= deadline) {
              throw new Stop(
                FAILURE_TYPES.budgetExceeded,
                `budget exceeded: ${what}; waited ${now - budgetWaitSince} ms (maxWaitMs ${maxWait}) without a new period or an approval`,
                'budget_exceeded',
              );
            }
            // The entity closes its period on its own timer: wake a second after the boundary.
            const until = Math.min(Math.max(grant.periodEnd, now) + 1_000, deadline);
            await waitFor('budget', until - now, () => approved || escalation !== undefined);
            continue; // same candidate, same attempt number: the denial was not a provider attempt
          }

          let out: CallModelOutput;
          try {
            const hedgeTo = hedgeAfterMs !== undefined && attempt === 1 ? pickHedge(chain, cand, skipped) : undefined;
            if (!hedgeTo || hedgeAfterMs === undefined) {
              out = await call.callModel(callInput(attemptId, cand));
            } else {
              // Latency SLO: if the first call has not answered in time, start the hedge; the first
              // answer wins, the other call is cancelled (its reservation released, or settled if it
              // answered too).
              const a: Leg = { cand, attemptId, reservationId, grant, t0 };
              const won = await hedgedCall(a, hedgeTo, hedgeAfterMs);
              ({ cand, attemptId, reservationId, grant, t0 } = won.leg);
              out = won.out;
            }
          } catch (err) {
            if (isCancellation(err)) {
              // Cancelled by an operator mid-call: free the reservation, then end as cancelled.
              await CancellationScope.nonCancellable(() => budget.releaseBudget({ scope: req.budgetScope, shard: grant.shard, reservationId }));
              throw err;
            }
            const f = failureInfo(err);
            await CancellationScope.nonCancellable(() => budget.releaseBudget({ scope: req.budgetScope, shard: grant.shard, reservationId }));
            const policy = (sel.retryByModel ? own(sel.retryByModel, cand.model) : undefined) ?? sel.retry;
            // Versioned change: a Retry-After on a 5xx above the bound moves on (it used to be waited out).
            const overBound = f.kind === 'transient' && f.retryAfterMs !== undefined && f.retryAfterMs > policy.maxRetryAfterMs;
            const d = decideAfterFailure({ ...f, attempt }, policy, { capTransientRetryAfter: !overBound || lean || patched('cap-5xx-retry-after') });
            record({
              attemptId,
              model: cand.model,
              provider: cand.provider,
              tier: cand.tier,
              outcome: f.kind,
              status: f.status,
              message: f.message,
              startedAt: new Date(t0).toISOString(),
              durationMs: Date.now() - t0,
              decision: d.action === 'retry' ? `retry in ${d.delayMs} ms (${d.why})` : `${d.action}: ${d.why}`,
            });
            log.info('provider attempt failed', { attemptId, model: cand.model, kind: f.kind, decision: d.action });
            if (d.action === 'retry') {
              waitBeforeMs = d.delayMs;
              rateLimitWait = f.kind === 'rate_limited';
              attempt += 1;
              continue;
            }
            waitBeforeMs = 0;
            if (d.action === 'fail') throw new Stop(FAILURE_TYPES.nonRetryable, d.why, 'failed');
            if (d.needLargerContext) {
              const window = own(sel.contextWindows, cand.model) ?? 0;
              for (const c of chain) if ((own(sel.contextWindows, c.model) ?? 0) <= window) skipped.add(c.model);
            }
            if (d.otherProvider) for (const c of chain) if (c.provider === cand.provider) skipped.add(c.model);
            if (d.rateLimitedForMs !== undefined) rateLimited.set(cand.model, { until: Date.now() + d.rateLimitedForMs, candidate: cand });
            skipped.add(cand.model);
            continue candidates;
          }

          await CancellationScope.nonCancellable(() =>
            budget.recordSpend({
              scope: req.budgetScope,
              shard: grant.shard,
              workflowId: info.workflowId,
              attemptId,
              reservationId,
              model: cand.model,
              category: req.category,
              usage: out.usage,
              costNanos: out.costNanos,
              seq: seqOf(grant),
            }),
          );
          if (req.quality) {
            let verdict = await local.checkQuality({ text: out.text, spec: req.quality });
            if (verdict.passed && req.quality.judge) {
              const judgeModel = req.quality.judge.model ?? sel.cheapestModel ?? cand.model;
              const score = await judge(judgeModel, out.text);
              if (score === undefined || score < req.quality.judge.threshold) {
                verdict = {
                  passed: false,
                  failures: [
                    score === undefined ? `judge ${judgeModel} gave no score` : `judge ${judgeModel} scored ${score} < ${req.quality.judge.threshold}`,
                  ],
                };
              }
            }
            if (!verdict.passed) {
              const why = verdict.failures.join('; ');
              qualityEscalations += 1;
              qualityFailed.push(cand.model);
              const up = TIERS[Math.min(TIERS.length - 1, TIERS.indexOf(cand.tier) + 1)] ?? cand.tier;
              record({
                attemptId,
                model: cand.model,
                provider: cand.provider,
                tier: cand.tier,
                outcome: 'ok',
                startedAt: new Date(t0).toISOString(),
                durationMs: Date.now() - t0,
                costNanos: out.costNanos,
                qualityFailures: verdict.failures,
                decision:
                  qualityEscalations > req.quality.maxEscalations ? 'fail: quality checks failed, escalations spent' : `escalate to the ${up} tier: ${why}`,
              });
              if (qualityEscalations > req.quality.maxEscalations) {
                throw new Stop(
                  FAILURE_TYPES.qualityCheckFailed,
                  `the answer failed its quality checks after ${req.quality.maxEscalations} escalation(s): ${why}`,
                  'quality_failed',
                );
              }
              try {
                sel = await select({ unpin: true, minTier: up, excludeModels: [...qualityFailed] });
              } catch (err) {
                if (err instanceof Stop)
                  throw new Stop(
                    FAILURE_TYPES.qualityCheckFailed,
                    `the answer failed its quality checks (${why}) and no higher-tier model is left: ${err.message}`,
                    'quality_failed',
                  );
                throw err;
              }
              chain = sel.decision.chain;
              escalations.push({ from: cand.model, to: chain[0]?.model ?? '?', reason: `quality: ${why}` });
              log.info('quality check failed; escalating', { model: cand.model, next: chain[0]?.model, why });
              ci = 0;
              skipped.clear();
              waitBeforeMs = 0;
              continue candidates;
            }
          }
          record({
            attemptId,
            model: cand.model,
            provider: cand.provider,
            tier: cand.tier,
            outcome: 'ok',
            startedAt: new Date(t0).toISOString(),
            durationMs: Date.now() - t0,
            costNanos: out.costNanos,
          });
          const totalCost = attempts.reduce((s, a) => s + a.costNanos, 0);
          upsertSearchAttributes([
            ...atEnd,
            { key: LlmModel, value: cand.model },
            { key: LlmTier, value: cand.tier },
            { key: LlmOutcome, value: 'completed' },
            { key: LlmCostNanos, value: totalCost },
          ]);
          return {
            workflowId: info.workflowId,
            requestId,
            category: req.category,
            text: out.text,
            model: cand.model,
            provider: cand.provider,
            tier: cand.tier,
            usage: out.usage,
            ...(out.finishReason ? { finishReason: out.finishReason } : {}),
            costNanos: totalCost,
            premiumBaselineCostNanos: out.premiumBaselineCostNanos,
            ...(trace.skipped.length > 0 ? { skipped: trace.skipped } : {}),
            classification: {
              complexity: cls.complexity,
              capabilities: cls.capabilities,
              inputTokens: cls.inputTokens,
              signals: cls.signals,
              preferredTier: sel.decision.preferredTier,
            },
            candidates: chain,
            attempts,
            escalations,
            durationMs: Date.now() - startedAt,
          };
        }
      }
      if (rateLimited.size === 0 || round >= 5) break;
      const retryable = [...rateLimited.values()].sort((a, b) => a.until - b.until);
      const waitMs = Math.max(0, (retryable[0]?.until ?? 0) - Date.now());
      if (waitMs > sel.retry.maxRateLimitWaitMs) {
        throw new Stop(
          FAILURE_TYPES.allCandidatesFailed,
          `every candidate is rate-limited; the earliest reset is in ${waitMs} ms > maxRateLimitWaitMs ${sel.retry.maxRateLimitWaitMs}`,
          'failed',
        );
      }
      log.info('every candidate rate-limited; waiting for the earliest reset', { waitMs });
      chain = retryable.map((r) => r.candidate);
      for (const c of chain) skipped.delete(c.model);
      rateLimited.clear();
      waitBeforeMs = waitMs;
      rateLimitWait = true;
    }
    const last = attempts[attempts.length - 1];
    throw new Stop(FAILURE_TYPES.allCandidatesFailed, last?.decision?.replace(/^next: /, '') ?? 'no candidate left', 'failed');
  } catch (e) {
    if (isCancellation(e)) {
      upsertSearchAttributes([
        ...atEnd,
        ...lastTried(),
        { key: LlmOutcome, value: 'cancelled' },
        { key: LlmCostNanos, value: attempts.reduce((s, a) => s + a.costNanos, 0) },
      ]);
      throw e;
    }
    const stop = asStop(e);
    if (stop.type === FAILURE_TYPES.internal) log.error('request ended by an internal error', { reason: stop.message });
    const costNanos = attempts.reduce((s, a) => s + a.costNanos, 0) + stop.unsettled.reduce((s, u) => s + u.costNanos, 0);
    upsertSearchAttributes([
      ...atEnd,
      ...lastTried(),
      { key: LlmOutcome, value: stop.unsettled.length > 0 ? 'unsettled' : stop.outcome },
      { key: LlmCostNanos, value: costNanos },
    ]);
    const details: RequestFailureDetails = {
      reason: stop.message,
      costNanos,
      attempts,
      candidates: chain,
      ...(stop.unsettled.length > 0 ? { unsettled: stop.unsettled } : {}),
    };
    const models = new Set(attempts.filter((a) => a.outcome !== 'budget_denied').map((a) => a.model)).size;
    throw ApplicationFailure.create({
      type: stop.type,
      nonRetryable: true,
      message:
        attempts.length > 0 && stop.type !== FAILURE_TYPES.budgetExceeded
          ? `request failed after ${attempts.length} attempt(s) on ${models} model(s): ${stop.message}`
          : stop.message,
      details: [details],
    });
  }
}
