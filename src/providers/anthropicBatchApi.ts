/**
 * Anthropic's Message Batches API through the official SDK. Anthropic keeps no metadata on a
 * batch, and shows a batch's custom ids only in its results: `find` knows a batch again by when it
 * was created (after the submission began) and how many requests it holds, and takes it only when
 * exactly one batch matches (docs/deferred.md).
 */
import type Anthropic from '@anthropic-ai/sdk';
import { submitFailure } from './errors.js';
import { anthropicResponseOf } from './anthropicResponse.js';
import type { BatchApi, BatchLine, BatchLineResult, ProviderBatch } from './types.js';

/** Clock skew allowed between the worker and the provider when matching `created_at`. */
const SKEW_MS = 5_000;

export class AnthropicBatchApi implements BatchApi {
  constructor(
    private readonly client: Anthropic,
    private readonly params: (line: BatchLine) => Anthropic.Messages.MessageCreateParamsNonStreaming,
  ) {}

  async submit(lines: readonly BatchLine[], _tag: string, model: string): Promise<ProviderBatch> {
    try {
      const b = await this.client.messages.batches.create({ requests: lines.map((l) => ({ custom_id: l.customId, params: this.params(l) })) });
      return batchOf(b);
    } catch (e) {
      throw submitFailure(e, { provider: 'anthropic', model });
    }
  }

  async find(_tag: string, sinceMs: number, count: number): Promise<ProviderBatch | undefined> {
    const matches: Anthropic.Messages.MessageBatch[] = [];
    const page = await this.client.messages.batches.list({ limit: 100 });
    for (const b of page.data) {
      if (Date.parse(b.created_at) < sinceMs - SKEW_MS) continue;
      const c = b.request_counts;
      if (c.processing + c.succeeded + c.errored + c.canceled + c.expired === count) matches.push(b);
    }
    if (matches.length > 1)
      throw new Error(`${matches.length} Anthropic batches of ${count} requests were created since the submission began; cannot tell which is this one`);
    return matches[0] ? batchOf(matches[0]) : undefined;
  }

  async get(id: string): Promise<ProviderBatch> {
    return batchOf(await this.client.messages.batches.retrieve(id));
  }

  async results(id: string): Promise<BatchLineResult[]> {
    const out: BatchLineResult[] = [];
    for await (const line of await this.client.messages.batches.results(id)) {
      const r = line.result;
      if (r.type === 'succeeded') {
        const res = anthropicResponseOf(r.message, r.message.model);
        out.push({ customId: line.custom_id, ok: true, res });
      } else if (r.type === 'errored') out.push({ customId: line.custom_id, ok: false, why: 'errored', message: r.error.error.message });
      else out.push({ customId: line.custom_id, ok: false, why: r.type === 'expired' ? 'expired' : 'cancelled', message: `the line was ${r.type}` });
    }
    return out;
  }

  async cancel(id: string): Promise<void> {
    await this.client.messages.batches.cancel(id);
  }
}

function batchOf(b: Anthropic.Messages.MessageBatch): ProviderBatch {
  const c = b.request_counts;
  // Anthropic ends every batch; its counts say how.
  const state: ProviderBatch['state'] =
    b.processing_status !== 'ended'
      ? 'running'
      : c.succeeded + c.errored > 0
        ? 'completed'
        : c.expired > 0
          ? 'expired'
          : c.canceled > 0
            ? 'cancelled'
            : 'completed';
  return { id: b.id, state, createdAtMs: Date.parse(b.created_at) };
}
