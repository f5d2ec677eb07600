/**
 * The worker's copy of its task queue's routing policy (tuned thresholds, rules, experiments,
 * anomaly actions). A control change must be in force for every request started after the command
 * that made it returned, so before routing the worker checks that its copy is current:
 *
 * - The routing entity publishes a policy epoch in its memo, in the same workflow task as each
 *   change (so once an update such as `experiment create`, `routing revert` or `anomalies ack` has
 *   returned, the new epoch is visible). Reading it is one `describe()`, served by the server alone.
 * - Reads are coalesced without going stale: a request joins the describe that starts after it
 *   arrived (at most one runs at a time; everyone who arrived while it ran shares the next one), so a
 *   busy worker makes one describe per round trip, not one per request.
 * - When the memo's epoch is ahead of the copy, the worker queries the policy before routing.
 *
 * An entity of an earlier release has no memo: then the copy is read every `ttlMs`, as before. When
 * the server cannot be asked, the last copy routes: logged, and counted by `onStale`
 * (switchyard_policy_stale_total), so an operator sees changes that may not be in force.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Logger } from 'pino';
import { type PolicyView, wellFormedExperiment, wellFormedRule } from '../routingControl.js';
import { POLICY_EPOCH_MEMO, policyQuery, routingWorkflowId } from '../../workflows/routing/contract.js';

const POLICY_QUERY_MS = 2_000;
const DESCRIBE_MS = 2_000;

/** What the entity's memo says now: its epoch, none (an entity of an earlier release), or no entity at all. */
type Published = { kind: 'epoch'; epoch: number } | { kind: 'unpublished' } | { kind: 'absent' } | { kind: 'unknown' };

export type StaleReason = 'epoch_unreadable' | 'query_failed' | 'behind';

export class PolicyCache {
  private cached: { at: number; view: PolicyView | undefined } = { at: Number.NEGATIVE_INFINITY, view: undefined };
  private inflight: Promise<{ view: PolicyView | undefined; failed: boolean }> | undefined;
  private describing: Promise<Published> | undefined;
  private nextDescribe: Promise<Published> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly onStale: (reason: StaleReason) => void = () => undefined,
  ) {}

  /** Keeps the copy fresh in the background too (every ttlMs), for entities without a published epoch. */
  start(): void {
    this.timer ??= setInterval(() => void this.refresh(), this.ttlMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The policy to route a request by: current as of the moment this was called. */
  async view(): Promise<PolicyView | undefined> {
    const { view, stale } = await this.current();
    // Counted once per request routed by a copy that could not be checked (the first reason).
    if (stale) this.onStale(stale);
    return view;
  }

  private async current(): Promise<{ view: PolicyView | undefined; stale?: StaleReason }> {
    const published = await this.published();
    const have = this.cached.view;
    switch (published.kind) {
      case 'absent':
        // No routing entity (yet): route by the configuration.
        return have === undefined ? { view: undefined } : this.read();
      case 'epoch':
        if (have?.epoch !== undefined && have.epoch >= published.epoch) return { view: have };
        return this.refreshTo(published.epoch);
      case 'unknown':
      case 'unpublished': {
        // Unreadable: route by the copy while it is young, as for an entity without an epoch.
        const unread = published.kind === 'unknown' ? ({ stale: 'epoch_unreadable' } as const) : {};
        const age = Date.now() - this.cached.at;
        if (age < this.ttlMs) return { view: have, ...unread };
        if (!this.timer || age > 3 * this.ttlMs) return { ...(await this.read()), ...unread };
        return { view: have, ...unread };
      }
    }
  }

  /** One read of the policy, saying whether it failed (the last copy routes then). */
  private async read(): Promise<{ view: PolicyView | undefined; stale?: StaleReason }> {
    const { view, failed } = await this.refresh();
    return failed ? { view, stale: 'query_failed' } : { view };
  }

  /** Reads the policy until its epoch reaches `epoch` (a read in flight may predate the change). */
  private async refreshTo(epoch: number): Promise<{ view: PolicyView | undefined; stale?: StaleReason }> {
    for (let i = 0; i < 3; i++) {
      const read = await this.read();
      if (read.stale || read.view === undefined || (read.view.epoch ?? 0) >= epoch) return read;
      this.inflight = undefined;
    }
    this.log.warn({ epoch, have: this.cached.view?.epoch }, 'routing policy still behind its published epoch after three reads; routing by the last read');
    return { view: this.cached.view, stale: 'behind' };
  }

  /** The memo's epoch, from a describe that started after this call (coalesced: see the header). */
  private published(): Promise<Published> {
    if (!this.describing) {
      this.describing = this.describeOnce().finally(() => {
        this.describing = undefined;
      });
      return this.describing;
    }
    this.nextDescribe ??= this.describing.then(() => {
      this.nextDescribe = undefined;
      return this.published();
    });
    return this.nextDescribe;
  }

  private async describeOnce(): Promise<Published> {
    try {
      const d = await this.temporal.withDeadline(Date.now() + DESCRIBE_MS, () =>
        this.temporal.workflow.getHandle(routingWorkflowId(this.taskQueue)).describe(),
      );
      if (d.status.name !== 'RUNNING') return { kind: 'absent' };
      const epoch = d.memo?.[POLICY_EPOCH_MEMO];
      return typeof epoch === 'number' ? { kind: 'epoch', epoch } : { kind: 'unpublished' };
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return { kind: 'absent' };
      this.log.warn({ err: (e as Error).message }, 'routing policy epoch could not be read; routing by the last policy read');
      return { kind: 'unknown' };
    }
  }

  /** One read of the policy (shared by everyone who asks while it runs), and whether it failed. */
  private refresh(): Promise<{ view: PolicyView | undefined; failed: boolean }> {
    this.inflight ??= this.temporal
      .withDeadline(Date.now() + POLICY_QUERY_MS, () => this.temporal.workflow.getHandle(routingWorkflowId(this.taskQueue)).query(policyQuery))
      .then(
        (read) => ({ read, failed: false }),
        (e: unknown) => {
          const failed = !(e instanceof WorkflowNotFoundError);
          if (failed) this.log.warn({ err: (e as Error).message }, 'routing policy query failed; routing by the last policy read');
          return { read: failed ? this.cached.view : undefined, failed };
        },
      )
      .then(({ read, failed }) => {
        // Checked once per read, not per request: only well-formed experiments and rules route (a
        // routing entity of another release may hold anything; one bad entry must not fail requests).
        const view = read && { ...read, experiments: read.experiments.filter(wellFormedExperiment), rules: read.rules.filter(wellFormedRule) };
        this.cached = { at: Date.now(), view };
        this.inflight = undefined;
        return { view, failed };
      });
    return this.inflight;
  }

  /** Read the policy again on the next request (an operator's change that must apply at once). */
  invalidate(): void {
    this.cached = { at: Number.NEGATIVE_INFINITY, view: undefined };
  }
}
