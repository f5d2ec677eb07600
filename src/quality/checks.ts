/**
 * Quality checks on an answer: non-empty, not a refusal, JSON that parses and matches a JSON
 * Schema, a regex, length bounds. Returns every failed check with its reason. No I/O.
 */
import { Ajv, type CodeOptions, type ValidateFunction } from 'ajv';
import { linearRegex } from './linearRegex.js';
import type { QualitySpec } from './spec.js';

export interface QualityVerdict {
  readonly passed: boolean;
  readonly failures: string[];
}

const REFUSAL = /^\s*(i['’]m sorry|i am sorry|i apologi[sz]e|sorry,? (but )?i can(['’]t|not)|i can(['’]t|not) (help|assist|comply|provide)|as an ai\b)/i;

/** ajv's `pattern` and `patternProperties` on RE2 (linear time), not on the backtracking RegExp. */
const re2Engine: NonNullable<CodeOptions['regExp']> = Object.assign((pattern: string) => linearRegex(pattern), { code: 're2js' });

/**
 * One ajv for every request's schema, but no schema is registered in it: `addUsedSchema: false`
 * keeps an `$id` from being claimed (two schemas with the same `$id`, or the same schema twice,
 * both work) and keeps one request's schema from `$ref`-ing another's. ajv's own cache, keyed by
 * the schema object, is emptied after each compile; ours is keyed by the schema's text and bounded.
 */
const ajv = new Ajv({ allErrors: true, strict: false, addUsedSchema: false, code: { regExp: re2Engine } });
const COMPILED_MAX = 256;
const COMPILED_MAX_BYTES = 4 * 1024 * 1024;
const compiled = new Map<string, ValidateFunction>();
let compiledChars = 0;

function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  try {
    return ajv.compile(schema);
  } finally {
    ajv.removeSchema(schema);
  }
}

/** The compiled validator for a schema, from a least-recently-used cache bounded in count and size. */
function validatorFor(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (validate) {
    compiled.delete(key);
  } else {
    validate = compileSchema(schema);
    compiledChars += key.length;
    while (compiled.size > 0 && (compiled.size >= COMPILED_MAX || compiledChars > COMPILED_MAX_BYTES)) {
      const oldest = compiled.keys().next().value!;
      compiled.delete(oldest);
      compiledChars -= oldest.length;
    }
  }
  compiled.set(key, validate);
  return validate;
}

/** How many compiled schemas are cached (for the tests of the bound). */
export function compiledSchemaCount(): number {
  return compiled.size;
}

function parseJsonAnswer(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const fenced = /^\s*```(?:json)?\s*\n([\s\S]*?)\n\s*```\s*$/.exec(text);
  const body = (fenced ? fenced[1] : text)?.trim() ?? '';
  try {
    return { ok: true, value: JSON.parse(body) };
  } catch (e) {
    // Node quotes parts of the text in its message: report only where parsing stopped, so that
    // the answer never reaches a failure message (plaintext in history even with encryption on).
    const m = (e as Error).message;
    const at = /position (\d+)/.exec(m)?.[1];
    const what = body === '' ? 'empty' : /end of (JSON|data)/i.test(m) ? 'it ends early' : /Unexpected token/i.test(m) ? 'an unexpected character' : 'invalid';
    return { ok: false, error: at !== undefined ? `${what} at character ${at}` : what };
  }
}

export function checkAnswer(text: string, spec: QualitySpec): QualityVerdict {
  const failures: string[] = [];
  if (spec.nonEmpty && text.trim() === '') failures.push('empty answer');
  if (spec.noRefusal && REFUSAL.test(text)) failures.push('the model refused');
  if (spec.json || spec.jsonSchema) {
    const parsed = parseJsonAnswer(text);
    if (!parsed.ok) failures.push(`not JSON: ${parsed.error}`);
    else if (spec.jsonSchema) {
      let validate: ValidateFunction | undefined;
      try {
        validate = validatorFor(spec.jsonSchema);
      } catch (e) {
        // Validated when the request came in; a schema that still fails to compile is a failed check.
        failures.push(`JSON Schema cannot be compiled: ${(e as Error).message}`);
      }
      if (validate && !validate(parsed.value)) {
        // Schema paths, not instance paths: the latter can hold the answer's own keys.
        failures.push(`JSON Schema: ${(validate.errors ?? []).map((e) => `${e.schemaPath} ${e.message ?? 'invalid'}`).join('; ')}`);
      }
    }
  }
  if (spec.regex !== undefined) {
    let matched: boolean | string;
    try {
      matched = linearRegex(spec.regex).test(text);
    } catch (e) {
      matched = (e as Error).message;
    }
    if (matched !== true) failures.push(matched === false ? `does not match /${spec.regex}/` : `regex ${matched}`);
  }
  if (spec.minLength !== undefined && text.length < spec.minLength) failures.push(`shorter than ${spec.minLength} characters`);
  if (spec.maxLength !== undefined && text.length > spec.maxLength) failures.push(`longer than ${spec.maxLength} characters`);
  return { passed: failures.length === 0, failures };
}

/** Validates a schema up front, so a bad one is an input error rather than a failed check. */
export function schemaError(schema: Record<string, unknown>): string | undefined {
  try {
    compileSchema(schema);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * The JSON Schemas a request carries that do not compile: its answer's (`quality.jsonSchema`)
 * and each tool's parameters (`tools[N].parameters`). Path and message, for an input error.
 */
export function requestSchemaIssues(r: {
  readonly quality?: { readonly jsonSchema?: Record<string, unknown> | undefined } | undefined;
  readonly tools?: ReadonlyArray<{ readonly parameters: Readonly<Record<string, unknown>> }> | undefined;
}): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  const answer = r.quality?.jsonSchema ? schemaError(r.quality.jsonSchema) : undefined;
  if (answer) issues.push({ path: 'quality.jsonSchema', message: `not a valid JSON Schema (${answer})` });
  (r.tools ?? []).forEach((t, i) => {
    const why = schemaError({ ...t.parameters });
    if (why) issues.push({ path: `tools[${i}].parameters`, message: `not a valid JSON Schema (${why})` });
  });
  return issues;
}

/**
 * Tool calls checked against the tools offered: each names an offered tool, and its arguments
 * parse as a JSON object that matches the tool's parameters schema. Every failure, named by call.
 */
export function checkToolCalls(
  calls: ReadonlyArray<{ readonly name: string; readonly arguments: string }>,
  tools: ReadonlyArray<{ readonly name: string; readonly parameters: Readonly<Record<string, unknown>> }>,
): string[] {
  const failures: string[] = [];
  calls.forEach((c, i) => {
    const tool = tools.find((t) => t.name === c.name);
    const which = `tool call ${i + 1} (${c.name})`;
    if (!tool) {
      failures.push(`${which}: names no offered tool`);
      return;
    }
    const parsed = parseJsonAnswer(c.arguments);
    if (!parsed.ok) {
      failures.push(`${which}: arguments are not JSON: ${parsed.error}`);
      return;
    }
    if (parsed.value === null || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
      failures.push(`${which}: arguments are not a JSON object`);
      return;
    }
    let validate: ValidateFunction;
    try {
      validate = validatorFor({ ...tool.parameters });
    } catch (e) {
      failures.push(`${which}: its parameters schema cannot be compiled: ${(e as Error).message}`);
      return;
    }
    if (!validate(parsed.value)) failures.push(`${which}: ${(validate.errors ?? []).map((e) => `${e.schemaPath} ${e.message ?? 'invalid'}`).join('; ')}`);
  });
  return failures;
}
