/**
 * The deferred collector: one entity per task queue and model. It gathers deferred requests'
 * lines (references only), submits them as one provider batch when there are `maxLines` or the
 * oldest has waited `maxAgeMs` (or an operator flushes), polls each batch on durable timers with
 * backoff, and hands every line's outcome to its request. It continues as new when idle and its
 * run has grown, so its history stays small. A request that left for a live call is held back if
 * its line was not yet submitted; one already submitted is charged as duplicated if the provider
 * answers it (the delivery activity does that). docs/deferred.md.
 */
import { condition, log, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { nextPollMs, submitBy } from '../../deferred/deadline.js';
import { continueAsNewWhenDrained } from '../entity.js';
import { isMessage, onSignal, refusePlaintext } from '../messages.js';
import { ENTITY_QUEUE_SUFFIX } from '../taskQueues.js';
import { LlmModel } from '../request/contract.js';
import {
  cancelSignal,
  type CollectorInput,
  collectorStatusQuery,
  type CollectorWorkflow,
  type DeferredActivities,
  DeferredBatchId,
  DeferredProvider,
  DeferredState,
  type Flight,
  flushSignal,
  joinSignal,
  leaveSignal,
  type LineRef,
} from './contract.js';

/** The activities run on the request queue, whose workers have the provider keys. */
function acts(): DeferredActivities {
  const q = workflowInfo().taskQueue;
  const taskQueue = q.endsWith(ENTITY_QUEUE_SUFFIX) ? q.slice(0, -ENTITY_QUEUE_SUFFIX.length) : q;
  return proxyActivities<DeferredActivities>({
    taskQueue,
    startToCloseTimeout: '10 minutes',
    // The activities heartbeat while they wait on the provider: a worker lost mid-call is retried within seconds.
    heartbeatTimeout: '10 seconds',
    // Provider outages are waited out: the lines' requests leave for live calls by their own deadlines.
    retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
  });
}

/** Continue as new after this many lines joined in one run (each join is one signal event). */
const JOINS_PER_RUN = 2_000;

export async function deferredCollector(input: CollectorInput): Promise<void> {
  refusePlaintext([input], 'deferredCollector');
  const a = acts();
  const { settings } = input;
  const pending: LineRef[] = [...(input.pending ?? [])];
  const flights: Flight[] = (input.flights ?? []).map((f) => ({ ...f }));
  let seq = input.seq ?? 0;
  let delivered = input.delivered ?? 0;
  let joins = 0;
  let flushAsked = input.flushAsked ?? false;
  let cancelAsked = input.cancelAsked ?? false;
  /** When each pending line joined (this run's clock; carried lines count from the run's start). */
  const joinedAt = new Map<string, number>(pending.map((l) => [l.id, Date.now()]));

  onSignal(joinSignal, (l) => {
    if (!isMessage(l) || typeof l.id !== 'string' || typeof l.workflowId !== 'string') return void log.warn('join ignored: malformed', {});
    joins += 1;
    if (joinedAt.has(l.id) || flights.some((f) => f.lines.some((x) => x.id === l.id))) return; // a retried join
    pending.push(l);
    joinedAt.set(l.id, Date.now());
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
  setHandler(collectorStatusQuery, () => {
    const oldest = Math.min(...pending.map((l) => l.joinedAtMs ?? joinedAt.get(l.id) ?? 0));
    return {
      provider: input.provider,
      model: input.model,
      settings,
      pending: pending.length,
      ...(pending.length > 0 ? { oldestPendingSinceMs: oldest } : {}),
      flights: flights.map((f) => ({ seq: f.seq, ...(f.batchId ? { batchId: f.batchId } : {}), state: f.state, lines: f.lines.length, polls: f.polls })),
      delivered,
    };
  });

  let shown = '';
  const show = (state: string, batchId: string) => {
    if (shown === `${state}|${batchId}`) return;
    shown = `${state}|${batchId}`;
    upsertSearchAttributes([
      { key: DeferredProvider, value: input.provider },
      { key: LlmModel, value: input.model },
      { key: DeferredState, value: state },
      { key: DeferredBatchId, value: batchId },
    ]);
  };

  /** When the first waiting line must go: its age, or half its time before it leaves for a live call (deadline.ts). */
  const firstDue = () => Math.min(...pending.map((l) => submitBy(l.joinedAtMs ?? joinedAt.get(l.id) ?? Date.now(), l.leaveAtMs, settings)));
  const due = () => pending.length >= settings.maxLines || (pending.length > 0 && (flushAsked || firstDue() <= Date.now()));

  for (;;) {
    if (cancelAsked) {
      cancelAsked = false;
      await cancelAll(a, input, flights, pending);
    }
    if (due()) {
      flushAsked = false;
      const lines = pending.splice(0, settings.maxLines);
      for (const l of lines) joinedAt.delete(l.id);
      seq += 1;
      const f: Flight = {
        seq,
        tag: `${workflowInfo().workflowId}#${workflowInfo().firstExecutionRunId.slice(0, 8)}#${seq}`,
        sinceMs: Date.now(),
        lines,
        state: 'submitting',
        polls: 0,
      };
      flights.push(f);
      show('submitting', '');
      if (!(await submit(a, input, f))) flights.splice(flights.indexOf(f), 1);
      continue;
    }
    // Carried over continue-as-new mid-submission (a worker died): find it again or submit it.
    const unsent = flights.find((f) => f.state === 'submitting');
    if (unsent) {
      if (!(await submit(a, input, unsent))) flights.splice(flights.indexOf(unsent), 1);
      continue;
    }
    for (const f of flights.filter((x) => x.state === 'delivering')) {
      try {
        const r = await a.deliverProviderBatch({ provider: input.provider, model: input.model, batchId: f.batchId ?? '', lines: f.lines });
        delivered += r.answered + r.failed;
        log.info('provider batch delivered', { batchId: f.batchId, ...r });
      } catch (e) {
        // Its results could not be read (after the activity's retries): the requests go live, never stuck.
        await giveUp(a, input, f, `the results of provider batch ${f.batchId ?? ''} could not be read: ${e instanceof Error ? e.message : String(e)}`);
      }
      flights.splice(flights.indexOf(f), 1);
    }
    const now = Date.now();
    for (const f of flights.filter((x) => x.state === 'running' && (x.nextPollAtMs ?? 0) <= now)) {
      try {
        const p = await a.pollProviderBatch({ provider: input.provider, model: input.model, batchId: f.batchId ?? '' });
        f.polls += 1;
        f.nextPollAtMs = Date.now() + nextPollMs(f.polls, settings);
        if (p.ended) f.state = 'delivering';
      } catch (e) {
        await giveUp(a, input, f, `provider batch ${f.batchId ?? ''} could not be polled: ${e instanceof Error ? e.message : String(e)}`);
        flights.splice(flights.indexOf(f), 1);
      }
    }
    if (flights.some((f) => f.state === 'delivering')) continue;
    if (joins >= JOINS_PER_RUN || workflowInfo().continueAsNewSuggested) break;
    const running = flights[0];
    show(running ? 'polling' : pending.length > 0 ? 'collecting' : 'idle', running?.batchId ?? '');
    // Wait for the next poll, the batch to fill, its oldest line to age out, or an operator.
    const wakes = [...flights.map((f) => (f.nextPollAtMs ?? Date.now()) - Date.now()), ...(pending.length > 0 ? [firstDue() - Date.now()] : [])];
    // A join wakes it too: the first line of an idle collector starts the age clock.
    const joinsBefore = joins;
    const woken = () => due() || cancelAsked || joins !== joinsBefore;
    if (wakes.length === 0) await condition(woken);
    else await condition(woken, Math.max(1, Math.min(...wakes)));
  }
  await continueAsNewWhenDrained<typeof deferredCollector>(() => [
    { provider: input.provider, model: input.model, settings, pending, flights, seq, delivered, flushAsked, cancelAsked },
  ]);
}

/** Submits a flight's provider batch (the activity finds it again if a worker died after creating it). */
async function submit(a: DeferredActivities, input: CollectorInput, f: Flight): Promise<boolean> {
  try {
    const { batchId } = await a.submitProviderBatch({ provider: input.provider, model: input.model, tag: f.tag, sinceMs: f.sinceMs, lines: f.lines });
    f.batchId = batchId;
    f.state = 'running';
    f.nextPollAtMs = Date.now() + nextPollMs(0, input.settings);
    return true;
  } catch (e) {
    // The provider would not take it: its requests go live now.
    const message = e instanceof Error ? e.message : String(e);
    log.warn('provider batch could not be submitted; its requests go live', { tag: f.tag, error: message });
    await returnOrLog(a, f.lines, 'failed', `the provider batch could not be submitted: ${message}`);
    return false;
  }
}

/** A provider batch the collector cannot follow any more: its requests go live (the batch is cancelled, best effort). */
async function giveUp(a: DeferredActivities, input: CollectorInput, f: Flight, message: string): Promise<void> {
  log.warn('giving up on a provider batch; its requests go live', { batchId: f.batchId, message });
  // Best effort: a batch nobody follows any more should stop costing money.
  if (f.batchId) await a.cancelProviderBatch({ provider: input.provider, model: input.model, batchId: f.batchId }).catch(() => undefined);
  await returnOrLog(a, f.lines, 'failed', message);
}

/** Tells lines' requests to go live; if even that fails, they leave on their own at their deadlines (never stuck). */
async function returnOrLog(a: DeferredActivities, lines: readonly LineRef[], why: 'failed' | 'cancelled', message: string): Promise<void> {
  try {
    await a.returnLines({ lines, why, message });
  } catch (e) {
    log.warn('could not tell requests to go live; they leave at their deadlines', { lines: lines.length, error: e instanceof Error ? e.message : String(e) });
  }
}

/** An operator's cancel: provider batches in flight are cancelled (their lines come back as cancelled), pending lines go live. */
async function cancelAll(a: DeferredActivities, input: CollectorInput, flights: Flight[], pending: LineRef[]): Promise<void> {
  for (const f of flights)
    if (f.batchId) await a.cancelProviderBatch({ provider: input.provider, model: input.model, batchId: f.batchId }).catch(() => undefined);
  const lines = pending.splice(0, pending.length);
  if (lines.length > 0) await returnOrLog(a, lines, 'cancelled', 'an operator cancelled the collector');
}

deferredCollector satisfies CollectorWorkflow;
