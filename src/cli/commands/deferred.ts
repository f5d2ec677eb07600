/** `switchyard deferred`: the collectors of deferred requests and their provider batches; flush and cancel. */
import { type Command, InvalidArgumentError } from 'commander';
import { loadCatalog } from '../../catalog/loadFile.js';
import { formatTable } from '../../util/table.js';
import { withClient } from '../shared.js';

export function registerDeferredCommands(program: Command): void {
  const deferred = program.command('deferred').description("deferred requests: each model's collector and its provider batches (docs/deferred.md)");

  deferred
    .command('status')
    .description("collectors: lines waiting, the oldest one's age, provider batches in flight")
    .argument('[model]', 'one catalog model (default: every running collector)')
    .option('--json', 'print JSON')
    .action(async (model: string | undefined, o: { json?: boolean }) => {
      await withClient(async (client, cfg) => {
        if (model !== undefined) loadCatalog(cfg.catalogPath).require(model);
        const all = await client.deferred().status(model);
        if (o.json) return void process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
        if (all.length === 0) return void process.stdout.write('no deferred requests: no collector is running\n');
        const rows = [['model', 'provider', 'waiting', 'oldest', 'batch', 'state', 'lines', 'polls', 'batches so far']];
        for (const c of all) {
          const first = [c.model, c.provider, String(c.pending), c.oldestPendingAgeMs !== undefined ? `${Math.round(c.oldestPendingAgeMs / 1000)} s` : '-'];
          if (c.flights.length === 0) rows.push([...first, '-', '-', '-', '-', String(c.batches)]);
          for (const f of c.flights) rows.push([...first, f.batchId ?? '(submitting)', f.state, String(f.lines), String(f.polls), String(c.batches)]);
        }
        process.stdout.write(`${formatTable(rows, (i) => [2, 6, 7, 8].includes(i))}\n`);
      });
    });

  for (const [name, what] of [
    ['flush', "submit the lines a model's collector holds now, without waiting for its size or age"],
    ['cancel', "cancel a model's provider batches in flight and call its waiting requests live"],
  ] as const)
    deferred
      .command(name)
      .description(what)
      .argument('<model>', 'the catalog model whose collector it is')
      .action(async (model: string) => {
        await withClient(async (client, cfg) => {
          loadCatalog(cfg.catalogPath).require(model);
          const d = client.deferred();
          const done = name === 'flush' ? await d.flush(model) : await d.cancel(model);
          if (!done) throw new InvalidArgumentError(`no deferred requests for ${model}: its collector is not running (see \`switchyard deferred status\`)`);
          process.stdout.write(
            name === 'flush' ? `${model}: submitting what it holds now\n` : `${model}: cancelling its provider batches; their requests go live\n`,
          );
        });
      });
}
