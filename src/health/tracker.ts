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

  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    private readonly settings: CircuitSettings,
    private readonly log: Logger,
  ) {}

  /** Fire-and-forget: a lost report only delays a circuit by one failure. */
  report(model: string, ok: boolean, kind?: string): void {
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

  async view(): Promise<HealthView | undefined> {
    if (Date.now() - this.cached.at < 1_000) return this.cached.view;
    let view: HealthView | undefined;
    try {
      view = await this.temporal.workflow.getHandle(healthWorkflowId(this.taskQueue)).query(healthQuery);
    } catch (e) {
      if (!(e instanceof WorkflowNotFoundError)) this.log.warn({ err: (e as Error).message }, 'health query failed; ignoring circuits');
    }
    this.cached = { at: Date.now(), view };
    return view;
  }

  async openModels(): Promise<string[]> {
    const v = await this.view();
    const now = Date.now();
    return v ? Object.entries(v.models).filter(([, c]) => c.openUntil > now).map(([m]) => m) : [];
  }
}
