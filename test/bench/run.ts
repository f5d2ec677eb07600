/** `npm run bench`: the project's benchmarks; figures go to BENCHMARKS.md with this command. */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { benchBudget } from './budgetBench.js';
import { benchRequests } from './requestBench.js';
import { benchAdversarial, benchRouter } from './routerBench.js';
import { benchBatch } from './batchBench.js';
import { benchFloor } from './floorBench.js';
import { benchMemory } from './memoryBench.js';
import { benchGateway } from './gatewayBench.js';
import { benchDeferred } from './deferredBench.js';
import { benchDeferredScale } from './deferredScaleBench.js';

Runtime.install({ logger: new DefaultLogger('ERROR') });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

const which = process.argv[2] ?? 'all';
if (which === 'all' || which === 'router') {
  const n = Number(process.env.BENCH_DECISIONS ?? 100_000);
  const { oursUs, seedUs } = benchRouter(n, Number(process.env.BENCH_ROUNDS ?? 3));
  process.stdout.write(`router: us per decision over ${n} decisions (classify + route), interleaved rounds\n`);
  process.stdout.write(`  switchyard (TypeScript): median ${median(oursUs).toFixed(2)} us  (rounds ${oursUs.map((x) => x.toFixed(2)).join(', ')})\n`);
  if (seedUs.length > 0)
    process.stdout.write(`  seed (Python):           median ${median(seedUs).toFixed(2)} us  (rounds ${seedUs.map((x) => x.toFixed(2)).join(', ')})\n`);
}
if (which === 'all' || which === 'classifier') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  process.stdout.write(`classifier on hostile prompts: ms per classification (median of ${rounds})\n`);
  for (const c of benchAdversarial(rounds))
    process.stdout.write(
      `  ${c.name.padEnd(44)} ${String(c.chars).padStart(9)} chars: median ${median(c.ms).toFixed(1)} ms  (rounds ${c.ms.map((x) => x.toFixed(1)).join(', ')})\n`,
    );
}
if (which === 'all' || which === 'budget') {
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const res = await benchBudget({ seconds, rounds, concurrency: [1, 32, 128], shards: [1, 4] });
  process.stdout.write(`budget: reserve+settle pairs/s per scope (${rounds} interleaved rounds x ${seconds} s each)\n`);
  for (const r of res) {
    process.stdout.write(
      `  shards ${r.shards}  concurrency ${String(r.concurrency).padStart(3)}: median ${r.median} pairs/s  (rounds ${r.pairsPerSec.join(', ')}; p50 pair latency ${r.p50LatencyMs} ms)\n`,
    );
  }
}
if (which === 'all' || which === 'requests') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const requests = Number(process.env.BENCH_REQUESTS ?? 300);
  const res = await benchRequests({ requests, concurrency: 64, shards: [1, 4], rounds });
  process.stdout.write(`requests end to end (simulator latency 0, ${requests} requests, 64 in flight, ${rounds} interleaved rounds)\n`);
  for (const r of res) process.stdout.write(`  budget shards ${r.shards}: median ${median(r.perSec)} requests/s  (rounds ${r.perSec.join(', ')})\n`);
}
if (which === 'all' || which === 'floor') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const requests = Number(process.env.BENCH_REQUESTS ?? 300);
  const res = await benchFloor({ requests, concurrency: 64, rounds, latencySamples: Number(process.env.BENCH_LATENCY_SAMPLES ?? 40) });
  process.stdout.write(
    `floor: the same dev server, ${requests} requests at 64 in flight, then latency at concurrency 1, ${rounds} interleaved rounds (medians)\n`,
  );
  const med = (k: string, f: 'perSec' | 'p50Ms') => median(res.rows.find((r) => r.kind === k)?.[f] ?? []);
  for (const r of res.rows)
    process.stdout.write(
      `  ${r.kind.padEnd(10)}: ${median(r.perSec).toFixed(1)} requests/s  p50 ${median(r.p50Ms).toFixed(1)} ms  (rounds ${r.perSec.join(', ')} / ${r.p50Ms.join(', ')} ms)\n`,
    );
  process.stdout.write(
    `  switchyard / floorOne: ${(med('switchyard', 'perSec') / med('floorOne', 'perSec')).toFixed(2)}x throughput, ${(med('switchyard', 'p50Ms') - med('floorOne', 'p50Ms')).toFixed(1)} ms over its p50\n`,
  );
  const a = res.actions;
  process.stdout.write(
    `  billable actions per request: ${a.perRequest} (${a.inHistories} in ${a.requests} request histories + ${a.entityUpdates} budget-entity updates)\n`,
  );
}
if (which === 'deferred') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const requests = Number(process.env.BENCH_REQUESTS ?? 1000);
  const res = await benchDeferred({ requests, concurrency: 64, rounds });
  const usd = (n: number) => `$${(n / 1e9).toFixed(4)}`;
  process.stdout.write(`deferred: the demo's ${requests} requests live, then the same with deadline 1h (provider batch APIs), ${rounds} rounds, one stack each
`);
  for (const r of res)
    process.stdout.write(
      `  live ${usd(r.liveNanos)} in ${r.liveSeconds.toFixed(1)} s; deferred ${usd(r.deferredNanos)} in ${r.deferredSeconds.toFixed(1)} s = ${((r.deferredNanos / r.liveNanos) * 100).toFixed(1)}% of live; ${r.answeredInBatch} answered in ${r.providerBatches} provider batches, ${r.missedDeadline} missed the deadline; ${r.actionsPerRequest.toFixed(2)} actions per batch-answered request (its own: ${Object.entries(
        r.ownActionsByKind,
      )
        .map(([k, n]) => `${k} ${n.toFixed(2)}`)
        .join(', ')}; shared: ${Object.entries(r.sharedActionsByKind)
        .map(([k, n]) => `${k} ${n.toFixed(2)}`)
        .join(', ')}); collector runs at most ${r.collectorEventsMax} events
`,
    );
  process.stdout.write(
    `  median: deferred = ${median(res.map((r) => (r.deferredNanos / r.liveNanos) * 100)).toFixed(1)}% of live, ${median(res.map((r) => r.actionsPerRequest)).toFixed(2)} actions per request
`,
  );
}
const MODEL_NOTE = 'gpt-4o-mini, maxLines 2000';
if (which === 'deferred-scale') {
  const requests = Number(process.env.BENCH_REQUESTS ?? 10_000);
  const r = await benchDeferredScale({ requests });
  process.stdout.write(
    `deferred-scale: ${r.requests} requests with deadline 2h queued at once on one collector (${MODEL_NOTE})
  ${r.answeredInBatch} answered in ${r.providerBatches} provider batches in ${r.seconds.toFixed(1)} s
  collector: ${r.collectorRuns} runs, the largest ${r.collectorEventsMax} events / ${(r.collectorBytesMax / 1024).toFixed(0)} KiB; the largest provider-batch workflow ${r.batchEventsMax} events
  worker process RSS: ${r.rssMb.start} MB at start, ${r.rssMb.queued} MB when all were started (queued), ${r.rssMb.half} MB at half, ${r.rssMb.end} MB at the end, ${r.rssMb.max} MB at most
  ${r.actionsPerRequest.toFixed(2)} actions per request (its own: ${Object.entries(r.ownActionsByKind)
    .map(([k, n]) => `${k} ${n.toFixed(2)}`)
    .join(', ')}; the rest: collector runs and batch workflows shared out)
  ledger lines by mode: ${JSON.stringify(r.ledgerByMode)}
`,
  );
}
if (which === 'gateway') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const requests = Number(process.env.BENCH_REQUESTS ?? 400);
  const samples = Number(process.env.BENCH_LATENCY_SAMPLES ?? 40);
  const r = await benchGateway({ requests, concurrency: 64, rounds, latencySamples: samples });
  const m = (xs: number[]) => median(xs).toFixed(1);
  process.stdout.write(
    `gateway vs LiteLLM proxy (one worker, no database), one simulator at latency 0: ${requests} requests at 64 in flight, ${samples} at concurrency 1, ${rounds} interleaved rounds (medians)\n`,
  );
  process.stdout.write(`  path                      req/s   c=1 P50 ms   CPU s / 1000 req (serving processes)\n`);
  const label = { client: 'SwitchyardClient (worker)', gateway: 'gateway + worker', litellm: 'LiteLLM proxy' } as const;
  for (const k of ['client', 'gateway', 'litellm'] as const) {
    const p = r.paths[k];
    process.stdout.write(
      `  ${label[k].padEnd(24)} ${m(p.perSec).padStart(6)}   ${m(p.p50Ms).padStart(10)}   ${m(p.cpuPer1000).padStart(8)}   (rounds ${p.perSec.join(', ')} / ${p.p50Ms.join(', ')} ms / ${p.cpuPer1000.join(', ')} s)\n`,
    );
  }
  process.stdout.write(`  Temporal server CPU s / 1000 gateway requests: ${m(r.temporalCpuPer1000)} (rounds ${r.temporalCpuPer1000.join(', ')})\n`);
  const g = r.paths.gateway;
  const c = r.paths.client;
  process.stdout.write(
    `  goals: gateway adds ${(median(g.p50Ms) - median(c.p50Ms)).toFixed(1)} ms to the client path's P50 (<= 5); ${(median(g.perSec) / median(c.perSec)).toFixed(2)}x its throughput (>= 0.9); CPU ${(median(g.cpuPer1000) / median(r.paths.litellm.cpuPer1000)).toFixed(2)}x LiteLLM's (<= 1)\n`,
  );
  process.stdout.write(
    `  time to first token, c=1: provider ${m(r.ttftMs.provider)} ms, gateway ${m(r.ttftMs.gateway)} ms (+${(median(r.ttftMs.gateway) - median(r.ttftMs.provider)).toFixed(1)}; goal <= +20), LiteLLM ${m(r.ttftMs.litellm)} ms\n`,
  );
  process.stdout.write(
    `  RSS MB idle / 1000 open: gateway ${r.rssMb.gateway.idle} / ${r.rssMb.gateway.open1000} (goal <= 150), worker ${r.rssMb.worker.idle} / ${r.rssMb.worker.open1000}, LiteLLM ${r.rssMb.litellm.idle} / ${r.rssMb.litellm.open1000}\n`,
  );
}
if (which === 'batch') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const requests = Number(process.env.BENCH_REQUESTS ?? 1000);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
  const res = await benchBatch({ requests, concurrency, rounds });
  process.stdout.write(`batch of ${requests} demo prompts on the demo stack (latency x 0.1), ${concurrency} in flight, ${rounds} interleaved rounds\n`);
  for (const r of res) {
    const m = median(r.seconds);
    process.stdout.write(
      `  sqlite ${r.pragmas.padEnd(11)} ${r.mode.padEnd(8)}: median ${m.toFixed(1)} s = ${(requests / m).toFixed(1)} requests/s  (rounds ${r.seconds.map((x) => x.toFixed(1)).join(', ')})\n`,
    );
  }
}
if (which === 'memory') {
  const requests = Number(process.env.BENCH_REQUESTS ?? 1000);
  const nodeOptions = process.env.BENCH_NODE_OPTIONS;
  const m = await benchMemory({ requests, ...(nodeOptions ? { nodeOptions } : {}) });
  process.stdout.write(
    `memory: ${m.requests} requests in flight at once (simulated latency x1), worker and simulator each its own process${nodeOptions ? `, NODE_OPTIONS=${nodeOptions}` : ''}\n`,
  );
  process.stdout.write(`  worker   : idle ${m.worker.idleMb} MB, peak ${m.worker.peakMb} MB\n`);
  process.stdout.write(`  simulator: idle ${m.simulator.idleMb} MB, peak ${m.simulator.peakMb} MB\n`);
  process.stdout.write(`  ${m.completed}/${m.requests} completed in ${(m.wallMs / 1000).toFixed(1)} s\n`);
}
if (which === 'steady-memory') {
  const { benchSteadyMemory } = await import('./steadyMemoryBench.js');
  const waves = Number(process.env.BENCH_WAVES ?? 5);
  const perWave = Number(process.env.BENCH_REQUESTS ?? 800);
  const res = await benchSteadyMemory({ waves, perWave });
  process.stdout.write(
    `steady-memory: ${waves} waves of ${perWave} requests at 64 in flight, one process (stack, worker, client); full GC before each reading\n`,
  );
  for (const r of res) process.stdout.write(`  ${r.label.padEnd(44)} RSS ${String(r.rssMb).padStart(4)} MB, live heap (main thread) ${r.heapUsedMb} MB\n`);
}
if (which === 'soak') {
  const { benchSoak } = await import('./soakBench.js');
  const requests = Number(process.env.SOAK_REQUESTS ?? 20_000);
  const concurrency = Number(process.env.SOAK_CONCURRENCY ?? 32);
  const maxMs = Number(process.env.SOAK_MAX_MINUTES ?? 20) * 60_000;
  const r = await benchSoak({ requests, concurrency, maxMs, say: (l) => process.stderr.write(`soak: ${l}\n`) });
  process.stdout.write(`soak: ${requests} requests at ${concurrency} in flight on the Go-built Temporal server and PostgreSQL, two workers, provider faults\n`);
  process.stdout.write(
    `  issued ${r.requests}; client errors retried: ${JSON.stringify(r.clientErrors)}; mismatches ${JSON.stringify(r.mismatches)}; ledger-only ${JSON.stringify(r.ledgerOnly)}\n`,
  );
  process.stdout.write(
    `  completed ${r.completed}, failed ${r.failed} ${JSON.stringify(r.failures)}, stuck ${r.stuck}, running after ${r.runningAfter}, charged twice ${r.chargedTwice}\n`,
  );
  process.stdout.write(
    `  ledger ${r.ledger.rows} rows ${r.ledger.costNanos} nanodollars; results ${r.paidAttempts} paid attempts ${r.resultsCostNanos}; budget ${r.budgetSpentNanos}; exact: ${r.exact} (ledger caught up in ${r.ledgerCatchUpMs} ms)\n`,
  );
  process.stdout.write(`  wall ${(r.wallMs / 1000).toFixed(0)} s = ${(r.completed / (r.wallMs / 1000)).toFixed(1)} requests/s\n`);
  for (const p of r.phases) process.stdout.write(`  ${p.phase.padEnd(24)} ${String(p.requests).padStart(6)} requests  p50 ${p.p50Ms} ms  p99 ${p.p99Ms} ms\n`);
  process.stdout.write(`  events: ${r.events.map((e) => `${e.atS}s ${e.event}`).join('; ')}\n`);
  process.stdout.write(`  worker RSS (MB) every 10 s: ${r.rss.map((x) => `${x.atS}s ${x.workerMb.map((m) => m ?? '-').join('/')}`).join(', ')}\n`);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
process.exit(0);
