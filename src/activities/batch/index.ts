/**
 * Batch activities: read a page of the input file from a byte offset (validating each line), and
 * wait for a request that already existed when the batch tried to start it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { type Client, WorkflowFailedError } from '@temporalio/client';
import { type BatchDefaults, parseBatchLine } from '../../batch/batchInput.js';
import { type BatchResultLine, completedResultLine } from '../../batch/summary.js';
import { failedLine } from '../../batch/failedLine.js';
import { toRequestFailed } from '../../contracts/requestFailure.js';
import type { BatchActivities, BatchCursor, BatchPage, BatchSource, PageItem } from '../../workflows/batch/contract.js';
import type { RequestResult } from '../../workflows/request/contract.js';

/** Bytes of request text per page: keeps the activity result under the SDK's 512 KB payload warning. */
export const PAGE_MAX_BYTES = 256 * 1024;
/** A single line larger than this cannot travel in a workflow payload: it is reported, not run. */
export const LINE_MAX_BYTES = 1024 * 1024;

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Reads whole lines from `cursor` until `maxLines` requests or PAGE_MAX_BYTES of request text. */
export async function readPage(
  source: BatchSource,
  cursor: BatchCursor,
  maxLines: number,
  defaults: BatchDefaults,
  duplicates: readonly number[] = [],
): Promise<BatchPage> {
  const items: PageItem[] = [];
  const repeated = new Set(duplicates);
  const invalid: BatchPage['invalid'] = [];
  const tooLong = (line: number): string =>
    `line ${line}: longer than ${LINE_MAX_BYTES} bytes, too large for a detached batch; run it with \`switchyard batch\` without --detach`;
  const fh = await open(source.path, 'r');
  try {
    const chunk = Buffer.alloc(64 * 1024);
    let buf = Buffer.alloc(0);
    let bufStart = cursor.offset; // file offset of buf[0]
    let lineNo = cursor.lineNo;
    let ended = false;
    let bytes = 0;
    const fill = async (): Promise<void> => {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, bufStart + buf.length);
      if (bytesRead === 0) ended = true;
      else buf = Buffer.concat([buf, chunk.subarray(0, bytesRead)]);
    };
    while (items.length < maxLines && bytes < PAGE_MAX_BYTES) {
      while (buf.indexOf(0x0a) < 0 && !ended && buf.length <= LINE_MAX_BYTES) await fill();
      let nl = buf.indexOf(0x0a);
      if (nl < 0 && buf.length > LINE_MAX_BYTES) {
        // An oversized line: report it and skip to its end without holding it in memory.
        lineNo += 1;
        invalid.push({ line: lineNo, error: tooLong(lineNo) });
        bufStart += buf.length;
        buf = Buffer.alloc(0);
        while (!ended && nl < 0) {
          await fill();
          nl = buf.indexOf(0x0a);
          if (nl < 0) {
            bufStart += buf.length;
            buf = Buffer.alloc(0);
          }
        }
        if (nl >= 0) {
          bufStart += nl + 1;
          buf = buf.subarray(nl + 1);
        }
        continue;
      }
      if (buf.length === 0 && ended) break;
      const consumed = nl >= 0 ? nl + 1 : buf.length;
      const text = buf.subarray(0, nl >= 0 ? nl : buf.length).toString('utf8');
      buf = buf.subarray(consumed);
      bufStart += consumed;
      lineNo += 1;
      if (consumed > LINE_MAX_BYTES + 1) {
        invalid.push({ line: lineNo, error: tooLong(lineNo) });
        continue;
      }
      if (repeated.has(lineNo)) {
        invalid.push({ line: lineNo, error: `line ${lineNo}: its id repeats an earlier line's; ids must be unique within a batch` });
        continue;
      }
      const parsed = parseBatchLine(text, lineNo, defaults);
      if (!parsed) continue;
      if (parsed.ok) {
        items.push({ line: parsed.item.line, id: parsed.item.id, request: parsed.item.request });
        bytes += Buffer.byteLength(text);
      } else invalid.push(parsed.bad);
    }
    return { items, invalid, next: { offset: bufStart, lineNo }, eof: bufStart >= source.sizeBytes };
  } finally {
    await fh.close();
  }
}

export function createBatchActivities(deps: { temporal: Client }) {
  return {
    async readBatchPage(input: {
      source: BatchSource;
      cursor: BatchCursor;
      maxLines: number;
      category?: string | undefined;
      feature?: string | undefined;
      duplicates?: readonly number[];
      overrides?: Readonly<Record<string, unknown>>;
      requestIdPrefix?: string;
    }): Promise<BatchPage> {
      const st = await stat(input.source.path).catch(() => undefined);
      if (!st) {
        throw ApplicationFailure.create({
          type: 'BatchSourceMissing',
          message: `batch input ${input.source.path} is not readable from this worker: detached batches need SWITCHYARD_BATCH_DIR on storage every worker can read`,
        });
      }
      if (st.size !== input.source.sizeBytes || (input.cursor.offset === 0 && (await fileSha256(input.source.path)) !== input.source.sha256)) {
        throw ApplicationFailure.create({
          type: 'BatchSourceChanged',
          nonRetryable: true,
          message: `batch input ${input.source.path} changed after the batch started (size or sha256 differs); start a new batch`,
        });
      }
      return readPage(
        input.source,
        input.cursor,
        input.maxLines,
        { category: input.category, feature: input.feature, overrides: input.overrides, requestIdPrefix: input.requestIdPrefix },
        input.duplicates,
      );
    },

    /** The outcome of a request that already existed, waiting (with heartbeats) if it is still running. */
    async awaitRequest(input: { id: string; workflowId: string }): Promise<BatchResultLine> {
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), 10_000);
      try {
        const r = (await deps.temporal.workflow.getHandle(input.workflowId).result()) as RequestResult;
        const { text: _t, ...line } = completedResultLine(input.id, r);
        return line;
      } catch (e) {
        if (e instanceof WorkflowFailedError) return failedLine(input.id, input.workflowId, toRequestFailed(e, input.workflowId));
        throw e;
      } finally {
        clearInterval(beat);
      }
    },
  } satisfies BatchActivities;
}

export type { BatchActivities } from '../../workflows/batch/contract.js';
