import { describe, expect, it } from 'vitest';
import { classify } from '../../src/routing/classifier.js';
import { countChatTokens } from '../../src/routing/tokens.js';
import { conversationOf, earlierTurnsOf, instructionOf } from '../../src/workflows/conversation.js';
import { requestInputSchema } from '../../src/contracts/requestInput.js';

const issues = (input: unknown): string[] => {
  const r = requestInputSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('chat messages in a request', () => {
  it('accepts a conversation and normalises it for every provider', () => {
    const messages = [
      { role: 'system' as const, content: 'Be terse.' },
      { role: 'user' as const, content: 'What is 2+2?' },
      { role: 'assistant' as const, content: '4' },
      { role: 'user' as const, content: 'And times 3?' },
      { role: 'user' as const, content: 'Show the working.' },
    ];
    expect(issues({ messages })).toEqual([]);
    const c = conversationOf({ messages, system: 'House style.', context: 'DOC' });
    expect(c.system).toBe('House style.\n\nBe terse.');
    // Consecutive user turns are joined; the context goes in front of the last user turn.
    expect(c.turns).toEqual([
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '4' },
      { role: 'user', content: 'DOC\n\nAnd times 3?\n\nShow the working.' },
    ]);
    expect(instructionOf({ messages })).toBe('Show the working.');
    expect(earlierTurnsOf({ messages })).toEqual([
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '4' },
      { role: 'user', content: 'And times 3?' },
    ]);
    // A prompt request is one user turn, as before.
    expect(conversationOf({ prompt: 'hi', context: 'doc', system: 's' })).toEqual({ system: 's', turns: [{ role: 'user', content: 'doc\n\nhi' }] });
  });

  it('names the field and the fix for every malformed conversation', () => {
    expect(issues({})).toEqual([expect.stringMatching(/^prompt: is required.*messages/)]);
    expect(issues({ prompt: 'a', messages: [{ role: 'user', content: 'b' }] })).toEqual([expect.stringMatching(/^messages: send either prompt or messages/)]);
    expect(issues({ messages: [] })).toEqual([expect.stringMatching(/^messages: must hold at least one/)]);
    expect(issues({ messages: [{ role: 'system', content: 'x' }] })).toEqual([expect.stringMatching(/^messages: needs at least one user message/)]);
    expect(
      issues({
        messages: [
          { role: 'assistant', content: 'x' },
          { role: 'user', content: 'y' },
        ],
      }),
    ).toEqual([expect.stringMatching(/^messages\.0: the first non-system message must be from the user/)]);
    expect(
      issues({
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: 'y' },
        ],
      }),
    ).toEqual([expect.stringMatching(/^messages\.1: the last message must be from the user/)]);
    expect(issues({ messages: [{ role: 'function', content: 'x' }] })).toEqual([
      expect.stringMatching(/^messages\.0\.role: must be system, user, assistant or tool/),
    ]);
    expect(
      issues({
        messages: [
          { role: 'user', content: 'x' },
          { role: 'tool', content: 'x' },
        ],
        tools: [{ name: 'f', parameters: { type: 'object' } }],
      }),
    ).toEqual([
      expect.stringMatching(/^messages\.1\.toolCallId: is required on a tool message/),
      expect.stringMatching(/^messages\.1: a tool message must follow the assistant message/),
    ]);
    expect(issues({ messages: [{ role: 'user', content: '' }] })).toEqual([expect.stringMatching(/^messages\.0\.content: must not be empty/)]);
    expect(issues({ messages: [{ role: 'user', content: 'x', name: 'bob' }] })).toEqual([expect.stringMatching(/^messages\.0: .*name/)]);
    expect(issues({ messages: [{ role: 'user', content: 'x'.repeat(1_600_000) }] })).toEqual([
      expect.stringMatching(/^messages: prompt or messages, context and system together are \d+ bytes/),
    ]);
  });
});

describe('classifying a conversation', () => {
  const hard = 'Prove that the algorithm terminates and analyse its complexity.';

  it('weighs the last user turn most, earlier turns less, and counts every token', () => {
    const alone = classify({ prompt: 'Thanks, go on.' });
    const followUp = classify({
      prompt: 'Thanks, go on.',
      history: [
        { role: 'user', content: hard },
        { role: 'assistant', content: 'Sketch: by induction on n...' },
      ],
    });
    const last = classify({
      prompt: hard,
      history: [
        { role: 'user', content: 'Thanks, go on.' },
        { role: 'assistant', content: 'Sure.' },
      ],
    });
    expect(followUp.complexity).toBeGreaterThan(alone.complexity);
    expect(last.complexity).toBeGreaterThan(followUp.complexity);
    expect(followUp.signals).toContain('+proof(earlier turn)');
    expect(followUp.capabilities).toContain('reasoning');
    expect(followUp.inputTokens).toBe(countChatTokens([{ content: hard }, { content: 'Sketch: by induction on n...' }, { content: 'Thanks, go on.' }]));
  });

  it('an easy last turn after a hard conversation stays below a hard last turn', () => {
    const history = [
      { role: 'user' as const, content: hard },
      { role: 'assistant' as const, content: 'Done.' },
    ];
    const easy = classify({ prompt: 'Classify the sentiment of my last message: positive or negative?', history });
    expect(easy.complexity).toBeLessThan(classify({ prompt: hard, history }).complexity);
    expect(easy.signals).toContain('-classification');
  });
});

describe('tool turns in a conversation', () => {
  it('keeps calls and results as turns of their own, each result named by its call, the context in front of the last user turn', () => {
    const c = conversationOf({
      context: 'DOC',
      messages: [
        { role: 'user', content: 'Time in Paris?' },
        { role: 'assistant', content: 'Checking.', toolCalls: [{ id: 'c1', name: 'get_time', arguments: '{"city":"Paris"}' }] },
        { role: 'tool', toolCallId: 'c1', content: '09:00' },
        { role: 'user', content: 'Thanks.' },
        { role: 'user', content: 'And Rome?' },
      ],
      tools: [{ name: 'get_time', parameters: { type: 'object' } }],
      toolChoice: 'auto',
    });
    expect(c.turns).toEqual([
      { role: 'user', content: 'Time in Paris?' },
      { role: 'assistant', content: 'Checking.', toolCalls: [{ id: 'c1', name: 'get_time', arguments: '{"city":"Paris"}' }] },
      { role: 'tool', content: '09:00', toolCallId: 'c1', name: 'get_time' },
      { role: 'user', content: 'DOC\n\nThanks.\n\nAnd Rome?' },
    ]);
    expect(c.tools).toEqual({ tools: [{ name: 'get_time', parameters: { type: 'object' } }], choice: 'auto' });
  });
});
