/** `switchyard experiment|feedback`: A/B experiments on routing, and feedback on answered requests. */
import { type Command, Option } from 'commander';
import { formatUsd } from '../../catalog/pricing.js';
import { loadCatalog } from '../../catalog/loadFile.js';
import { envHint, ProviderRegistry } from '../../providers/registry.js';
import { providerEndpointsFor } from '../../workers/createWorker.js';
import { CAPABILITIES } from '../../catalog/schema.js';
import { ExperimentSpecError, parseArms } from '../../learning/experiments.js';
import type { ExperimentStatus } from '../../workflows/experiment/contract.js';
import { describeFilter } from '../../learning/routingControl.js';
import { formatTable } from '../../util/table.js';
import { ValidationError } from '../../util/validation.js';
import { DEFAULT_ADDRESS, int, num, withClient } from '../shared.js';
import { findStackRecord } from '../stackRecord.js';

const json = (v: unknown): void => void process.stdout.write(`${JSON.stringify(v)}\n`);
const fmt = (x: number | null, digits = 3): string => (x === null ? '-' : x.toFixed(digits));
const ci = (c: [number, number] | null, digits = 3): string => (c === null ? '-' : `[${c[0].toFixed(digits)}, ${c[1].toFixed(digits)}]`);

function printStatus(st: ExperimentStatus): void {
  process.stdout.write(`experiment ${st.name}: ${st.state}; traffic ${describeFilter(st.spec.filter)}; min ${st.spec.minSamples} requests per arm\n`);
  const rows = Object.entries(st.arms).map(([arm, a]) => [
    arm,
    String(a.requests),
    String(a.failed),
    fmt(a.meanQuality),
    ci(a.qualityCi),
    a.meanCostNanos === null ? '-' : formatUsd(a.meanCostNanos),
    a.costPerQualityNanos === null ? '-' : formatUsd(a.costPerQualityNanos),
    a.meanLatencyMs === null ? '-' : `${Math.round(a.meanLatencyMs)} ms`,
    `${a.feedback.n}${a.feedback.mean === null ? '' : ` (${a.feedback.mean.toFixed(2)})`}`,
  ]);
  process.stdout.write(
    `${formatTable([['arm', 'requests', 'failed', 'quality', '95% CI', 'cost/request', 'cost/quality', 'latency', 'feedback'], ...rows])}\n`,
  );
  process.stdout.write(`verdict: ${st.verdict.state}${st.winner ? `, winner ${st.winner}` : ''}: ${st.verdict.reason}\n`);
  if (st.promotion) process.stdout.write(`promoted: routing change ${st.promotion.version} (${st.promotion.summary})\n`);
}

export function registerExperimentCommands(program: Command): void {
  const experiment = program.command('experiment').description('A/B experiments on routing: create, list, status, stop, promote');
  experiment
    .command('create')
    .description('start an experiment: matching requests are assigned an arm by their unit (the request\'s "unit", else its id), the same arm every time')
    .argument('<name>', 'the experiment\'s name (a-z, 0-9, ".", "_", "-")')
    .requiredOption('--arms <pairs>', 'ARM=WEIGHT,...: a catalog model, tier:TIER or thresholds:S/P, e.g. gpt-4o-mini=0.5,claude-3-5-haiku=0.5')
    .option('--category <name>', 'only requests of this budget category')
    .option('--feature <name>', 'only requests of this feature')
    .addOption(new Option('--capability <cap>', 'only requests needing this capability').choices([...CAPABILITIES]))
    .option('--min-samples <n>', 'requests per arm before any verdict', int('--min-samples', 2), 100)
    .option('--max-samples <n>', 'stop once every arm has this many requests, winner or not', int('--max-samples', 2))
    .option('--confidence <c>', 'confidence for significance', num('--confidence', 0.5, 0.999), 0.95)
    .option('--json', 'print the status as JSON')
    .action(
      async (
        name: string,
        o: {
          arms: string;
          category?: string;
          feature?: string;
          capability?: (typeof CAPABILITIES)[number];
          minSamples: number;
          maxSamples?: number;
          confidence: number;
          json?: boolean;
        },
      ) => {
        await withClient(async (client, cfg) => {
          const catalog = loadCatalog(cfg.catalogPath);
          let arms;
          try {
            arms = parseArms(o.arms, (m) => catalog.get(m) !== undefined);
          } catch (e) {
            if (e instanceof ExperimentSpecError) throw new ValidationError('experiment', [e.message]);
            throw e;
          }
          // The workers need each arm's provider; this environment is usually theirs too: say so before the traffic does.
          // (The worker of the local stack this shell reaches, when `switchyard up` runs one: its own configuration.)
          const providers = new ProviderRegistry(providerEndpointsFor(cfg), cfg.callTimeoutMs);
          const stack = findStackRecord(cfg.temporalAddress ?? DEFAULT_ADDRESS);
          const configured = (p: Parameters<ProviderRegistry['isConfigured']>[0]): boolean =>
            stack ? (stack.providers[p] ?? 'no') !== 'no' : providers.isConfigured(p);
          for (const a of arms) {
            const m = a.model !== undefined ? catalog.get(a.model) : undefined;
            if (m && !configured(m.provider))
              process.stderr.write(
                `warning: arm ${a.name}: provider ${m.provider} is not configured ${stack ? `on the worker of the local stack at ${stack.address}` : 'here'} (${envHint(m.provider)}); workers without it route that arm's requests as usual, and the arm gets no samples\n`,
              );
          }
          const st = await client.learning.createExperiment({
            name,
            arms,
            filter: {
              ...(o.category ? { category: o.category } : {}),
              ...(o.feature ? { feature: o.feature } : {}),
              ...(o.capability ? { capability: o.capability } : {}),
            },
            minSamples: o.minSamples,
            ...(o.maxSamples !== undefined ? { maxSamples: o.maxSamples } : {}),
            confidence: o.confidence,
          });
          if (o.json) json(st);
          else printStatus(st);
        });
      },
    );
  experiment
    .command('list')
    .description('every experiment of the task queue')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withClient(async (client) => {
        const all = await client.learning.listExperiments();
        if (o.json)
          return json({
            experiments: all.map((e) => ({
              name: e.name,
              state: e.state,
              winner: e.winner,
              createdAt: e.createdAt,
              arms: Object.fromEntries(Object.entries(e.arms).map(([a, s]) => [a, s.requests])),
            })),
          });
        if (all.length === 0) return void process.stdout.write('no experiments\n');
        process.stdout.write(
          `${formatTable([
            ['name', 'state', 'requests per arm', 'winner', 'created'],
            ...all.map((e) => [
              e.name,
              e.state,
              Object.entries(e.arms)
                .map(([a, s]) => `${a}: ${s.requests}`)
                .join(', '),
              e.winner ?? '-',
              e.createdAt,
            ]),
          ])}\n`,
        );
      });
    });
  experiment
    .command('status')
    .description('per arm: requests, cost, latency, quality with confidence intervals; whether a difference is significant, and the winner')
    .argument('<name>')
    .option('--json', 'print JSON: {"name", "state", "arms": {ARM: {"requests", "costNanos", "meanQuality", "qualityCi", ...}}, "winner", ...}')
    .action(async (name: string, o: { json?: boolean }) => {
      await withClient(async (client) => {
        const st = await client.learning.experimentStatus(name);
        if (o.json) json(st);
        else printStatus(st);
      });
    });
  experiment
    .command('stop')
    .description('stop assigning traffic (the statistics are kept)')
    .argument('<name>')
    .action(async (name: string) => {
      await withClient(async (client) => printStatus(await client.learning.stopExperiment(name)));
    });
  experiment
    .command('promote')
    .description("the winner becomes the routing rule for the experiment's traffic (recorded in `routing history`, revertible)")
    .argument('<name>')
    .action(async (name: string) => {
      await withClient(async (client) => printStatus(await client.learning.promoteExperiment(name)));
    });

  program
    .command('feedback')
    .description('score an answered request (0..1): it reaches its experiment and the routing tuner, once per request')
    .argument('<workflow-id>')
    .requiredOption('--score <s>', 'quality of the answer, 0 (useless) to 1 (right)', num('--score', 0, 1))
    .option('--comment <text>', 'kept with the experiment arm (the latest 20)')
    .option('--json', 'print JSON')
    .action(async (workflowId: string, o: { score: number; comment?: string; json?: boolean }) => {
      await withClient(async (client) => {
        const r = await client.feedback(workflowId, o.score, o.comment !== undefined ? { comment: o.comment } : {});
        if (o.json) json(r);
        else
          process.stdout.write(
            `feedback ${r.score} on ${r.workflowId}${r.experiment ? `: experiment ${r.experiment.name}, arm ${r.experiment.arm}` : ''}${r.tuner ? '; sent to the tuner (it counts the first feedback per request)' : ''}\n`,
          );
      });
    });
}
