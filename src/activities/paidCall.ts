/**
 * The paid call: one activity that reserves an attempt's upper-bound cost, calls the provider and
 * settles the actual cost (or releases the reservation), so that a request costs one activity and
 * two workflow tasks, like the simplest workflow that does anything. The first attempt of a
 * request may route first (classify and select, in the same activity). Budget messages go through
 * the worker's batcher; each still waits for its own acknowledgement.
 *
 * Provider failures come back as a result (`failed`), not as an error, so that the workflow gets
 * the routing along with them; only infrastructure failures (a lost worker, a timeout, a budget
 * entity that is gone) fail the activity. A worker bug is retried once by Temporal, then reported
 * as an `internal` failure of the attempt.
 *
 * Exactly once: when the settlement is slow to be acknowledged, the answer is heartbeated first,
 * so that a retry after a lost worker settles that answer (idempotent by sequence number) instead
 * of paying for a second call.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { ClassifyInput, Classification } from '../routing/classifier.js';
import { isFailureKind } from '../routing/retryDecision.js';
import type { Candidate } from '../routing/router.js';
import type { ProviderErrorInfo } from '../providers/errors.js';
import type { CallModelInput, CallModelOutput, SelectInput, SelectOutput } from './index.js';
import type { RecordSpendInput, ReserveInput, ShardedReserveResult } from './budget.js';
import type { SettleResult } from '../budget/book.js';
import type { AttemptFailure } from '../workflows/request/failure.js';

/** The activities the paid call is made of (the worker's, or a test's overrides of them). */
export interface PaidCallParts {
  classify(input: ClassifyInput): Promise<Classification>;
  classifyRun(input: { workflowId: string; runId: string }): Promise<Classification>;
  selectModels(input: SelectInput): Promise<SelectOutput>;
  callModel(input: CallModelInput): Promise<CallModelOutput>;
  reserveBudget(input: ReserveInput): Promise<ShardedReserveResult>;
  releaseBudget(input: { scope: string; shard: number; reservationId: string }): Promise<boolean>;
  recordSpend(input: RecordSpendInput): Promise<SettleResult>;
}

export interface RouteInput {
  /** What to classify, or the run whose start input holds it (large requests). */
  readonly classify: ClassifyInput | { readonly run: { readonly workflowId: string; readonly runId: string } };
  readonly select: Omit<SelectInput, 'classification'>;
}

export interface Routed {
  readonly classification: Classification;
  readonly selection: SelectOutput;
}

export interface PaidCallInput {
  /** Route first and pay for the chain's first model (the request's first attempt). */
  readonly route?: RouteInput;
  /** Else: the model to pay for, with what to reserve for it. */
  readonly model?: { readonly name: string; readonly maxOutputTokens: number; readonly reserveNanos: number };
  /** What to send: everything of CallModelInput but the model and its output budget. */
  readonly call: Omit<CallModelInput, 'model' | 'maxOutputTokens'>;
  readonly budget: { readonly scope: string; readonly category: string; readonly reservationId: string; readonly force: boolean };
  /** Temporal's attempts for this activity: a worker bug on the last one is reported, not thrown. */
  readonly maxAttempts: number;
}

export type PaidCallOutcome =
  | { readonly kind: 'answered'; readonly out: CallModelOutput; readonly shard: number; readonly seq?: number | undefined }
  | { readonly kind: 'denied'; readonly grant: ShardedReserveResult & { granted: false } }
  | { readonly kind: 'failed'; readonly failure: AttemptFailure };

export interface PaidCallOutput {
  readonly routed?: Routed;
  /** The model paid for (the chain's first when routed here). */
  readonly model: string;
  readonly outcome: PaidCallOutcome;
}

/** Heartbeated when a settlement is slow: what a retry needs to settle without calling again. */
interface Answered {
  readonly answered: { readonly out: CallModelOutput; readonly shard: number; readonly seq?: number | undefined; readonly model: string; readonly routed?: Routed };
}

/** A settlement acknowledged later than this is preceded by a heartbeat of the answer. */
const SETTLE_HEARTBEAT_AFTER_MS = 200;

function failureOf(e: unknown): AttemptFailure | undefined {
  if (!(e instanceof ApplicationFailure)) return undefined;
  const d = e.details?.[0] as Partial<ProviderErrorInfo> | undefined;
  const raw = d?.kind ?? e.type;
  if (!isFailureKind(raw)) return e.nonRetryable ? { kind: 'internal', message: `${e.type ?? 'Error'}: ${e.message}` } : undefined;
  const retryAfterMs = typeof d?.retryAfterMs === 'number' && Number.isFinite(d.retryAfterMs) && d.retryAfterMs >= 0 ? d.retryAfterMs : undefined;
  return { kind: raw, status: typeof d?.status === 'number' ? d.status : undefined, retryAfterMs, message: e.message };
}

export function createPaidCallActivities(parts: PaidCallParts) {
  const route = async (input: RouteInput): Promise<Routed> => {
    const classification = 'run' in input.classify ? await parts.classifyRun(input.classify.run) : await parts.classify(input.classify);
    const selection = await parts.selectModels({ ...input.select, classification });
    return { classification, selection };
  };
  return {
    /** Classify and select (the workflow's fallback when a paid call failed before routing). */
    route,

    async paidCall(input: PaidCallInput): Promise<PaidCallOutput> {
      const ctx = Context.current();
      const prior = (ctx.info.heartbeatDetails as Partial<Answered> | undefined)?.answered;
      const settle = (model: string, out: CallModelOutput, shard: number, seq: number | undefined) =>
        parts.recordSpend({
          scope: input.budget.scope,
          shard,
          workflowId: input.call.workflowId,
          attemptId: input.call.attemptId,
          reservationId: input.budget.reservationId,
          model,
          category: input.budget.category,
          usage: out.usage,
          costNanos: out.costNanos,
          seq,
        });
      if (prior) {
        // An earlier attempt of this activity was answered and paid for, then lost: settle that.
        await settle(prior.model, prior.out, prior.shard, prior.seq);
        return { ...(prior.routed ? { routed: prior.routed } : {}), model: prior.model, outcome: { kind: 'answered', out: prior.out, shard: prior.shard, seq: prior.seq } };
      }
      // Heartbeats (a lost worker is noticed within the heartbeat timeout; a cancellation arrives
      // with the answer to one) carry the answer once there is one. Fast calls send none.
      let beatWith: Answered | undefined;
      const beat = setInterval(() => ctx.heartbeat(beatWith), 1_000);
      try {
        const routed = input.route ? await route(input.route) : undefined;
        let model: { name: string; maxOutputTokens: number; reserveNanos: number };
        if (routed) {
          const c: Candidate | undefined = routed.selection.decision.chain[0];
          if (!c) throw ApplicationFailure.create({ type: 'NoEligibleModel', nonRetryable: true, message: 'the router returned an empty chain' });
          model = { name: c.model, maxOutputTokens: c.maxOutputTokens, reserveNanos: routed.selection.reserveNanos?.[c.model] ?? c.estimatedCostNanos };
        } else if (input.model) {
          model = input.model;
        } else {
          throw ApplicationFailure.create({ type: 'internal', nonRetryable: true, message: 'paidCall: neither route nor model given' });
        }
        const done = (outcome: PaidCallOutcome): PaidCallOutput => ({ ...(routed ? { routed } : {}), model: model.name, outcome });
        const grant = await parts.reserveBudget({
          scope: input.budget.scope,
          reservationId: input.budget.reservationId,
          category: input.budget.category,
          amountNanos: model.reserveNanos,
          workflowId: input.call.workflowId,
          force: input.budget.force,
        });
        if (!grant.granted) return done({ kind: 'denied', grant });
        let out: CallModelOutput;
        try {
          out = await parts.callModel({ ...input.call, model: model.name, maxOutputTokens: model.maxOutputTokens });
        } catch (e) {
          // Nothing was paid for: free the reservation before anything else.
          await parts.releaseBudget({ scope: input.budget.scope, shard: grant.shard, reservationId: input.budget.reservationId });
          if (ctx.cancellationSignal.aborted) throw e instanceof CancelledFailure ? e : new CancelledFailure(String(ctx.cancellationSignal.reason ?? 'cancelled'));
          const failure = failureOf(e);
          if (failure) return done({ kind: 'failed', failure });
          // A bug (a plain Error): Temporal retries it; on the last attempt it is this attempt's failure.
          if (ctx.info.attempt < input.maxAttempts) throw e;
          return done({ kind: 'failed', failure: { kind: 'internal', message: `${e instanceof Error ? e.name : 'Error'}: ${e instanceof Error ? e.message : String(e)}` } });
        }
        const seq = grant.seq;
        beatWith = { answered: { out, shard: grant.shard, seq, model: model.name, ...(routed ? { routed } : {}) } };
        const slow = setTimeout(() => ctx.heartbeat(beatWith), SETTLE_HEARTBEAT_AFTER_MS);
        try {
          await settle(model.name, out, grant.shard, seq);
        } finally {
          clearTimeout(slow);
        }
        return done({ kind: 'answered', out, shard: grant.shard, seq });
      } finally {
        clearInterval(beat);
      }
    },
  };
}
