/**
 * The deferred lane's activities (workflows/deferred/contract.ts): a request joins its model's
 * collector; the collector submits a provider batch (or finds it again by its tag after a worker
 * died mid-submission), polls it, and hands each line's outcome to its request by an update. A
 * line whose request has left (or ended) is charged as `duplicated`: the provider billed it.
 */
import { ApplicationFailure, CompleteAsyncError, Context } from '@temporalio/activity';
import { ActivityNotFoundError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Catalog } from '../../catalog/catalog.js';
import { batchCostNanos, costNanos, estimateCostNanos } from '../../catalog/pricing.js';
import type { ModelSpec, ProviderName } from '../../catalog/schema.js';
import { type CollectorSettings, DEFAULT_COLLECTOR, leaveAt, worthDeferring } from '../../deferred/deadline.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import { ProviderError } from '../../providers/errors.js';
import type { BatchApi, BatchLine, BatchLineResult } from '../../providers/types.js';
import { checkToolCalls } from '../../quality/checks.js';
import { conversationOf, toolUseOf } from '../../workflows/conversation.js';
import {
  COLLECTOR_TYPE,
  collectorWorkflowId,
  type CollectorWorkflow,
  type DeferredActivities,
  batchWaitActivityId,
  type DeferredAnswer,
  deferredAnswerUpdate,
  joinManySignal,
  type JoinInput,
  type JoinOutput,
  type LineRef,
  type LineSettle,
  lineIdOf,
} from '../../workflows/deferred/contract.js';
import type { CallModelOutput, RecordSpendInput, ReserveInput, ShardedReserveResult } from '../../workflows/request/activities.js';
import { traceQuery, UNSPECIFIED_FEATURE, type UnsettledSpend } from '../../workflows/request/contract.js';
import { entityTaskQueue } from '../../workflows/taskQueues.js';
import { RequestInputReader } from '../request/requestInput.js';
import { JoinCoalescer } from './joinCoalescer.js';

export interface DeferredDeps {
  readonly temporal: Client;
  readonly taskQueue: string;
  readonly catalog: Catalog;
  readonly providers: ProviderRegistry;
  readonly log: Logger;
  readonly deferred?: CollectorSettings | undefined;
  readonly reservationMargin?: Partial<Record<ProviderName, number>>;
  /** How long a budget reservation lives: a deferred request leaves for a live call before its reservation would expire. */
  readonly budgetDefaults?: { readonly reservationTtlMs: number } | undefined;
}

export interface DeferredBudget {
  reserveBudget(input: ReserveInput): Promise<ShardedReserveResult>;
  recordSpend(input: RecordSpendInput): Promise<unknown>;
}

/** Lines read, and requests told, this many at a time. */
const CONCURRENCY = 16;

export function createDeferredActivities(deps: DeferredDeps, budget: DeferredBudget): DeferredActivities {
  const settings = deps.deferred ?? DEFAULT_COLLECTOR;
  const inputs = new RequestInputReader(deps.temporal, 256);
  const baseline = deps.catalog.premiumBaseline();
  const joins = new JoinCoalescer<ModelSpec, LineRef>(async (collectorId, spec, lines) => {
    await deps.temporal.workflow.signalWithStart<CollectorWorkflow, [readonly LineRef[]]>(COLLECTOR_TYPE, {
      workflowId: collectorId,
      taskQueue: entityTaskQueue(deps.taskQueue),
      args: [{ id: collectorId, provider: spec.provider, model: spec.name, settings }],
      signal: joinManySignal,
      signalArgs: [lines],
    });
  });

  const batchApi = async (spec: ModelSpec): Promise<BatchApi | undefined> => {
    if (!deps.providers.isConfigured(spec.provider)) return undefined;
    return (await deps.providers.get(spec.provider)).batch;
  };
  const api = async (model: string): Promise<{ spec: ModelSpec; api: BatchApi }> => {
    const spec = deps.catalog.require(model);
    const a = await batchApi(spec);
    if (!a) throw new Error(`${model}: ${spec.provider} has no batch API on this worker`);
    return { spec, api: a };
  };

  /** Tells a request its line's outcome; `left` when it went live or ended (it will not take it). */
  const tell = async (line: LineRef, answer: DeferredAnswer, updateId: string): Promise<'taken' | 'left'> => {
    const handle = deps.temporal.workflow.getHandle(line.workflowId, line.runId);
    if (line.settle) {
      // The request waits in an activity: complete it. Not found means the wait has ended: completed
      // by a delivery before this one (taken), or timed out or abandoned (its request left).
      const activityId = batchWaitActivityId(line.attemptId);
      try {
        await deps.temporal.activity.complete({ workflowId: line.workflowId, runId: line.runId, activityId }, answer);
        return 'taken';
      } catch (e) {
        if (!(e instanceof ActivityNotFoundError)) throw e;
      }
      // Its history says which, with no worker needed (a query would need one, and may fail under load).
      const waited = waitOutcome(await handle.fetchHistory(), activityId);
      if (waited !== undefined) return waited;
      // Never scheduled (the answer came before the join's workflow task completed), or still open
      // (taken by an update, or abandoned by a cancelled run): the request says, below.
    }
    try {
      return await handle.executeUpdate(deferredAnswerUpdate, { args: [answer], updateId });
    } catch (e) {
      if (!(e instanceof WorkflowNotFoundError || (e instanceof Error && /completed|not found|already/i.test(e.message)))) throw e;
      // The request has ended. It took this line's answer if it recorded the attempt as a batch answer
      // (a delivery retried after the request finished with it); else it had left. Its trace holds its
      // attempts however it ended (completed, failed, cancelled), where its result holds them only
      // when it completed. A query that fails is not an answer: the delivery is retried, never guessed.
      const trace = (await handle.query(traceQuery)) as { attempts?: Array<{ attemptId: string; mode?: string }> } | undefined;
      return trace?.attempts?.some((a) => a.attemptId === line.attemptId && a.mode === 'batch') ? 'taken' : 'left';
    }
  };

  /**
   * Charges one answered line: `batch` for a line its request took and left to the delivery to
   * settle (against the request's reservation, by its sequence number, so a retried delivery
   * settles nothing twice), `duplicated` for a line the provider billed after its request had left
   * (once, by the line's own key).
   */
  const chargeLine = async (
    model: string,
    l: LineRef,
    out: CallModelOutput,
    how: { mode: 'batch'; settle: LineSettle } | { mode: 'duplicated' },
  ): Promise<UnsettledSpend | undefined> => {
    const common = {
      scope: l.scope,
      shard: l.shard,
      workflowId: l.workflowId,
      model,
      category: l.category,
      usage: out.usage,
      costNanos: out.costNanos,
      baselineNanos: out.premiumBaselineCostNanos,
      liveNanos: out.liveCostNanos ?? out.costNanos,
    };
    const st = how.mode === 'batch' ? how.settle : undefined;
    try {
      await budget.recordSpend(
        st
          ? {
              ...common,
              attemptId: l.attemptId,
              reservationId: st.reservationId,
              // Its request took the answer and never released the reservation, so a closed one was settled here before.
              ...(st.seq !== undefined ? { seq: st.seq } : {}),
              feature: st.feature,
              latencyMs: out.latencyMs,
              ...(st.keyId !== undefined ? { keyId: st.keyId } : {}),
              mode: 'batch',
            }
          : { ...common, attemptId: `${l.attemptId}-batch`, reservationId: `dup-${l.id}`, feature: UNSPECIFIED_FEATURE, mode: 'duplicated' },
      );
      return undefined;
    } catch (e) {
      // A budget entity that is gone: recordSpend put the line in the ledger outbox (the ledger
      // holds it), and its settlement goes back in the delivery's result: the batch ends
      // `unsettled`, and `switchyard budget restore` applies it, once. Anything else (and a gone
      // entity whose failure does not carry the settlement) is retried with the delivery.
      const u =
        e instanceof ApplicationFailure && e.type === 'BudgetUnavailable'
          ? (e.details?.[0] as { unsettled?: UnsettledSpend } | undefined)?.unsettled
          : undefined;
      if (!u) throw e;
      return u;
    }
  };

  /** One error per scope and shard a delivery could not settle, naming the batch and the command that settles them. */
  const logUnsettled = (batchId: string, owed: readonly UnsettledSpend[]): void => {
    const by = new Map<string, { scope: string; shard: number; lines: number; costNanos: number }>();
    for (const u of owed) {
      const k = `${u.scope}\u0000${u.shard}`;
      const g = by.get(k) ?? { scope: u.scope, shard: u.shard, lines: 0, costNanos: 0 };
      g.lines += 1;
      g.costNanos += u.costNanos;
      by.set(k, g);
    }
    for (const g of by.values())
      deps.log.error(
        { batchId, ...g },
        `budget entity of scope "${g.scope}" gone: ${g.lines} batch line(s) are in the ledger but not in the budget; \`switchyard budget restore --scope ${g.scope}\` applies them once the batch has ended`,
      );
  };

  /**
   * Runs `f` on every item, CONCURRENCY at a time. One item that fails does not stop the others
   * (every step is idempotent, so the retry runs them all again); the first failure is thrown once
   * all have run.
   */
  const inParallel = async <T>(items: readonly T[], f: (t: T, i: number) => Promise<void>): Promise<void> => {
    let next = 0;
    let failed: { error: unknown } | undefined;
    const worker = async () => {
      for (let i = next++; i < items.length; i = next++) {
        try {
          await f(items[i] as T, i);
        } catch (e) {
          failed ??= { error: e };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
    if (failed) throw failed.error;
  };

  /** Runs `f` heartbeating every 2 s (the collector's activities wait on the provider for long). */
  const beating = async <T>(f: () => Promise<T>): Promise<T> => {
    const ctx = Context.current();
    const timer = setInterval(() => ctx.heartbeat(), 2_000);
    try {
      return await f();
    } finally {
      clearInterval(timer);
    }
  };

  return {
    async joinDeferred(input: JoinInput): Promise<JoinOutput> {
      const spec = deps.catalog.get(input.model);
      if (!spec?.batchPrice) return { joined: false, why: `${input.model} has no batch price in the catalog: called live` };
      if (!(await batchApi(spec))) return { joined: false, why: `${spec.provider} has no batch API here: called live` };
      const left = input.deadlineMs - Date.now();
      if (left <= 0) return { joined: false, why: 'the deadline has passed: called live' };
      if (!worthDeferring(left, settings, spec.typicalLatencyMs))
        return { joined: false, why: `the deadline is ${Math.round(left / 1000)} s away, too near for a provider batch: called live` };
      const inputTokens = Math.ceil(input.inputTokens * (1 + (deps.reservationMargin?.[spec.provider] ?? 0)));
      const amountNanos = estimateCostNanos({ ...spec, price: spec.batchPrice }, inputTokens, input.maxOutputTokens);
      const grant = await budget.reserveBudget({
        scope: input.scope,
        reservationId: input.reservationId,
        category: input.category,
        amountNanos,
        workflowId: input.workflowId,
        force: input.force,
      });
      if (!grant.granted) return { joined: false, why: 'the budget denied the batch reservation: called live (where the budget decides again)' };
      const now = Date.now();
      // Gone live before its batch reservation would expire (a budget frees expired reservations).
      const ttl = deps.budgetDefaults?.reservationTtlMs;
      const leaveAtMs = Math.min(leaveAt(input.deadlineMs, spec.typicalLatencyMs, settings.leaveMarginMs), ttl ? now + ttl - 60_000 : Number.POSITIVE_INFINITY);
      const line: LineRef = {
        id: lineIdOf(input.workflowId, input.attemptId),
        joinedAtMs: now,
        workflowId: input.workflowId,
        runId: input.runId,
        attemptId: input.attemptId,
        maxOutputTokens: input.maxOutputTokens,
        leaveAtMs,
        scope: input.scope,
        shard: grant.shard,
        category: input.category,
        ...(input.settleOnDelivery
          ? {
              settle: {
                reservationId: input.reservationId,
                ...(grant.seq !== undefined ? { seq: grant.seq } : {}),
                feature: input.feature ?? UNSPECIFIED_FEATURE,
                ...(input.keyId !== undefined ? { keyId: input.keyId } : {}),
              },
            }
          : {}),
      };
      // Sent with the other lines joining this collector in the same moment: one signal for a burst.
      await joins.join(collectorWorkflowId(deps.taskQueue, spec.name), spec, line);
      return { joined: true, lineId: line.id, leaveAtMs: line.leaveAtMs, shard: grant.shard, seq: grant.seq, reservedNanos: amountNanos };
    },

    awaitBatchAnswer(): Promise<DeferredAnswer> {
      // Completed by the deliverer (tell); its timeout is the request's leave time.
      throw new CompleteAsyncError();
    },

    submitProviderBatch: ({ model, tag, sinceMs, lines }) =>
      beating(async () => {
        const { spec, api: b } = await api(model);
        // A worker that died after creating the batch left it at the provider: a retry finds it again.
        const found = Context.current().info.attempt > 1 ? await b.find(tag, sinceMs, lines.length) : undefined;
        if (found) {
          deps.log.info({ tag, batchId: found.id }, 'provider batch found again after a retry; not submitted twice');
          return { batchId: found.id };
        }
        const batchLines: BatchLine[] = new Array<BatchLine>(lines.length);
        await inParallel(lines, async (l, i) => {
          const r = await inputs.get(l.workflowId, l.runId);
          const c = conversationOf(r);
          batchLines[i] = {
            customId: l.id,
            req: {
              model: spec.providerModel,
              system: c.system,
              turns: c.turns,
              maxOutputTokens: l.maxOutputTokens,
              temperature: r.temperature,
              ...(c.tools ? { tools: c.tools } : {}),
            },
          };
          Context.current().heartbeat();
        });
        let created: Awaited<ReturnType<BatchApi['submit']>>;
        try {
          created = await b.submit(batchLines, tag, spec.providerModel);
        } catch (e) {
          // The provider refused the batch (a 4xx that is not a rate limit or a conflict): asking again
          // would be refused again, so the collector's lines go live now instead of after the retries.
          if (e instanceof ProviderError && (e.kind === 'fatal' || e.kind === 'context_too_long'))
            throw ApplicationFailure.create({ message: e.message, type: 'BatchRefused', nonRetryable: true });
          throw e;
        }
        deps.log.info({ tag, batchId: created.id, lines: lines.length, model }, 'provider batch submitted');
        return { batchId: created.id };
      }),

    pollProviderBatch: ({ model, batchId }) =>
      beating(async () => {
        const { api: b } = await api(model);
        const got = await b.get(batchId);
        return { ended: got.state !== 'running', state: got.state, ...(got.message ? { message: got.message } : {}) };
      }),

    deliverProviderBatch: ({ model, batchId, lines }) =>
      beating(async () => {
        const { spec, api: b } = await api(model);
        const got = await b.get(batchId);
        const results = new Map<string, BatchLineResult>((await b.results(batchId)).map((r) => [r.customId, r]));
        let answered = 0;
        let failed = 0;
        let duplicated = 0;
        const unsettled = new Map<string, UnsettledSpend>();
        const owe = (u: UnsettledSpend | undefined): void => void (u && unsettled.set(u.reservationId, u));
        const delivering = inParallel(lines, async (l) => {
          const r = results.get(l.id);
          let answer: DeferredAnswer;
          if (r?.ok) {
            const usage = r.res.usage;
            // Only an answer made of tool calls needs the request's tools (read from its input) to be checked.
            const tools = r.res.toolCalls ? toolUseOf(await inputs.get(l.workflowId, l.runId).catch(() => ({ prompt: '' }))) : undefined;
            const toolCallFailures = r.res.toolCalls && tools ? checkToolCalls(r.res.toolCalls, tools.tools) : undefined;
            answer = {
              attemptId: l.attemptId,
              ok: true,
              batchId,
              ...(l.settle ? { settledByDelivery: true as const } : {}),
              out: {
                text: r.res.text,
                usage,
                costNanos: batchCostNanos(spec, usage),
                liveCostNanos: costNanos(spec, usage),
                premiumBaselineCostNanos: baseline ? costNanos(baseline, usage) : costNanos(spec, usage),
                finishReason: r.res.finishReason,
                latencyMs: 0,
                ...(r.res.toolCalls ? { toolCalls: r.res.toolCalls } : {}),
                ...(toolCallFailures && toolCallFailures.length > 0 ? { toolCallFailures } : {}),
              },
            };
          } else {
            const why =
              r && !r.ok
                ? r.why
                : got.state === 'expired'
                  ? 'expired'
                  : got.state === 'cancelled'
                    ? 'cancelled'
                    : got.state === 'failed'
                      ? 'failed'
                      : 'errored';
            const message = r && !r.ok ? r.message : (got.message ?? `the provider batch ${batchId} ended ${got.state} without this line`);
            answer = { attemptId: l.attemptId, ok: false, why, message, batchId };
          }
          const verdict = await tell(l, answer, `${batchId}/${l.id}`);
          if (answer.ok && verdict === 'taken' && l.settle) {
            // Taken by a request that leaves its settlement to delivery: settled here, against its
            // reservation and by its sequence number (a retried delivery settles nothing twice).
            owe(await chargeLine(spec.name, l, answer.out, { mode: 'batch', settle: l.settle }));
            answered += 1;
          } else if (answer.ok && verdict === 'left') {
            // The provider billed a line its request no longer wanted: charged, once (by its own key), as duplicated.
            owe(await chargeLine(spec.name, l, answer.out, { mode: 'duplicated' }));
            duplicated += 1;
          } else if (answer.ok) answered += 1;
          else failed += 1;
          Context.current().heartbeat();
        });
        const owed = (): UnsettledSpend[] => [...unsettled.values()];
        try {
          await delivering;
        } catch (e) {
          if (unsettled.size === 0) throw e;
          // Settlements a gone budget entity could not take travel with the failure, so that a
          // delivery failing every attempt still ends its batch `unsettled` (batch.ts): a retry finds
          // them again (or settles them, if the entity is back by then).
          const cause = e instanceof Error ? e : new Error(String(e));
          throw ApplicationFailure.create({
            message: cause.message,
            type: (e instanceof ApplicationFailure ? e.type : undefined) ?? cause.name,
            nonRetryable: e instanceof ApplicationFailure && e.nonRetryable === true,
            details: [{ unsettled: owed() }],
            cause,
          });
        } finally {
          logUnsettled(batchId, owed());
        }
        return { answered, failed, duplicated, ...(unsettled.size > 0 ? { unsettled: owed() } : {}) };
      }),

    returnLines: ({ lines, why, message }) =>
      beating(() =>
        inParallel(lines, async (l) => {
          // Returned lines go live, never to another batch: the provider may have answered them already.
          await tell(l, { attemptId: l.attemptId, ok: false, why, message, final: true }, `return-${l.id}`);
        }),
      ),

    cancelProviderBatch: ({ model, batchId }) =>
      beating(async () => {
        const { api: b } = await api(model);
        await b.cancel(batchId);
      }),
  };
}

/** The parts of a history event `waitOutcome` reads (a fetched history's events have them; ids are Longs there). */
/** An event id: a number here, a Long in a fetched history (its own toString gives the number). */
type IdLike = number | { toString(): string } | null;
type Ref = { readonly scheduledEventId?: IdLike } | null | undefined;
interface HistoryEventLike {
  readonly eventId?: IdLike;
  readonly activityTaskScheduledEventAttributes?: { readonly activityId?: string | null } | null;
  readonly activityTaskCompletedEventAttributes?: Ref;
  readonly activityTaskTimedOutEventAttributes?: Ref;
  readonly activityTaskFailedEventAttributes?: Ref;
  readonly activityTaskCanceledEventAttributes?: Ref;
}

/**
 * How a request's wait for its line ended, from its history: `taken` if the wait activity was
 * completed (by a delivery), `left` if it timed out, failed or was cancelled; undefined if it was
 * never scheduled or is still open (the caller then asks the request).
 */
export function waitOutcome(history: { readonly events?: ReadonlyArray<HistoryEventLike> | null }, activityId: string): 'taken' | 'left' | undefined {
  const events = history.events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityId === activityId);
  if (scheduled?.eventId == null) return undefined;
  const id = String(scheduled.eventId);
  const of = (a: Ref) => a != null && String(a.scheduledEventId) === id;
  for (const e of events) {
    if (of(e.activityTaskCompletedEventAttributes)) return 'taken';
    if (of(e.activityTaskTimedOutEventAttributes) || of(e.activityTaskFailedEventAttributes) || of(e.activityTaskCanceledEventAttributes)) return 'left';
  }
  // Still open: the request is waiting, or took its answer by the update (and left the wait open),
  // or was cancelled while waiting. Only the request can say which: the update, or its trace.
  return undefined;
}
