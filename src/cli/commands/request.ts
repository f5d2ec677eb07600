/** CLI commands for one request: ask, escalate, cancel. */
import { randomUUID } from 'node:crypto';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { loadCatalog } from '../../catalog/loadFile.js';
import { PROVIDERS } from '../../catalog/schema.js';
import { deadlineArg, int, num, printTrace, withClient } from '../shared.js';
import { chatRequestFromFile } from '../messagesFile.js';

export function registerRequestCommands(program: Command): void {
  program
    .command('ask')
    .description('route one request through a workflow and print the answer and its trace')
    .argument('[prompt]', 'the prompt (or --messages)')
    .option(
      '--messages <file>',
      'a chat conversation instead of a prompt: a JSON array of {"role": "system"|"user"|"assistant", "content": "..."}, or an object with "messages" (an OpenAI chat request body)',
    )
    .option('--category <name>', 'budget category (critical, standard, batch, ...)', 'standard')
    .option('--feature <name>', 'the product feature this request serves (cost attribution in metrics, the ledger and reports)')
    .option('--unit <id>', 'the unit an A/B experiment assigns (a user, tenant or session; default: the request id)')
    .option('--max-latency-ms <n>', 'only models with typical latency at or under this', int('--max-latency-ms', 1))
    .option('--min-quality <q>', 'only models with quality at or above this (0..1)', num('--min-quality', 0, 1))
    .addOption(new Option('--provider <p>', 'only this provider').choices([...PROVIDERS]))
    .option('--model <name>', 'pin a catalog model (fallbacks still follow)')
    .option('--max-output-tokens <n>', 'output token budget', int('--max-output-tokens', 1))
    .option('--context-file <path>', 'a document the prompt refers to')
    .option('--request-id <id>', 'idempotency key (default: random)')
    .option('--json-schema <file>', 'the answer must be JSON matching this JSON Schema (else escalate a tier)')
    .option('--max-escalations <n>', 'quality escalations at most', int('--max-escalations'), 2)
    .option(
      '--defer <deadline>',
      "the answer may wait this long (e.g. 6h) or until this ISO time: the model's batch API at about half price (docs/deferred.md)",
      deadlineArg('--defer'),
    )
    .option('--json', 'print the result as JSON')
    .action(
      async (
        prompt: string | undefined,
        o: {
          messages?: string;
          category: string;
          feature?: string;
          unit?: string;
          maxLatencyMs?: number;
          minQuality?: number;
          provider?: (typeof PROVIDERS)[number];
          model?: string;
          maxOutputTokens?: number;
          contextFile?: string;
          requestId?: string;
          jsonSchema?: string;
          maxEscalations: number;
          defer?: string;
          json?: boolean;
        },
      ) => {
        await withClient(async (client) => {
          const { readFileSync } = await import('node:fs');
          if (prompt !== undefined && o.messages !== undefined)
            throw new InvalidArgumentError('ask takes a prompt or --messages FILE, not both (put the prompt in the last user message)');
          if (prompt === undefined && o.messages === undefined) throw new InvalidArgumentError('ask needs a prompt or --messages FILE (one of them)');
          const r = await client.ask({
            ...(o.messages ? chatRequestFromFile(o.messages) : { prompt }),
            category: o.category,
            ...(o.feature !== undefined ? { feature: o.feature } : {}),
            ...(o.unit !== undefined ? { unit: o.unit } : {}),
            requestId: o.requestId ?? randomUUID(),
            ...(o.contextFile ? { context: readFileSync(o.contextFile, 'utf8') } : {}),
            ...(o.maxLatencyMs !== undefined ? { maxLatencyMs: o.maxLatencyMs } : {}),
            ...(o.minQuality !== undefined ? { minQuality: o.minQuality } : {}),
            ...(o.provider ? { provider: o.provider } : {}),
            ...(o.model ? { model: o.model } : {}),
            ...(o.maxOutputTokens !== undefined ? { maxOutputTokens: o.maxOutputTokens } : {}),
            ...(o.defer !== undefined ? { deadline: o.defer } : {}),
            ...(o.jsonSchema
              ? { quality: { jsonSchema: JSON.parse(readFileSync(o.jsonSchema, 'utf8')) as Record<string, unknown>, maxEscalations: o.maxEscalations } }
              : {}),
          });
          if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
          else printTrace(r);
        });
      },
    );

  program
    .command('escalate')
    .description('re-route a running request now (or re-run a finished one) one tier up, or on --model')
    .argument('<workflow-id>', 'the request workflow id, e.g. llm-<request id>')
    .option('--model <name>', 'a catalog model to use instead of the next tier')
    .option('--reason <text>', 'recorded in the trace')
    .action(async (workflowId: string, o: { model?: string; reason?: string }) => {
      await withClient(async (client, cfg) => {
        if (o.model) loadCatalog(cfg.catalogPath).require(o.model);
        const r = await client.escalate(workflowId, o);
        process.stdout.write(
          r.action === 'signalled' ? `escalated ${workflowId} (running: re-routing now)\n` : `${workflowId} had finished: re-run as ${r.workflowId}\n`,
        );
      });
    });

  program
    .command('cancel')
    .description('cancel a running request (its budget reservation is released)')
    .argument('<workflow-id>', 'the request workflow id')
    .action(async (workflowId: string) => {
      await withClient(async (client) => {
        await client.cancel(workflowId);
        process.stdout.write(`cancellation requested for ${workflowId}\n`);
      });
    });
}
