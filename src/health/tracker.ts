/**
 * The worker's side of provider health: reports each call's outcome to the health entity (a signal,
 * starting the entity if needed) and serves the router the models whose circuit is open, from a
 * query cached for a second.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Logger } from 'pino';
import { healthWorkflowId, healthQuery, type HealthView, reportSignal } from '../workflows/healthEntity.js';
import type { CircuitSettings } from './circuits.js';

export class HealthTracker {
  private cached: { at: number; view: HealthView | undefined } = { at: 0, view: undefined };
  private inflight: Promise<HealthView | undefined> | undefined;

  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    private readonly settings: CircuitSettings,
    private readonly log: Logger,
  ) {}

  /**
   * Fire-and-forget: a lost report only delays a circuit by one failure. Successes are only sent
   * for models with failures on record, so a healthy fleet sends almost nothing.
   */
  report(model: string, ok: boolean, kind?: string): void {
    if (ok && !(this.cached.view?.models[model]?.consecutiveFailures || this.cached.view?.models[model]?.openUntil)) return;
    this.temporal.workflow
      .signalWithStart('healthEntity', {
        workflowId: healthWorkflowId(this.taskQueue),
        taskQueue: this.taskQueue,
        args: [{ settings: this.settings }],
        signal: reportSignal,
        signalArgs: [{ model, ok, kind, at: Date.now() }],
      })
      .catch((e: unknown) => this.log.warn({ err: (e as Error).message, model }, 'health report not delivered'));
  }

  /** The last view, refreshed at most once a second by a single query shared by all callers. */
  async view(): Promise<HealthView | undefined> {
    if (Date.now() - this.cached.at < 1_000) return this.cached.view;
    this.inflight ??= this.temporal.workflow
      .getHandle(healthWorkflowId(this.taskQueue))
      .query(healthQuery)
      .catch((e: unknown) => {
        if (!(e instanceof WorkflowNotFoundError)) this.log.warn({ err: (e as Error).message }, 'health query failed; ignoring circuits');
        return undefined;
      })
      .then((view) => {
        this.cached = { at: Date.now(), view };
        this.inflight = undefined;
        return view;
      });
    return this.inflight;
  }

  async openModels(): Promise<string[]> {
    const v = await this.view();
    const now = Date.now();
    return v ? Object.entries(v.models).filter(([, c]) => c.openUntil > now).map(([m]) => m) : [];
  }
}
