/**
 * The deferred collector: one entity per task queue and model. It gathers deferred requests'
 * lines (references only) and, when there are `maxLines` or the oldest has waited `maxAgeMs` (or a
 * line has used half its time, or an operator flushes), hands them to a new provider batch: a child
 * workflow (batch.ts) that submits, polls and delivers on its own, and outlives the collector's run.
 * The collector's state is the waiting lines only, so it holds a fixed size however many lines are
 * in flight; it continues as new after JOINS_PER_RUN joins or when its history grows. A request that
 * left for a live call is held back if its line was not yet handed to a batch. docs/deferred.md.
 */
import {
  condition,
  log,
  ParentClosePolicy,
  patched,
  setHandler,
  startChild,
  upsertSearchAttributes,
  WorkflowIdReusePolicy,
  workflowInfo,
} from '@temporalio/workflow';
import { submitBy } from '../../deferred/deadline.js';
import { continueAsNewWhenDrained } from '../entity.js';
import { isMessage, onSignal, refusePlaintext } from '../messages.js';
import { LlmModel } from '../request/contract.js';
import { deferredBatch } from './batch.js';
import { returnOrLog, deferredActs } from './batchSteps.js';
import {
  providerBatchWorkflowId,
  cancelSignal,
  type CollectorInput,
  collectorStatusQuery,
  type CollectorWorkflow,
  DeferredBatchId,
  DeferredProvider,
  DeferredState,
  flushSignal,
  joinSignal,
  joinManySignal,
  leaveSignal,
  type LineRef,
} from './contract.js';

/** Continue as new after this many lines joined in one run (each join is one signal event). */
const JOINS_PER_RUN = 2_000;
/** ... or once the run's history passes this size (each batch started records its lines' references once). */
const HISTORY_BYTES_PER_RUN = 4 * 1024 * 1024;
/** How long, and how many, lines handed to a batch are remembered across continue-as-new (longer than a join's retries). */
const SENT_KEPT_MS = 10 * 60_000;
const SENT_KEPT = 4_000;

export async function deferredCollector(input: CollectorInput): Promise<void> {
  refusePlaintext([input], 'deferredCollector');
  const a = deferredActs();
  const { settings } = input;
  const pending: LineRef[] = [...(input.pending ?? [])];
  let seq = input.seq ?? 0;
  let joins = 0;
  let flushAsked = input.flushAsked ?? false;
  let cancelAsked = input.cancelAsked ?? false;
  /** When each pending line joined (this run's clock, for lines that do not carry it). */
  const joinedAt = new Map<string, number>(pending.map((l) => [l.id, l.joinedAtMs ?? Date.now()]));
  /**
   * Lines lately handed to a batch, with when: a retried join of one (a local activity retried after
   * its signal got through, or run again with its workflow task) is not submitted twice. Carried over
   * continue-as-new for SENT_KEPT_MS, at most SENT_KEPT lines.
   */
  const sent = new Map<string, number>(input.sent ?? []);
  /** When the soonest waiting line comes due, as joins arrive (compared with the timer set for it). */
  let soonest = Number.POSITIVE_INFINITY;

  const take = (l: LineRef): void => {
    if (!wellFormed(l)) return void log.warn('join ignored: malformed', {});
    joins += 1;
    if (joinedAt.has(l.id) || sent.has(l.id)) return; // a retried join
    pending.push(l);
    joinedAt.set(l.id, l.joinedAtMs ?? Date.now());
    soonest = Math.min(soonest, submitBy(joinedAt.get(l.id) ?? Date.now(), l.leaveAtMs, settings));
  };
  onSignal(joinSignal, take);
  onSignal(joinManySignal, (lines) => {
    if (!Array.isArray(lines)) return void log.warn('joins ignored: not a list', {});
    const list: readonly LineRef[] = lines;
    for (const l of list) take(l);
  });
  onSignal(leaveSignal, (l) => {
    const i = pending.findIndex((x) => x.id === l.id);
    if (i >= 0) {
      pending.splice(i, 1);
      joinedAt.delete(l.id);
    }
  });
  onSignal(flushSignal, () => {
    flushAsked = true;
  });
  onSignal(cancelSignal, () => {
    cancelAsked = true;
  });
  setHandler(collectorStatusQuery, () => ({
    provider: input.provider,
    model: input.model,
    settings,
    pending: pending.length,
    ...(pending.length > 0 ? { oldestPendingSinceMs: Math.min(...pending.map((l) => joinedAt.get(l.id) ?? 0)) } : {}),
    batches: seq,
  }));

  const lean = patched('collector-lean-upserts');
  let shown = '';
  const show = (state: string) => {
    if (shown === state) return;
    shown = state;
    upsertSearchAttributes([
      { key: DeferredProvider, value: input.provider },
      { key: LlmModel, value: input.model },
      { key: DeferredState, value: state },
      { key: DeferredBatchId, value: '' },
    ]);
  };

  /** When the first waiting line must go: its age, or half its time before it leaves for a live call (deadline.ts). */
  const firstDue = () => Math.min(...pending.map((l) => submitBy(joinedAt.get(l.id) ?? Date.now(), l.leaveAtMs, settings)));
  const due = () => pending.length >= settings.maxLines || (pending.length > 0 && (flushAsked || firstDue() <= Date.now()));
  const grown = () => joins >= JOINS_PER_RUN || workflowInfo().continueAsNewSuggested || workflowInfo().historySize > HISTORY_BYTES_PER_RUN;

  for (;;) {
    if (cancelAsked) {
      // An operator's cancel: the waiting lines go live (the client cancels the provider batches in flight).
      cancelAsked = false;
      const lines = pending.splice(0, pending.length);
      for (const l of lines) joinedAt.delete(l.id);
      if (lines.length > 0) await returnOrLog(a, lines, 'cancelled', 'an operator cancelled the collector');
    }
    // A backlog keeps it due: the run still ends when it has grown (the waiting lines are carried).
    if (grown()) break;
    if (due()) {
      flushAsked = false;
      const lines = pending.splice(0, settings.maxLines);
      for (const l of lines) {
        joinedAt.delete(l.id);
        sent.set(l.id, Date.now());
      }
      seq += 1;
      // Since `collector-lean-upserts`, not shown: it lasts a moment, and the batch shows its own state.
      if (!lean) show('submitting');
      await startBatch(input, seq, lines);
      continue;
    }
    show(pending.length > 0 ? 'collecting' : 'idle');
    // Wait for the batch to fill, its first line to come due, or an operator. A join wakes it only
    // when it changes when the next batch is due: the first line of an idle collector, or a line
    // due sooner than the timer (a shorter deadline); any other join adds no timer.
    const target = pending.length > 0 ? firstDue() : Number.POSITIVE_INFINITY;
    const joinsBefore = joins;
    const woken = () => due() || cancelAsked || (joins !== joinsBefore && soonest < target);
    soonest = target;
    if (pending.length === 0) await condition(woken);
    else await condition(woken, Math.max(1, target - Date.now()));
  }
  await continueAsNewWhenDrained<typeof deferredCollector>(() => [
    {
      ...(input.id ? { id: input.id } : {}),
      provider: input.provider,
      model: input.model,
      settings,
      pending,
      seq,
      flushAsked,
      cancelAsked,
      sent: [...sent].filter(([, at]) => at > Date.now() - SENT_KEPT_MS).slice(-SENT_KEPT),
    },
  ]);
}

/**
 * A line the collector can hold: a malformed one (from a hand-sent signal) is dropped, never
 * allowed to make the collector's due time NaN (its timer would fail every workflow task).
 */
function wellFormed(l: unknown): l is LineRef {
  if (!isMessage(l)) return false;
  const m = l as Record<string, unknown>;
  const text = (k: string) => typeof m[k] === 'string' && m[k] !== '';
  const num = (k: string) => typeof m[k] === 'number' && Number.isFinite(m[k]);
  return (
    text('id') &&
    text('workflowId') &&
    text('runId') &&
    text('attemptId') &&
    text('scope') &&
    text('category') &&
    num('leaveAtMs') &&
    num('maxOutputTokens') &&
    num('shard') &&
    (m.joinedAtMs === undefined || num('joinedAtMs'))
  );
}

/** Starts the provider batch's workflow and leaves it to run (it outlives this run and the next). */
async function startBatch(input: CollectorInput, seq: number, lines: LineRef[]): Promise<void> {
  const info = workflowInfo();
  const id = providerBatchWorkflowId(input.id ?? info.workflowId, info.firstExecutionRunId, seq);
  try {
    await startChild(deferredBatch, {
      workflowId: id,
      taskQueue: info.taskQueue,
      args: [{ provider: input.provider, model: input.model, settings: input.settings, seq, tag: id, sinceMs: Date.now(), lines }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      // Set at start, so `deferred status` and `cancel` find a batch from its first moment.
      typedSearchAttributes: [
        { key: DeferredProvider, value: input.provider },
        { key: LlmModel, value: input.model },
        { key: DeferredState, value: 'submitting' },
      ],
    });
  } catch (e) {
    // Never expected (the id is new): the requests go live rather than wait for nothing.
    const message = e instanceof Error ? e.message : String(e);
    log.warn('provider batch workflow could not start; its requests go live', { id, error: message });
    await returnOrLog(deferredActs(), lines, 'failed', `the provider batch could not be started: ${message}`);
  }
}

deferredCollector satisfies CollectorWorkflow;
