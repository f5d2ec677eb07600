/**
 * What an experiment entity carries over continue-as-new, bounded by bytes (pure). Request ids may
 * be up to 200 characters, so 5,000 remembered outcome ids and 5,000 feedback ids alone could pass
 * the server's 2 MiB payload limit, and a refused continue-as-new would end the experiment with
 * its counts. The statistics, spec and verdict are small and always kept; the id windows (against
 * duplicate reports) and the comments (the newest per arm) are cut to fit.
 */
import { jsonBytes, newestWithin } from '../../util/bytes.js';
import type { ExperimentEntityInput, FeedbackComment } from './contract.js';

type Carried = NonNullable<ExperimentEntityInput['carried']>;

export const EXPERIMENT_CARRY_MAX_BYTES = 1_048_576;
const SEEN_BYTES = 384 * 1024;
const FEEDBACK_SEEN_BYTES = 256 * 1024;
const COMMENTS_BYTES = 128 * 1024;

export function boundCarried(c: Carried, maxBytes = EXPERIMENT_CARRY_MAX_BYTES): Carried {
  const comments: Record<string, FeedbackComment[]> = {};
  const arms = Object.keys(c.comments ?? {});
  for (const arm of arms) comments[arm] = newestWithin(c.comments![arm] ?? [], Math.floor(COMMENTS_BYTES / Math.max(1, arms.length)));
  const out: Carried = { ...c, seen: newestWithin(c.seen, SEEN_BYTES), feedbackSeen: newestWithin(c.feedbackSeen, FEEDBACK_SEEN_BYTES), comments };
  const size = jsonBytes(out);
  if (size > maxBytes) throw new Error(`the experiment's carried state is ${size} bytes, over the ${maxBytes} it may carry`);
  return out;
}
