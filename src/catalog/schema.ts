/**
 * The model catalog schema. Prices are given by people in USD per million tokens (the unit the
 * providers publish) and converted once, at parse time, to integer nanodollars per million tokens,
 * so that every later calculation is integer arithmetic.
 */
import { z } from 'zod';

export { CAPABILITIES, type Capability, NANOS_PER_USD, PROVIDERS, type ProviderName, TIERS, type Tier } from './tiers.js';
import { CAPABILITIES, type Capability, NANOS_PER_USD, PROVIDERS, type ProviderName, TIERS, type Tier } from './tiers.js';

const usdPerMillion = z
  .number({ error: 'must be a number of USD per million tokens, e.g. 2.5' })
  .nonnegative('must be >= 0 (USD per million tokens)')
  .max(100_000, 'must be at most 100000 USD per million tokens');

/** What a person writes in a catalog file. */
export const modelInputSchema = z
  .object({
    name: z
      .string()
      .min(1, 'must be a non-empty model name')
      .regex(/^[A-Za-z0-9._:/-]+$/, 'may contain only letters, digits and . _ : / -'),
    provider: z.enum(PROVIDERS, {
      error: `must be one of ${PROVIDERS.join(', ')}`,
    }),
    /** The model id sent to the provider, when it differs from the catalog name. */
    providerModel: z.string().min(1).optional(),
    tier: z.enum(TIERS, { error: `must be one of ${TIERS.join(', ')}` }),
    pricing: z.strictObject({
      inputUsdPerMTok: usdPerMillion,
      /** Defaults to the input price for providers without prompt caching. */
      cachedInputUsdPerMTok: usdPerMillion.optional(),
      outputUsdPerMTok: usdPerMillion,
      /**
       * The provider's batch API prices (answered within its window, usually 24 h), where the
       * provider has one: requests with a deadline may go there (docs/deferred.md).
       */
      batch: z
        .strictObject({
          inputUsdPerMTok: usdPerMillion,
          outputUsdPerMTok: usdPerMillion,
        })
        .optional(),
    }),
    contextWindow: z.number().int().positive('must be a positive number of tokens'),
    maxOutputTokens: z.number().int().positive('must be a positive number of tokens'),
    capabilities: z.array(z.enum(CAPABILITIES, { error: `must be one of ${CAPABILITIES.join(', ')}` })),
    typicalLatencyMs: z.number().int().nonnegative(),
    quality: z.number().min(0, 'must be in [0,1]').max(1, 'must be in [0,1]'),
  })
  .strict()
  .refine((m) => m.maxOutputTokens <= m.contextWindow, {
    message: 'maxOutputTokens must not exceed contextWindow',
    path: ['maxOutputTokens'],
  });
export type ModelInput = z.input<typeof modelInputSchema>;

export interface ModelSpec {
  readonly name: string;
  readonly provider: ProviderName;
  readonly providerModel: string;
  readonly tier: Tier;
  /** Integer nanodollars per million tokens. */
  readonly price: {
    readonly inputNanosPerMTok: number;
    readonly cachedInputNanosPerMTok: number;
    readonly outputNanosPerMTok: number;
  };
  /** The provider's batch API prices (absent: the model cannot be deferred). */
  readonly batchPrice?: {
    readonly inputNanosPerMTok: number;
    readonly cachedInputNanosPerMTok: number;
    readonly outputNanosPerMTok: number;
  };
  readonly contextWindow: number;
  readonly maxOutputTokens: number;
  readonly capabilities: readonly Capability[];
  readonly typicalLatencyMs: number;
  readonly quality: number;
}

export function usdToNanos(usd: number): number {
  return Math.round(usd * NANOS_PER_USD);
}

export function toModelSpec(m: z.output<typeof modelInputSchema>): ModelSpec {
  return {
    name: m.name,
    provider: m.provider,
    providerModel: m.providerModel ?? m.name,
    tier: m.tier,
    price: {
      inputNanosPerMTok: usdToNanos(m.pricing.inputUsdPerMTok),
      cachedInputNanosPerMTok: usdToNanos(m.pricing.cachedInputUsdPerMTok ?? m.pricing.inputUsdPerMTok),
      outputNanosPerMTok: usdToNanos(m.pricing.outputUsdPerMTok),
    },
    ...(m.pricing.batch
      ? {
          batchPrice: {
            inputNanosPerMTok: usdToNanos(m.pricing.batch.inputUsdPerMTok),
            // Batch lines are not served from a prompt cache here: cached input is priced as input.
            cachedInputNanosPerMTok: usdToNanos(m.pricing.batch.inputUsdPerMTok),
            outputNanosPerMTok: usdToNanos(m.pricing.batch.outputUsdPerMTok),
          },
        }
      : {}),
    contextWindow: m.contextWindow,
    maxOutputTokens: m.maxOutputTokens,
    capabilities: [...new Set(m.capabilities)],
    typicalLatencyMs: m.typicalLatencyMs,
    quality: m.quality,
  };
}

/**
 * A catalog file: either a plain list of models (replaces the default catalog), or
 * `{ mode: 'extend' | 'replace', models: [...], remove?: [names] }`.
 */
export const catalogFileSchema = z.union([
  z.array(modelInputSchema),
  z
    .object({
      mode: z.enum(['extend', 'replace']).default('extend'),
      models: z.array(modelInputSchema).default([]),
      remove: z.array(z.string()).default([]),
    })
    .strict(),
]);
