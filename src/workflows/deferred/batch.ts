/**
 * One provider batch of a collector's lines (the collector starts it and leaves it to run): submit
 * it through the provider's SDK (found again by its tag if a worker died after creating it), poll
 * it on durable timers with backoff, then hand each line's outcome to its request. A batch it cannot
 * submit, poll or read sends its requests live (cancelled at the provider, best effort); an
 * operator's cancel cancels it at the provider and its lines come back cancelled. Its lines are in
 * its input and its history, never in the collector's state. docs/deferred.md.
 */
import { condition, log, patched, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { continueAsNewWhenDrained } from '../entity.js';
import { nextPollMs } from '../../deferred/deadline.js';
import { onSignal, refusePlaintext } from '../messages.js';
import { LlmModel } from '../request/contract.js';
import { deferredActs, failureText, returnOrLog, unsettledOf } from './batchSteps.js';
import type { UnsettledSpend } from '../request/contract.js';
import {
  type DeliveryCounts,
  type ProviderBatchInput,
  type ProviderBatchState,
  providerBatchStatusQuery,
  type ProviderBatchSummary,
  type ProviderBatchWorkflow,
  cancelSignal,
  DeferredBatchId,
  DeferredProvider,
  DeferredState,
} from './contract.js';

export async function deferredBatch(input: ProviderBatchInput): Promise<ProviderBatchSummary> {
  refusePlaintext([input], 'deferredBatch');
  const a = deferredActs();
  const at = { provider: input.provider, model: input.model };
  let state: ProviderBatchState = 'submitting';
  let batchId: string | undefined = input.batchId;
  let polls = input.polls ?? 0;
  let cancelAsked = input.cancelAsked ?? false;
  onSignal(cancelSignal, () => {
    cancelAsked = true;
  });
  const status = () => ({ model: input.model, seq: input.seq, ...(batchId ? { batchId } : {}), state, lines: input.lines.length, polls });
  setHandler(providerBatchStatusQuery, status);
  const show = (s: ProviderBatchState) => {
    state = s;
    upsertSearchAttributes([
      { key: DeferredProvider, value: input.provider },
      { key: LlmModel, value: input.model },
      { key: DeferredState, value: s },
      { key: DeferredBatchId, value: batchId ?? '' },
    ]);
  };
  /**
   * Since `batch-lean-upserts`, a state that lasts a moment is not shown (an upsert is a billed
   * action): `submitting` is set when the collector starts the batch, and `delivering` passes
   * straight to `delivered`.
   */
  const lean = patched('batch-lean-upserts');
  const pass = (s: ProviderBatchState) => (lean ? void (state = s) : show(s));
  const end = (counts: DeliveryCounts): ProviderBatchSummary => ({ ...status(), ...counts });
  /**
   * Settlements a gone budget entity could not take are shown (state `unsettled`) so that `budget
   * restore` finds this batch and applies them from its result (patch `batch-unsettled`; before
   * it, they were logged only).
   */
  const owing = (unsettled: readonly UnsettledSpend[] | undefined): boolean => (unsettled?.length ?? 0) > 0 && patched('batch-unsettled');
  const giveUp = async (message: string, unsettled?: UnsettledSpend[]): Promise<ProviderBatchSummary> => {
    log.warn('giving up on a provider batch; its requests go live', { batchId, message });
    // Best effort: a batch nobody follows any more should stop costing money.
    if (batchId) await a.cancelProviderBatch({ ...at, batchId }).catch(() => undefined);
    await returnOrLog(a, input.lines, 'failed', message);
    const owes = owing(unsettled);
    show(owes ? 'unsettled' : 'returned');
    return end({ answered: 0, failed: input.lines.length, duplicated: 0, ...(owes ? { unsettled } : {}) });
  };

  if (batchId === undefined) {
    pass('submitting');
    try {
      batchId = (await a.submitProviderBatch({ ...at, tag: input.tag, sinceMs: input.sinceMs, lines: input.lines })).batchId;
    } catch (e) {
      // The provider would not take it: its requests go live now.
      return giveUp(`the provider batch could not be submitted: ${failureText(e)}`);
    }
  }
  let cancelled = input.cancelled ?? false;
  show(cancelled ? 'cancelling' : 'polling');
  for (;;) {
    // A batch polled for long (up to the provider's 24 h) keeps its history small.
    if (workflowInfo().continueAsNewSuggested)
      await continueAsNewWhenDrained<typeof deferredBatch>(() => [{ ...input, batchId, polls, cancelled, cancelAsked }]);
    await condition(() => cancelAsked && !cancelled, nextPollMs(polls, input.settings));
    if (cancelAsked && !cancelled) {
      // An operator's cancel: the provider ends the batch as cancelled, and its lines come back so.
      cancelled = true;
      show('cancelling');
      await a.cancelProviderBatch({ ...at, batchId }).catch(() => undefined);
    }
    try {
      const p = await a.pollProviderBatch({ ...at, batchId });
      polls += 1;
      if (p.ended) break;
    } catch (e) {
      return giveUp(`provider batch ${batchId} could not be polled: ${failureText(e)}`);
    }
  }
  pass('delivering');
  try {
    const r = await a.deliverProviderBatch({ ...at, batchId, lines: input.lines });
    log.info('provider batch delivered', { batchId, answered: r.answered, failed: r.failed, duplicated: r.duplicated, unsettled: r.unsettled?.length ?? 0 });
    show(owing(r.unsettled) ? 'unsettled' : 'delivered');
    return end(r);
  } catch (e) {
    // Its results could not be read or handed over (after the activity's retries): the requests go
    // live, never stuck; settlements it found a gone budget entity could not take come with the failure.
    return giveUp(`the results of provider batch ${batchId} could not be read: ${failureText(e)}`, unsettledOf(e));
  }
}

deferredBatch satisfies ProviderBatchWorkflow;
