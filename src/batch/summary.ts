/** Batch results and their summary: counts and cost per tier and model, failures by reason. Pure. */
import { formatUsd, type Usage } from '../catalog/pricing.js';
import { formatTable } from '../util/table.js';
import type { RequestFailureDetails, RequestResult } from '../workflows/request/contract.js';

/** A batch line that was not run: its number and why. */
export interface BadLine {
  readonly line: number;
  readonly error: string;
  /** The line's id (an OpenAI line's custom_id) when it has one that could be read. */
  readonly id?: string;
}

export interface BatchResultLine {
  readonly id: string;
  readonly workflowId: string;
  readonly status: 'completed' | 'failed';
  /** The answering model; for a failed request, the last model tried (null if none was). */
  readonly model: string | null;
  readonly tier: string | null;
  readonly costNanos: number;
  readonly premiumBaselineCostNanos: number;
  readonly text?: string;
  /** The tools a completed request's answer called. */
  readonly toolCalls?: ReadonlyArray<{ readonly id: string; readonly name: string; readonly arguments: string }>;
  /** Tokens of a completed request (for the OpenAI Batch output format). */
  readonly usage?: Usage;
  readonly finishReason?: string;
  readonly error?: { readonly type: string; readonly message: string };
}

export function completedResultLine(id: string, r: RequestResult): BatchResultLine {
  return {
    id,
    workflowId: r.workflowId,
    status: 'completed',
    model: r.model,
    tier: r.tier,
    costNanos: r.costNanos,
    premiumBaselineCostNanos: r.premiumBaselineCostNanos,
    text: r.text,
    ...(r.toolCalls ? { toolCalls: r.toolCalls } : {}),
    usage: r.usage,
    ...(r.finishReason ? { finishReason: r.finishReason } : {}),
  };
}

/** The result line of a failed request: the last model tried, and what the attempts cost. */
export function failedResultLine(
  id: string,
  workflowId: string,
  error: { type: string; message: string },
  details: RequestFailureDetails | undefined,
): BatchResultLine {
  const last = details?.attempts.at(-1);
  return {
    id,
    workflowId,
    status: 'failed',
    model: last?.model ?? null,
    tier: last?.tier ?? null,
    costNanos: details?.costNanos ?? 0,
    premiumBaselineCostNanos: 0,
    error,
  };
}

export interface BatchSummary {
  requests: number;
  completed: number;
  failed: number;
  /** Lines skipped as malformed (not counted in `requests`). */
  invalid: number;
  /** Requests whose workflow already existed (finished or running) and were collected, not started. */
  alreadyStarted: number;
  costNanos: number;
  premiumBaselineCostNanos: number;
  byTier: Record<string, { requests: number; costNanos: number }>;
  byModel: Record<string, { tier: string; requests: number; costNanos: number }>;
  failures: Record<string, number>;
  /** The first malformed lines, with line numbers and why. */
  invalidLines: BadLine[];
  wallMs: number;
  /** Billable Temporal actions of the requests and their cost (demo, and `batch --json`). */
  temporalActions?: { requests: number; actions: number; perRequest: number; usdPerMillion: number; costNanos: number };
}

export const MAX_INVALID_KEPT = 100;

export function emptySummary(): BatchSummary {
  return {
    requests: 0,
    completed: 0,
    failed: 0,
    invalid: 0,
    alreadyStarted: 0,
    costNanos: 0,
    premiumBaselineCostNanos: 0,
    byTier: {},
    byModel: {},
    failures: {},
    invalidLines: [],
    wallMs: 0,
  };
}

export function addResult(s: BatchSummary, r: BatchResultLine): void {
  s.requests += 1;
  s.costNanos += r.costNanos;
  if (r.status === 'completed') {
    s.completed += 1;
    s.premiumBaselineCostNanos += r.premiumBaselineCostNanos;
    if (r.model && r.tier) {
      const m = (s.byModel[r.model] ??= { tier: r.tier, requests: 0, costNanos: 0 });
      m.requests += 1;
      m.costNanos += r.costNanos;
      const t = (s.byTier[r.tier] ??= { requests: 0, costNanos: 0 });
      t.requests += 1;
      t.costNanos += r.costNanos;
    }
  } else {
    s.failed += 1;
    const reason = r.error?.type ?? 'failed';
    s.failures[reason] = (s.failures[reason] ?? 0) + 1;
  }
}

export function addInvalid(s: BatchSummary, bad: BadLine): void {
  s.invalid += 1;
  if (s.invalidLines.length < MAX_INVALID_KEPT) s.invalidLines.push(bad);
}

/** The human-readable bill: one row per model, then per tier, then totals and the premium baseline. */
export function formatSummary(s: BatchSummary): string {
  const rows: string[][] = [['tier', 'model', 'requests', 'cost']];
  const order = ['economy', 'standard', 'premium'];
  const rank = (t: string): number => (order.includes(t) ? order.indexOf(t) : order.length);
  const models = Object.entries(s.byModel).sort((a, b) => rank(a[1].tier) - rank(b[1].tier) || a[0].localeCompare(b[0]));
  for (const [name, m] of models) rows.push([m.tier, name, String(m.requests), formatUsd(m.costNanos)]);
  rows.push(['', '', '', '']);
  for (const [t, v] of Object.entries(s.byTier).sort((a, b) => rank(a[0]) - rank(b[0]))) rows.push([t, '(all)', String(v.requests), formatUsd(v.costNanos)]);
  const saved = s.premiumBaselineCostNanos > 0 ? (1 - s.costNanos / s.premiumBaselineCostNanos) * 100 : 0;
  const failures = Object.entries(s.failures);
  return [
    formatTable(rows, (i) => i >= 2),
    '',
    `requests ${s.requests}, completed ${s.completed}, failed ${s.failed}${failures.length ? ` (${failures.map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}${s.invalid ? `; ${s.invalid} malformed line(s) skipped` : ''}${s.alreadyStarted ? `; ${s.alreadyStarted} already run (collected, not charged again)` : ''}`,
    `total cost            ${formatUsd(s.costNanos)}`,
    `on the premium model  ${formatUsd(s.premiumBaselineCostNanos)}  (routing saved ${saved.toFixed(1)}%)`,
    ...(s.temporalActions
      ? [
          `Temporal actions      ${s.temporalActions.actions} (${s.temporalActions.perRequest} per request) = ${formatUsd(s.temporalActions.costNanos)} at $${s.temporalActions.usdPerMillion}/million`,
          `model + orchestration ${formatUsd(s.costNanos + s.temporalActions.costNanos)}  (net saving ${s.premiumBaselineCostNanos > 0 ? ((1 - (s.costNanos + s.temporalActions.costNanos) / s.premiumBaselineCostNanos) * 100).toFixed(1) : '0.0'}%)`,
        ]
      : []),
    `wall time             ${(s.wallMs / 1000).toFixed(1)} s (${s.wallMs > 0 ? (s.requests / (s.wallMs / 1000)).toFixed(1) : '-'} requests/s)`,
  ].join('\n');
}
