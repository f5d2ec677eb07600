/**
 * Task classifier: a continuous complexity score in [0,1], the capabilities a request needs, and
 * its token count. Pure: no I/O, no clocks.
 *
 * Length and difficulty are separate axes: a long attached document raises the token count (and so
 * the context-window constraint), not the complexity. Only the instruction's own length counts,
 * and only logarithmically.
 */
import type { Capability } from '../catalog/schema.js';
import { countChatTokens, countTokens, MESSAGE_OVERHEAD_TOKENS } from './tokens.js';
import { type DifficultyModel, learnedDifficulty } from './difficultyModel.js';
import { SHIPPED_DIFFICULTY_MODEL } from './difficultyWeights.js';

export interface ClassifyInput {
  /** The instruction: the prompt, or a conversation's last user turn. It weighs most. */
  readonly prompt: string;
  readonly system?: string | undefined;
  /** A document the prompt refers to; counted as tokens, not as difficulty. */
  readonly context?: string | undefined;
  /**
   * A conversation's turns before the last user turn. Their tokens all count; what they ask
   * weighs EARLIER_TURNS_WEIGHT of what the last turn asks (a follow-up such as "and now in
   * Python?" inherits the difficulty of the question before it).
   */
  readonly history?: ReadonlyArray<{ readonly role: 'user' | 'assistant' | 'tool'; readonly content: string }> | undefined;
  /** The tool definitions the request offers, as sent (JSON): billed as input, so counted; they need a model with the `tools` capability. */
  readonly tools?: string | undefined;
}

/** How much a feature found only in earlier user turns counts, relative to the last turn. */
export const EARLIER_TURNS_WEIGHT = 0.4;
/** Characters of earlier user turns the patterns read (the most recent ones). */
const HISTORY_CHARS = 8_192;

export interface Classification {
  readonly complexity: number;
  readonly capabilities: Capability[];
  readonly inputTokens: number;
  readonly instructionTokens: number;
  /** The features that moved the score, for the trace. */
  readonly signals: string[];
}

interface Feature {
  readonly name: string;
  readonly pattern: RegExp;
  readonly weight: number;
}

/** Words that mark open-ended, multi-step or judgement-heavy work. */
const HARD: readonly Feature[] = [
  { name: 'analysis', pattern: /\b(analy[sz]e|analysis|synthesi[sz]e|evaluate|assess|critique|compare|contrast|trade-?offs?)\b/, weight: 0.9 },
  { name: 'design', pattern: /\b(design|architect(ure)?|scalab(le|ility)|strategy|roadmap|plan a|propose)\b/, weight: 0.8 },
  { name: 'algorithm', pattern: /\b(algorithm|optimi[sz](e|ation)|complexity|data structure|concurren(t|cy)|race condition)\b/, weight: 0.8 },
  { name: 'proof', pattern: /\b(prove|proof|derive|derivation|theorem|lemma|rigorous(ly)?|formal(ly)?)\b/, weight: 1.0 },
  { name: 'debugging', pattern: /\b(debug|root cause|refactor|code review|security review|vulnerabilit(y|ies))\b/, weight: 0.8 },
  { name: 'research', pattern: /\b(research|investigate|deep dive|in depth|comprehensive|nuanced)\b/, weight: 0.6 },
  { name: 'reasoning', pattern: /\b(why|explain|reason(ing)?|justify|step by step|implications?|hypothes[ie]s)\b/, weight: 0.45 },
  {
    name: 'math',
    pattern:
      /(\b(calculate|compute|solve|equation|integral|derivative|probability|expected value|matrix|eigen\w*|modulo|polynomial)\b|[=^]\s*-?\d|\\frac|\bsqrt\b)/,
    weight: 0.7,
  },
];

/** A numbered or bulleted line ("1. ...", "2) ...", "- ...", "* ..."), tested one line at a time. */
const LIST_ITEM = /^[ \t]{0,16}(\d{1,4}[.)]|[-*])[ \t]+\S/;
const MULTI_PART = { name: 'multi-part', weight: 0.4, minItems: 3 };

/**
 * What the patterns read: the start and the end of the instruction. The task is stated there; the
 * middle of a pasted text says little about difficulty, and bounding the window keeps
 * classification linear in the prompt whatever it holds (every pattern is also bounded per match).
 */
const HEAD_CHARS = 16_384;
const TAIL_CHARS = 4_096;

export function patternWindow(instruction: string): string {
  if (instruction.length <= HEAD_CHARS + TAIL_CHARS) return instruction;
  return `${instruction.slice(0, HEAD_CHARS)}\n${instruction.slice(-TAIL_CHARS)}`;
}

/** Whether `atLeast` list items follow one another (blank lines between them allowed) after the first line. */
function listItems(text: string, atLeast: number): boolean {
  let run = 0;
  let from = text.indexOf('\n');
  while (from !== -1) {
    const start = from + 1;
    const nl = text.indexOf('\n', start);
    const line = text.slice(start, Math.min(nl === -1 ? text.length : nl, start + 64));
    if (LIST_ITEM.test(line)) {
      run += 1;
      if (run >= atLeast) return true;
    } else if (line.trim() !== '') run = 0;
    from = nl;
  }
  return false;
}

/** Words that mark short, mechanical transformations. */
const EASY: readonly Feature[] = [
  { name: 'classification', pattern: /\b(classify|categori[sz]e|label|tag|sentiment|positive or negative|spam or not)\b/, weight: 1.0 },
  { name: 'extraction', pattern: /\b(extract|pull out|list (the|all)|return (the|only)|as json)\b/, weight: 0.8 },
  {
    name: 'formatting',
    pattern: /\b(format|convert|reformat|to json|to csv|to yaml|capitali[sz]e|lowercase|uppercase|fix (the )?typos?|spell(ing)?)\b/,
    weight: 0.9,
  },
  { name: 'short answer', pattern: /\b(yes or no|true or false|one word|single word|in one sentence|briefly|tl;?dr)\b/, weight: 0.9 },
  { name: 'summary', pattern: /\b(summari[sz]e|summary|key points|bullet points)\b/, weight: 0.5 },
  { name: 'translation', pattern: /\b(translate|translation)\b/, weight: 0.6 },
];

const CODE_BLOCK = /```|\b(def|function|class|return|import|const|let|var|public|static|SELECT|FROM)\b[^\n]{0,200}[({;:=]/;
const CODING_WORDS = /\b(code|function|program|script|implement|bug|compile|unit tests?|regex|sql query|typescript|javascript|python|rust|golang|java)\b/;
const JSON_OUTPUT = /\b(json|json schema)\b/;
const NON_LATIN =
  /[\p{Script=Cyrillic}\p{Script=Greek}\p{Script=Arabic}\p{Script=Hebrew}\p{Script=Devanagari}\p{Script=Thai}\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const TRANSLATE_TO =
  /\btranslate\b.{0,200}\b(into|to)\s{1,8}(french|german|spanish|italian|portuguese|japanese|chinese|korean|russian|arabic|hindi|dutch|polish|turkish)\b/;

/** Tokens of attached context above which a long-context model is needed. */
export const LONG_CONTEXT_TOKENS = 32_000;

const BIAS = -0.35;
const LENGTH_WEIGHT = 0.4;

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * How much the learned model's standardised score counts against the keyword score (in logit
 * units). Chosen by by-subject cross-validation on MMLU (BENCHMARKS.md, "Routing quality"): the
 * keyword score alone ranks MMLU worse than prompt length, the learned one better.
 */
export const LEARNED_WEIGHT = 3;

export interface ClassifyOptions {
  /** The learned difficulty model; the one shipped in the package by default. */
  readonly model?: DifficultyModel | undefined;
  readonly learnedWeight?: number | undefined;
}

export function classify(input: ClassifyInput, options: ClassifyOptions = {}): Classification {
  const instruction = input.prompt;
  const window = patternWindow(instruction);
  const text = window.toLowerCase();
  const signals: string[] = [];
  let z = BIAS;

  // Earlier user turns, most recent last, bounded like the instruction's window.
  const earlierUser = (input.history ?? [])
    .filter((t) => t.role === 'user')
    .map((t) => t.content)
    .join('\n')
    .slice(-HISTORY_CHARS)
    .toLowerCase();
  for (const f of HARD) {
    if (f.pattern.test(text)) {
      z += f.weight;
      signals.push(`+${f.name}`);
    } else if (earlierUser && f.pattern.test(earlierUser)) {
      z += f.weight * EARLIER_TURNS_WEIGHT;
      signals.push(`+${f.name}(earlier turn)`);
    }
  }
  if (listItems(window, MULTI_PART.minItems)) {
    z += MULTI_PART.weight;
    signals.push(`+${MULTI_PART.name}`);
  }
  for (const f of EASY) {
    if (f.pattern.test(text)) {
      z -= f.weight;
      signals.push(`-${f.name}`);
    }
  }
  if (input.history && input.history.length > 0) {
    // A long conversation carries more state to keep straight: a small, capped push up.
    const turnsTerm = Math.min(0.3, Math.log2(1 + input.history.length) * 0.08);
    z += turnsTerm;
    signals.push(`+conversation(${input.history.length + 1} turns)`);
  }

  const instructionTokens = countTokens(instruction);
  // log2 of the instruction length beyond a short question: 32 tokens adds 0, 1k tokens ~+1.4.
  // Capped, so pasting a document into the prompt cannot by itself demand the premium tier.
  const lengthTerm = Math.min(1.4, Math.max(0, Math.log2(Math.max(1, instructionTokens) / 32)) * LENGTH_WEIGHT);
  if (lengthTerm > 0) {
    z += lengthTerm;
    signals.push(`+length(${instructionTokens} tok)`);
  }

  const capabilities = new Set<Capability>();
  const hasCode =
    CODE_BLOCK.test(window) || CODING_WORDS.test(text) || (earlierUser !== '' && (CODE_BLOCK.test(earlierUser) || CODING_WORDS.test(earlierUser)));
  if (hasCode) {
    capabilities.add('coding');
    z += 0.35;
    signals.push('+code');
  }
  if (signals.some((s) => /^\+(proof|math|analysis|algorithm)\b/.test(s))) {
    capabilities.add('reasoning');
  }
  if (JSON_OUTPUT.test(text)) capabilities.add('json');
  if (NON_LATIN.test(window) || TRANSLATE_TO.test(text)) capabilities.add('multilingual');

  // Without a context the instruction's count is reused (tokenizing is the costly part).
  const history = input.history ?? [];
  const chatTokens = history.length
    ? countChatTokens([
        ...(input.system ? [{ content: input.system }] : []),
        ...history,
        { content: input.context ? `${input.context}\n\n${instruction}` : instruction },
      ])
    : input.context
      ? countChatTokens([...(input.system ? [{ content: input.system }] : []), { content: `${input.context}\n\n${instruction}` }])
      : countChatTokens(input.system ? [{ content: input.system }] : []) + MESSAGE_OVERHEAD_TOKENS + instructionTokens;
  const toolTokens = input.tools ? countTokens(input.tools) : 0;
  if (input.tools) capabilities.add('tools');
  const inputTokens = chatTokens + toolTokens;
  if (inputTokens > LONG_CONTEXT_TOKENS) capabilities.add('long_context');

  const learned = (learnedDifficulty(options.model ?? SHIPPED_DIFFICULTY_MODEL, window) ?? 0) * (options.learnedWeight ?? LEARNED_WEIGHT);
  if (Math.abs(learned) >= 0.05) signals.push(`${learned > 0 ? '+' : ''}learned(${learned.toFixed(2)})`);

  const complexity = Math.round(sigmoid(z * 1.6 + learned) * 1e4) / 1e4;
  return { complexity, capabilities: [...capabilities].sort(), inputTokens, instructionTokens, signals };
}
