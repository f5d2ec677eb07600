/** What a request asks of its answer. Pure (zod only): used by the client, the workflow and the checks. */
import { z } from 'zod';

export const qualitySpecSchema = z
  .object({
    nonEmpty: z.boolean().default(true),
    noRefusal: z.boolean().default(true),
    /** The answer must be JSON (a bare object or array, optionally inside one ``` fence). */
    json: z.boolean().default(false),
    /** A JSON Schema the parsed answer must match (implies json). */
    jsonSchema: z.record(z.string(), z.unknown()).optional(),
    regex: z
      .string()
      .refine((r) => {
        try {
          new RegExp(r);
          return true;
        } catch {
          return false;
        }
      }, 'must be a valid regular expression')
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
    /** Escalations to the next tier up when a check fails. */
    maxEscalations: z.number().int().min(0).max(5).default(2),
  })
  .strict();
export type QualitySpec = z.output<typeof qualitySpecSchema>;
export type QualitySpecInput = z.input<typeof qualitySpecSchema>;


/** The judge's instruction; the simulator recognises it by its last sentence. */
export function judgePrompt(request: string, answer: string): string {
  return [
    'You are grading an answer to a request. Consider correctness, completeness and whether it does what was asked.',
    `<request>\n${request}\n</request>`,
    `<answer>\n${answer}\n</answer>`,
    'Reply with only a number between 0 and 1.',
  ].join('\n\n');
}

/** The first number in [0,1] in a judge's reply, or undefined. */
export function parseJudgeScore(text: string): number | undefined {
  const m = /(?:^|[^\d.])(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)(?![\d.])/.exec(text);
  if (!m?.[1]) return undefined;
  const v = Number(m[1]);
  return v >= 0 && v <= 1 ? v : undefined;
}
