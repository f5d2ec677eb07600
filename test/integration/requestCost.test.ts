/**
 * What a request costs in Temporal Cloud actions (src/temporal/billableActions.ts), counted on
 * real histories: a simple successful request, and the budget entity's updates per request.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billableActions } from '../../src/temporal/billableActions.js';
import { shardWorkflowId } from '../../src/budget/shards.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { LlmCategory, LlmComplexity, LlmCostNanos, LlmModel, LlmOutcome, LlmTier } from '../../src/workflows/searchAttributes.js';

describe('Temporal actions per request', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('a simple successful request: start, reserve + call + settle, one local-activity task, the version marker\'s upsert and one more; two entity updates', async () => {
    const scope = `cost-${randomUUID().slice(0, 8)}`;
    const r = await stack.client.ask({ prompt: 'Classify the sentiment: I love it.', budgetScope: scope, requestId: `cost-${randomUUID()}` });
    const history = await stack.client.temporal.workflow.getHandle(r.workflowId).fetchHistory();
    const count = billableActions(history);
    // Upserts: TemporalChangeVersion (the SDK's, for the one patched() of a new run) and the final one.
    expect(count.byKind).toEqual({ start: 1, activityAttempt: 3, localActivityTasks: 1, searchAttributeUpsert: 2 });
    expect(count.total).toBe(7);
    // The budget entity: one reserve and one settle, each an update.
    const entity = await stack.client.temporal.workflow.getHandle(shardWorkflowId(stack.config.taskQueue, scope, 0, 1)).fetchHistory();
    expect(billableActions(entity).byKind.update).toBe(2);
    // Every search attribute is still there, set once.
    const desc = await stack.client.temporal.workflow.getHandle(r.workflowId).describe();
    const sa = desc.typedSearchAttributes;
    expect([sa.get(LlmOutcome), sa.get(LlmCategory), sa.get(LlmModel), sa.get(LlmTier), sa.get(LlmCostNanos)]).toEqual(['completed', 'standard', r.model, r.tier, r.costNanos]);
    expect(sa.get(LlmComplexity)).toBeCloseTo(r.classification.complexity, 4);
  });
});
