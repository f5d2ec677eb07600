/** The classifier in a worker thread (see classifyPool.ts): one call per task. */
import { type Classification, type ClassifyInput, classify } from '../../routing/classifier.js';

export default function classifyInThread(input: ClassifyInput): Classification {
  return classify(input);
}
