/** The server-side batch workflow's input, state and status query. Pure apart from defineQuery. */
import { defineQuery } from '@temporalio/workflow';
import type { BatchResultLine, BatchSummary } from '../../batch/summary.js';
import type { ChatMessage } from '../conversation.js';

export interface BatchSource {
  /** Where the workers read the input: a copy the CLI made (a path every worker can read). */
  readonly path: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  /** Non-blank lines: the number of requests, malformed lines included. */
  readonly lines: number;
  /** The file the user gave, for display. */
  readonly originalName: string;
}

export interface BatchCursor {
  /** Byte offset of the next line to read. */
  readonly offset: number;
  /** Number of the last line read (1-based line numbers). */
  readonly lineNo: number;
}

export interface BatchState {
  cursor: BatchCursor;
  summary: BatchSummary;
  /** Runs so far, counting continue-as-new. */
  runs: number;
  startedAt: number;
}

export interface BatchRunInput {
  readonly batchId: string;
  readonly source: BatchSource;
  readonly concurrency: number;
  /** Category for lines that do not name one. */
  readonly category?: string | undefined;
  /** Feature for lines that name none. */
  readonly feature?: string | undefined;
  /** Child workflows per run before continuing as new (history stays bounded at any batch size). */
  readonly childrenPerRun?: number | undefined;
  /**
   * Lines whose id repeats an earlier line's, found when the CLI validated the file: the worker
   * skips them (reading a page at a time, it cannot see earlier pages' ids).
   */
  readonly duplicates?: readonly number[] | undefined;
  /** Payloads are encrypted: children's memos carry no prompt text. */
  readonly redactTitles?: boolean | undefined;
  /** Fields set on every request that does not set them (e.g. maxBudgetWaitMs). */
  readonly requestDefaults?: { readonly maxBudgetWaitMs?: number; readonly deadline?: string } | undefined;
  /** Lines read per activity call. */
  readonly pageSize?: number | undefined;
  /** Fields set on every line over what it says (a gateway key's budget scope, key id, allowed models and tiers). */
  readonly overrides?: Readonly<Record<string, unknown>> | undefined;
  /** Put in front of every line's request id (a gateway batch: its lines never share a request with another batch's). */
  readonly requestIdPrefix?: string | undefined;
  /** Carried over by continue-as-new. */
  readonly state?: BatchState | undefined;
}

export interface BatchRunStatus {
  readonly batchId: string;
  readonly state: 'running' | 'completed';
  readonly source: BatchSource;
  readonly done: number;
  readonly inFlight: number;
  /** Workflow ids of (up to 100) requests in flight. */
  readonly inFlightIds?: string[];
  /** Of those, what they wait on (sampled by the client from their traces). */
  readonly waiting?: Partial<Record<'budget' | 'rate_limit' | 'backoff', { count: number; until: string }>>;
  readonly runs: number;
  readonly startedAt: string;
  readonly summary: BatchSummary;
}

/** One line of a batch file as the page-reading activity returns it. */
export interface PageItem {
  readonly line: number;
  readonly id: string;
  readonly request: Record<string, unknown> & { requestId: string; prompt?: string; messages?: ChatMessage[]; category?: string };
}

export interface BatchPage {
  readonly items: PageItem[];
  readonly invalid: Array<{ line: number; error: string }>;
  readonly next: BatchCursor;
  readonly eof: boolean;
}

export const batchStatusQuery = defineQuery<BatchRunStatus>('batchStatus');

export function batchWorkflowId(batchId: string): string {
  return `batch-${batchId}`;
}

/** The activities the batch run calls (implemented in activities/batch/, which satisfies this). */
export interface BatchActivities {
  /** The next page of the batch file from the cursor (the file must be the one the batch started with). */
  readBatchPage(input: {
    source: BatchSource;
    cursor: BatchCursor;
    maxLines: number;
    category?: string | undefined;
    feature?: string | undefined;
    duplicates?: readonly number[];
    overrides?: Readonly<Record<string, unknown>>;
    requestIdPrefix?: string;
  }): Promise<BatchPage>;
  /** The outcome of a request that already existed, waiting (with heartbeats) if it is still running. */
  awaitRequest(input: { id: string; workflowId: string }): Promise<BatchResultLine>;
}
