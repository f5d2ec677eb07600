/** The request's `feature` (cost attribution): validated like category; batch files default it. */
import { describe, expect, it } from 'vitest';
import { requestInputSchema } from '../../src/contracts/requestInput.js';
import { parseBatchLine } from '../../src/batch/batchInput.js';
import { describeIssues } from '../../src/util/validation.js';
import { LabelCap, OTHER } from '../../src/metrics/metrics.js';

describe('feature', () => {
  it('accepts a lowercase name and refuses anything else, naming the field and the fix', () => {
    expect(requestInputSchema.parse({ prompt: 'hi', feature: 'support-chat' }).feature).toBe('support-chat');
    expect(requestInputSchema.parse({ prompt: 'hi' }).feature).toBeUndefined();
    for (const bad of ['Search', 'has space', '', 'x'.repeat(65), 'constructor', 'other']) {
      const r = requestInputSchema.safeParse({ prompt: 'hi', feature: bad });
      expect(r.success).toBe(false);
      if (!r.success) expect(describeIssues(r.error).join('; ')).toMatch(/^feature: /);
    }
  });

  it('a batch line without a feature takes the default; one with its own keeps it', () => {
    const own = parseBatchLine('{"id": "1", "prompt": "a", "feature": "search"}', 1, { feature: 'summarise' });
    const none = parseBatchLine('{"id": "2", "prompt": "b"}', 2, { feature: 'summarise' });
    expect(own?.ok && own.item.request.feature).toBe('search');
    expect(none?.ok && none.item.request.feature).toBe('summarise');
    const bad = parseBatchLine('{"id": "3", "prompt": "c", "feature": "Bad!"}', 3);
    expect(bad?.ok === false && bad.bad.error).toMatch(/^line 3: feature: must be a lowercase name/);
  });

  it('metric labels stay bounded: past the cap, new values count as "other"', () => {
    const cap = new LabelCap(2);
    expect(['a', 'b', 'c', 'a', 'd'].map((v) => cap.of(v))).toEqual(['a', 'b', OTHER, 'a', OTHER]);
  });
});
