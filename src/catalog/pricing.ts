/** Cost arithmetic in integer nanodollars. Pure. */
import type { ModelSpec } from './schema.js';

export interface Usage {
  /** Input tokens billed at the full input price (excludes cached tokens). */
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
}

const MILLION = 1_000_000n;

/**
 * Exact cost of a usage in nanodollars, rounded up to the next whole nanodollar once per call.
 * BigInt keeps tokens x price exact (it can exceed 2^53 for large prompts on dear models).
 */
export function costNanos(model: ModelSpec, usage: Usage): number {
  for (const [k, v] of Object.entries(usage)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`usage.${k} must be a non-negative integer, got ${String(v)}`);
  }
  const p = model.price;
  const numerator =
    BigInt(usage.inputTokens) * BigInt(p.inputNanosPerMTok) +
    BigInt(usage.cachedInputTokens) * BigInt(p.cachedInputNanosPerMTok) +
    BigInt(usage.outputTokens) * BigInt(p.outputNanosPerMTok);
  const whole = numerator / MILLION;
  const rounded = numerator % MILLION === 0n ? whole : whole + 1n;
  if (rounded > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('cost exceeds the safe integer range');
  return Number(rounded);
}

/** What a usage costs in the provider's batch API (the live price where the model has none). */
export function batchCostNanos(model: ModelSpec, usage: Usage): number {
  return costNanos(model.batchPrice ? { ...model, price: model.batchPrice } : model, usage);
}

/**
 * Upper-bound estimate before a call: every counted input token at the full input price, plus the
 * maximum output tokens the call may produce at the output price.
 */
export function estimateCostNanos(model: ModelSpec, inputTokens: number, maxOutputTokens: number): number {
  return costNanos(model, { inputTokens, cachedInputTokens: 0, outputTokens: maxOutputTokens });
}

export function formatUsd(nanos: number, digits = 6): string {
  return `$${(nanos / 1e9).toFixed(digits)}`;
}
