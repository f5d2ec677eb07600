/**
 * Fitting and cross-validating the learned difficulty model on recorded outcomes. Folds are by
 * subject (every prompt of a subject in the same fold), so a score measures how the router does on
 * subjects it never saw, not how well it memorised their vocabulary. Pure.
 */
import { classify, patternWindow } from './classifier.js';
import { type DifficultyModel, trainDifficultyModel } from './difficultyModel.js';
import { promptFeatures } from './promptFeatures.js';

export interface RecordedOutcome {
  readonly id: string;
  readonly prompt: string;
  /** The group folds are made of (MMLU's subject); absent = the prompt is its own group. */
  readonly subject?: string | undefined;
  readonly weak: number;
  readonly strong: number;
}

export interface TrainingOptions {
  readonly lambda: number;
  /**
   * Subjects left out of training (still scored when they are in a test fold): MMLU's
   * high_school_mathematics records the premium model at 3% correct, below its 46% on abstract
   * algebra, an answer-extraction failure rather than its skill; learning from it would teach
   * that mathematics never needs the premium model.
   */
  readonly excludeSubjects?: readonly string[] | undefined;
  readonly trainedOn: string;
}

export function fit(outcomes: readonly RecordedOutcome[], options: TrainingOptions): DifficultyModel {
  const excluded = new Set(options.excludeSubjects ?? []);
  const examples = outcomes
    .filter((o) => o.subject === undefined || !excluded.has(o.subject))
    .map((o) => ({ features: promptFeatures(patternWindow(o.prompt)), gain: o.strong - o.weak }));
  return trainDifficultyModel(examples, options.lambda, options.trainedOn);
}

/** Fold of each subject: subjects sorted by name, dealt round-robin into `folds` folds. */
export function subjectFolds(outcomes: readonly RecordedOutcome[], folds: number): Map<string, number> {
  const subjects = [...new Set(outcomes.map((o) => o.subject ?? o.id))].sort();
  if (folds < 2 || folds > subjects.length) throw new Error(`cross-validation: folds must be 2..${subjects.length} (the number of subjects), got ${folds}`);
  return new Map(subjects.map((s, i) => [s, i % folds]));
}

/**
 * Out-of-fold difficulty scores: each fold scored by the classifier with a model fitted on the
 * other folds' subjects.
 */
export function crossValidatedScores(
  outcomes: readonly RecordedOutcome[],
  folds: number,
  options: TrainingOptions & { readonly learnedWeight?: number | undefined },
): Map<string, number> {
  const foldOf = subjectFolds(outcomes, folds);
  const scores = new Map<string, number>();
  for (let k = 0; k < folds; k += 1) {
    const inFold = (o: RecordedOutcome): boolean => foldOf.get(o.subject ?? o.id) === k;
    const model = fit(
      outcomes.filter((o) => !inFold(o)),
      options,
    );
    for (const o of outcomes.filter(inFold)) scores.set(o.id, classify({ prompt: o.prompt }, { model, learnedWeight: options.learnedWeight }).complexity);
  }
  return scores;
}
