/** The custom search attributes every request workflow sets; the dev server registers them. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const LlmModel = defineSearchAttributeKey('LlmModel', SearchAttributeType.KEYWORD);
export const LlmTier = defineSearchAttributeKey('LlmTier', SearchAttributeType.KEYWORD);
export const LlmCategory = defineSearchAttributeKey('LlmCategory', SearchAttributeType.KEYWORD);
export const LlmOutcome = defineSearchAttributeKey('LlmOutcome', SearchAttributeType.KEYWORD);
export const LlmCostNanos = defineSearchAttributeKey('LlmCostNanos', SearchAttributeType.INT);
export const LlmComplexity = defineSearchAttributeKey('LlmComplexity', SearchAttributeType.DOUBLE);
/** The batch a request belongs to (set at start), so that a batch's runs can be listed or re-driven. */
export const LlmBatch = defineSearchAttributeKey('LlmBatch', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [LlmModel, LlmTier, LlmCategory, LlmOutcome, LlmCostNanos, LlmComplexity, LlmBatch];

/** `--search-attribute` flags for `temporal server start-dev` and `temporal operator search-attribute create`. */
export function searchAttributeFlags(): string[] {
  const type = (t: SearchAttributeType): string =>
    t === SearchAttributeType.KEYWORD ? 'Keyword' : t === SearchAttributeType.INT ? 'Int' : t === SearchAttributeType.DOUBLE ? 'Double' : 'Text';
  return SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${type(k.type)}`]);
}

/**
 * Dynamic config the dev server starts with. The budget entity receives an update per reservation
 * and settlement: the default of 10 in-flight updates per workflow is far too low for it. A
 * production cluster needs the same setting (see README).
 */
export const DEV_SERVER_DYNAMIC_CONFIG = ['history.maxInFlightUpdates=2000'];

export function dynamicConfigFlags(): string[] {
  return DEV_SERVER_DYNAMIC_CONFIG.flatMap((kv) => ['--dynamic-config-value', kv]);
}
