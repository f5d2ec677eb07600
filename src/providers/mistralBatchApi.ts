/**
 * Mistral's batch jobs through the official SDK: the lines go inline in the job, the tag in its
 * `metadata` (Mistral keeps it, and lists it), the output and error files are downloaded when the
 * job ends. A line's body is Mistral's chat request on the wire (snake_case), without the model
 * (the job names it).
 */
import type { Mistral } from '@mistralai/mistralai';
import { submitFailure } from './errors.js';
import { type OutputLine, outputLineResult } from './batchOutputLine.js';
import type { BatchApi, BatchLine, BatchLineResult, ProviderBatch } from './types.js';

export const TAG_KEY = 'switchyard_tag';
const FIND_PAGES = 10;

type Job = Awaited<ReturnType<Mistral['batch']['jobs']['get']>>;

export class MistralBatchApi implements BatchApi {
  constructor(
    private readonly client: Mistral,
    private readonly body: (line: BatchLine) => Record<string, unknown>,
  ) {}

  async submit(lines: readonly BatchLine[], tag: string, model: string): Promise<ProviderBatch> {
    try {
      const job = await this.client.batch.jobs.create({
        endpoint: '/v1/chat/completions',
        model,
        requests: lines.map((l) => ({ customId: l.customId, body: this.body(l) })),
        metadata: { [TAG_KEY]: tag },
        timeoutHours: 24,
      });
      return batchOf(job);
    } catch (e) {
      throw submitFailure(e, { provider: 'mistral', model });
    }
  }

  async find(tag: string, sinceMs: number): Promise<ProviderBatch | undefined> {
    for (let page = 0; page < FIND_PAGES; page++) {
      const list = await this.client.batch.jobs.list({ page, pageSize: 100 });
      for (const job of list.data ?? []) {
        if (job.metadata?.[TAG_KEY] === tag) return batchOf(job);
        if (job.createdAt * 1000 < sinceMs - 60_000) return undefined;
      }
      if ((list.data ?? []).length < 100) return undefined;
    }
    return undefined;
  }

  async get(id: string): Promise<ProviderBatch> {
    return batchOf(await this.client.batch.jobs.get({ jobId: id }));
  }

  async results(id: string): Promise<BatchLineResult[]> {
    const job = await this.client.batch.jobs.get({ jobId: id });
    const out: BatchLineResult[] = [];
    for (const fileId of [job.outputFile, job.errorFile]) {
      if (!fileId) continue;
      const text = await new Response(await this.client.files.download({ fileId })).text();
      for (const raw of text.split('\n')) {
        if (raw.trim() === '') continue;
        out.push(outputLineResult(JSON.parse(raw) as OutputLine));
      }
    }
    return out;
  }

  async cancel(id: string): Promise<void> {
    await this.client.batch.jobs.cancel({ jobId: id });
  }
}

function batchOf(job: Job): ProviderBatch {
  const s = String(job.status);
  const state: ProviderBatch['state'] =
    s === 'SUCCESS' ? 'completed' : s === 'FAILED' ? 'failed' : s === 'TIMEOUT_EXCEEDED' ? 'expired' : s === 'CANCELLED' ? 'cancelled' : 'running';
  const message = job.errors.map((e) => e.message).join('; ');
  return { id: job.id, state, createdAtMs: job.createdAt * 1000, ...(message ? { message } : {}) };
}
