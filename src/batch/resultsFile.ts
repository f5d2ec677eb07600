/** Writing batch results as JSON lines, waiting for the stream when it pushes back. */
import { createWriteStream } from 'node:fs';
import { basename } from 'node:path';
import { finished } from 'node:stream/promises';
import type { BadLine, BatchResultLine } from './summary.js';
import { toOpenAIBatchOutput, toOpenAIRefusedLine } from './openaiBatch.js';

/** `switchyard`: Switchyard's result lines; `openai`: the OpenAI Batch API's output lines. */
export const RESULT_FORMATS = ['switchyard', 'openai'] as const;
export type ResultFormat = (typeof RESULT_FORMATS)[number];

export function resultsWriter(
  path: string,
  format: ResultFormat = 'switchyard',
): { write: (r: BatchResultLine) => Promise<void>; refused: (bad: BadLine) => void; close: () => Promise<void> } {
  const out = createWriteStream(path, { encoding: 'utf8' });
  const line = (r: BatchResultLine): unknown => (format === 'openai' ? toOpenAIBatchOutput(r, Math.floor(Date.now() / 1000)) : r);
  return {
    write: (r) =>
      new Promise<void>((resolve, reject) => {
        if (out.write(`${JSON.stringify(line(r))}\n`)) {
          resolve();
          return;
        }
        // One pair of listeners per wait, both removed when either fires (a listener left behind
        // per backpressured write added up to MaxListenersExceededWarning at 1,000 in flight).
        const onDrain = (): void => {
          out.off('error', onError);
          resolve();
        };
        const onError = (e: Error): void => {
          out.off('drain', onDrain);
          reject(e);
        };
        out.once('drain', onDrain).once('error', onError);
      }),
    // OpenAI's output holds a line for every custom_id: a refused one as its 400 (Switchyard's format reports them on stderr and in the summary).
    refused: (bad) => {
      if (format === 'openai') out.write(`${JSON.stringify(toOpenAIRefusedLine(bad, basename(path)))}\n`);
    },
    close: async () => {
      out.end();
      await finished(out);
    },
  };
}
