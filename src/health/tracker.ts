/**
 * The worker's side of provider health: reports each call's outcome to the health entity (a signal,
 * starting the entity if needed) and serves the router the models whose circuit is open, from a
 * query cached for a second.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Logger } from 'pino';
import {
  claimTrialUpdate,
  HEALTH_ENTITY_TYPE,
  type HealthEntityWorkflow,
  healthWorkflowId,
  healthQuery,
  type HealthView,
  reportSignal,
} from '../workflows/health/contract.js';
import { own } from '../util/names.js';
import type { CircuitSettings, HealthReport } from './circuits.js';
import { entityTaskQueue } from '../workflows/taskQueues.js';

/** How long the router (and a metrics scrape) waits for the health entity before going on without it. */
const HEALTH_QUERY_MS = 2_000;

export class HealthTracker {
  private cached: { at: number; view: HealthView | undefined; failed: boolean } = { at: 0, view: undefined, failed: false };
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
    const known = this.cached.view ? own(this.cached.view.models, model) : undefined;
    if (ok && !(known?.consecutiveFailures || known?.openUntil)) return;
    this.temporal.workflow
      .signalWithStart<HealthEntityWorkflow, [HealthReport]>(HEALTH_ENTITY_TYPE, {
        workflowId: healthWorkflowId(this.taskQueue),
        taskQueue: entityTaskQueue(this.taskQueue),
        args: [{ settings: this.settings }],
        signal: reportSignal,
        signalArgs: [{ model, ok, kind, at: Date.now() }],
      })
      .catch((e: unknown) => this.log.warn({ err: (e as Error).message, model }, 'health report not delivered'));
  }

  /** The last view, refreshed at most once a second by a single query shared by all callers. */
  async view(): Promise<HealthView | undefined> {
    if (Date.now() - this.cached.at < 1_000) return this.cached.view;
    let failed = false;
    this.inflight ??= this.temporal
      .withDeadline(Date.now() + HEALTH_QUERY_MS, () => this.temporal.workflow.getHandle(healthWorkflowId(this.taskQueue)).query(healthQuery))
      .catch((e: unknown) => {
        // No entity yet: no failures reported, every circuit closed. Anything else: unknown.
        if (!(e instanceof WorkflowNotFoundError)) {
          failed = true;
          this.log.warn({ err: (e as Error).message }, 'health query failed; ignoring circuits');
        }
        return undefined;
      })
      .then((view) => {
        this.cached = { at: Date.now(), view, failed };
        this.inflight = undefined;
        return view;
      });
    return this.inflight;
  }

  async openModels(): Promise<string[]> {
    return (await this.circuits()).open;
  }

  /** Models whose circuit is open, and those half-open (cooldown over, waiting for one trial). */
  async circuits(): Promise<{ open: string[]; halfOpen: string[] }> {
    const v = await this.view();
    const now = Date.now();
    const open: string[] = [];
    const halfOpen: string[] = [];
    for (const [m, c] of Object.entries(v?.models ?? {})) {
      if (c.openUntil > now) open.push(m);
      else if (c.openUntil > 0) halfOpen.push(m);
    }
    return { open, halfOpen };
  }

  /** The circuits, or undefined when the health entity did not answer (their state is unknown). */
  async knownCircuits(): Promise<{ open: string[]; halfOpen: string[] } | undefined> {
    const c = await this.circuits();
    return this.cached.failed ? undefined : c;
  }

  /** Asks to be a half-open model's one trial; any doubt (entity unreachable) is a no. */
  async claimTrial(model: string, holdMs: number): Promise<boolean> {
    try {
      return await this.temporal.workflow.getHandle(healthWorkflowId(this.taskQueue)).executeUpdate(claimTrialUpdate, { args: [{ model, holdMs }] });
    } catch (e) {
      this.log.warn({ err: (e as Error).message, model }, 'circuit trial not granted: health entity did not answer');
      return false;
    }
  }
}
