/**
 * The deferred lane's contract: one collector entity per task queue, provider and model gathers
 * deferred requests and submits them as one provider batch; its id, input, messages, search
 * attributes, and the activities it (and a deferred request) calls. docs/deferred.md.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CollectorSettings } from '../../deferred/deadline.js';
import type { ProviderName } from '../../catalog/tiers.js';
import type { CallModelOutput } from '../request/activities.js';
import type { UnsettledSpend } from '../request/contract.js';

/** Collectors and provider batches keep their provider, provider batch id and state (declared with the namespace's other attributes). */
export { DeferredBatchId, DeferredProvider, DeferredState } from '../request/contract.js';

/**
 * A short, provider-safe line id ([A-Za-z0-9_-], Anthropic's custom_id alphabet) for a request's
 * attempt: two 32-bit FNV-1a hashes (workflow code has no crypto module; 64 bits keep collisions
 * out of reach for a batch's lines).
 */
export function lineIdOf(workflowId: string, attemptId: string): string {
  const text = `${workflowId}\u0000${attemptId}`;
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0;
  }
  return `l${a.toString(16).padStart(8, '0')}${b.toString(16).padStart(8, '0')}`;
}

export function collectorWorkflowId(taskQueue: string, model: string): string {
  return `deferred-${taskQueue}-${model}`;
}

/** A line as the collector keeps it: references only (the prompt stays in the request's history). */
export interface LineRef {
  /** Short and provider-safe (Anthropic: [A-Za-z0-9_-]{1,64}): the line's custom id. */
  readonly id: string;
  readonly workflowId: string;
  readonly runId: string;
  readonly attemptId: string;
  readonly maxOutputTokens: number;
  /** When the request leaves for a live call (epoch ms). */
  readonly leaveAtMs: number;
  /** When it joined (carried over continue-as-new, so a line's age is not reset). */
  readonly joinedAtMs?: number;
  /** Where a line the provider answers after its request left is charged (as duplicated). */
  readonly scope: string;
  readonly shard: number;
  readonly category: string;
  /**
   * Present when the request waits in an activity (runs since the `deferred-await` patch): the
   * activity that delivers the answer completes the request's wait and settles the line, so the
   * request spends neither a timer, an update nor a settling task on it.
   */
  readonly settle?: LineSettle | undefined;
}

/** What the deliverer needs to settle a taken line as the request would have. */
export interface LineSettle {
  readonly reservationId: string;
  /** The reservation's sequence number: a settlement retried however late is known as one (budget/book.ts). */
  readonly seq?: number | undefined;
  readonly feature: string;
  readonly keyId?: string | undefined;
}

/**
 * The activity id of a request's wait for its line's answer: the deliverer completes it by this id
 * (with the request's workflow and run ids), so nobody has to carry a task token.
 */
export function batchWaitActivityId(attemptId: string): string {
  return `batch-wait-${attemptId}`;
}

/**
 * One provider batch, followed by its own workflow (a child the collector starts and leaves to run):
 * submit, poll, hand each line's outcome to its request. Its lines live in its input and history
 * only, so the collector's state holds the waiting lines and nothing of the batches in flight.
 */
export interface ProviderBatchInput {
  readonly provider: ProviderName;
  readonly model: string;
  readonly settings: CollectorSettings;
  readonly seq: number;
  /** Kept by the provider where it can (OpenAI metadata) to find the batch again after a crash. */
  readonly tag: string;
  /** When submission began: a batch found again was created after this. */
  readonly sinceMs: number;
  readonly lines: readonly LineRef[];
  /** Carried over continue-as-new (a long batch's polls): the batch submitted, its polls, an operator's cancel done. */
  readonly batchId?: string;
  readonly polls?: number;
  readonly cancelled?: boolean;
  readonly cancelAsked?: boolean;
}

/**
 * `unsettled`: delivered, but the budget entity of some lines was gone when they were settled (the
 * ledger holds them); `switchyard budget restore` applies them from the batch's result.
 */
export type ProviderBatchState = 'submitting' | 'polling' | 'cancelling' | 'delivering' | 'delivered' | 'unsettled' | 'returned';

export interface ProviderBatchStatus {
  readonly model: string;
  readonly seq: number;
  readonly batchId?: string;
  readonly state: ProviderBatchState;
  readonly lines: number;
  readonly polls: number;
}

export interface DeliveryCounts {
  readonly answered: number;
  readonly failed: number;
  readonly duplicated: number;
  /** Settlements of taken (or duplicated) lines that a gone budget entity could not apply; `budget restore` applies them. */
  readonly unsettled?: UnsettledSpend[];
}

export interface ProviderBatchSummary extends ProviderBatchStatus, DeliveryCounts {}

/** The workflow id of a collector's provider batch: the collector's id, its first run and the batch's number. */
export function providerBatchWorkflowId(collectorId: string, firstRunId: string, seq: number): string {
  return `${collectorId}-b${firstRunId}-${seq}`;
}

export const PROVIDER_BATCH_TYPE = 'deferredBatch';
export type ProviderBatchWorkflow = (input: ProviderBatchInput) => Promise<ProviderBatchSummary>;
export const providerBatchStatusQuery = defineQuery<ProviderBatchStatus>('batchStatus');

export interface CollectorInput {
  /** The collector's workflow id (its provider batches' ids are made from it; replay-stable, unlike a renamed run's id). */
  readonly id?: string;
  readonly provider: ProviderName;
  readonly model: string;
  readonly settings: CollectorSettings;
  /** Carried over continue-as-new. */
  readonly pending?: readonly LineRef[];
  readonly seq?: number;
  /** Lines lately handed to a batch, and when (a retried join of one is not submitted again). */
  readonly sent?: ReadonlyArray<readonly [string, number]>;
  /** An operator's flush or cancel not yet acted on when the run continued as new. */
  readonly flushAsked?: boolean;
  readonly cancelAsked?: boolean;
}

export interface CollectorStatus {
  readonly provider: ProviderName;
  readonly model: string;
  readonly settings: CollectorSettings;
  readonly pending: number;
  /** When the oldest waiting line joined (epoch ms; a query's clock stands still, so the client works out the age). */
  readonly oldestPendingSinceMs?: number;
  /** Provider batches this collector has started in all its runs. */
  readonly batches: number;
}

/** A collector's status as the client shows it: the oldest waiting line's age by the client's clock, and its provider batches in flight. */
export interface CollectorView extends CollectorStatus {
  readonly oldestPendingAgeMs?: number;
  readonly flights: readonly ProviderBatchStatus[];
}

/** One line joins (sent by workers before joins were gathered; still taken). */
export const joinSignal = defineSignal<[LineRef]>('join');
/** The lines that joined a collector in the same moment, in one signal (activities/deferred/joinCoalescer.ts). */
export const joinManySignal = defineSignal<[readonly LineRef[]]>('joinMany');
/** A request left for a live call: its line is not submitted (if it still can be held back). */
export const leaveSignal = defineSignal<[{ id: string }]>('leave');
/** Submit what is pending now. */
export const flushSignal = defineSignal('flush');
/** To a collector: send its waiting lines live. To a provider batch: cancel it at the provider (its lines come back cancelled and go live). */
export const cancelSignal = defineSignal('cancel');
export const collectorStatusQuery = defineQuery<CollectorStatus>('status');

export const COLLECTOR_TYPE = 'deferredCollector';
export type CollectorWorkflow = (input: CollectorInput) => Promise<void>;

/** A line's outcome, handed to its request. */
export type DeferredAnswer =
  | {
      readonly attemptId: string;
      readonly ok: true;
      readonly out: CallModelOutput;
      readonly batchId: string;
      /** The deliverer settles this answer once the request has taken it (a line that carries `settle`). */
      readonly settledByDelivery?: true;
    }
  | {
      readonly attemptId: string;
      readonly ok: false;
      readonly why: 'errored' | 'expired' | 'cancelled' | 'failed';
      readonly message: string;
      readonly batchId?: string;
      /** Returned without the provider's outcome (a batch nobody could follow): go live, not to another batch. */
      readonly final?: boolean;
    };

/** Hands a request its line's outcome: `taken`, or `left` (it went live: the activity charges the line as duplicated). */
export const deferredAnswerUpdate = defineUpdate<'taken' | 'left', [DeferredAnswer]>('deferredAnswer');

export interface JoinInput {
  readonly workflowId: string;
  readonly runId: string;
  readonly attemptId: string;
  readonly reservationId: string;
  readonly model: string;
  readonly scope: string;
  readonly category: string;
  readonly deadlineMs: number;
  readonly inputTokens: number;
  readonly maxOutputTokens: number;
  readonly force: boolean;
  readonly feature?: string | undefined;
  readonly keyId?: string | undefined;
  /** The request waits in `awaitBatchAnswer` and leaves the settlement to the deliverer (LineRef.settle). */
  readonly settleOnDelivery?: boolean | undefined;
}

export type JoinOutput =
  | {
      readonly joined: true;
      readonly lineId: string;
      readonly leaveAtMs: number;
      readonly shard: number;
      readonly seq?: number | undefined;
      readonly reservedNanos: number;
    }
  | { readonly joined: false; readonly why: string };

export interface DeferredActivities {
  /** A request joins its model's collector: reserve at the batch price, then signal-with-start the collector. */
  joinDeferred(input: JoinInput): Promise<JoinOutput>;
  /**
   * A request's wait for its line's outcome: completed from outside, by the activity that delivers
   * the answer (or returns the line), under the id `batchWaitActivityId`. Its schedule-to-close
   * timeout is the request's leave time, so the wait costs one activity and no timer.
   */
  awaitBatchAnswer(input: { lineId: string }): Promise<DeferredAnswer>;
  /** Submit (or find again, after a crash) the provider batch of these lines. */
  submitProviderBatch(input: { provider: ProviderName; model: string; tag: string; sinceMs: number; lines: readonly LineRef[] }): Promise<{ batchId: string }>;
  pollProviderBatch(input: { provider: ProviderName; model: string; batchId: string }): Promise<{ ended: boolean; state: string; message?: string }>;
  /** Hand every line's outcome to its request; lines whose request left are charged as duplicated. */
  deliverProviderBatch(input: { provider: ProviderName; model: string; batchId: string; lines: readonly LineRef[] }): Promise<DeliveryCounts>;
  /** Tell the lines' requests their batch could not be submitted (they go live). */
  returnLines(input: { lines: readonly LineRef[]; why: 'failed' | 'cancelled'; message: string }): Promise<void>;
  cancelProviderBatch(input: { provider: ProviderName; model: string; batchId: string }): Promise<void>;
}
