/**
 * Every entity refuses or drops a malformed message and keeps working: no workflow-task failure
 * (which the server retries forever, stopping the entity), no lost state. On the real dev server.
 */
import { describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { ValidationError } from '../../src/util/validation.js';
import { experimentEntity } from '../../src/workflows/experiment/experimentEntity.js';
import { experimentWorkflowId } from '../../src/workflows/experiment/contract.js';
import { budgetWorkflowId } from '../../src/workflows/budget/contract.js';
import { healthWorkflowId } from '../../src/workflows/health/contract.js';
import { routingWorkflowId } from '../../src/workflows/routing/contract.js';
import { entityTaskQueue } from '../../src/workflows/taskQueues.js';
import { useTestStack } from '../helpers/stack.js';
import { until } from '../helpers/wait.js';

let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

const stack = useTestStack();

/** Workflow-task failures in the entity's current run: each one is a message the entity could not take. */
async function taskFailures(h: WorkflowHandle): Promise<number> {
  const history = await h.fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).length;
}

const signal = (h: WorkflowHandle, name: string, ...args: unknown[]) => h.signal(name, ...args);
/** An update with any argument; a refusal comes back as its cause's message. */
const update = async (h: WorkflowHandle, name: string, arg: unknown): Promise<unknown> => {
  try {
    return await h.executeUpdate(name, { args: [arg] });
  } catch (e) {
    throw new Error(e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e));
  }
};

describe('malformed messages', () => {
  it('an arm named constructor is refused by the client; an entity started with one directly still takes feedback with comments', async () => {
    const arms = [
      { name: 'constructor', weight: 0.5, model: 'gpt-4o-mini' },
      { name: 'gpt-4o', weight: 0.5, model: 'gpt-4o' },
    ];
    const err = await stack.client.learning
      .createExperiment({ name: rid('proto'), arms, filter: {}, minSamples: 5, confidence: 0.95 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message).toMatch(/arms\.0\.name: "constructor" is a reserved name/);

    const name = rid('proto-direct');
    const h = await stack.client.temporal.workflow.start(experimentEntity, {
      workflowId: experimentWorkflowId(stack.client.taskQueue, name),
      taskQueue: entityTaskQueue(stack.client.taskQueue),
      args: [{ spec: { name, arms, filter: { feature: 'none-such' }, minSamples: 5, confidence: 0.95 }, taskQueue: stack.client.taskQueue }],
    });
    await h.signal('outcome', { workflowId: 'llm-x', arm: 'constructor', costNanos: 10, latencyMs: 5, quality: 1, escalated: false, failed: false });
    await h.signal('feedback', { workflowId: 'llm-x', arm: 'constructor', score: 0.2, automaticQuality: 1, comment: 'too terse' });
    await signal(h, 'feedback', null);
    await signal(h, 'outcome', null);
    const st = await until('the feedback counted', async () => {
      const s = await h.query('status');
      return (s as { comments: Record<string, unknown[]> }).comments.constructor?.length === 1 ? s : undefined;
    });
    expect(Object.getOwnPropertyDescriptor((st as { arms: object }).arms, 'constructor')?.value).toMatchObject({ requests: 1 });
    expect(await taskFailures(h)).toBe(0);
    await h.executeUpdate('stop');
    await h.result();
  });

  it('the budget, health and routing entities refuse null updates and drop null signals, and keep working', async () => {
    const scope = rid('mal-scope');
    // One 500 on the way: the health entity hears of a failure and starts.
    stack.simulator.setFaults({ '*': { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: [500] } });
    await stack.client.ask({ requestId: rid('mal'), prompt: 'Classify: refund please', category: 'batch', budgetScope: scope });
    stack.simulator.setFaults({});
    const budget = stack.client.temporal.workflow.getHandle(budgetWorkflowId(stack.client.taskQueue, scope));
    const health = stack.client.temporal.workflow.getHandle(healthWorkflowId(stack.client.taskQueue));
    const routing = stack.client.temporal.workflow.getHandle(routingWorkflowId(stack.client.taskQueue));
    await until('the health entity', async () => ((await health.describe().catch(() => undefined))?.status.name === 'RUNNING' ? true : undefined));
    await until('the routing entity', async () => ((await routing.describe().catch(() => undefined))?.status.name === 'RUNNING' ? true : undefined));

    await expect(update(budget, 'batch', [null])).rejects.toThrow(/operation 0 is not an object/);
    await expect(update(budget, 'batch', [{ op: 'release', reservationId: 'r-1' }, 7])).rejects.toThrow(/operation 1 is not an object/);
    await expect(update(budget, 'release', null)).rejects.toThrow(/release: expected \{"reservationId"/);
    await expect(update(budget, 'reserve', null)).rejects.toThrow(/reservationId/);
    await expect(update(budget, 'settle', null)).rejects.toThrow(/reservationId/);
    await expect(update(budget, 'adjust', null)).rejects.toThrow(/expected an object/);

    await expect(update(health, 'resetCircuit', null)).rejects.toThrow(/resetCircuit: expected/);
    await expect(update(health, 'claimTrial', null)).rejects.toThrow(/claimTrial: expected/);
    await signal(health, 'report', null);
    await signal(health, 'report', 42);

    await expect(update(routing, 'revert', null)).rejects.toThrow(/revert: expected/);
    await expect(update(routing, 'promote', null)).rejects.toThrow(/promote: expected/);
    await expect(update(routing, 'promote', { rule: null })).rejects.toThrow(/promote: expected/);
    await expect(update(routing, 'acknowledge', null)).rejects.toThrow(/acknowledge: expected/);
    for (const s of ['report', 'feedback', 'configure', 'experimentStarted', 'experimentEnded']) {
      await signal(routing, s, null);
      await signal(routing, s, 'x');
    }
    // An experiment no router can use (no arms), or one far too large, is refused or dropped: it
    // must neither fail every request of the queue nor wedge the entity at its next
    // continue-as-new (found by the independent review).
    await expect(update(routing, 'experiment', { started: { name: 'evil', arms: [], filter: {} } })).rejects.toThrow(/experiment: expected/);
    const huge = {
      name: 'huge',
      arms: [
        { name: 'a'.repeat(650_000), weight: 1, model: 'gpt-4o-mini' },
        { name: 'b', weight: 1, model: 'gpt-4o' },
      ],
      filter: {},
    };
    await expect(update(routing, 'experiment', { started: huge })).rejects.toThrow(/at most 65536 bytes/);
    await expect(
      update(routing, 'promote', { rule: { filter: {}, arm: { name: 'x'.repeat(70_000), weight: 1, model: 'gpt-4o' }, experiment: 'x', at: 0 } }),
    ).rejects.toThrow(/promote: expected/);
    await signal(routing, 'experimentStarted', { name: 'evil2', arms: [], filter: {} });

    // Each still answers and works: a new request is routed, reserved and settled.
    const after = await stack.client.ask({ requestId: rid('mal-after'), prompt: 'Classify: app crashes', category: 'batch', budgetScope: scope });
    expect(after.costNanos).toBeGreaterThan(0);
    expect((await stack.client.budgetStatus(scope)).spentNanos).toBeGreaterThan(after.costNanos);
    await until('no experiment registered', async () => ((await stack.client.learning.policy()).experiments.length === 0 ? true : undefined));
    await stack.client.health();
    for (const h of [budget, health, routing]) {
      expect((await h.describe()).status.name).toBe('RUNNING');
      expect(await taskFailures(h)).toBe(0);
    }
  });
});
