/**
 * `npm run train-router`: fits the learned difficulty model on RouteLLM's MMLU outcomes
 * (test/data/routellm), prints its by-subject cross-validated APGR, and writes the weights the
 * package ships (src/routing/difficultyWeights.ts). Deterministic: the same data gives the same file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseOutcomeLines } from '../../src/cli/routingFiles.js';
import { LEARNED_WEIGHT } from '../../src/routing/classifier.js';
import { routeEval } from '../../src/routing/routeEval.js';
import { crossValidatedScores, fit } from '../../src/routing/routerTraining.js';
import { ROUTER_TRAINING } from '../../src/routing/trainingSettings.js';

const dataPath = join(process.cwd(), 'test/data/routellm/mmlu.jsonl');
const data = parseOutcomeLines(readFileSync(dataPath, 'utf8'), dataPath);
const options = { ...ROUTER_TRAINING, trainedOn: 'RouteLLM MMLU (test/data/routellm/mmlu.jsonl)' };
const grid = process.argv.includes('--grid');
for (const folds of [5, 10, 57]) {
  for (const w of grid ? [0.5, 1, 2, 3, 4, 6] : [LEARNED_WEIGHT]) {
    const r = routeEval(data, crossValidatedScores(data, folds, { ...options, learnedWeight: w }));
    process.stdout.write(`by-subject ${folds}-fold CV, learned weight ${w}: APGR ${r.APGR} CPT50 ${r.CPT50} CPT80 ${r.CPT80}\n`);
  }
}
const model = fit(data, options);
const path = join(process.cwd(), 'src/routing/difficultyWeights.ts');
writeFileSync(
  path,
  `// Written by \`npm run train-router\` (test/tools/trainRouter.ts); do not edit by hand.\nimport { checkModel, type DifficultyModel } from './difficultyModel.js';\n\nexport const SHIPPED_DIFFICULTY_MODEL: DifficultyModel = checkModel(${JSON.stringify(model, null, 2)});\n`,
);
process.stdout.write(`wrote ${path} (${model.examples} examples)\n`);
