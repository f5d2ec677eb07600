/**
 * Dense features of a prompt's form, for the learned difficulty model: how long it is, whether it
 * is a question with answer options and what those options look like (numbers, paired verdicts,
 * true/false), whether it asks to weigh several claims, how much notation and how varied a
 * vocabulary it has. None of them names a subject, so what is learned on one subject carries to
 * others. Pure; linear in the (already bounded) text, a few microseconds a prompt.
 */

/** Feature names, in the order `promptFeatures` returns them. The model file pins this list. */
export const PROMPT_FEATURES = [
  'logLength',
  'logQuestionLength',
  'logOptionLength',
  'numericOptions',
  'digitShare',
  'operators',
  'sentences',
  'romanList',
  'longWordShare',
  'distinctWordShare',
  'negatedAsk',
  'whichOfTheFollowing',
  'capitalShare',
  'personMentioned',
  'endsWithQuestionMark',
  'claimsToWeigh',
  'pairedVerdictOptions',
  'verdictOptions',
  'logicNotation',
  'codeNotation',
  'firstPerson',
  'quotation',
  'optionLengthSpread',
] as const;
export type PromptFeatureName = (typeof PROMPT_FEATURES)[number];

/** A line that starts an answer option: "A. ...", "(b) ...", "C) ...". */
const OPTION_LINE = /^[ \t]{0,8}\(?([A-Ha-h])[.)][ \t]/;
const NUMERIC_OPTION = /^[-+$€£\d.,\s%/()×x*^]+$/;
const PAIRED_VERDICT = /^[^,\n]{1,25},\s[^,\n]{1,25}$/;
const VERDICT = /\b(true|false|wrong|not wrong|valid|invalid|yes|no|correct|incorrect)\b/i;
const CLAIM = /\b(statement|scenario|premise|argument|claim)\s{0,4}\d\b|\s\|\s/gi;
const ROMAN_LIST = /\bI{1,3}\b[^\n]{0,400}\bI{1,3}V?\b/;
const NEGATED = /\b(NOT|EXCEPT|LEAST)\b/;
const WHICH = /\bwhich of the following\b/i;
const PERSON = /\b(he|she|they|his|her|man|woman|person|someone)\b/i;
const FIRST_PERSON = /\b(I|my|me)\b/;
const QUOTE = /["“”]/;
const LOGIC = /[⊃∨≡~·→↔∧¬]|\b(valid|invalid|tautolog\w*|contradictory)\b/;
const CODE = /[{};]|\b(def|function|print|int|return|var|let)\b/;
const OPERATOR = /[=+*/^<>]/g;
const DIGIT = /\d/g;
const CAPITAL = /[A-Z]/g;
const SENTENCE_END = /[.?!](\s|$)/g;
const WORD = /[A-Za-z]+/g;

function count(text: string, pattern: RegExp): number {
  pattern.lastIndex = 0;
  let n = 0;
  while (pattern.exec(text) !== null) n += 1;
  return n;
}

/** The question before its answer options, and the options' texts (none for an ordinary prompt). */
export function splitOptions(text: string): { question: string; options: string[] } {
  const lines = text.split('\n');
  const first = lines.findIndex((l) => OPTION_LINE.test(l));
  if (first <= 0) return { question: text, options: [] };
  const options: string[] = [];
  for (const line of lines.slice(first)) {
    const m = OPTION_LINE.exec(line);
    if (m) options.push(line.slice(m[0].length).trim());
    else if (options.length > 0 && line.trim() !== '' && !/^answer\s*:?\s*$/i.test(line.trim())) options[options.length - 1] += ` ${line.trim()}`;
  }
  return { question: lines.slice(0, first).join('\n'), options };
}

/** The features of `text` (the instruction's pattern window), in PROMPT_FEATURES order. */
export function promptFeatures(text: string, split: { question: string; options: string[] } = splitOptions(text)): number[] {
  const { question, options } = split;
  const length = Math.max(1, text.length);
  const words = text.match(WORD) ?? [];
  const distinct = new Set(words.map((w) => w.toLowerCase())).size;
  const optionLengths = options.map((o) => o.length);
  const meanOption = optionLengths.length ? optionLengths.reduce((a, b) => a + b, 0) / optionLengths.length : 0;
  const spread = optionLengths.length
    ? Math.sqrt(optionLengths.reduce((a, b) => a + (b - meanOption) ** 2, 0) / optionLengths.length) / Math.max(1, meanOption)
    : 0;
  const share = (pred: (o: string) => boolean): number => options.filter(pred).length / 4;
  return [
    Math.log1p(text.length) / 7,
    Math.log1p(question.length) / 7,
    Math.log1p(meanOption) / 5,
    share((o) => NUMERIC_OPTION.test(o)),
    (count(text, DIGIT) / length) * 10,
    Math.log1p(count(text, OPERATOR)) / 3,
    Math.log1p(count(question, SENTENCE_END)) / 2,
    ROMAN_LIST.test(text) ? 1 : 0,
    (words.filter((w) => w.length >= 10).length / Math.max(1, words.length)) * 5,
    distinct / Math.max(1, words.length),
    NEGATED.test(text) ? 1 : 0,
    WHICH.test(text) ? 1 : 0,
    (count(text, CAPITAL) / length) * 5,
    PERSON.test(question) ? 1 : 0,
    /\?\s*$/.test(question) ? 1 : 0,
    Math.min(3, count(question, CLAIM)) / 3,
    share((o) => PAIRED_VERDICT.test(o)),
    share((o) => VERDICT.test(o)),
    LOGIC.test(text) ? 1 : 0,
    CODE.test(text) ? 1 : 0,
    FIRST_PERSON.test(question) ? 1 : 0,
    QUOTE.test(text) ? 1 : 0,
    spread,
  ];
}
