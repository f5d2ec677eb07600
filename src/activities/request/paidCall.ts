/**
 * The paid call: one activity that reserves an attempt's upper-bound cost and calls the provider
 * (or releases the reservation when the call fails); the first attempt of a request validates and
 * routes first (classify and select, in the same activity). The workflow settles the answer in a
 * second activity, once the answer is in its history: a worker lost after the settlement was
 * applied then costs a duplicate settlement (ignored by sequence number), never a second call.
 * Budget messages go through the worker's batcher; each still waits for its own acknowledgement.
 *
 * Provider failures come back as a result (`failed`), not as an error, so that the workflow gets
 * the routing along with them; only infrastructure failures (a lost worker, a timeout, a budget
 * entity that is gone) fail the activity. A worker bug is retried once by Temporal, then reported
 * as an `internal` failure of the attempt.

 */
import { heartbeatFor, streamedSoFar } from './heartbeat.js';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { ClassifyInput, Classification } from '../../routing/classifier.js';
import { describeIssues } from '../../util/validation.js';
import { callTextOf, classifyInputOf } from '../../workflows/conversation.js';
import { requestInputSchema } from '../../contracts/requestInput.js';
import { FAILURE_TYPES, type RequestInput, type ValidRequest } from '../../workflows/request/contract.js';
import { type FailureFacts, isFailureKind, type RetryVerdict } from '../../routing/retryDecision.js';
import type { Candidate } from '../../routing/router.js';
import type { ProviderErrorInfo } from '../../providers/errors.js';
import type { CallModelInput, CallModelOutput, RouteSelection, SelectInput } from './types.js';
import type { ReserveInput, ShardedReserveResult } from '../budget/index.js';
import type { AttemptFailure } from '../../workflows/request/failure.js';
import type { RouteInput, Routed, PaidCallInput, PaidCallOutcome, PaidCallOutput } from '../../workflows/request/activities.js';

/** The activities the paid call is made of (the worker's, or a test's overrides of them). */
export interface PaidCallParts {
  classify(input: ClassifyInput): Promise<Classification>;
  readRequestInput(input: { workflowId: string; runId: string }): Promise<RequestInput>;
  selectRoute(input: SelectInput): Promise<RouteSelection>;
  retryVerdict(input: { model: string; failure: FailureFacts }): Promise<RetryVerdict>;
  callModel(input: CallModelInput): Promise<CallModelOutput>;
  reserveBudget(input: ReserveInput): Promise<ShardedReserveResult>;
  releaseBudget(input: { scope: string; shard: number; reservationId: string }): Promise<boolean>;
}

type CallText = Omit<CallModelInput, 'model' | 'maxOutputTokens'>;

/** Where the attempt is charged: the validated request's scope and category on a routed attempt. */
function budgetOf(input: PaidCallInput, routed: Routed | undefined): { scope: string; category: string } {
  return routed
    ? { scope: routed.request.budgetScope, category: routed.request.category }
    : { scope: input.budget.scope ?? 'default', category: input.budget.category ?? 'standard' };
}

function failureOf(e: unknown): AttemptFailure | undefined {
  if (!(e instanceof ApplicationFailure)) return undefined;
  const d = e.details?.[0] as Partial<ProviderErrorInfo> | undefined;
  const raw = d?.kind ?? e.type;
  if (!isFailureKind(raw)) return e.nonRetryable ? { kind: 'internal', message: `${e.type ?? 'Error'}: ${e.message}` } : undefined;
  const retryAfterMs = typeof d?.retryAfterMs === 'number' && Number.isFinite(d.retryAfterMs) && d.retryAfterMs >= 0 ? d.retryAfterMs : undefined;
  return { kind: raw, status: typeof d?.status === 'number' ? d.status : undefined, retryAfterMs, message: e.message };
}

export function createPaidCallActivities(parts: PaidCallParts) {
  /**
   * The workflow's boundary: the input is validated here (the client validated it too), then
   * classified and routed. Workflow code does not load zod (BENCHMARKS "Request path").
   */
  const validatedRoute = async (input: RouteInput): Promise<{ routed: Routed; req: ValidRequest }> => {
    const raw = 'run' in input.start ? await parts.readRequestInput(input.start.run) : input.start.request;
    const parsed = requestInputSchema.safeParse(raw);
    if (!parsed.success)
      throw ApplicationFailure.create({
        type: FAILURE_TYPES.invalidInput,
        nonRetryable: true,
        message: `invalid request: ${describeIssues(parsed.error).join('; ')}`,
      });
    const req = parsed.data;
    const { prompt: _p, messages: _m, system: _s, context: _c, tools: _t, toolChoice: _tc, parallelToolCalls: _pt, quality, ...request } = req;
    const classification = await parts.classify(classifyInputOf(req));
    const selection = await parts.selectRoute({ request, classification, ...(quality?.judge?.model ? { judgeModel: quality.judge.model } : {}) });
    return { routed: { classification, selection, request: { ...request, ...(quality ? { quality } : {}) } }, req };
  };
  const route = async (input: RouteInput): Promise<Routed> => (await validatedRoute(input)).routed;
  return {
    /** Classify and select (the workflow's fallback when a paid call failed before routing). */
    route,

    async paidCall(input: PaidCallInput): Promise<PaidCallOutput> {
      const ctx = Context.current();
      // Heartbeats: a lost worker is noticed within the heartbeat timeout, and a cancellation
      // arrives with the answer to one. Fast calls send none. One beat for the whole execution (the
      // provider call adds a stream's progress to it: heartbeat.ts).
      const beat = heartbeatFor(ctx);
      try {
        const first = input.route ? await validatedRoute(input.route) : undefined;
        const routed = first?.routed;
        const to = budgetOf(input, routed);
        // The first attempt sends what it validated: the text inline, or by reference to the run.
        const call: CallText = first
          ? {
              ...input.call,
              temperature: first.req.temperature,
              ...(input.route && 'run' in input.route.start ? { promptRef: true as const } : callTextOf(first.req)),
              ...(first.req.stream ? { stream: first.req.stream } : {}),
            }
          : input.call;
        let model: { name: string; maxOutputTokens: number; reserveNanos: number };
        if (routed) {
          const chain = routed.selection.decision.chain;
          // A retry after a worker was lost mid-stream settles what was streamed at the price of the
          // model that streamed it, which routing now may not pick first (a circuit opened since).
          const streamed = call.stream && ctx.info.attempt > 1 ? streamedSoFar(ctx).model : undefined;
          const c: Candidate | undefined = chain.find((x) => x.model === streamed) ?? chain[0];
          if (!c) throw ApplicationFailure.create({ type: FAILURE_TYPES.noEligibleModel, nonRetryable: true, message: 'the router returned an empty chain' });
          model = { name: c.model, maxOutputTokens: c.maxOutputTokens, reserveNanos: routed.selection.reserveNanos?.[c.model] ?? c.estimatedCostNanos };
        } else if (input.model) {
          model = input.model;
        } else {
          throw ApplicationFailure.create({ type: 'internal', nonRetryable: true, message: 'paidCall: neither route nor model given' });
        }
        const done = (outcome: PaidCallOutcome): PaidCallOutput => ({ ...(routed ? { routed } : {}), model: model.name, outcome });
        const failed = async (failure: AttemptFailure): Promise<PaidCallOutput> =>
          done({ kind: 'failed', failure, verdict: await parts.retryVerdict({ model: model.name, failure: { ...failure, attempt: input.attempt ?? 1 } }) });
        const grant = await parts.reserveBudget({
          scope: to.scope,
          reservationId: input.budget.reservationId,
          category: to.category,
          amountNanos: model.reserveNanos,
          workflowId: input.call.workflowId,
          force: input.budget.force,
        });
        if (!grant.granted) return done({ kind: 'denied', grant });
        let out: CallModelOutput;
        try {
          out = await parts.callModel({ ...call, model: model.name, maxOutputTokens: model.maxOutputTokens });
        } catch (e) {
          // Nothing was paid for: free the reservation before anything else.
          await parts.releaseBudget({ scope: to.scope, shard: grant.shard, reservationId: input.budget.reservationId });
          if (ctx.cancellationSignal.aborted)
            throw e instanceof CancelledFailure ? e : new CancelledFailure(String(ctx.cancellationSignal.reason ?? 'cancelled'));
          const failure = failureOf(e);
          if (failure) return failed(failure);
          // A bug (a plain Error): Temporal retries it; on the last attempt it is this attempt's failure.
          if (ctx.info.attempt < input.maxAttempts) throw e;
          return failed({ kind: 'internal', message: `${e instanceof Error ? e.name : 'Error'}: ${e instanceof Error ? e.message : String(e)}` });
        }
        return done({ kind: 'answered', out, shard: grant.shard, seq: grant.seq });
      } finally {
        beat.stop();
      }
    },
  };
}
