/** `switchyard keys`: the gateway's virtual keys (docs/gateway-keys.md): create, list, show, revoke, rotate. */
import { type Command, InvalidArgumentError } from 'commander';
import { loadCatalog } from '../../catalog/loadFile.js';
import { type Tier, TIERS } from '../../catalog/tiers.js';
import type { KeyView } from '../../client/keys.js';
import { formatTable } from '../../util/table.js';
import { config, duration, int, withClient } from '../shared.js';

function list(name: string) {
  return (v: string): string[] => {
    const items = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0) throw new InvalidArgumentError(`${name} must name at least one, comma-separated`);
    return items;
  };
}

function tiers(v: string): Tier[] {
  const items = list('--tiers')(v);
  for (const t of items) if (!(TIERS as readonly string[]).includes(t)) throw new InvalidArgumentError(`--tiers: "${t}" is not one of ${TIERS.join(', ')}`);
  return items as Tier[];
}

function usd(nanos: number): string {
  return `$${(nanos / 1e9).toFixed(6)}`;
}

function limits(k: KeyView): string {
  const parts = [
    k.rpm !== undefined ? `${k.rpm} rpm` : '',
    k.tpm !== undefined ? `${k.tpm} tpm` : '',
    k.maxConcurrency !== undefined ? `${k.maxConcurrency} at once` : '',
  ];
  return parts.filter(Boolean).join(', ') || '-';
}

function printKey(k: KeyView): void {
  process.stdout.write(
    `${k.id}  ${k.name}  ${k.state}\n  scope ${k.scope}; categories ${k.categories?.join(', ') ?? 'any'}; models ${k.models?.join(', ') ?? 'any'}; tiers ${k.tiers?.join(', ') ?? 'any'}; limits ${limits(k)}\n  created ${k.createdAt}${k.expiresAt ? `, expires ${k.expiresAt}` : ''}${k.revokedAt ? `, revoked ${k.revokedAt}` : ''}${k.rotatedFrom ? `, rotated from ${k.rotatedFrom}` : ''}\n`,
  );
}

export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description("the gateway's virtual keys: each spends its own budget scope, with its own limits");

  keys
    .command('create <name>')
    .description('make a key and print it once (only its SHA-256 is stored)')
    .requiredOption('--scope <scope>', 'the budget scope its requests are charged to')
    .option('--categories <list>', 'categories it may use, comma-separated (the first is its default)', list('--categories'))
    .option('--models <list>', 'catalog models it may use, comma-separated', list('--models'))
    .option('--tiers <list>', `tiers it may use, comma-separated (${TIERS.join(', ')})`, tiers)
    .option('--rpm <n>', 'requests per minute (per gateway instance)', int('--rpm', 1))
    .option('--tpm <n>', 'input tokens per minute (per gateway instance)', int('--tpm', 1))
    .option('--max-concurrency <n>', 'requests (and streams) open at once (per gateway instance)', int('--max-concurrency', 1))
    .option('--expires <duration>', 'expires after this long, e.g. 30d', duration('--expires'))
    .option('--json', 'print JSON')
    .action(
      async (
        name: string,
        o: {
          scope: string;
          categories?: string[];
          models?: string[];
          tiers?: Tier[];
          rpm?: number;
          tpm?: number;
          maxConcurrency?: number;
          expires?: number;
          json?: boolean;
        },
      ) => {
        const badCategory = o.categories?.find((c) => !/^[a-z][a-z0-9_-]{0,63}$/.test(c));
        if (badCategory !== undefined)
          throw new InvalidArgumentError(
            `--categories: "${badCategory}" is not a category name (lowercase letters, digits, - and _, such as critical, standard or batch)`,
          );
        if (o.models && o.tiers)
          throw new InvalidArgumentError('--models and --tiers: give one of them (a key held to models may use those models, whatever their tiers)');
        if (o.models) {
          const catalog = loadCatalog(config().catalogPath);
          const unknown = o.models.filter((m) => catalog.get(m) === undefined);
          if (unknown.length > 0) throw new InvalidArgumentError(`--models: ${unknown.join(', ')} not in the catalog (\`switchyard models\`)`);
        }
        await withClient(async (client) => {
          const { key, token } = await client.keys().create(name, {
            scope: o.scope,
            ...(o.categories ? { categories: o.categories } : {}),
            ...(o.models ? { models: o.models } : {}),
            ...(o.tiers ? { tiers: o.tiers } : {}),
            ...(o.rpm !== undefined ? { rpm: o.rpm } : {}),
            ...(o.tpm !== undefined ? { tpm: o.tpm } : {}),
            ...(o.maxConcurrency !== undefined ? { maxConcurrency: o.maxConcurrency } : {}),
            ...(o.expires !== undefined ? { expiresAt: new Date(Date.now() + o.expires).toISOString() } : {}),
          });
          if (o.json) return void process.stdout.write(`${JSON.stringify({ ...key, key: token })}\n`);
          printKey(key);
          process.stdout.write(`\n${token}\n\nThis is the only time the key is shown: store it now. Gateways accept it within seconds.\n`);
        });
      },
    );

  keys
    .command('list')
    .description('every key: id, name, state, scope, limits (never the secret)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withClient(async (client) => {
        const all = await client.keys().list();
        if (o.json) return void process.stdout.write(`${JSON.stringify(all)}\n`);
        if (all.length === 0) return void process.stdout.write('no keys yet: `switchyard keys create NAME --scope S`\n');
        process.stdout.write(
          `${formatTable([
            ['id', 'name', 'state', 'scope', 'categories', 'models/tiers', 'limits', 'expires'],
            ...all.map((k) => [
              k.id,
              k.name,
              k.state,
              k.scope,
              k.categories?.join(',') ?? 'any',
              k.models?.join(',') ?? k.tiers?.join(',') ?? 'any',
              limits(k),
              k.expiresAt ?? '-',
            ]),
          ])}\n`,
        );
      });
    });

  keys
    .command('show <idOrName>')
    .description("a key, with this period's spend against its scope's budget")
    .option('--json', 'print JSON')
    .action(async (idOrName: string, o: { json?: boolean }) => {
      await withClient(async (client) => {
        const k = await client.keys().find(idOrName);
        const budget = await client.budgetStatus(k.scope).catch(() => undefined);
        if (o.json) return void process.stdout.write(`${JSON.stringify({ ...k, budget: budget ?? null })}\n`);
        printKey(k);
        if (!budget) process.stdout.write(`  budget scope ${k.scope}: no budget entity yet (nothing spent)\n`);
        else
          process.stdout.write(
            `  budget scope ${k.scope}, period ${budget.period.start} - ${budget.period.end}: spent ${usd(budget.spentNanos)} of ${usd(budget.totalNanos)} (${usd(budget.remainingNanos)} left, ${usd(budget.reservedNanos)} reserved)\n`,
          );
      });
    });

  keys
    .command('revoke <idOrName>')
    .description('revoke a key: every gateway refuses it within seconds')
    .action(async (idOrName: string) => {
      await withClient(async (client) => {
        const k = await client.keys().revoke(idOrName);
        process.stdout.write(`revoked ${k.id} (${k.name}) at ${k.revokedAt ?? '?'}\n`);
      });
    });

  keys
    .command('rotate <idOrName>')
    .description('a new key with the same name, scope and limits; the old one is revoked')
    .option('--json', 'print JSON')
    .action(async (idOrName: string, o: { json?: boolean }) => {
      await withClient(async (client) => {
        const r = await client.keys().rotate(idOrName);
        if (o.json) return void process.stdout.write(`${JSON.stringify({ ...r.key, key: r.token, revoked: r.revoked.id })}\n`);
        printKey(r.key);
        process.stdout.write(`\n${r.token}\n\nThis is the only time the key is shown. ${r.revoked.id} is revoked.\n`);
      });
    });
}
