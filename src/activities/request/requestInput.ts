/**
 * The claim check for large prompts: the request workflow passes a reference to its own run, and
 * the call activity reads the prompt from the run's first history event (the start input), once
 * per run per worker. History then holds one copy of the prompt however many attempts there are.
 */
import type { Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow/index.js';
import type { RequestInput } from '../../workflows/request/contract.js';
import { type RequestText, textParts } from '../../workflows/conversation.js';

const sizeOf = (t: RequestText): number => textParts(t).reduce((n, s) => n + s.length, 0);

/** Reads request inputs by run, keeping the most recent ones (bounded by count and by size). */
export class RequestInputReader {
  private readonly cache = new Map<string, RequestInput>();
  private bytes = 0;

  constructor(
    private readonly temporal: Client,
    private readonly maxEntries = 64,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  async get(workflowId: string, runId: string): Promise<RequestInput> {
    const key = `${workflowId}/${runId}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const res = await this.temporal.workflowService.getWorkflowExecutionHistory({
      namespace: this.temporal.options.namespace,
      execution: { workflowId, runId },
      maximumPageSize: 1,
    });
    const payloads = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
    const input = await decodeFromPayloadsAtIndex<RequestInput>(this.temporal.options.loadedDataConverter, 0, payloads);
    if (!input || (typeof input.prompt !== 'string' && !Array.isArray(input.messages)))
      throw new Error(`the start input of ${key} holds no prompt or messages`);
    const size = sizeOf(input);
    this.cache.set(key, input);
    this.bytes += size;
    for (const [k, v] of this.cache) {
      if (this.cache.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.cache.delete(k);
      this.bytes -= sizeOf(v);
    }
    return input;
  }
}
