/**
 * The learned router: the metrics match RouteLLM's procedure, the shipped weights are what the
 * trainer derives from the shipped data, by-subject cross-validation clears the bar, and the
 * `classify` / `route-eval` commands read and write the documented line formats.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseOutcomeLines, parsePromptLines } from '../../src/cli/routingFiles.js';
import { classify } from '../../src/routing/classifier.js';
import { checkModel } from '../../src/routing/difficultyModel.js';
import { SHIPPED_DIFFICULTY_MODEL } from '../../src/routing/difficultyWeights.js';
import { promptFeatures, splitOptions } from '../../src/routing/promptFeatures.js';
import { routeEval } from '../../src/routing/routeEval.js';
import { crossValidatedScores, fit, subjectFolds } from '../../src/routing/routerTraining.js';
import { ROUTER_TRAINING } from '../../src/routing/trainingSettings.js';
import { runCli } from '../helpers/cli.js';

const mmluPath = join(process.cwd(), 'test/data/routellm/mmlu.jsonl');
const mmlu = parseOutcomeLines(readFileSync(mmluPath, 'utf8'), mmluPath);
const dir = mkdtempSync(join(tmpdir(), 'sw-route-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('route-eval metrics', () => {
  const data = Array.from({ length: 100 }, (_, i) => ({ id: String(i), weak: i < 30 ? 0 : 1, strong: i < 60 ? 1 : i % 2 }));
  const gain = new Map(data.map((d) => [d.id, d.strong - d.weak]));
  it('an oracle beats random, a reversed oracle loses to it', () => {
    expect(routeEval(data, gain).APGR!).toBeGreaterThan(0.8);
    expect(routeEval(data, new Map([...gain].map(([k, v]) => [k, -v]))).APGR!).toBeLessThan(0.5);
  });
  // The shared scoring tool sits beside the project in the developers' workspace, not in a clone:
  // where it is, the two must agree (any failure of the tool fails the test); where it is not,
  // vitest reports this test as skipped, by this name.
  const python = join(process.cwd(), '..', 'shared', 'tools', 'route-eval.py');
  it.runIf(existsSync(python))(`agrees with the shared Python tool (${python})`, () => {
    const oracle = routeEval(data, gain);
    writeFileSync(join(dir, 'd.jsonl'), data.map((d) => JSON.stringify({ ...d, prompt: 'p' })).join('\n'));
    writeFileSync(join(dir, 's.jsonl'), [...gain].map(([id, score]) => JSON.stringify({ id, score })).join('\n'));
    const fromPython = JSON.parse(execFileSync('python3', [python, join(dir, 'd.jsonl'), join(dir, 's.jsonl')], { encoding: 'utf8' })) as {
      APGR: number;
      CPT50: number;
      CPT80: number;
    };
    expect({ APGR: oracle.APGR, CPT50: oracle.CPT50, CPT80: oracle.CPT80 }).toEqual({
      APGR: fromPython.APGR,
      CPT50: fromPython.CPT50,
      CPT80: fromPython.CPT80,
    });
  });
  it('refuses data without scores, naming the ids', () => {
    expect(() => routeEval(data, new Map([['0', 1]]))).toThrow(/99 ids have no score, e\.g\. 1, 2, 3/);
  });
});

describe('prompt features', () => {
  it("find a multiple-choice question's options, and none in an ordinary prompt", () => {
    const { question, options } = splitOptions('What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:');
    expect(question).toBe('What is 2+2?');
    expect(options).toEqual(['3', '4', '5', '22']);
    expect(splitOptions('Write a haiku about autumn.').options).toEqual([]);
    expect(promptFeatures('Write a haiku about autumn.').every(Number.isFinite)).toBe(true);
  });
  it('a model for other features is refused with the fix', () => {
    expect(() => checkModel({ ...SHIPPED_DIFFICULTY_MODEL, features: ['x'], weights: [1] })).toThrow(/retrain it with `npm run train-router`/);
  });
});

describe('the learned router on RouteLLM MMLU', () => {
  it('the shipped weights are what the trainer fits on the shipped data (reproducible)', () => {
    const model = fit(mmlu, { ...ROUTER_TRAINING, trainedOn: SHIPPED_DIFFICULTY_MODEL.trainedOn });
    expect(model).toEqual(SHIPPED_DIFFICULTY_MODEL);
  });
  it('by-subject 5-fold cross-validation: APGR >= 0.62, well above prompt length and the keyword score alone', () => {
    const folds = subjectFolds(mmlu, 5);
    // No subject is in two folds: a test fold's subjects are unseen in its training.
    expect(new Set(folds.values()).size).toBe(5);
    const cv = routeEval(mmlu, crossValidatedScores(mmlu, 5, { ...ROUTER_TRAINING, trainedOn: 'cv' }));
    const length = routeEval(mmlu, new Map(mmlu.map((d) => [d.id, d.prompt.length])));
    const keywords = routeEval(mmlu, new Map(mmlu.map((d) => [d.id, classify({ prompt: d.prompt }, { learnedWeight: 0 }).complexity])));
    expect(cv.APGR!).toBeGreaterThanOrEqual(0.62);
    expect(cv.APGR! - length.APGR!).toBeGreaterThan(0.03);
    expect(cv.APGR!).toBeGreaterThan(keywords.APGR!);
  });
});

describe('switchyard classify and route-eval', () => {
  it('classify writes {"id", "score"} per input line, for prompts and conversations', async () => {
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      [
        JSON.stringify({ id: 'easy', prompt: 'Classify the sentiment of: "great product"' }),
        JSON.stringify({ id: 7, messages: [{ role: 'user', content: 'Prove that there are infinitely many primes, rigorously.' }] }),
      ].join('\n'),
    );
    const out = join(dir, 'scores.jsonl');
    const r = await runCli(['classify', input, '--out', out], process.env);
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; score: number });
    expect(lines.map((l) => l.id)).toEqual(['easy', '7']);
    expect(lines[1]!.score).toBeGreaterThan(lines[0]!.score);
  });
  it("route-eval prints APGR, CPT50 and CPT80 as JSON, the router's own or for given scores", async () => {
    const sample = join(dir, 'sample.jsonl');
    writeFileSync(
      sample,
      mmlu
        .slice(0, 2000)
        .map((d) => JSON.stringify(d))
        .join('\n'),
    );
    const r = await runCli(['route-eval', sample], process.env);
    expect(r.code, r.stderr).toBe(0);
    const own = JSON.parse(r.stdout) as { n: number; APGR: number; CPT50: number; CPT80: number };
    expect(own.n).toBe(2000);
    expect(Object.keys(own)).toEqual(expect.arrayContaining(['APGR', 'CPT50', 'CPT80']));
    const scores = join(dir, 'len.jsonl');
    writeFileSync(
      scores,
      mmlu
        .slice(0, 2000)
        .map((d) => JSON.stringify({ id: d.id, score: d.prompt.length }))
        .join('\n'),
    );
    const given = JSON.parse((await runCli(['route-eval', sample, '--scores', scores], process.env)).stdout) as { APGR: number };
    expect(given.APGR).not.toBe(own.APGR);
  });
  it('bad lines are errors naming the line and the field', async () => {
    expect(() => parsePromptLines('{"id":"a"}\n')).toThrow(/line 1: .*give "prompt".*or "messages"/);
    expect(() => parseOutcomeLines('{"id":"a","prompt":"p","weak":1,"strong":2}\n')).toThrow(/line 1: "strong": .*qualities 0\.\.1/);
    expect(() => parsePromptLines('{"id":"a","prompt":"x"}\n{"id":"a","prompt":"y"}')).toThrow(/line 2: id "a" appears twice/);
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"id": "x", "prompt": "p"}\nnot json\n');
    const r = await runCli(['classify', bad], process.env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/line 2: not JSON/);
  });
});

describe('where the learned model applies', () => {
  it('only to multiple-choice prompts: any other prompt scores exactly as the keyword classifier', () => {
    for (const prompt of [
      'Design a scalable architecture for a payments platform and analyze the trade-offs.',
      'Explain why the sky is blue.',
      'A train leaves at 3 pm going 80 km an hour; a second leaves an hour later at 100 km an hour. When does the second catch up?',
    ]) {
      expect(classify({ prompt }).complexity).toBe(classify({ prompt }, { learnedWeight: 0 }).complexity);
    }
    const mcq = 'Which of the following is a prime?\nA. 4\nB. 6\nC. 7\nD. 9\nAnswer:';
    expect(classify({ prompt: mcq }).complexity).not.toBe(classify({ prompt: mcq }, { learnedWeight: 0 }).complexity);
  });
});
