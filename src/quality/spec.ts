/** What a request asks of its answer. Pure (zod only): used by the client, the workflow and the checks. */
import { z } from 'zod';
import { patternError } from './linearRegex.js';

export const qualitySpecSchema = z
  .object({
    nonEmpty: z.boolean().default(true),
    noRefusal: z.boolean().default(true),
    /** The answer must be JSON (a bare object or array, optionally inside one ``` fence). */
    json: z.boolean().default(false),
    /** A JSON Schema the parsed answer must match (implies json). */
    jsonSchema: z.record(z.string(), z.unknown()).optional(),
    /**
     * A pattern the answer must contain a match of, in JavaScript syntax, run on RE2 (linear time:
     * no lookaround, no backreferences), at most MAX_PATTERN_LENGTH characters.
     */
    regex: z
      .string()
      .superRefine((r, ctx) => {
        const why = patternError(r);
        if (why !== undefined) ctx.addIssue({ code: 'custom', message: why });
      })
      .optional(),
    minLength: z.number().int().min(0).optional(),
    maxLength: z.number().int().min(1).optional(),
    /**
     * A judge: a (cheap) model scores the answer from 0 to 1; below the threshold is a failed check.
     * Its call is reserved, charged and traced like any other attempt.
     */
    judge: z
      .object({
        model: z.string().min(1).optional(),
        threshold: z.number().min(0, 'must be in [0,1]').max(1, 'must be in [0,1]'),
      })
      .strict()
      .optional(),
    /**
     * Check tool calls against the tools offered: the tool exists, and its arguments are a JSON
     * object matching its parameters schema (a failure escalates). On whenever a request offers
     * tools; false turns it off.
     */
    toolArguments: z.boolean().optional(),
    /** Escalations to the next tier up when a check fails. */
    maxEscalations: z.number().int().min(0).max(5).default(2),
  })
  .strict();
export type QualitySpec = z.output<typeof qualitySpecSchema>;
export type QualitySpecInput = z.input<typeof qualitySpecSchema>;

export { judgePrompt, parseJudgeScore } from './judge.js';
