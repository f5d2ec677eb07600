/** `switchyard routing|anomalies`: the routing entity's policy (tuned thresholds, rules, history, revert) and spend anomalies. */
import { type Command, InvalidArgumentError } from 'commander';
import { formatUsd } from '../../catalog/pricing.js';
import type { PolicyChange } from '../../learning/routingControl.js';
import { describeFilter } from '../../learning/routingControl.js';
import { formatTable } from '../../util/table.js';
import { withClient } from '../shared.js';

const json = (v: unknown): void => void process.stdout.write(`${JSON.stringify(v)}\n`);

function printChange(c: PolicyChange): void {
  process.stdout.write(`#${c.version} ${new Date(c.at).toISOString()} by ${c.by}: ${c.summary}\n`);
  for (const ch of c.changes ?? [])
    process.stdout.write(
      `    evidence ${ch.category}: ${Object.entries(ch.evidence)
        .map(([tier, e]) => `${tier} ${e.good}/${e.n} good`)
        .join(', ')}\n`,
    );
}

export function registerRoutingCommands(program: Command): void {
  const routing = program.command('routing').description('the routing policy: tuned thresholds, promoted rules; history and revert');
  routing
    .command('policy')
    .description('what workers route by now')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withClient(async (client, cfg) => {
        const p = await client.learning.policy();
        if (o.json) return json(p);
        process.stdout.write(
          `policy version ${p.version}; base thresholds standard ${cfg.routing.thresholds.standard}, premium ${cfg.routing.thresholds.premium}; exploration ${Math.round(p.explore * 100)}%\n`,
        );
        for (const [c, t] of Object.entries(p.categories)) process.stdout.write(`  category ${c}: standard ${t.standard}, premium ${t.premium}\n`);
        for (const r of p.rules) process.stdout.write(`  rule (experiment ${r.experiment}): ${describeFilter(r.filter)} -> ${r.arm.name}\n`);
        for (const e of p.experiments)
          process.stdout.write(`  experiment ${e.name}: ${describeFilter(e.filter)}, arms ${e.arms.map((a) => a.name).join(', ')}\n`);
        for (const [k, a] of Object.entries(p.actions)) process.stdout.write(`  ${a.action} ${k} (anomaly ${a.alertId})\n`);
      });
    });
  routing
    .command('history')
    .description('every change with its evidence')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withClient(async (client) => {
        const h = await client.learning.routingHistory();
        if (o.json) return json({ changes: h });
        if (h.length === 0) return void process.stdout.write('no routing changes yet\n');
        h.forEach(printChange);
      });
    });
  routing
    .command('tune')
    .description("apply the tuner's proposal now (it also runs on its own timer, learning.tuner.intervalMs)")
    .option('--dry-run', 'show what would change and on what evidence, change nothing')
    .option('--json', 'print JSON')
    .action(async (o: { dryRun?: boolean; json?: boolean }) => {
      await withClient(async (client) => {
        const r = await client.learning.tune({ dryRun: o.dryRun === true });
        if (o.json) return json(o.dryRun ? { changes: r } : { change: r });
        if (Array.isArray(r)) {
          if (r.length === 0) return void process.stdout.write('the tuner would change nothing now\n');
          for (const c of r)
            process.stdout.write(
              `would change ${c.category}: standard ${c.from.standard} -> ${c.to.standard}, premium ${c.from.premium} -> ${c.to.premium}: ${c.why}\n`,
            );
        } else if (r === null) process.stdout.write('nothing to change\n');
        else printChange(r);
      });
    });
  routing
    .command('revert')
    .description('restore the policy as it was before a change (itself recorded)')
    .argument('<version>', 'the change number from `routing history`', (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('version must be a change number from `switchyard routing history`');
      return n;
    })
    .action(async (version: number) => {
      await withClient(async (client) => printChange(await client.learning.revert(version)));
    });

  const anomalies = program.command('anomalies').description('spend anomalies: list, ack');
  anomalies
    .command('list')
    .description('raised anomalies, newest last')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withClient(async (client) => {
        const list = await client.learning.anomalies();
        if (o.json) return json({ anomalies: list });
        if (list.length === 0) return void process.stdout.write('no anomalies\n');
        process.stdout.write(
          `${formatTable([
            ['id', 'at', 'scope/category', 'model', 'feature', 'spent in bucket', 'baseline', 'action', 'acknowledged'],
            ...list.map((a) => [
              a.id,
              new Date(a.at).toISOString(),
              `${a.scope}/${a.category}`,
              a.model,
              a.feature,
              formatUsd(a.spendNanos),
              formatUsd(a.baselineNanos),
              a.action,
              a.acknowledgedAt ? new Date(a.acknowledgedAt).toISOString() : 'no',
            ]),
          ])}\n`,
        );
      });
    });
  anomalies
    .command('ack')
    .description('acknowledge an anomaly: its action (downgrade or pause) ends')
    .argument('<id>')
    .action(async (id: string) => {
      await withClient(async (client) => {
        const a = await client.learning.acknowledge(id);
        process.stdout.write(
          `${a.id} acknowledged${a.action !== 'none' ? `; ${a.scope}/${a.category} is no longer ${a.action === 'pause' ? 'paused' : 'downgraded'}` : ''}\n`,
        );
      });
    });
}
