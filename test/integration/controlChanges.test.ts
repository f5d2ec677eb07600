/**
 * Control changes are in force for every request started after the command returns (issue 21,
 * item 8), on the real dev server with the workers' default policy cache (5 s): an experiment
 * created just before an 80-line batch at concurrency 16 counts all 80, one model per unit; a
 * stopped experiment takes no request started after the stop; a budget change applies to the next
 * request. (An acknowledged anomaly resuming at once is in anomaliesAndSchedules.test.ts.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@temporalio/client';
import { LearningClient } from '../../src/client/learningClient.js';
import { controlSettingsFrom } from '../../src/learning/worker/routingHandle.js';
import { experimentWorkflowId } from '../../src/workflows/experiment/contract.js';
import { fileConfigSchema } from '../../src/config/config.js';
import { RequestFailedError } from '../../src/contracts/requestFailure.js';
import { useTestStack } from '../helpers/stack.js';
import { until } from '../helpers/wait.js';

let n = 0;
const rid = (label: string): string => `${label}-${Date.now()}-${++n}`;

// The defaults, but for the tuner's timer: the workers' policy cache is the one users run with.
const learning = fileConfigSchema.parse({ learning: { tuner: { intervalMs: 3_600_000 }, anomaly: { enabled: false } } }).learning;

beforeAll(() => expect(learning.policyCacheMs).toBe(5_000));
const stack = useTestStack({ config: { learning } });

describe('a control change is in force when its command returns', () => {
  it('experiment create, then at once an 80-line batch at concurrency 16: all 80 counted, one model per unit; stop, and none after', async () => {
    const name = `now-${Date.now()}`;
    // The worker holds a fresh copy of the policy (no experiment) when the experiment is created.
    await stack.client.batch(
      Array.from({ length: 4 }, () => ({ requestId: rid('warm'), category: 'batch', prompt: 'Name a colour.' })),
      { concurrency: 4 },
    );
    const arms = [
      { name: 'gpt-4o-mini', weight: 0.5, model: 'gpt-4o-mini' },
      { name: 'claude-3-5-haiku', weight: 0.5, model: 'claude-3-5-haiku' },
    ];
    await stack.client.learning.createExperiment({ name, arms, filter: { category: 'batch' }, minSamples: 1_000, confidence: 0.95 });
    const units = Array.from({ length: 20 }, (_, i) => `unit-${name}-${i}`);
    const lines = Array.from({ length: 80 }, (_, i) => ({
      requestId: rid('exp'),
      unit: units[i % units.length]!,
      category: 'batch',
      prompt: `Summarise line ${i} in five words.`,
    }));
    const { results, summary } = await stack.client.batch(lines, { concurrency: 16 });
    expect(summary.completed).toBe(80);
    // One model per unit, and only the arms' models.
    const modelOf = new Map<string, Set<string>>();
    results.forEach((r) => {
      const unit = lines.find((l) => l.requestId === r.id)!.unit;
      (modelOf.get(unit) ?? modelOf.set(unit, new Set()).get(unit)!).add(r.model!);
    });
    for (const [unit, models] of modelOf) expect([unit, [...models]]).toEqual([unit, [expect.stringMatching(/^(gpt-4o-mini|claude-3-5-haiku)$/)]]);
    // Every one of the 80 reached the experiment.
    const st = await until('all 80 outcomes counted', async () => {
      const s = await stack.client.learning.experimentStatus(name);
      return Object.values(s.arms).reduce((t, a) => t + a.requests, 0) >= 80 ? s : undefined;
    });
    expect(Object.values(st.arms).reduce((t, a) => t + a.requests, 0)).toBe(80);

    // Stopped: no request started after the stop returned is assigned.
    const stopped = await stack.client.learning.stopExperiment(name);
    expect(stopped.state).toBe('stopped');
    const after = await Promise.all(
      Array.from({ length: 16 }, (_, i) => stack.client.ask({ requestId: rid('after'), unit: units[i]!, category: 'batch', prompt: 'Name a colour.' })),
    );
    expect(after.filter((r) => r.learning?.experiment !== undefined)).toEqual([]);
    expect((await stack.client.learning.policy()).experiments.map((e) => e.name)).not.toContain(name);
  });

  it('budget set: the next request is judged by the new budget', async () => {
    const scope = `now-budget-${Date.now()}`;
    await stack.client.ask({ requestId: rid('b'), budgetScope: scope, category: 'standard', prompt: 'Name a colour.' });
    await stack.client.setBudget(scope, { totalNanos: 1 });
    const denied = await stack.client.ask({ requestId: rid('b'), budgetScope: scope, category: 'standard', prompt: 'Name a colour.' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(denied).toBeInstanceOf(RequestFailedError);
    expect((denied as RequestFailedError).failureType).toMatch(/Budget/);
    await stack.client.setBudget(scope, { totalNanos: 1_000_000_000 });
    await expect(stack.client.ask({ requestId: rid('b'), budgetScope: scope, category: 'standard', prompt: 'Name a colour.' })).resolves.toMatchObject({
      costNanos: expect.any(Number),
    });
  });

  it('experiment create whose registration landed but did not answer: the experiment is stopped and routing forgets it', async () => {
    const name = `lost-answer-${Date.now()}`;
    // The registration update reaches the routing entity; its answer is lost on the way back (a
    // deadline, a dropped connection): a client interceptor throws after the call went through.
    const lossy = new Client({
      connection: stack.client.temporal.connection,
      namespace: stack.config.namespace,
      interceptors: {
        workflow: [
          {
            async startUpdateWithStart(input, next) {
              await next(input);
              throw new Error('deadline exceeded (the answer was lost)');
            },
          },
        ],
      },
    });
    const learning = new LearningClient(lossy, stack.config.taskQueue, controlSettingsFrom(stack.config));
    // The entity's own registration is slow: it lands after the client has given up (the race the
    // client must not lose: a late `started` must not re-register a stopped experiment).
    await stack.restartWorker((real) => ({
      notifyRouting: async (input: Parameters<typeof real.notifyRouting>[0]) => {
        if (input.started?.name === name) await new Promise((r) => setTimeout(r, 1_500));
        return real.notifyRouting(input);
      },
    }));
    try {
      await expect(
        learning.createExperiment({
          name,
          arms: [
            { name: 'a', weight: 0.5, model: 'gpt-4o-mini' },
            { name: 'b', weight: 0.5, model: 'claude-3-5-haiku' },
          ],
          filter: { category: 'batch' },
          minSamples: 1_000,
          confidence: 0.95,
        }),
      ).rejects.toThrow(/answer was lost/);
      // Stopped (its own `ended` after its own `started`), not left running.
      expect((await stack.client.temporal.workflow.getHandle(experimentWorkflowId(stack.config.taskQueue, name)).describe()).status.name).not.toBe('RUNNING');
      expect((await stack.client.learning.experimentStatus(name)).state).toBe('stopped');
      // Routing does not keep assigning traffic to it.
      expect((await stack.client.learning.policy()).experiments.map((e) => e.name)).not.toContain(name);
      // Still not, once the entity's slow `started` has had time to land.
      await new Promise((r) => setTimeout(r, 2_000));
      expect((await stack.client.learning.policy()).experiments.map((e) => e.name)).not.toContain(name);
      const r = await stack.client.ask({ requestId: rid('lost'), unit: 'u-lost', category: 'batch', prompt: 'Name a colour.' });
      expect(r.learning?.experiment).toBeUndefined();
    } finally {
      await stack.restartWorker();
    }
  });
});
