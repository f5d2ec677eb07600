/** `switchyard classify` and `switchyard route-eval`: the router's difficulty score, and how well it routes. */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { classify } from '../../routing/classifier.js';
import { routeEval } from '../../routing/routeEval.js';
import { classifyInputOf } from '../../workflows/conversation.js';
import { parseOutcomeLines, parsePromptLines } from '../routingFiles.js';

function readInput(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${what}: cannot read ${path}: ${(e as Error).message}`);
  }
}

export function registerRouterCommands(program: Command): void {
  program
    .command('classify')
    .description(
      'score prompts as the router does: lines {"id", "prompt"} or {"id", "messages"} in, lines {"id", "score"} out (score = difficulty 0..1, higher = needs a stronger model)',
    )
    .argument('<file>', 'a JSON-lines file of prompts')
    .option('--out <file>', 'where to write the scores (default: standard output)')
    .action((file: string, o: { out?: string }) => {
      const lines = parsePromptLines(readInput(file, 'classify'), file);
      const out = lines.map((l) => JSON.stringify({ id: l.id, score: classify(classifyInputOf(l.text)).complexity })).join('\n') + '\n';
      if (o.out) {
        writeFileSync(o.out, out);
        process.stderr.write(`classify: ${lines.length} scores written to ${o.out}\n`);
      } else process.stdout.write(out);
    });

  program
    .command('route-eval')
    .description(
      'how well the router spends strong-model calls on prompts with recorded quality (RouteLLM metrics): lines {"id", "prompt", "weak", "strong"} in, {"n", "APGR", "CPT50", "CPT80", ...} out as JSON',
    )
    .argument('<data>', 'a JSON-lines file of {"id", "prompt", "weak", "strong"} (weak/strong: each model\'s quality on it, 0..1)')
    .option('--scores <file>', 'score with these {"id", "score"} lines instead of the router (e.g. another router\'s)')
    .option('--curve', 'include the (strong %, quality) curve')
    .action((file: string, o: { scores?: string; curve?: boolean }) => {
      const data = parseOutcomeLines(readInput(file, 'route-eval'), file);
      const scores = new Map<string, number>();
      if (o.scores) {
        for (const line of readInput(o.scores, 'route-eval --scores').split('\n')) {
          if (line.trim() === '') continue;
          const v = JSON.parse(line) as { id?: unknown; score?: unknown };
          if (typeof v.score !== 'number' || !Number.isFinite(v.score) || (typeof v.id !== 'string' && typeof v.id !== 'number'))
            throw new Error(`route-eval --scores: each line needs "id" and a numeric "score", got ${line.slice(0, 120)}`);
          scores.set(String(v.id), v.score);
        }
      } else for (const d of data) scores.set(d.id, classify({ prompt: d.prompt }).complexity);
      const { curve, ...summary } = routeEval(data, scores);
      process.stdout.write(`${JSON.stringify(o.curve ? { ...summary, curve } : summary)}\n`);
    });
}
