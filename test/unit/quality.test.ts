import { describe, expect, it } from 'vitest';
import { checkAnswer } from '../../src/quality/checks.js';
import { judgePrompt, parseJudgeScore, qualitySpecSchema } from '../../src/quality/spec.js';

const spec = (s: Record<string, unknown>) => qualitySpecSchema.parse(s);

describe('quality checks', () => {
  it('non-empty and refusal', () => {
    expect(checkAnswer('   ', spec({})).failures).toEqual(['empty answer']);
    expect(checkAnswer("I'm sorry, but I can't help with that.", spec({})).failures).toEqual(['the model refused']);
    expect(checkAnswer('As an AI, I cannot do that', spec({})).passed).toBe(false);
    expect(checkAnswer('Sorry for the delay: the answer is 42.', spec({})).passed).toBe(true);
    expect(checkAnswer("I'm sorry to hear that; here is how to reset it.", spec({ noRefusal: false })).passed).toBe(true);
  });
  it('JSON, fenced JSON and JSON Schema', () => {
    const schema = { type: 'object', required: ['city'], properties: { city: { type: 'string' } } };
    expect(checkAnswer('{"city": "Paris"}', spec({ jsonSchema: schema })).passed).toBe(true);
    expect(checkAnswer('```json\n{"city": "Paris"}\n```', spec({ jsonSchema: schema })).passed).toBe(true);
    expect(checkAnswer('The city is Paris.', spec({ json: true })).failures[0]).toMatch(/^not JSON/);
    // Failure messages are plaintext in history even with encryption on: no answer text in them.
    for (const answer of ['The city is Paris.', '["Alice Jones", x]', '{"name": "Alice Jones", ']) {
      const f = checkAnswer(answer, spec({ json: true })).failures.join(' ');
      expect(f).toMatch(/^not JSON/);
      expect(f).not.toMatch(/Paris|Alice|Jones|city/);
    }
    const leak = checkAnswer('{"Alice Jones": 1}', spec({ jsonSchema: { type: 'object', additionalProperties: false, properties: { city: { type: 'string' } } } })).failures.join(' ');
    expect(leak).toMatch(/^JSON Schema: /);
    expect(leak).not.toMatch(/Alice/);
    expect(checkAnswer('{"town": "Paris"}', spec({ jsonSchema: schema })).failures).toEqual(["JSON Schema: #/required must have required property 'city'"]);
  });
  it('regex and length bounds', () => {
    expect(checkAnswer('label: billing', spec({ regex: '^label: (billing|technical)$' })).passed).toBe(true);
    expect(checkAnswer('label: other', spec({ regex: '^label: (billing|technical)$' })).failures).toEqual(['does not match /^label: (billing|technical)$/']);
    expect(checkAnswer('abc', spec({ minLength: 5, maxLength: 2 })).failures).toEqual(['shorter than 5 characters', 'longer than 2 characters']);
  });
  it('rejects a bad regex in the spec', () => {
    expect(qualitySpecSchema.safeParse({ regex: '(' }).success).toBe(false);
  });
});

describe('judge', () => {
  it('reads the first score in [0,1] from the reply', () => {
    expect(parseJudgeScore('0.85')).toBe(0.85);
    expect(parseJudgeScore('Score: 1')).toBe(1);
    expect(parseJudgeScore('I would say .7 overall')).toBe(0.7);
    expect(parseJudgeScore('7/10')).toBeUndefined();
    expect(parseJudgeScore('no idea')).toBeUndefined();
  });
  it('puts the request and the answer in the prompt', () => {
    const p = judgePrompt('Name a cat.', 'Tom');
    expect(p).toContain('<request>\nName a cat.\n</request>');
    expect(p).toContain('<answer>\nTom\n</answer>');
  });
});
