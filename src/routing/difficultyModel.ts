/**
 * The learned part of the difficulty score: a ridge regression from a prompt's form features
 * (promptFeatures.ts) to the quality a premium model adds over a cheap one on it, fitted to
 * recorded outcomes (RouteLLM's MMLU set ships in test/data). Its output is standardised (mean 0,
 * sd 1 over the training prompts) so the classifier can weigh it against the keyword score. Pure:
 * the weights come in as data (difficultyWeights.ts, written by `npm run train-router`).
 */
import { PROMPT_FEATURES, promptFeatures, splitOptions } from './promptFeatures.js';

export interface DifficultyModel {
  /** Feature names in weight order; must equal PROMPT_FEATURES (a model for other features is refused). */
  readonly features: readonly string[];
  readonly weights: readonly number[];
  readonly bias: number;
  /** Ridge penalty it was fitted with, and what it was fitted on, for the record. */
  readonly lambda: number;
  readonly trainedOn: string;
  readonly examples: number;
}

export interface TrainingExample {
  readonly features: readonly number[];
  /** strong quality - weak quality on this prompt, in [-1, 1]. */
  readonly gain: number;
}

/** Solves A x = b (A symmetric positive definite: the ridge normal equations) by Gaussian elimination. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  for (let i = 0; i < n; i += 1) {
    let pivot = i;
    for (let r = i + 1; r < n; r += 1) if (Math.abs(a[r]![i]!) > Math.abs(a[pivot]![i]!)) pivot = r;
    [a[i], a[pivot]] = [a[pivot]!, a[i]!];
    [b[i], b[pivot]] = [b[pivot]!, b[i]!];
    for (let r = i + 1; r < n; r += 1) {
      const f = a[r]![i]! / a[i]![i]!;
      for (let c = i; c < n; c += 1) a[r]![c]! -= f * a[i]![c]!;
      b[r]! -= f * b[i]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i -= 1) {
    let s = b[i]!;
    for (let c = i + 1; c < n; c += 1) s -= a[i]![c]! * x[c]!;
    x[i] = s / a[i]![i]!;
  }
  return x;
}

/**
 * Fits the ridge regression (closed form: deterministic, no learning rate to tune) and folds the
 * standardisation of its output into the weights.
 */
export function trainDifficultyModel(examples: readonly TrainingExample[], lambda: number, trainedOn: string): DifficultyModel {
  if (examples.length < 2) throw new Error('trainDifficultyModel: need at least 2 examples');
  const d = PROMPT_FEATURES.length + 1; // + intercept
  const a = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  const b = new Array<number>(d).fill(0);
  for (const ex of examples) {
    const x = [...ex.features, 1];
    for (let r = 0; r < d; r += 1) {
      b[r]! += x[r]! * ex.gain;
      for (let c = 0; c < d; c += 1) a[r]![c]! += x[r]! * x[c]!;
    }
  }
  for (let r = 0; r < d - 1; r += 1) a[r]![r]! += lambda; // the intercept is not penalised
  const w = solve(a, b);
  const raw = examples.map((ex) => ex.features.reduce((s, v, i) => s + v * w[i]!, w[d - 1]!));
  const mean = raw.reduce((s, v) => s + v, 0) / raw.length;
  const sd = Math.sqrt(raw.reduce((s, v) => s + (v - mean) ** 2, 0) / raw.length) || 1;
  const round = (x: number): number => Number(x.toPrecision(8));
  return {
    features: [...PROMPT_FEATURES],
    weights: w.slice(0, d - 1).map((v) => round(v / sd)),
    bias: round((w[d - 1]! - mean) / sd),
    lambda,
    trainedOn,
    examples: examples.length,
  };
}

/** The model's standardised score for features in PROMPT_FEATURES order. */
export function scoreFeatures(model: DifficultyModel, features: readonly number[]): number {
  let z = model.bias;
  for (let i = 0; i < features.length; i += 1) z += model.weights[i]! * features[i]!;
  return z;
}

/** Answer options a prompt needs for the model to apply: it was fitted on multiple-choice questions. */
export const MIN_OPTIONS = 2;

/**
 * The model's standardised score for an instruction's text, or undefined when the text is not of
 * the form the model was fitted on (a multiple-choice question): on other prompts (chat, tasks,
 * word problems) its features carry no learned signal, and extrapolating would rank every one of
 * them as "easy" (measured: a design task went from 0.90 to 0.33).
 */
export function learnedDifficulty(model: DifficultyModel, text: string): number | undefined {
  const split = splitOptions(text);
  if (split.options.length < MIN_OPTIONS) return undefined;
  return scoreFeatures(model, promptFeatures(text, split));
}

/** Refuses a model whose features differ from this build's (an old or foreign model file). */
export function checkModel(model: DifficultyModel): DifficultyModel {
  const same = model.features.length === PROMPT_FEATURES.length && model.features.every((f, i) => f === PROMPT_FEATURES[i]);
  if (!same || model.weights.length !== PROMPT_FEATURES.length) {
    throw new Error(
      `difficulty model: its features (${model.features.join(', ')}) are not this build's (${PROMPT_FEATURES.join(', ')}); retrain it with \`npm run train-router\``,
    );
  }
  return model;
}
