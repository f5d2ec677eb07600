/** Reading a batch file line by line (any size), as batch entries; and counting its requests. */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { type BatchDefaults, duplicateLine, IdRegistry, parseBatchLine } from './batchInput.js';
import type { BatchEntry } from './runBatch.js';

export async function* readBatchFile(path: string, defaults: BatchDefaults = {}): AsyncGenerator<BatchEntry> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  const ids = new IdRegistry();
  let n = 0;
  for await (const text of lines) {
    n += 1;
    const parsed = parseBatchLine(text, n, defaults);
    if (!parsed) continue;
    if (parsed.ok) {
      // By request id: two OpenAI custom_ids may map to one (see requestIdForCustomId), and would
      // otherwise share one answer.
      const first = ids.claim(parsed.item.request.requestId, n);
      if (first !== undefined) {
        yield { ok: false, bad: duplicateLine(parsed.item.id, n, first, parsed.item.request.requestId), duplicate: true };
        continue;
      }
    }
    yield parsed;
  }
}

/** Non-blank lines in the file: the progress bar's total. */
export async function countRequestLines(path: string): Promise<number> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) if (text.trim() !== '') n += 1;
  return n;
}
