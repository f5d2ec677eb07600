/** What request runs cost in Temporal actions: their histories' billable actions, and their budget entities' updates meanwhile. */
import { type Client, defaultPayloadConverter } from '@temporalio/client';
import { shardWorkflowId } from '../budget/shards.js';
import { billableActions } from '../temporal/billableActions.js';
import type { RequestInput } from '../workflows/request/contract.js';
import { visibilityString } from './runsQuery.js';

export interface TemporalActionsSummary {
  readonly requests: number;
  readonly actions: number;
  readonly perRequest: number;
  /** Of `actions`: in the requests' own histories, and updates their budget entities accepted meanwhile. */
  readonly inHistories?: number;
  readonly entityUpdates?: number;
  readonly usdPerMillion: number;
  /** actions x price, in nanodollars. */
  readonly costNanos: number;
}

/** An event's time in epoch ms (0 when absent). */
function eventMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
}

/**
 * Billable Temporal actions of these request runs (their histories, by Temporal Cloud's rules)
 * plus the updates their budget entities accepted while they ran (a worker's batcher folds many
 * requests' reserves and settlements into one update, so these are shared out; other traffic on
 * the same scopes in that window is counted too, an upper bound), and what they cost at
 * `usdPerMillion`. `scopes`: the budget scopes the requests charged (read from their inputs when
 * absent).
 */
export async function countTemporalActions(
  temporal: Client,
  taskQueue: string,
  workflowIds: readonly string[],
  usdPerMillion: number,
  opts: { scopes?: readonly string[]; concurrency?: number } = {},
): Promise<TemporalActionsSummary> {
  let inHistories = 0;
  let counted = 0;
  let from = Number.POSITIVE_INFINITY;
  let until = 0;
  const scopes = new Set(opts.scopes ?? []);
  const queue = [...workflowIds];
  const worker = async (): Promise<void> => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const h = await temporal.workflow.getHandle(id).fetchHistory();
      inHistories += billableActions(h).total;
      counted += 1;
      const events = h.events ?? [];
      from = Math.min(from, eventMs(events[0]?.eventTime));
      until = Math.max(until, eventMs(events.at(-1)?.eventTime));
      if (!opts.scopes) {
        const payload = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
        let scope = 'default';
        try {
          if (payload) scope = defaultPayloadConverter.fromPayload<RequestInput>(payload).budgetScope ?? 'default';
        } catch {
          // Encrypted input: the default scope.
        }
        scopes.add(scope);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 16, queue.length)) }, worker));
  let entityUpdates = 0;
  for (const scope of scopes) {
    const base = shardWorkflowId(taskQueue, scope, 0, 1);
    for await (const run of temporal.workflow.list({ query: `WorkflowId STARTS_WITH ${visibilityString(base)}` })) {
      const shardPart = run.workflowId.startsWith(`${base}#`) ? run.workflowId.slice(base.length + 1) : undefined;
      if (run.workflowId !== base && !(shardPart !== undefined && /^\d+$/.test(shardPart))) continue;
      const h = await temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      for (const e of h.events ?? []) {
        const t = eventMs(e.eventTime);
        if (e.workflowExecutionUpdateAcceptedEventAttributes && t >= from && t <= until) entityUpdates += 1;
      }
    }
  }
  const actions = inHistories + entityUpdates;
  return {
    requests: counted,
    actions,
    inHistories,
    entityUpdates,
    perRequest: counted ? Math.round((actions / counted) * 100) / 100 : 0,
    usdPerMillion,
    costNanos: Math.round(actions * usdPerMillion * 1_000),
  };
}
