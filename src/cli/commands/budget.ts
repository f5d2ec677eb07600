/** CLI commands for budgets: status, set, restore, reset, history, realloc. */
import { type Command, InvalidArgumentError } from 'commander';
import { formatUsd } from '../../catalog/pricing.js';
import { findStackRecord } from '../stackRecord.js';
import { type BudgetStatusView } from '../../client/client.js';
import { DENIAL_POLICIES, type DenialPolicy, isWebhookUrl, MAX_BUDGET_NANOS } from '../../budget/book.js';
import { config, DEFAULT_ADDRESS, duration, num, withClient } from '../shared.js';
import { formatTable } from '../../util/table.js';

/** A value parser for `name=value` pairs whose value must be one of `allowed`. */
function oneOf<T extends string>(flag: string, allowed: readonly T[]) {
  return (raw: string, key: string): T => {
    if (!(allowed as readonly string[]).includes(raw)) throw new InvalidArgumentError(`${flag} ${key} must be ${allowed.join(', ')}`);
    return raw as T;
  };
}

function parsePairs<T>(flag: string, v: string, parse: (raw: string, key: string) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const part of v.split(',')) {
    const [k, raw] = part.split('=');
    if (!k || raw === undefined)
      throw new InvalidArgumentError(`${flag} takes name=value pairs separated by commas, e.g. critical=0.4,standard=0.35,batch=0.25`);
    out[k.trim()] = parse(raw.trim(), k.trim());
  }
  return out;
}

function printBudget(st: BudgetStatusView, from?: string): void {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  process.stdout.write(`budget ${st.scope}: ${st.periodicity} period ${st.period.start} .. ${st.period.end} (${st.timeZone})\n`);
  const rows = [['category', 'allocated', 'spent', 'reserved', 'remaining', 'used', 'limit', 'when denied']];
  for (const [name, c] of Object.entries(st.categories)) {
    rows.push([
      name,
      formatUsd(c.allocatedNanos),
      formatUsd(c.spentNanos),
      formatUsd(c.reservedNanos),
      formatUsd(c.remainingNanos),
      pct(c.utilization),
      c.limit,
      c.policy,
    ]);
  }
  rows.push([
    'total',
    formatUsd(st.totalNanos),
    formatUsd(st.spentNanos),
    formatUsd(st.reservedNanos),
    formatUsd(st.remainingNanos),
    pct(st.utilization),
    '',
    '',
  ]);
  process.stdout.write(`${formatTable(rows, (i) => i > 0 && i < 6)}\n`);
  for (const u of st.unavailable ?? []) {
    process.stdout.write(
      `WARNING: entity ${u.workflowId} is ${u.status.toLowerCase()}${u.closeTime ? ` since ${u.closeTime}` : ''}: reservations are refused until \`switchyard budget restore --scope ${st.scope}\`\n`,
    );
  }
  if (from) process.stdout.write(`${from}\n`);
}

/** Whose budget a command shows: the entity on this server and task queue (and the local stack, when `up` runs it). */
function budgetSource(): string {
  const cfg = config();
  const address = cfg.temporalAddress ?? DEFAULT_ADDRESS;
  const stack = findStackRecord(address);
  return `from the budget entity on ${address}, task queue ${cfg.taskQueue}${stack ? ` (the local stack, pid ${stack.pid})` : ''}`;
}

export function registerBudgetCommands(program: Command): void {
  const budget = program.command('budget').description('budgets: status, set, reset, history, realloc');
  budget
    .command('status')
    .description('allocated, spent, reserved and remaining, per category and in total')
    .option('--scope <name>', 'budget scope', 'default')
    .option('--json', 'print JSON')
    .action(async (o: { scope: string; json?: boolean }) => {
      await withClient(async (client) => {
        const st = await client.budgetStatus(o.scope);
        if (o.json) {
          const categories = Object.fromEntries(
            Object.entries(st.categories).map(([k, c]) => [
              k,
              {
                allocatedNanos: c.allocatedNanos,
                spentNanos: c.spentNanos,
                reservedNanos: c.reservedNanos,
                remainingNanos: c.remainingNanos,
                utilization: c.utilization,
                limit: c.limit,
                policy: c.policy,
              },
            ]),
          );
          process.stdout.write(
            `${JSON.stringify({ scope: st.scope, period: st.period, totalNanos: st.totalNanos, spentNanos: st.spentNanos, reservedNanos: st.reservedNanos, remainingNanos: st.remainingNanos, categories, counters: st.counters, ...(st.unavailable ? { unavailable: st.unavailable } : {}) })}\n`,
          );
        } else printBudget(st, budgetSource());
      });
    });
  budget
    .command('set')
    .description('change the budget mid-period (creates the scope if needed)')
    .option('--scope <name>', 'budget scope', 'default')
    .option('--monthly <usd>', 'budget per period in USD', num('--monthly', 0, Math.floor(MAX_BUDGET_NANOS / 1e9)))
    .option('--allocation <pairs>', 'category shares summing to 1, e.g. critical=0.4,standard=0.35,batch=0.25', (v: string) =>
      parsePairs('--allocation', v, (raw, k) => num(`--allocation ${k}`, 0, 1)(raw)),
    )
    .option('--limit <pairs>', 'hard or soft per category, e.g. batch=soft', (v: string) =>
      parsePairs('--limit', v, oneOf('--limit', ['hard', 'soft'] as const)),
    )
    .option('--policy <pairs>', 'when denied: downgrade, wait or reject per category, e.g. batch=wait', (v: string) =>
      parsePairs('--policy', v, oneOf('--policy', DENIAL_POLICIES)),
    )
    .option('--webhook <url>', 'soft-limit alert webhook (POST JSON)', (v: string) => {
      if (!isWebhookUrl(v)) throw new InvalidArgumentError(`--webhook must be an http(s) URL such as https://hooks.example.com/budget, got "${v}"`);
      return v;
    })
    .option(
      '--reallocate-every <duration>',
      'move unused allocation between categories on this schedule (e.g. 1d, 6h), with the configured floors; "off" stops it',
      (v: string) => (v === 'off' ? ('off' as const) : duration('--reallocate-every')(v)),
    )
    .option('--json', 'print the new status as JSON')
    .action(
      async (o: {
        scope: string;
        monthly?: number;
        allocation?: Record<string, number>;
        limit?: Record<string, 'hard' | 'soft'>;
        policy?: Record<string, DenialPolicy>;
        webhook?: string;
        reallocateEvery?: number | 'off';
        json?: boolean;
      }) => {
        await withClient(async (client, cfg) => {
          const st = await client.setBudget(o.scope, {
            ...(o.monthly !== undefined ? { totalNanos: Math.round(o.monthly * 1e9) } : {}),
            ...(o.allocation ? { allocations: o.allocation } : {}),
            ...(o.limit ? { limits: o.limit } : {}),
            ...(o.policy ? { policies: o.policy } : {}),
            ...(o.webhook ? { webhookUrl: o.webhook } : {}),
            ...(o.reallocateEvery === 'off'
              ? { reallocation: null }
              : o.reallocateEvery !== undefined
                ? { reallocation: { ...cfg.budget.reallocation, everyMs: o.reallocateEvery } }
                : {}),
          });
          if (o.json) process.stdout.write(`${JSON.stringify(st)}\n`);
          else printBudget(st);
        });
      },
    );
  budget
    .command('restore')
    .description('bring back a budget entity that failed or was terminated, from its last state')
    .option('--scope <name>', 'budget scope', 'default')
    .action(async (o: { scope: string }) => {
      await withClient(async (client) => {
        const r = await client.restoreBudget(o.scope);
        for (const e of r.entities)
          process.stdout.write(`${e.workflowId}: ${e.restored ? `restored (was ${e.was.toLowerCase()})` : `left alone (${e.reason ?? e.was})`}\n`);
        const applied = r.settled.filter((s) => !s.duplicate);
        if (r.settled.length > 0)
          process.stdout.write(
            `settled ${applied.length} spend(s) paid while it was down, by requests and provider batches (${formatUsd(applied.reduce((s, x) => s + x.costNanos, 0))})${r.settled.length > applied.length ? `; ${r.settled.length - applied.length} already settled` : ''}\n`,
          );
        for (const u of r.unreadable)
          process.stderr.write(
            `could not read the settlements of ${u.workflowId}: ${u.error} (fix that, then run \`switchyard budget restore --scope ${o.scope}\` again)\n`,
          );
      });
    });
  budget
    .command('reset')
    .description('close the current period now (its summary is kept) and start from zero')
    .option('--scope <name>', 'budget scope', 'default')
    .action(async (o: { scope: string }) => {
      await withClient(async (client) => {
        const s = await client.resetBudget(o.scope);
        process.stdout.write(`budget ${o.scope} reset; the closed period spent ${formatUsd(s.spentNanos)}\n`);
      });
    });
  budget
    .command('history')
    .description('summaries of past periods')
    .option('--scope <name>', 'budget scope', 'default')
    .option('--json', 'print JSON')
    .action(async (o: { scope: string; json?: boolean }) => {
      await withClient(async (client) => {
        const h = await client.budgetHistory(o.scope);
        const moves = await client.reallocations(o.scope);
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ periods: h, reallocations: moves })}\n`);
          return;
        }
        if (h.length === 0) process.stdout.write(`budget ${o.scope}: no closed periods yet\n`);
        else
          for (const p of h)
            process.stdout.write(
              `${new Date(p.start).toISOString()} .. ${new Date(p.end).toISOString()}  spent ${formatUsd(p.spentNanos)} of ${formatUsd(p.totalNanos)}  (${p.closedBy})\n`,
            );
        for (const r of moves)
          process.stdout.write(
            `${new Date(r.at).toISOString()}  reallocated (${r.by}): ${r.moves.map((m) => `${formatUsd(m.nanos)} ${m.from} -> ${m.to}`).join(', ')}  (${r.why})\n`,
          );
      });
    });
  budget
    .command('realloc')
    .description(
      'move unused allocation from categories that will not use it to those forecast to run out (the schedule does this when budget.reallocation is configured)',
    )
    .option('--scope <name>', 'budget scope', 'default')
    .option('--dry-run', 'show the forecast and the moves, change nothing')
    .option('--json', 'print JSON')
    .action(async (o: { scope: string; dryRun?: boolean; json?: boolean }) => {
      await withClient(async (client) => {
        const plans = o.dryRun ? await client.reallocationPlan(o.scope) : await client.reallocate(o.scope);
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ scope: o.scope, dryRun: o.dryRun === true, shards: plans })}\n`);
          return;
        }
        for (const p of plans) {
          process.stdout.write(
            `forecast at period end: ${Object.entries(p.forecastNanos)
              .map(([c, n]) => `${c} ${formatUsd(n)}`)
              .join(', ')}\n`,
          );
          if (p.moves.length === 0) process.stdout.write(`nothing to move: ${p.why}\n`);
          else for (const m of p.moves) process.stdout.write(`${o.dryRun ? 'would move' : 'moved'} ${formatUsd(m.nanos)} from ${m.from} to ${m.to}\n`);
        }
      });
    });
}
