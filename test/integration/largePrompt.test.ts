/**
 * A very large prompt is classified off the worker's event loop (issue 21, item 11): in a worker
 * thread (piscina), with the same result as on the main thread, while small prompts stay inline.
 * How long the main thread would be held is measured in BENCHMARKS.md ("Classifier on hostile
 * prompts"), not timed here.
 */
import { describe, expect, it } from 'vitest';
import { OFF_THREAD_BYTES } from '../../src/activities/request/classifyPool.js';
import { classify } from '../../src/routing/classifier.js';
import { useTestStack } from '../helpers/stack.js';

const stack = useTestStack();

describe('classifying a 1.2 MB prompt', () => {
  it('runs in a worker thread and routes as the main thread would; a small prompt stays inline', async () => {
    const sentence = 'The committee reviewed the quarterly figures and noted that costs rose while revenue stayed flat. ';
    const context = sentence.repeat(Math.ceil(1_200_000 / sentence.length));
    const prompt = 'Summarise the notes below in two sentences.';
    const before = stack.classifier.offThread;
    const small = await stack.client.ask({ requestId: `lp-small-${Date.now()}`, category: 'batch', prompt: 'Name a colour.' });
    expect(stack.classifier.offThread).toBe(before);
    const big = await stack.client.ask({ requestId: `lp-big-${Date.now()}`, category: 'batch', prompt, context });
    expect(context.length).toBeGreaterThan(OFF_THREAD_BYTES);
    expect(stack.classifier.offThread).toBe(before + 1);
    const inline = classify({ prompt, context });
    expect(big.classification.complexity).toBe(inline.complexity);
    expect(big.classification.inputTokens).toBe(inline.inputTokens);
    expect(small.text.length).toBeGreaterThan(0);
  });
});
