/** Fault specifications for the simulator: parsed with zod, drawn with a seeded PRNG. */
import { z } from 'zod';
import { batchFaultSchema } from './batchApis.js';

export const faultOutcomeSchema = z.union([
  z.number().int().min(100).max(599),
  z.enum(['ok', 'hang', 'malformed', 'drop', 'refusal', 'offformat', 'refuse', 'context']),
]);
export type FaultOutcome = z.infer<typeof faultOutcomeSchema>;

const rate = z.number().min(0, 'rates are probabilities in [0,1]').max(1, 'rates are probabilities in [0,1]');

export const faultSpecSchema = z
  .object({
    /** HTTP status -> probability, e.g. {"500": 0.2, "429": 0.1}. */
    errorRates: z.record(z.string().regex(/^[1-5]\d\d$/, 'keys are HTTP status codes such as "500"'), rate).default({}),
    retryAfterSeconds: z.number().nonnegative().optional(),
    hangRate: rate.default(0),
    malformedRate: rate.default(0),
    dropRate: rate.default(0),
    /** Answers that arrive fine but fail quality checks: prose where JSON was asked, or a refusal. */
    offformatRate: rate.optional(),
    refuseRate: rate.optional(),
    /**
     * Apply this spec only to prompts matching this regular expression (case-insensitive), e.g. a
     * model that is bad at one kind of task; other prompts are answered normally.
     */
    promptPattern: z
      .string()
      .refine((r) => {
        try {
          new RegExp(r, 'i');
          return true;
        } catch {
          return false;
        }
      }, 'must be a valid regular expression')
      .optional(),
    /**
     * The provider's tokenizer is not ours: reported input tokens = counted x this (e.g. 1.2 for a
     * provider that counts 20% more tokens than o200k for the same text).
     */
    inputTokenScale: z.number().min(0.1).max(10).optional(),
    /** The text a successful call answers with, instead of the deterministic one (e.g. a hostile answer for a quality check). */
    answer: z.string().max(1_000_000).optional(),
    /** Tool calls whose arguments do not satisfy the tool's schema (not JSON where the wire carries text; missing required fields where it carries an object). */
    malformedToolArgsRate: rate.optional(),
    /** Streamed answers: a pause before each piece of text after the first (tests: a stream still going). */
    chunkDelayMs: z.number().int().min(0).max(60_000).optional(),
    /** Streamed answers: the connection is cut after this many pieces of text (a provider failing mid-stream). */
    breakAfterChunks: z.number().int().min(0).optional(),
    /** Provider batches of this model: how they end, the share of lines answered with errors, how long they take. */
    batch: batchFaultSchema.optional(),
    /** Outcomes served in order, one per request to this model, before the rates apply. */
    script: z.array(faultOutcomeSchema).default([]),
  })
  .strict();
export type FaultSpec = z.output<typeof faultSpecSchema>;

/** Keyed by catalog model name (or provider model id), or "*" for every model. */
export const faultsFileSchema = z.record(z.string(), faultSpecSchema);
export type FaultsFile = z.output<typeof faultsFileSchema>;

/** mulberry32: a small seeded PRNG so that a fault run can be reproduced from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws one outcome from the rates: each rate is the probability of that outcome. */
export function drawOutcome(spec: FaultSpec, random: () => number): FaultOutcome {
  const r = random();
  let acc = 0;
  const entries: Array<[FaultOutcome, number]> = [
    ...Object.entries(spec.errorRates).map(([s, p]): [FaultOutcome, number] => [Number(s), p]),
    ['hang', spec.hangRate],
    ['malformed', spec.malformedRate],
    ['drop', spec.dropRate],
    ['offformat', spec.offformatRate ?? 0],
    ['refuse', spec.refuseRate ?? 0],
  ];
  for (const [outcome, p] of entries) {
    acc += p;
    if (r < acc) return outcome;
  }
  return 'ok';
}
