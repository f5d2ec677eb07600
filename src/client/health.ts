/** The health entity's part of the client: the circuit breakers per model, with their state now. */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { healthQuery, type HealthView, healthWorkflowId } from '../workflows/health/contract.js';

export class HealthClient {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
  ) {}

  /** Circuit breakers per model, with their state computed now. */
  async circuits(): Promise<
    Array<{
      model: string;
      state: 'closed' | 'open' | 'half_open';
      consecutiveFailures: number;
      openUntil: string | null;
      lastError: string | null;
      timesOpened: number;
    }>
  > {
    let view: HealthView;
    try {
      view = await this.temporal.workflow.getHandle(healthWorkflowId(this.taskQueue)).query(healthQuery);
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return [];
      throw e;
    }
    const now = Date.now();
    return Object.entries(view.models)
      .map(([model, c]) => ({
        model,
        state: c.openUntil === 0 ? ('closed' as const) : now < c.openUntil ? ('open' as const) : ('half_open' as const),
        consecutiveFailures: c.consecutiveFailures,
        openUntil: c.openUntil ? new Date(c.openUntil).toISOString() : null,
        lastError: c.lastError,
        timesOpened: c.timesOpened,
      }))
      .sort((a, b) => a.model.localeCompare(b.model));
  }
}
