/**
 * The deferred lane against live calls, side by side on one stack (embedded dev server, simulator
 * at catalog latency x 0.1, one worker): the demo's requests run live, then the same requests
 * (new ids) with a deadline, through the providers' batch APIs. Per round: what each costs, how
 * long it takes, whether every deferred request met its deadline, and the Temporal actions per
 * deferred request (its own history, plus its collector's history shared out over its lines).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBatchFile } from '../../src/batch/inputFile.js';
import { runBatch } from '../../src/batch/runBatch.js';
import { demoEntries } from '../../src/cli/demo.js';
import { SwitchyardClient } from '../../src/client/client.js';
import { billableActions } from '../../src/temporal/billableActions.js';
import { PROVIDER_BATCH_TYPE, COLLECTOR_TYPE } from '../../src/workflows/deferred/contract.js';
import { benchStack, meanActions } from './benchStack.js';

export interface DeferredBenchRound {
  readonly liveNanos: number;
  readonly deferredNanos: number;
  readonly liveSeconds: number;
  readonly deferredSeconds: number;
  readonly answeredInBatch: number;
  readonly missedDeadline: number;
  readonly providerBatches: number;
  readonly actionsPerRequest: number;
  /** A batch-answered request's own actions, by kind (mean over the sample). */
  readonly ownActionsByKind: Readonly<Record<string, number>>;
  readonly sharedActionsByKind: Readonly<Record<string, number>>;
  readonly collectorEventsMax: number;
}

const DEADLINE = '1h';

export async function benchDeferred(opts: { requests: number; concurrency: number; rounds: number }): Promise<DeferredBenchRound[]> {
  const out: DeferredBenchRound[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    const { dir, stack } = await benchStack('switchyard-dbench-', { maxLines: 1000, maxAgeMs: 5_000, pollMinMs: 500, pollMaxMs: 2_000 });
    const client = await SwitchyardClient.connect({ address: stack.address, taskQueue: stack.config.taskQueue });
    try {
      const file = (tag: string) => {
        const f = join(dir, `${tag}.jsonl`);
        writeFileSync(
          f,
          `${demoEntries(opts.requests, `${tag}${round}`)
            .map((e) => (e.ok ? JSON.stringify({ id: e.item.id, ...e.item.request, requestId: undefined }) : ''))
            .join('\n')}\n`,
        );
        return f;
      };
      const run = async (tag: string, defer: boolean) => {
        const ids: string[] = [];
        const batched: string[] = [];
        let nanos = 0;
        let inBatch = 0;
        let missed = 0;
        const t0 = Date.now();
        const s = await runBatch(client, readBatchFile(file(tag)), {
          concurrency: opts.concurrency,
          total: opts.requests,
          batchId: `${tag}-${round}`,
          ...(defer ? { requestDefaults: { deadline: DEADLINE } } : {}),
          onResult: (r) => {
            if (r.status === 'completed') ids.push(r.workflowId);
          },
        });
        if (s.completed !== opts.requests) throw new Error(`${tag}: ${s.completed} of ${opts.requests} completed`);
        for (const id of ids) {
          const r = await client.result(id);
          nanos += r.costNanos;
          if (r.deferred?.outcome === 'answered') {
            inBatch += 1;
            batched.push(id);
          }
          if (defer && r.durationMs > 3_600_000) missed += 1;
        }
        return { ids, batched, nanos, inBatch, missed, seconds: (Date.now() - t0) / 1000 };
      };
      const live = await run('live', false);
      const def = await run('deferred', true);
      // Actions: a sample of the requests answered in a batch (their own histories), and every collector
      // run's, shared out over the lines that joined.
      const own = await meanActions(client, def.batched.slice(0, 100));
      let collector = 0;
      const sharedByKind: Record<string, number> = {};
      let collectorEventsMax = 0;
      // The collectors' runs and their provider batches' workflows.
      for await (const w of client.temporal.workflow.list({ query: `WorkflowType IN ('${COLLECTOR_TYPE}', '${PROVIDER_BATCH_TYPE}')` })) {
        const h = await client.temporal.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
        const a = billableActions(h);
        collector += a.total;
        for (const [k, n] of Object.entries(a.byKind)) sharedByKind[k] = (sharedByKind[k] ?? 0) + n / Math.max(1, def.inBatch);
        if (w.type === COLLECTOR_TYPE) collectorEventsMax = Math.max(collectorEventsMax, h.events?.length ?? 0);
      }
      out.push({
        liveNanos: live.nanos,
        deferredNanos: def.nanos,
        liveSeconds: live.seconds,
        deferredSeconds: def.seconds,
        answeredInBatch: def.inBatch,
        missedDeadline: def.missed,
        providerBatches: stack.simulator?.batches().length ?? 0,
        actionsPerRequest: own.total + collector / Math.max(1, def.inBatch),
        ownActionsByKind: own.byKind,
        sharedActionsByKind: sharedByKind,
        collectorEventsMax,
      });
    } finally {
      await client.close();
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}
