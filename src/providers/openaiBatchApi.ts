/**
 * OpenAI's Batch API through the official SDK: the lines go up as one JSONL file (purpose
 * `batch`), the batch is created with the tag in its `metadata` (OpenAI keeps it, and lists it),
 * and the output and error files are read back when it ends.
 */
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { submitFailure } from './errors.js';
import { type OutputLine, outputLineResult } from './batchOutputLine.js';
import type { BatchApi, BatchLine, BatchLineResult, ProviderBatch } from './types.js';

/** The metadata key that carries a Switchyard batch's tag. */
export const TAG_KEY = 'switchyard_tag';
/** How far back `find` pages through the batch list (newest first) before it gives up. */
const FIND_PAGES = 10;

export class OpenAIBatchApi implements BatchApi {
  constructor(
    private readonly client: OpenAI,
    private readonly params: (line: BatchLine) => Record<string, unknown>,
    private readonly provider: string,
  ) {}

  async submit(lines: readonly BatchLine[], tag: string, model: string): Promise<ProviderBatch> {
    const where = { provider: this.provider, model };
    try {
      const body = lines.map((l) => JSON.stringify({ custom_id: l.customId, method: 'POST', url: '/v1/chat/completions', body: this.params(l) })).join('\n');
      const file = await this.client.files.create({ file: await toFile(Buffer.from(`${body}\n`), `${tag.replace(/[^\w.-]/g, '_')}.jsonl`), purpose: 'batch' });
      const b = await this.client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { [TAG_KEY]: tag },
      });
      return batchOf(b);
    } catch (e) {
      throw submitFailure(e, where);
    }
  }

  async find(tag: string, sinceMs: number): Promise<ProviderBatch | undefined> {
    let page = await this.client.batches.list({ limit: 100 });
    for (let i = 0; i < FIND_PAGES; i++) {
      for (const b of page.data) {
        if (b.metadata?.[TAG_KEY] === tag) return batchOf(b);
        // Listed newest first: past the submission's start, it is not there.
        if (b.created_at * 1000 < sinceMs - 60_000) return undefined;
      }
      if (!page.hasNextPage()) return undefined;
      page = await page.getNextPage();
    }
    return undefined;
  }

  async get(id: string): Promise<ProviderBatch> {
    return batchOf(await this.client.batches.retrieve(id));
  }

  async results(id: string): Promise<BatchLineResult[]> {
    const b = await this.client.batches.retrieve(id);
    const out: BatchLineResult[] = [];
    for (const fileId of [b.output_file_id, b.error_file_id]) {
      if (!fileId) continue;
      const text = await (await this.client.files.content(fileId)).text();
      for (const raw of text.split('\n')) if (raw.trim() !== '') out.push(outputLineResult(JSON.parse(raw) as OutputLine, b.status));
    }
    return out;
  }

  async cancel(id: string): Promise<void> {
    await this.client.batches.cancel(id);
  }
}

function batchOf(b: OpenAI.Batches.Batch): ProviderBatch {
  const state: ProviderBatch['state'] =
    b.status === 'completed'
      ? 'completed'
      : b.status === 'failed'
        ? 'failed'
        : b.status === 'expired'
          ? 'expired'
          : b.status === 'cancelled'
            ? 'cancelled'
            : 'running';
  const message = b.errors?.data?.map((e) => e.message).join('; ');
  return { id: b.id, state, createdAtMs: b.created_at * 1000, ...(message ? { message } : {}) };
}
