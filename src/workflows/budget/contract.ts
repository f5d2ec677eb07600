/** Messages of the budget entity workflow, and the operator's signals to a request workflow. */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type {
  BookState,
  BudgetSettings,
  BudgetStatus,
  DenialPolicy,
  PeriodSummary,
  ReallocationRecord,
  ReserveRequest,
  ReserveResult,
  SettleResult,
} from '../../budget/book.js';
import type { ReallocationPlan, ReallocationSettings } from '../../budget/reallocation.js';
import type { AlertActivities } from '../alerts.js';

/** The activities the budget entity calls: its soft-limit alerts (implemented in activities/budget/). */
export type BudgetEntityActivities = Pick<AlertActivities, 'sendBudgetAlert'>;

export interface BudgetEntityInput {
  readonly scope: string;
  readonly settings: BudgetSettings;
  /** Which part of a sharded scope this entity holds. */
  readonly shard?: { readonly index: number; readonly count: number };
  /** Carried over by continue-as-new. */
  readonly book?: BookState;
  /** Continue as new after this many history events even if the server has not suggested it. */
  readonly maxHistoryEvents?: number;
  /** Continue as new after this many updates (the server rejects updates past 2000 per run). */
  readonly maxUpdatesPerRun?: number;
}

export interface SettleInput {
  readonly reservationId: string;
  readonly category: string;
  readonly costNanos: number;
  /** The sequence number the reservation was granted with (exactly-once across continue-as-new). */
  readonly seq?: number | undefined;
}

export interface AdjustInput {
  readonly totalNanos?: number;
  readonly allocations?: Record<string, number>;
  readonly limits?: Record<string, 'hard' | 'soft'>;
  readonly policies?: Record<string, DenialPolicy>;
  readonly alertThresholds?: number[];
  readonly webhookUrl?: string | null;
  readonly maxWaitMs?: number;
  /** Reallocation settings, or null to stop reallocating. */
  readonly reallocation?: ReallocationSettings | null;
}

/** The settings an adjust may change; anything else is refused, naming it. */
export const ADJUST_KEYS = ['totalNanos', 'allocations', 'limits', 'policies', 'alertThresholds', 'webhookUrl', 'maxWaitMs', 'reallocation'] as const;

export const reserveUpdate = defineUpdate<ReserveResult, [ReserveRequest]>('reserve');
export const settleUpdate = defineUpdate<SettleResult, [SettleInput]>('settle');
export const releaseUpdate = defineUpdate<boolean, [{ reservationId: string }]>('release');
/** One of the operations a batch carries (see batchUpdate). */
export type BudgetOp =
  | ({ readonly op: 'reserve' } & ReserveRequest)
  | ({ readonly op: 'settle' } & SettleInput)
  | { readonly op: 'release'; readonly reservationId: string; readonly attempt?: number };
/** Each op's answer, in order: its value, or why it was refused (the type a single update would have failed with). */
export type BudgetOpResult =
  { readonly ok: true; readonly value: ReserveResult | SettleResult | boolean } | { readonly ok: false; readonly type: string; readonly message: string };
export const MAX_BATCH_OPS = 500;
/** Many requests' budget operations in one update: what a worker's batcher sends. */
export const batchUpdate = defineUpdate<BudgetOpResult[], [BudgetOp[]]>('batch');
export const adjustUpdate = defineUpdate<BudgetStatus, [AdjustInput]>('adjust');
export const resetUpdate = defineUpdate<PeriodSummary, []>('reset');
export const statusQuery = defineQuery<BudgetStatus>('status');
export const historyQuery = defineQuery<PeriodSummary[]>('history');
/** What a reallocation would move now (`budget realloc --dry-run`). */
export const reallocationPlanQuery = defineQuery<ReallocationPlan>('reallocationPlan');
/** Reallocations applied this and earlier periods (`budget history`). */
export const reallocationsQuery = defineQuery<ReallocationRecord[]>('reallocations');
/** Reallocate now (`budget realloc`): the record, with no moves when nothing needed moving. */
export const reallocateUpdate = defineUpdate<ReallocationRecord, []>('reallocate');
/** The whole book: what an operator's restore carries into a new run after the entity failed. */
export const stateQuery = defineQuery<BookState>('state');

/** The entity of an unsharded scope on a task queue (see shardWorkflowId). */
export function budgetWorkflowId(taskQueue: string, scope: string): string {
  return `budget:${taskQueue}:${scope}`;
}

/**
 * The entity's workflow type and signature, for callers that start it (activities, client) without
 * importing the workflow's code: `new WithStartWorkflowOperation<BudgetEntityWorkflow>(BUDGET_ENTITY_TYPE, ...)`.
 */
export const BUDGET_ENTITY_TYPE = 'budgetEntity';
export type BudgetEntityWorkflow = (input: BudgetEntityInput) => Promise<void>;
