import { describe, expect, it } from 'vitest';
import { checkAnswer, compiledSchemaCount, schemaError } from '../../src/quality/checks.js';
import { MAX_PATTERN_LENGTH } from '../../src/quality/linearRegex.js';
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
    const leak = checkAnswer(
      '{"Alice Jones": 1}',
      spec({ jsonSchema: { type: 'object', additionalProperties: false, properties: { city: { type: 'string' } } } }),
    ).failures.join(' ');
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
  // With a backtracking engine each of these runs for hours: the test would never end.
  it('runs catastrophic patterns in linear time (RE2), for the regex check and JSON Schema patterns', () => {
    const prose = 'Caching helps web servers because repeated reads are served from memory instead of disk. '.repeat(40);
    expect(checkAnswer(prose, spec({ regex: '^(\\w+\\s?)*$' })).failures).toEqual(['does not match /^(\\w+\\s?)*$/']);
    const as = `${'a'.repeat(5_000)}!`;
    expect(checkAnswer(as, spec({ regex: '^(a+)+$' })).passed).toBe(false);
    expect(checkAnswer('a'.repeat(5_000), spec({ regex: '^(a+)+$' })).passed).toBe(true);
    const schema = { type: 'object', properties: { v: { type: 'string', pattern: '^(a|aa)+$' } }, patternProperties: { '^(x+x+)+y$': { type: 'number' } } };
    const json = JSON.stringify({ v: `${'a'.repeat(3_000)}b`, [`${'x'.repeat(3_000)}`]: 'not a number' });
    expect(checkAnswer(json, spec({ jsonSchema: schema })).failures).toEqual(['JSON Schema: #/properties/v/pattern must match pattern "^(a|aa)+$"']);
  });
  it('refuses patterns RE2 cannot run, saying why and what to do', () => {
    const look = qualitySpecSchema.safeParse({ regex: '^(?=.*\\d)\\w+$' });
    expect(look.success).toBe(false);
    expect(look.error?.issues[0]?.message).toMatch(/RE2 accepts.*no lookahead, lookbehind or backreferences: rewrite the pattern without them/);
    expect(qualitySpecSchema.safeParse({ regex: '(a)\\1' }).success).toBe(false);
    expect(qualitySpecSchema.safeParse({ regex: 'a'.repeat(MAX_PATTERN_LENGTH + 1) }).error?.issues[0]?.message).toBe(
      `is ${MAX_PATTERN_LENGTH + 1} characters; at most ${MAX_PATTERN_LENGTH}`,
    );
    expect(schemaError({ type: 'string', pattern: '(?<=x)y' })).toMatch(/RE2/);
    // JavaScript syntax still works: named groups, escaped slashes, Unicode classes.
    expect(checkAnswer('in 2024/25: café', spec({ regex: '(?<year>\\d{4})\\/\\d{2}: \\p{L}+$' })).passed).toBe(true);
  });
  it('two schemas with the same $id both work, as does the same schema twice; one cannot $ref another', () => {
    const a = { $id: 'https://example.com/answer.json', type: 'object', required: ['city'] };
    const b = { $id: 'https://example.com/answer.json', type: 'object', required: ['country'] };
    expect(schemaError(a)).toBeUndefined();
    expect(schemaError(b)).toBeUndefined();
    expect(checkAnswer('{"city": "Paris"}', spec({ jsonSchema: a })).passed).toBe(true);
    expect(checkAnswer('{"city": "Paris"}', spec({ jsonSchema: { ...a } })).passed).toBe(true);
    expect(checkAnswer('{"city": "Paris"}', spec({ jsonSchema: b })).failures).toEqual(["JSON Schema: #/required must have required property 'country'"]);
    expect(schemaError({ $ref: 'https://example.com/answer.json' })).toMatch(/can't resolve reference/);
  });
  it('keeps at most 256 compiled schemas, however many distinct ones it sees', () => {
    for (let i = 0; i < 5_000; i++) {
      const s = { $id: `https://example.com/s${i}.json`, type: 'object', required: [`k${i}`] };
      expect(checkAnswer(`{"k${i}": 1}`, spec({ jsonSchema: s })).passed).toBe(true);
    }
    expect(compiledSchemaCount()).toBe(256);
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
