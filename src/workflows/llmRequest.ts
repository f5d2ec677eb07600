/**
 * The request workflow: validate, classify, select a chain of candidates, then try them in order
 * with the retry policy applied on durable timers, record spend exactly once per charged attempt,
 * and return the answer with every attempt and the reason for each decision.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  log,
  proxyActivities,
  proxyLocalActivities,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, CallModelOutput, SelectOutput } from '../activities/index.js';
import type { ErrorKind, ProviderErrorInfo } from '../providers/errors.js';
import { decideAfterFailure } from '../routing/retryDecision.js';
import type { Candidate } from '../routing/router.js';
import { describeIssues } from '../util/validation.js';
import {
  type Attempt,
  FAILURE_TYPES,
  type RequestFailureDetails,
  type RequestInput,
  requestInputSchema,
  type RequestResult,
  type ValidRequest,
} from './requestTypes.js';
import { LlmCategory, LlmComplexity, LlmCostNanos, LlmModel, LlmOutcome, LlmTier } from './searchAttributes.js';

const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 ms' },
});

/** recordSpend must not be lost: it retries until the ledger accepts it (idempotent by key). */
const spend = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

function callProxy(callTimeoutMs: number) {
  return proxyActivities<Activities>({
    // The SDK times the provider call out first; this bound only catches a stuck worker.
    startToCloseTimeout: callTimeoutMs + 30_000,
    heartbeatTimeout: '20 seconds',
    retry: { maximumAttempts: 2, initialInterval: '1 second', nonRetryableErrorTypes: ['rate_limited', 'transient', 'context_too_long', 'fatal'] },
  });
}

interface FailureInfo {
  readonly kind: ErrorKind | 'timeout';
  readonly status?: number | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly message: string;
}

function failureInfo(err: unknown): FailureInfo {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) {
      const d = cause.details?.[0] as Partial<ProviderErrorInfo> | undefined;
      const kind = (d?.kind ?? cause.type ?? 'transient') as ErrorKind;
      return { kind, status: d?.status, retryAfterMs: d?.retryAfterMs, message: cause.message };
    }
    if (cause instanceof TimeoutFailure) return { kind: 'timeout', message: `activity ${cause.timeoutType} timeout` };
    return { kind: 'transient', message: cause?.message ?? err.message };
  }
  throw err;
}

export async function llmRequest(rawInput: RequestInput): Promise<RequestResult> {
  const info = workflowInfo();
  const startedAt = Date.now();
  const parsed = requestInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    upsertSearchAttributes([{ key: LlmOutcome, value: 'invalid' }]);
    throw ApplicationFailure.create({
      type: FAILURE_TYPES.invalidInput,
      nonRetryable: true,
      message: `invalid request: ${describeIssues(parsed.error).join('; ')}`,
    });
  }
  const req: ValidRequest = parsed.data;
  const requestId = req.requestId ?? info.workflowId;
  const prompt = req.context ? `${req.context}\n\n${req.prompt}` : req.prompt;

  const cls = await local.classify({ prompt: req.prompt, system: req.system, context: req.context });
  upsertSearchAttributes([
    { key: LlmCategory, value: req.category },
    { key: LlmComplexity, value: cls.complexity },
  ]);

  const { prompt: _p, system: _s, context: _c, ...constraints } = req;
  let sel: SelectOutput;
  try {
    sel = await local.selectModels({ request: constraints, classification: cls });
  } catch (e) {
    upsertSearchAttributes([{ key: LlmOutcome, value: 'no_model' }]);
    if (e instanceof ActivityFailure && e.cause instanceof ApplicationFailure) {
      throw ApplicationFailure.create({ type: e.cause.type ?? FAILURE_TYPES.noEligibleModel, nonRetryable: true, message: e.cause.message });
    }
    throw e;
  }
  const chain: Candidate[] = sel.decision.chain;
  const call = callProxy(sel.callTimeoutMs);
  const attempts: Attempt[] = [];
  let seq = 0;
  let waitBeforeMs = 0;
  const skipped = new Set<string>();
  let failReason: string | undefined;

  const primary = chain[0];
  if (primary) upsertSearchAttributes([{ key: LlmModel, value: primary.model }, { key: LlmTier, value: primary.tier }]);

  candidates: for (let ci = 0; ci < chain.length; ci++) {
    const cand = chain[ci];
    if (!cand || skipped.has(cand.model)) continue;
    for (let attempt = 1; ; attempt++) {
      if (waitBeforeMs > 0) await sleep(waitBeforeMs);
      seq += 1;
      const attemptId = `a${seq}`;
      const t0 = Date.now();
      let out: CallModelOutput;
      try {
        out = await call.callModel({
          workflowId: info.workflowId,
          attemptId,
          model: cand.model,
          system: req.system,
          prompt,
          maxOutputTokens: cand.maxOutputTokens,
          temperature: req.temperature,
        });
      } catch (err) {
        const f = failureInfo(err);
        const d = decideAfterFailure({ ...f, attempt }, sel.retry);
        attempts.push({
          attemptId,
          model: cand.model,
          provider: cand.provider,
          tier: cand.tier,
          outcome: f.kind,
          status: f.status,
          message: f.message,
          waitBeforeMs,
          startedAt: new Date(t0).toISOString(),
          durationMs: Date.now() - t0,
          costNanos: 0,
          decision: d.action === 'retry' ? `retry in ${d.delayMs} ms (${d.why})` : `${d.action}: ${d.why}`,
        });
        log.info('provider attempt failed', { attemptId, model: cand.model, kind: f.kind, decision: d.action });
        if (d.action === 'retry') {
          waitBeforeMs = d.delayMs;
          continue;
        }
        waitBeforeMs = 0;
        if (d.action === 'fail') {
          failReason = d.why;
          break candidates;
        }
        if (d.needLargerContext) {
          const window = sel.contextWindows[cand.model] ?? 0;
          for (const c of chain) if ((sel.contextWindows[c.model] ?? 0) <= window) skipped.add(c.model);
        }
        if (d.otherProvider) for (const c of chain) if (c.provider === cand.provider) skipped.add(c.model);
        failReason = d.why;
        continue candidates;
      }

      await spend.recordSpend({ workflowId: info.workflowId, attemptId, model: cand.model, category: req.category, usage: out.usage, costNanos: out.costNanos });
      attempts.push({
        attemptId,
        model: cand.model,
        provider: cand.provider,
        tier: cand.tier,
        outcome: 'ok',
        waitBeforeMs,
        startedAt: new Date(t0).toISOString(),
        durationMs: Date.now() - t0,
        costNanos: out.costNanos,
      });
      const totalCost = attempts.reduce((s, a) => s + a.costNanos, 0);
      upsertSearchAttributes([
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
        costNanos: totalCost,
        premiumBaselineCostNanos: out.premiumBaselineCostNanos,
        classification: {
          complexity: cls.complexity,
          capabilities: cls.capabilities,
          inputTokens: cls.inputTokens,
          signals: cls.signals,
          preferredTier: sel.decision.preferredTier,
        },
        candidates: chain,
        attempts,
        durationMs: Date.now() - startedAt,
      };
    }
  }

  const costNanos = attempts.reduce((s, a) => s + a.costNanos, 0);
  upsertSearchAttributes([
    { key: LlmOutcome, value: 'failed' },
    { key: LlmCostNanos, value: costNanos },
  ]);
  const details: RequestFailureDetails = { reason: failReason ?? 'no candidate left', costNanos, attempts, candidates: chain };
  const last = attempts[attempts.length - 1];
  throw ApplicationFailure.create({
    type: last?.outcome === 'fatal' && !last.decision?.startsWith('next') ? FAILURE_TYPES.nonRetryable : FAILURE_TYPES.allCandidatesFailed,
    nonRetryable: true,
    message: `request failed after ${attempts.length} attempt(s) on ${new Set(attempts.map((a) => a.model)).size} model(s): ${details.reason}`,
    details: [details],
  });
}
