/**
 * The worker's copy of its task queue's routing policy (tuned thresholds, rules, experiments,
 * anomaly actions), read from the routing entity at most once per `ttlMs` by one shared query: the
 * router reads it the way it reads circuit health, never once per request.
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
  async view(): Promise<PolicyView | undefined> {
    if (Date.now() - this.cached.at < this.ttlMs) return this.cached.view;
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

  /** Forget the cached policy (tests, and an operator's change that must apply at once). */
  invalidate(): void {
    this.cached = { at: Number.NEGATIVE_INFINITY, view: this.cached.view };
  }
}
