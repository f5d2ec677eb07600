/**
 * Batch input: one JSON request per line with an `id`. A line that is not JSON, lacks an id or
 * fails request validation is reported with its line number (and skipped by the runners).
 */
import { requestSchemaIssues } from '../quality/checks.js';
import { describeIssues } from '../util/validation.js';
import type { RequestInput } from '../workflows/request/contract.js';
import { requestInputSchema } from '../contracts/requestInput.js';
import { fromOpenAIBatchLine, isOpenAIBatchLine, openAIFieldName, requestIdForCustomId } from './openaiBatch.js';
import type { BadLine } from './summary.js';

export interface BatchItem {
  /** 1-based line number in the input file. */
  readonly line: number;
  readonly id: string;
  /** The request; its requestId (the workflow id derives from it) is the id, or for an OpenAI line a mapping of an unsafe custom_id. */
  readonly request: RequestInput & { requestId: string };
}

export type { BadLine } from './summary.js';

export type ParsedLine = { readonly ok: true; readonly item: BatchItem } | { readonly ok: false; readonly bad: BadLine };

export interface BatchDefaults {
  /** Category for lines that do not name one. */
  readonly category?: string | undefined;
  /** Feature for lines that do not name one. */
  readonly feature?: string | undefined;
  /** Fields set on every line, over what the line says (a gateway key's scope, key id and allowed models and tiers). */
  readonly overrides?: Readonly<Record<string, unknown>> | undefined;
  /**
   * Put in front of every line's request id (a gateway batch's id and `/`), so that two batches'
   * lines of the same custom_id are two requests, never one collected by the other. Set, the
   * file must hold OpenAI Batch lines only (a gateway batch).
   */
  readonly requestIdPrefix?: string | undefined;
}

/** Parses one input line; `undefined` for a blank line. */
export function parseBatchLine(text: string, line: number, defaults: BatchDefaults = {}): ParsedLine | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  let knownId: string | undefined;
  const bad = (error: string): ParsedLine => ({ ok: false, bad: { line, error: `line ${line}: ${error}`, ...(knownId !== undefined ? { id: knownId } : {}) } });
  let raw: unknown;
  try {
    raw = JSON.parse(trimmed);
  } catch (e) {
    return bad(`not valid JSON (${(e as Error).message}); each line must be one JSON object such as {"id": "t-1", "prompt": "..."}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('must be a JSON object such as {"id": "t-1", "prompt": "..."}');
  const openai = isOpenAIBatchLine(raw as Record<string, unknown>);
  const named = (raw as Record<string, unknown>)[openai ? 'custom_id' : 'id'];
  if (typeof named === 'string' || typeof named === 'number') knownId = String(named);
  // A gateway batch (its ids prefixed) takes OpenAI lines only: Switchyard's own fields (category,
  // budget scope, a judge) are a key's to set there, not a line's.
  if (defaults.requestIdPrefix !== undefined && !openai)
    return bad(
      'custom_id: is required: a batch created through /v1/batches holds OpenAI Batch lines {"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}',
    );
  // An OpenAI line's custom_id names the output line; its request id may be a mapping of it.
  let mappedRequestId: string | undefined;
  if (openai) {
    const converted = fromOpenAIBatchLine(raw as Record<string, unknown>);
    if (!converted.ok) return bad(converted.error);
    mappedRequestId = defaults.requestIdPrefix ? requestIdForCustomId(`${defaults.requestIdPrefix}${converted.id}`) : converted.request.requestId;
    raw = { ...converted.request, id: converted.id, requestId: undefined };
  }
  const { id: rawId, ...rest } = raw as Record<string, unknown>;
  if (rawId === undefined || rawId === null || rawId === '')
    return bad('id: is required (a unique name for the request; its workflow id derives from it, so re-running the file skips finished requests)');
  if (typeof rawId !== 'string' && typeof rawId !== 'number') return bad('id: must be a string or a number');
  const id = String(rawId);
  if (rest.requestId !== undefined && rest.requestId !== id) return bad(`requestId: differs from id "${id}"; give only id`);
  delete rest.requestId;
  const candidate = {
    ...rest,
    requestId: mappedRequestId ?? (defaults.requestIdPrefix ? requestIdForCustomId(`${defaults.requestIdPrefix}${id}`) : id),
    ...(rest.category === undefined && defaults.category ? { category: defaults.category } : {}),
    ...(rest.feature === undefined && defaults.feature ? { feature: defaults.feature } : {}),
    ...defaults.overrides,
  };
  // A line's tier within the tiers a key may use (the key's list would otherwise replace it).
  const lineTiers = (rest as { allowedTiers?: unknown }).allowedTiers;
  const keyTiers = defaults.overrides?.allowedTiers;
  if (Array.isArray(lineTiers) && Array.isArray(keyTiers)) {
    const both = lineTiers.filter((t) => keyTiers.includes(t));
    if (both.length === 0)
      return bad(`${openai ? 'body.model' : 'allowedTiers'}: this key may use the tiers ${keyTiers.join(', ')}, not ${lineTiers.join(', ')}`);
    (candidate as Record<string, unknown>).allowedTiers = both;
  }
  const parsed = requestInputSchema.safeParse(candidate);
  if (!parsed.success) {
    const fields = describeIssues(parsed.error).map((f) => (openai ? openAIFieldName(f) : f.replace(/^requestId:/, 'id:')));
    return bad(fields.join('; '));
  }
  const schemaBad = requestSchemaIssues(parsed.data);
  if (schemaBad.length > 0) return bad(schemaBad.map((i) => (openai ? openAIFieldName(`${i.path}: ${i.message}`) : `${i.path}: ${i.message}`)).join('; '));
  return { ok: true, item: { line, id, request: candidate } };
}

/** Tracks ids already seen in a file, so a repeated id is reported instead of silently merged. */
export class IdRegistry {
  private readonly seen = new Map<string, number>();

  /** The line that already used this id, or undefined (and records it). */
  claim(id: string, line: number): number | undefined {
    const first = this.seen.get(id);
    if (first !== undefined) return first;
    this.seen.set(id, line);
    return undefined;
  }
}

export function duplicateLine(id: string, line: number, first: number, requestId = id): BadLine {
  if (requestId !== id)
    return {
      line,
      id,
      error: `line ${line}: custom_id "${id}" maps to request id "${requestId}", as line ${first} does; give the lines ids that differ in more than spaces and symbols`,
    };
  return { line, id, error: `line ${line}: id "${id}" repeats line ${first}; ids must be unique within a batch` };
}
