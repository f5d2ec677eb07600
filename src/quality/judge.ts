/** The judge model's prompt and how its reply is read. Pure, no dependencies (safe in workflow code). */

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
