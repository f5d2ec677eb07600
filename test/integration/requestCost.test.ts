/**
 * What a request costs in Temporal Cloud actions (src/temporal/billableActions.ts), counted on
 * real histories: a simple successful request, and the budget entity's updates per request.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { billableActions } from '../../src/temporal/billableActions.js';
import { shardWorkflowId } from '../../src/budget/shards.js';
import { useTestStack } from '../helpers/stack.js';
import { LlmCategory, LlmComplexity, LlmCostNanos, LlmModel, LlmOutcome, LlmTier } from '../../src/workflows/request/contract.js';

describe('Temporal actions per request', () => {
  const stack = useTestStack();

  it('a simple successful request: start, a paid-call activity (route, reserve, call), the settlement as a local activity, one upsert at the end; its budget ops ride in batched entity updates', async () => {
    const scope = `cost-${randomUUID().slice(0, 8)}`;
    const r = await stack.client.ask({ prompt: 'Classify the sentiment: I love it.', budgetScope: scope, requestId: `cost-${randomUUID()}` });
    const history = await stack.client.temporal.workflow.getHandle(r.workflowId).fetchHistory();
    const count = billableActions(history);
    // The SDK's TemporalChangeVersion upserts (for patched()) are in the history but not billed.
    expect(count.byKind).toEqual({ start: 1, activityAttempt: 1, localActivityTasks: 1, searchAttributeUpsert: 1 });
    expect(count.total).toBe(4);
    // The budget entity: the reserve and the settlement, each in a batch update (alone here: one request).
    const entity = await stack.client.temporal.workflow.getHandle(shardWorkflowId(stack.config.taskQueue, scope, 0, 1)).fetchHistory();
    expect(billableActions(entity).byKind.update).toBe(2);
    const summary = await stack.client.temporalActions([r.workflowId], 50, { scopes: [scope] });
    expect(summary).toMatchObject({ requests: 1, inHistories: 4, entityUpdates: 2, actions: 6, perRequest: 6 });
    // Every search attribute is still there, set once.
    const desc = await stack.client.temporal.workflow.getHandle(r.workflowId).describe();
    const sa = desc.typedSearchAttributes;
    expect([sa.get(LlmOutcome), sa.get(LlmCategory), sa.get(LlmModel), sa.get(LlmTier), sa.get(LlmCostNanos)]).toEqual([
      'completed',
      'standard',
      r.model,
      r.tier,
      r.costNanos,
    ]);
    expect(sa.get(LlmComplexity)).toBeCloseTo(r.classification.complexity, 4);
  });

  it('concurrent requests on one scope share entity updates: fewer than one per request', async () => {
    const scope = `costc-${randomUUID().slice(0, 8)}`;
    // More requests than the worker has workflow-task slots (40): each holds one while its settlement
    // (a local activity) waits for the entity, which must still get to run (its own task queue).
    const n = 96;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        stack.client.ask({ prompt: `Classify ticket ${i}: "I was charged twice."`, category: 'batch', budgetScope: scope, requestId: `costc-${randomUUID()}` }),
      ),
    );
    const summary = await stack.client.temporalActions(
      results.map((r) => r.workflowId),
      50,
      { scopes: [scope] },
    );
    expect(summary.inHistories).toBe(4 * n);
    // Unbatched, each request would send two updates (reserve, settle): batching must fold them.
    expect(summary.entityUpdates).toBeLessThan(n);
    expect(summary.perRequest).toBeLessThanOrEqual(5);
    // Folding changes no money: the entity's spend is the sum of the results.
    const st = await stack.client.budgetStatus(scope);
    expect(st.spentNanos).toBe(results.reduce((s, r) => s + r.costNanos, 0));
    expect(st.reservedNanos).toBe(0);
  });

  it('the workflow bundle loads no zod: every module a workflow imports is set up again for each run', () => {
    const bundle = readFileSync(inject('workflowBundlePath'), 'utf8');
    expect(bundle).toContain('request-v3');
    expect(bundle).not.toMatch(/node_modules\/zod\//);
  });
});
