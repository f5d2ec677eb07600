/**
 * Chat requests end to end: `messages` through the workflow to every provider's wire format (the
 * simulator records what arrived), classified on the conversation, every token counted and
 * billed, large conversations by reference, and the result matching its published JSON Schema.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { countChatTokens } from '../../src/routing/tokens.js';
import { ValidationError } from '../../src/util/validation.js';
import { useTestStack } from '../helpers/stack.js';

const validateResult = new Ajv2020({ strict: false }).compile(
  JSON.parse(readFileSync(join(process.cwd(), 'contracts', 'request-result.v1.schema.json'), 'utf8')) as Record<string, unknown>,
);

describe('chat requests', () => {
  const stack = useTestStack();

  const messages = [
    { role: 'system' as const, content: 'You are a careful tutor.' },
    { role: 'user' as const, content: 'Prove that the square root of 2 is irrational.' },
    { role: 'assistant' as const, content: 'Suppose sqrt(2) = p/q in lowest terms; then p^2 = 2q^2, so p is even...' },
    { role: 'user' as const, content: 'Why does that contradict lowest terms?' },
  ];

  it.each([
    ['gpt-4o-mini', 'openai'],
    ['claude-3-5-haiku', 'anthropic'],
    ['gemini-2-flash', 'gemini'],
    ['mistral-large', 'openai'],
    ['llama-3-70b', 'openai'],
  ])('pinned to %s: the conversation arrives turn by turn in the %s wire format, and every token is billed', async (model, format) => {
    const before = stack.simulator.received().length;
    const r = await stack.client.ask({ messages, model, requestId: `chat-${model}-${randomUUID()}` });
    expect(validateResult(r), JSON.stringify(validateResult.errors)).toBe(true);
    expect(r.model).toBe(model);
    const seen = stack.simulator
      .received()
      .slice(before)
      .filter((q) => q.model === model);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.format).toBe(format);
    expect(seen[0]?.system).toBe('You are a careful tutor.');
    expect(seen[0]?.turns.map((t) => t.role)).toEqual(['user', 'assistant', 'user']);
    expect(seen[0]?.turns[2]?.text).toBe('Why does that contradict lowest terms?');
    const all = countChatTokens(messages);
    expect(r.usage.inputTokens + r.usage.cachedInputTokens).toBe(all);
    expect(r.classification.inputTokens).toBe(all);
  });

  it("routes on the conversation: a follow-up inherits the earlier question's difficulty", async () => {
    const followUp = await stack.client.ask({ messages, requestId: `chat-routed-${randomUUID()}` });
    const alone = await stack.client.ask({ prompt: 'Why does that contradict lowest terms?', requestId: `chat-alone-${randomUUID()}` });
    expect(followUp.classification.complexity).toBeGreaterThan(alone.classification.complexity);
    expect(followUp.classification.signals).toContain('+proof(earlier turn)');
    expect(followUp.classification.capabilities).toContain('reasoning');
  });

  it('a long conversation travels by reference (one copy in history) and still arrives whole', async () => {
    const big = 'The quarterly report lists revenue by region and by month. '.repeat(600);
    const long = [
      { role: 'user' as const, content: `Here is the report:\n${big}` },
      { role: 'assistant' as const, content: 'Got it.' },
      { role: 'user' as const, content: 'Summarise it in one sentence.' },
    ];
    const before = stack.simulator.received().length;
    const r = await stack.client.ask({ messages: long, requestId: `chat-long-${randomUUID()}` });
    const seen = stack.simulator.received().slice(before);
    expect(seen.at(-1)?.turns.map((t) => t.text.length)).toEqual(long.map((m) => m.content.length));
    expect(r.usage.inputTokens + r.usage.cachedInputTokens).toBe(countChatTokens(long));
    const history = await stack.client.temporal.workflow.getHandle(r.workflowId).fetchHistory();
    const copies = JSON.stringify(history).split('quarterly report lists revenue').length - 1;
    expect(copies).toBeLessThanOrEqual(1);
  });

  it('refuses a malformed conversation before starting anything, naming the message', async () => {
    const requestId = `chat-bad-${randomUUID()}`;
    const err = await stack.client
      .ask({
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
        requestId,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fields.join('\n')).toMatch(/messages\[1\]: the last message must be from the user/);
    await expect(stack.client.temporal.workflow.getHandle(`llm-${requestId}`).describe()).rejects.toThrow(/not found/i);
  });
});
