/**
 * Tool calls as the simulator answers them: the tools a request offers (read from each wire
 * format), and a deterministic call whose arguments satisfy the tool's JSON Schema, derived from
 * the model and prompt as the text answers are (answers.ts). A fault can make the arguments
 * malformed, so that quality checks and escalation can be tested.
 */
import { createHash } from 'node:crypto';

export interface SimTool {
  readonly name: string;
  readonly parameters: Readonly<Record<string, unknown>>;
}

export type SimToolChoice = 'auto' | 'none' | 'required' | { readonly name: string };

export interface SimToolCall {
  readonly id: string;
  readonly name: string;
  /** The arguments as JSON text (OpenAI's and Mistral's wire carry text; Anthropic's and Gemini's an object). */
  readonly arguments: string;
}

/** What the request asked of tools; absent when it offered none. */
export interface ToolRequest {
  readonly tools: readonly SimTool[];
  readonly choice: SimToolChoice;
  /** The last turn is a tool's result: the model answers in text. */
  readonly afterToolResult: boolean;
}

/** Tool names every provider takes. */
export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

function seedOf(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0);
}

/** A value satisfying `schema` (the subset of JSON Schema tools use), deterministic in `seed`. */
export function valueFor(schema: unknown, seed: number, depth = 0): unknown {
  const s = (schema && typeof schema === 'object' ? schema : {}) as Record<string, unknown>;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[seed % s.enum.length];
  if (s.const !== undefined) return s.const;
  const anyOf = s.anyOf ?? s.oneOf;
  if (Array.isArray(anyOf) && anyOf.length > 0) return valueFor(anyOf[0], seed, depth + 1);
  const type = Array.isArray(s.type) ? (s.type.find((t) => t !== 'null') as unknown) : s.type;
  const next = (k: number) => (Math.imul(seed ^ (k + 1), 2654435761) >>> 0) % 1_000_003;
  switch (type) {
    case 'object': {
      const props = (s.properties && typeof s.properties === 'object' ? s.properties : {}) as Record<string, unknown>;
      const required = Array.isArray(s.required) ? (s.required as unknown[]).filter((k): k is string => typeof k === 'string') : Object.keys(props);
      const out: Record<string, unknown> = {};
      if (depth > 6) return out;
      for (const [i, k] of [...new Set([...required, ...Object.keys(props)])].entries()) out[k] = valueFor(props[k], next(i), depth + 1);
      return out;
    }
    case 'array': {
      const min = typeof s.minItems === 'number' ? s.minItems : 1;
      const max = typeof s.maxItems === 'number' ? s.maxItems : Math.max(min, 2);
      const n = Math.min(max, Math.max(min, 1 + (seed % 2)));
      return Array.from({ length: n }, (_, i) => valueFor(s.items, next(i), depth + 1));
    }
    case 'integer':
    case 'number': {
      const lo = typeof s.minimum === 'number' ? s.minimum : typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum + 1 : 0;
      const hi = typeof s.maximum === 'number' ? s.maximum : typeof s.exclusiveMaximum === 'number' ? s.exclusiveMaximum - 1 : lo + 100;
      const v = lo + (seed % Math.max(1, Math.floor(hi - lo) + 1));
      return type === 'integer' ? Math.floor(v) : v;
    }
    case 'boolean':
      return seed % 2 === 0;
    case 'null':
      return null;
    default: {
      const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];
      let v = `${words[seed % words.length] ?? 'x'}-${seed % 1000}`;
      if (typeof s.minLength === 'number' && v.length < s.minLength) v = v.padEnd(s.minLength, 'x');
      if (typeof s.maxLength === 'number') v = v.slice(0, s.maxLength);
      return v;
    }
  }
}

/**
 * The call the model makes, or undefined when it answers in text: after a tool's result, with
 * `choice: none`, or without tools. The tool is the one named by the choice, else the first.
 * `malformed`: arguments that do not satisfy the schema (text that is not JSON where the wire
 * carries text; an object missing what the schema requires where it carries an object).
 */
export function toolCallFor(t: ToolRequest | undefined, model: string, prompt: string, malformed: 'text' | 'object' | undefined): SimToolCall | undefined {
  // A forced choice (required, or a named tool) is a call whatever came before, as the real APIs do.
  const forced = t?.choice === 'required' || typeof t?.choice === 'object';
  if (!t || t.tools.length === 0 || t.choice === 'none' || (t.afterToolResult && !forced)) return undefined;
  const choice = t.choice;
  const chosen = typeof choice === 'object' ? t.tools.find((x) => x.name === choice.name) : t.tools[0];
  if (!chosen) return undefined;
  const seed = seedOf(`${model}\n${chosen.name}\n${prompt}`);
  const id = `call_${seed.toString(36)}${createHash('sha256').update(prompt).digest('hex').slice(0, 8)}`;
  const args = malformed === 'text' ? '{"incomplete": ' : malformed === 'object' ? '{}' : JSON.stringify(valueFor(chosen.parameters, seed));
  return { id, name: chosen.name, arguments: args };
}

/** Arguments text as the object Anthropic's and Gemini's wire carry (text that is not an object: an empty one, which fails a schema with required fields). */
export function argumentsObjectOf(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
