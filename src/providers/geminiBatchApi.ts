/**
 * Gemini's batch mode through the official SDK: the lines go inline (each with its custom id as
 * its metadata key), the batch's display name carries the tag (Gemini keeps it, and lists it), and
 * the inlined responses are read back when the job ends.
 */
import type { GoogleGenAI, InlinedRequest, BatchJob } from '@google/genai';
import { functionCallsOf, geminiResponseOf, textOf } from './geminiResponse.js';
import { submitFailure } from './errors.js';
import type { BatchApi, BatchLine, BatchLineResult, ProviderBatch } from './types.js';

const FIND_PAGES = 10;

export class GeminiBatchApi implements BatchApi {
  constructor(
    private readonly client: GoogleGenAI,
    private readonly request: (line: BatchLine) => InlinedRequest,
  ) {}

  async submit(lines: readonly BatchLine[], tag: string, model: string): Promise<ProviderBatch> {
    try {
      const job = await this.client.batches.create({ model, src: lines.map((l) => this.request(l)), config: { displayName: tag } });
      return batchOf(job);
    } catch (e) {
      throw submitFailure(e, { provider: 'google', model });
    }
  }

  async find(tag: string, sinceMs: number): Promise<ProviderBatch | undefined> {
    const pager = await this.client.batches.list({ config: { pageSize: 100 } });
    let seen = 0;
    for await (const job of pager) {
      if (job.displayName === tag) return batchOf(job);
      if (job.createTime && Date.parse(job.createTime) < sinceMs - 60_000) return undefined;
      if (++seen >= FIND_PAGES * 100) return undefined;
    }
    return undefined;
  }

  async get(id: string): Promise<ProviderBatch> {
    return batchOf(await this.client.batches.get({ name: id }));
  }

  async results(id: string): Promise<BatchLineResult[]> {
    const job = await this.client.batches.get({ name: id });
    return (job.dest?.inlinedResponses ?? []).map((r, i): BatchLineResult => {
      const customId = typeof r.metadata?.key === 'string' ? r.metadata.key : String(i);
      const res = r.response;
      const out = res ? geminiResponseOf(res, textOf(res), functionCallsOf(res), customId, '') : undefined;
      return out ? { customId, ok: true, res: out } : { customId, ok: false, why: 'errored', message: r.error?.message ?? 'no response for this line' };
    });
  }

  async cancel(id: string): Promise<void> {
    await this.client.batches.cancel({ name: id });
  }
}

function batchOf(job: BatchJob): ProviderBatch {
  const s = String(job.state ?? '');
  const state: ProviderBatch['state'] = s.endsWith('SUCCEEDED')
    ? 'completed'
    : s.endsWith('FAILED')
      ? 'failed'
      : s.endsWith('EXPIRED')
        ? 'expired'
        : s.endsWith('CANCELLED')
          ? 'cancelled'
          : 'running';
  return {
    id: job.name ?? '',
    state,
    createdAtMs: job.createTime ? Date.parse(job.createTime) : 0,
    ...(job.error?.message ? { message: job.error.message } : {}),
  };
}
