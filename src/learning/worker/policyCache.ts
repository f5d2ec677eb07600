/**
 * The worker's copy of its task queue's routing policy (tuned thresholds, rules, experiments,
 * anomaly actions), read from the routing entity every `ttlMs` in the background by one query:
 * the router reads the copy, never the entity, and never waits for it once a copy exists.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Logger } from 'pino';
import type { PolicyView } from '../routingControl.js';
import { policyQuery, routingWorkflowId } from '../../workflows/routing/contract.js';

const POLICY_QUERY_MS = 2_000;

export class PolicyCache {
  private cached: { at: number; view: PolicyView | undefined } = { at: Number.NEGATIVE_INFINITY, view: undefined };
  private inflight: Promise<PolicyView | undefined> | undefined;

  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  /** The last policy read (undefined: no routing entity yet, or it could not be read: route by the configuration). */
  private timer: NodeJS.Timeout | undefined;

  /** Keeps the copy fresh in the background (every ttlMs), so that requests never wait on the query. */
  start(): void {
    this.timer ??= setInterval(() => void this.refresh(), this.ttlMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async view(): Promise<PolicyView | undefined> {
    const age = Date.now() - this.cached.at;
    if (age < this.ttlMs) return this.cached.view;
    // The background refresh keeps it within ttlMs; a copy much older (or none yet) is read now.
    if (!this.timer || age > 3 * this.ttlMs) return this.refresh();
    return this.cached.view;
  }

  private refresh(): Promise<PolicyView | undefined> {
    this.inflight ??= this.temporal
      .withDeadline(Date.now() + POLICY_QUERY_MS, () => this.temporal.workflow.getHandle(routingWorkflowId(this.taskQueue)).query(policyQuery))
      .catch((e: unknown) => {
        if (!(e instanceof WorkflowNotFoundError)) this.log.warn({ err: (e as Error).message }, 'routing policy query failed; routing by the last policy read');
        return e instanceof WorkflowNotFoundError ? undefined : this.cached.view;
      })
      .then((view) => {
        this.cached = { at: Date.now(), view };
        this.inflight = undefined;
        return view;
      });
    return this.inflight;
  }

  /** Read the policy again on the next request, and wait for it (an operator's change that must apply at once). */
  invalidate(): void {
    this.cached = { at: Number.NEGATIVE_INFINITY, view: undefined };
  }
}
