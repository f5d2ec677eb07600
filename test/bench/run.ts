/** `npm run bench`: the project's benchmarks; figures go to BENCHMARKS.md with this command. */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { benchBudget } from './budgetBench.js';
import { benchRequests } from './requestBench.js';
import { benchAdversarial, benchRouter } from './routerBench.js';
import { benchBatch } from './batchBench.js';

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
  if (seedUs.length > 0) process.stdout.write(`  seed (Python):           median ${median(seedUs).toFixed(2)} us  (rounds ${seedUs.map((x) => x.toFixed(2)).join(', ')})\n`);
}
if (which === 'all' || which === 'classifier') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  process.stdout.write(`classifier on hostile prompts: ms per classification (median of ${rounds})\n`);
  for (const c of benchAdversarial(rounds)) process.stdout.write(`  ${c.name.padEnd(44)} ${String(c.chars).padStart(9)} chars: median ${median(c.ms).toFixed(1)} ms  (rounds ${c.ms.map((x) => x.toFixed(1)).join(', ')})\n`);
}
if (which === 'all' || which === 'budget') {
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const res = await benchBudget({ seconds, rounds, concurrency: [1, 32, 128], shards: [1, 4] });
  process.stdout.write(`budget: reserve+settle pairs/s per scope (${rounds} interleaved rounds x ${seconds} s each)\n`);
  for (const r of res) {
    process.stdout.write(`  shards ${r.shards}  concurrency ${String(r.concurrency).padStart(3)}: median ${r.median} pairs/s  (rounds ${r.pairsPerSec.join(', ')}; p50 pair latency ${r.p50LatencyMs} ms)\n`);
  }
}
if (which === 'all' || which === 'requests') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const requests = Number(process.env.BENCH_REQUESTS ?? 300);
  const res = await benchRequests({ requests, concurrency: 64, shards: [1, 4], rounds });
  process.stdout.write(`requests end to end (simulator latency 0, ${requests} requests, 64 in flight, ${rounds} interleaved rounds)\n`);
  for (const r of res) process.stdout.write(`  budget shards ${r.shards}: median ${median(r.perSec)} requests/s  (rounds ${r.perSec.join(', ')})\n`);
}
if (which === 'batch') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const requests = Number(process.env.BENCH_REQUESTS ?? 1000);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
  const res = await benchBatch({ requests, concurrency, rounds });
  process.stdout.write(`batch of ${requests} demo prompts on the demo stack (latency x 0.1), ${concurrency} in flight, ${rounds} interleaved rounds\n`);
  for (const r of res) {
    const m = median(r.seconds);
    process.stdout.write(`  sqlite ${r.pragmas.padEnd(11)} ${r.mode.padEnd(8)}: median ${m.toFixed(1)} s = ${(requests / m).toFixed(1)} requests/s  (rounds ${r.seconds.map((x) => x.toFixed(1)).join(', ')})\n`);
  }
}
process.exit(0);
