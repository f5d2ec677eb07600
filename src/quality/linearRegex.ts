/**
 * User-supplied regular expressions (a request's `quality.regex`, a JSON Schema's `pattern` and
 * `patternProperties`) run on RE2JS, an RE2-class engine: matching takes time linear in the text,
 * so no pattern can stall a worker the way a backtracking `RegExp` can (`^(\w+\s?)*$`,
 * `^(a+)+$`). RE2 has no lookaround and no backreferences; such a pattern is refused up front with
 * a message that says so. Pure.
 */
import { RE2JS } from 're2js';

/** Longest pattern accepted: matching costs O(pattern x text), so both are bounded. */
export const MAX_PATTERN_LENGTH = 1_000;

export interface LinearRegex {
  test(text: string): boolean;
}

export class PatternError extends Error {}

/** Compiles a JavaScript-syntax pattern for RE2; throws PatternError naming what RE2 cannot do. */
export function compileLinear(pattern: string): LinearRegex {
  if (pattern.length > MAX_PATTERN_LENGTH) throw new PatternError(`is ${pattern.length} characters; at most ${MAX_PATTERN_LENGTH}`);
  try {
    return RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^error parsing regexp: /, '') : String(e);
    const hint = /\(\?[=!<]|\\[1-9]|\\k</.test(pattern)
      ? ' (RE2 runs in linear time and has no lookahead, lookbehind or backreferences: rewrite the pattern without them)'
      : '';
    throw new PatternError(`is not a pattern RE2 accepts: ${why}${hint}`);
  }
}

/** Why a pattern would be refused, or undefined. */
export function patternError(pattern: string): string | undefined {
  try {
    compileLinear(pattern);
    return undefined;
  } catch (e) {
    return e instanceof PatternError ? e.message : String(e);
  }
}

const cache = new Map<string, LinearRegex>();
const CACHE_MAX = 256;

/** Compiled once per pattern, least recently used dropped past 256. */
export function linearRegex(pattern: string): LinearRegex {
  let re = cache.get(pattern);
  if (re) {
    cache.delete(pattern);
  } else {
    re = compileLinear(pattern);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  }
  cache.set(pattern, re);
  return re;
}
