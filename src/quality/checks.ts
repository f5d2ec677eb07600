/**
 * Quality checks on an answer: non-empty, not a refusal, JSON that parses and matches a JSON
 * Schema, a regex, length bounds. Returns every failed check with its reason. No I/O.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { QualitySpec } from './spec.js';

export interface QualityVerdict {
  readonly passed: boolean;
  readonly failures: string[];
}

const REFUSAL = /^\s*(i['’]m sorry|i am sorry|i apologi[sz]e|sorry,? (but )?i can(['’]t|not)|i can(['’]t|not) (help|assist|comply|provide)|as an ai\b)/i;

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new Map<string, ValidateFunction>();

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
      const key = JSON.stringify(spec.jsonSchema);
      let validate = compiled.get(key);
      if (!validate) {
        validate = ajv.compile(spec.jsonSchema);
        compiled.set(key, validate);
      }
      if (!validate(parsed.value)) {
        // Schema paths, not instance paths: the latter can hold the answer's own keys.
        failures.push(`JSON Schema: ${(validate.errors ?? []).map((e) => `${e.schemaPath} ${e.message ?? 'invalid'}`).join('; ')}`);
      }
    }
  }
  if (spec.regex !== undefined && !new RegExp(spec.regex).test(text)) failures.push(`does not match /${spec.regex}/`);
  if (spec.minLength !== undefined && text.length < spec.minLength) failures.push(`shorter than ${spec.minLength} characters`);
  if (spec.maxLength !== undefined && text.length > spec.maxLength) failures.push(`longer than ${spec.maxLength} characters`);
  return { passed: failures.length === 0, failures };
}

/** Validates a schema up front, so a bad one is an input error rather than a failed check. */
export function schemaError(schema: Record<string, unknown>): string | undefined {
  try {
    ajv.compile(schema);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
