/** Deterministic answers: the same model and prompt always give the same text. */
import { createHash } from 'node:crypto';
import { countTokens } from '../routing/tokens.js';

const WORDS = (
  'the a result shows that this approach works well because each step keeps data consistent while ' +
  'costs stay low and quality remains high so teams can review outcomes compare options and decide ' +
  'next actions with clear evidence from logs metrics and tests across systems users requests models'
).split(' ');

function hashInt(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0);
}

export interface Answer {
  readonly text: string;
  readonly outputTokens: number;
  readonly truncated: boolean;
}

/**
 * A deterministic reply of 16..160 tokens (less if maxTokens is smaller). Prompts asking for JSON get
 * a JSON object; classification prompts get a one-word label.
 */
export function answerFor(model: string, prompt: string, maxTokens: number, fixed?: string): Answer {
  const h = hashInt(`${model}\n${prompt}`);
  const lower = prompt.toLowerCase();
  let text: string;
  const judged = /<answer>\n([\s\S]*)\n<\/answer>[\s\S]*Reply with only a number between 0 and 1\.$/.exec(prompt);
  if (fixed !== undefined) {
    text = fixed;
  } else if (judged) {
    // A deterministic grader: JSON, or at least 12 words, is a good answer.
    const a = judged[1] ?? '';
    let isJson = false;
    try {
      JSON.parse(a);
      isJson = true;
    } catch {
      isJson = false;
    }
    text = isJson || a.trim().split(/\s+/).length >= 12 ? '0.85' : '0.35';
  } else if (/\bjson\b/.test(lower)) {
    text = JSON.stringify({ answer: `${WORDS[h % WORDS.length]} ${WORDS[(h >>> 8) % WORDS.length]}`, model, confidence: (h % 100) / 100 });
  } else if (/\b(classify|categori[sz]e|sentiment|label)\b/.test(lower)) {
    const labels = ['positive', 'negative', 'neutral', 'billing', 'technical', 'other'];
    text = labels[h % labels.length] ?? 'other';
  } else {
    const target = 16 + (h % 145);
    const words: string[] = [];
    let i = h;
    // Roughly one token per word for this vocabulary; checked with the tokenizer below.
    while (words.length < target) {
      i = (Math.imul(i, 1103515245) + 12345) >>> 0;
      words.push(WORDS[i % WORDS.length] ?? 'ok');
    }
    text = `${words.join(' ')}.`;
  }
  let tokens = countTokens(text);
  let truncated = false;
  if (tokens > maxTokens) {
    truncated = true;
    const words = text.split(' ');
    while (words.length > 1 && countTokens(words.join(' ')) > maxTokens) words.pop();
    text = words.join(' ');
    tokens = countTokens(text);
  }
  return { text, outputTokens: tokens, truncated };
}
