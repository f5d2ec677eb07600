/** `npm run bench`: the project's benchmarks; figures go to BENCHMARKS.md with this command. */
import { benchBudget } from './budgetBench.js';

const which = process.argv[2] ?? 'all';
if (which === 'all' || which === 'budget') {
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const res = await benchBudget({ seconds, rounds, concurrency: [1, 8, 32, 128] });
  process.stdout.write(`budget entity: reserve+settle pairs/s on one entity (${rounds} rounds x ${seconds} s)\n`);
  for (const r of res) process.stdout.write(`  concurrency ${String(r.concurrency).padStart(3)}: median ${r.median} pairs/s  (rounds ${r.pairsPerSec.join(', ')}; p50 pair latency ${r.p50LatencyMs} ms)\n`);
}
process.exit(0);
