/**
 * OpenAI's Files and Batches endpoints: a pipeline written against `files.create` +
 * `batches.create` + `batches.retrieve` + `files.content` points its base URL here. A batch runs as
 * the detached batch workflow (workflows/batch/batchRun.ts): nothing depends on this gateway
 * staying up; its lines are requests routed one by one, under the key's scope, category and
 * models. Its status is read from the workflow each time it is asked for; once the workflow has
 * ended, the gateway that is asked writes the output and error files (`finalizing`), once, and
 * the batch is `completed`, `cancelled`, `expired` or `failed`. docs/files-and-batches.md.
 */
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import multipart from '@fastify/multipart';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { fileSha256, readPage } from '../activities/batch/index.js';
import { type BatchDefaults, duplicateLine, IdRegistry } from '../batch/batchInput.js';
import type { BatchEntry } from '../batch/runBatch.js';
import { MAX_DUPLICATE_LINES } from '../batch/detached.js';
import { failedLine } from '../batch/failedLine.js';
import { toOpenAIBatchOutput, toOpenAIRefusedLine } from '../batch/openaiBatch.js';
import { type BadLine, type BatchResultLine, completedResultLine } from '../batch/summary.js';
import type { SwitchyardClient } from '../client/client.js';
import { type BatchRunStatus, batchStatusQuery, batchWorkflowId } from '../workflows/batch/contract.js';
import { workflowIdFor } from '../workflows/request/contract.js';
import { type GatewayError, openAIError } from './errors.js';
import { type DirFileStore, fileObject, FileTooLargeError, newId, type StoredFile } from './fileStore.js';
import type { Principal } from './keys.js';

/** OpenAI's limits on a batch input file. */
export const MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024;
export const MAX_BATCH_REQUESTS = 50_000;
/** The only completion window OpenAI offers. */
const WINDOW = '24h';
const DAY_MS = 24 * 3600 * 1000;
/** A batch still `validating` after this long lost its gateway while its lines were checked. */
const VALIDATION_STALE_S = 15 * 60;

type Status = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';

/** What the gateway keeps of a batch (the workflow holds the rest). */
export interface BatchRecord {
  readonly id: string;
  readonly owner: string;
  readonly endpoint: string;
  readonly input_file_id: string;
  readonly completion_window: string;
  readonly metadata: Record<string, string> | null;
  readonly created_at: number;
  readonly expires_at: number;
  /** Lines in the input (valid or not) and the refused ones (they go to the error file). */
  readonly total: number;
  readonly refused: number;
  readonly defaults: BatchDefaults;
  in_progress_at?: number | null;
  cancelling_at?: number | null;
  /** Set when the window ran out with lines unanswered: the batch was stopped, and ends `expired`. */
  expiring?: boolean;
  failed_at?: number | null;
  errors?: { object: 'list'; data: Array<{ code: string; message: string; param: string | null; line: number | null }> } | null;
  /** Once the workflow ended and its files are written. */
  final?: {
    status: 'completed' | 'cancelled' | 'expired' | 'failed';
    finalizing_at: number;
    at: number;
    output_file_id: string | null;
    error_file_id: string | null;
    completed: number;
    failed: number;
    costNanos: number;
    premiumBaselineCostNanos: number;
  };
}

export interface BatchRouteDeps {
  readonly client: SwitchyardClient;
  readonly store: DirFileStore;
  /** Whose files and batches a caller sees: a key's lineage (rotations keep them), all for the admin key. */
  readonly ownerOf: (p: Principal | undefined) => string | undefined;
  /** The category, scope, key id and models every line of a key's batch runs under. */
  readonly keyFields: (p: Principal | undefined) => { ok: true; category: string; overrides: Record<string, unknown> } | { ok: false; error: GatewayError };
  /** Requests of one batch in flight at once. */
  readonly concurrency: number;
  /** The completion window (24 h; tests shorten it). */
  readonly windowMs?: number;
  readonly maxFileBytes?: number;
  readonly idleTimeoutMs: number;
  /** How often ended batches get their files written without being asked (30 s). */
  readonly sweepMs?: number;
  readonly log?: Logger | undefined;
}

const now = (): number => Math.floor(Date.now() / 1000);
const send = (reply: FastifyReply, e: GatewayError) => reply.status(e.status).send(e.body);
const bad = (message: string, param: string | null = null) => openAIError(400, 'invalid_request_error', message, param);
const notFound = (what: string, id: string, param: string | null = null) =>
  openAIError(404, 'invalid_request_error', `No such ${what}: '${id.slice(0, 100)}'`, param, 'not_found');

function listOf<T extends { id: string }>(data: Array<Record<string, unknown> & T>, hasMore: boolean): Record<string, unknown> {
  return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore };
}

function limitOf(raw: unknown, max: number, dflt: number): number | GatewayError {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) return bad(`limit: must be a whole number from 1 to ${max}`, 'limit');
  return n;
}

export function fileAndBatchRoutes(app: FastifyInstance, deps: BatchRouteDeps): void {
  const { store, client } = deps;
  const maxFileBytes = deps.maxFileBytes ?? MAX_BATCH_FILE_BYTES;
  const windowMs = deps.windowMs ?? DAY_MS;
  const finalizing = new Map<string, Promise<void>>();

  /**
   * Changes a batch record as it is now on disk (another gateway may have written it since it was
   * read): an ended record (final or failed) is never changed again. Returns the record as written.
   */
  const update = async (id: string, change: (b: BatchRecord) => void): Promise<BatchRecord | undefined> => {
    const latest = await store.getBatch<BatchRecord>(id, undefined);
    if (!latest) return undefined;
    if (latest.final || latest.errors) return latest;
    change(latest);
    await store.putBatch(latest);
    return latest;
  };

  // A batch's files are written as soon as its workflow ends while any gateway runs, not only when
  // a client asks: the workflow and its requests are kept only for the namespace's retention.
  const sweep = setInterval(() => {
    void (async () => {
      const { data } = await store.listBatches<BatchRecord>(undefined, { limit: Number.MAX_SAFE_INTEGER });
      for (const b of data) if (!b.final && !b.errors && b.in_progress_at) await present(b);
    })().catch((e: unknown) => deps.log?.warn({ err: (e as Error).message }, 'gateway: the batch sweep failed; the next one tries again'));
  }, deps.sweepMs ?? 30_000);
  sweep.unref();
  app.addHook('onClose', async () => clearInterval(sweep));

  void app.register(multipart, { limits: { fileSize: maxFileBytes, files: 1, fields: 10, fieldSize: 1024 } });

  // ---- files

  app.post('/v1/files', async (req: FastifyRequest, reply) => {
    if (!req.isMultipart()) return send(reply, bad('upload the file as multipart/form-data with the fields file and purpose=batch', 'file'));
    // The body is read here, not before: a client may not pause for longer than the idle bound.
    req.raw.socket.setTimeout(deps.idleTimeoutMs);
    const owner = deps.ownerOf(req.principal) ?? 'admin';
    let purpose: string | undefined;
    let file: StoredFile | undefined;
    let unknownField: string | undefined;
    try {
      for await (const part of req.parts()) {
        if (part.type === 'field') {
          if (part.fieldname === 'purpose') purpose = String(part.value);
          else unknownField ??= part.fieldname;
          continue;
        }
        if (part.fieldname !== 'file' || file) {
          part.file.resume();
          continue;
        }
        file = await store.create(part.file, { filename: (part.filename || 'upload.jsonl').slice(0, 255), purpose: 'batch', owner, maxBytes: maxFileBytes });
        if (part.file.truncated) {
          await store.delete(file.id);
          return send(reply, openAIError(413, 'invalid_request_error', `file: larger than ${maxFileBytes} bytes (the limit for a batch input file)`, 'file'));
        }
      }
    } catch (e) {
      if (file) await store.delete(file.id);
      if (e instanceof FileTooLargeError || (e as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE')
        return send(reply, openAIError(413, 'invalid_request_error', `file: larger than ${maxFileBytes} bytes (the limit for a batch input file)`, 'file'));
      // A malformed body (no boundary, cut short, two files): the client's to fix.
      const code = (e as { code?: string }).code ?? '';
      if (code.startsWith('FST_') || /multipart|boundary/i.test((e as Error).message))
        return send(reply, bad(`file: the multipart body could not be read (${(e as Error).message}); send one file field and purpose=batch`, 'file'));
      throw e;
    } finally {
      req.raw.socket.setTimeout(0);
    }
    if (unknownField !== undefined) {
      if (file) await store.delete(file.id);
      return send(
        reply,
        bad(
          `${unknownField}: not an upload field this gateway takes (file and purpose)${unknownField.startsWith('expires_after') ? '; files are kept until deleted here' : ''}`,
          unknownField,
        ),
      );
    }
    if (purpose !== 'batch') {
      if (file) await store.delete(file.id);
      return send(
        reply,
        bad(
          purpose === undefined
            ? 'purpose: is required; this gateway takes files for batches: purpose=batch'
            : `purpose: "${purpose.slice(0, 50)}" is not supported; this gateway takes files for batches: purpose=batch`,
          'purpose',
        ),
      );
    }
    if (!file) return send(reply, bad('file: is required (the JSONL batch input, as the multipart field "file")', 'file'));
    if (file.lines === 0) {
      await store.delete(file.id);
      return send(reply, bad('file: is empty; a batch input file holds one JSON request per line', 'file'));
    }
    return fileObject(file);
  });

  app.get<{ Querystring: { purpose?: string; limit?: string; after?: string; order?: string } }>('/v1/files', async (req, reply) => {
    const limit = limitOf(req.query.limit, 10_000, 10_000);
    if (typeof limit !== 'number') return send(reply, limit);
    const order = req.query.order ?? 'desc';
    if (order !== 'asc' && order !== 'desc') return send(reply, bad('order: must be asc or desc', 'order'));
    const { data, hasMore } = await store.list(deps.ownerOf(req.principal), {
      ...(req.query.purpose ? { purpose: req.query.purpose } : {}),
      ...(req.query.after ? { after: req.query.after } : {}),
      limit,
      order,
    });
    return listOf(
      data.map((f) => ({ ...fileObject(f), id: f.id })),
      hasMore,
    );
  });

  app.get<{ Params: { id: string } }>('/v1/files/:id', async (req, reply) => {
    const f = await store.get(req.params.id, deps.ownerOf(req.principal));
    return f ? fileObject(f) : send(reply, notFound('File', req.params.id));
  });

  app.delete<{ Params: { id: string } }>('/v1/files/:id', async (req, reply) => {
    const owner = deps.ownerOf(req.principal);
    const f = await store.get(req.params.id, owner);
    if (!f) return send(reply, notFound('File', req.params.id));
    // A running batch's workers read its input: deleting it would leave the batch unable to go on.
    const running = (await store.listBatches<BatchRecord>(undefined, { limit: 1_000_000 })).data.find((b) => b.input_file_id === f.id && !b.final && !b.errors);
    if (running)
      return send(
        reply,
        bad(`file ${f.id} is the input of batch ${running.id}, which has not ended: cancel it first (POST /v1/batches/${running.id}/cancel)`, 'file_id'),
      );
    await store.delete(f.id);
    return { id: f.id, object: 'file', deleted: true };
  });

  app.get<{ Params: { id: string } }>('/v1/files/:id/content', async (req, reply) => {
    const f = await store.get(req.params.id, deps.ownerOf(req.principal));
    if (!f || !(await store.hasData(f.id))) return send(reply, notFound('File', req.params.id));
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-disposition', `attachment; filename="${encodeURIComponent(f.filename)}"`)
      .header('content-length', String(f.bytes))
      .send(store.content(f.id));
  });

  // ---- batches

  app.post('/v1/batches', async (req, reply) => {
    const body = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : null;
    if (!body) return send(reply, bad('the body must be a JSON object: {"input_file_id", "endpoint", "completion_window"}'));
    const known = new Set(['input_file_id', 'endpoint', 'completion_window', 'metadata', 'output_expires_after']);
    const unknown = Object.keys(body).find((k) => !known.has(k));
    if (unknown) return send(reply, bad(`${unknown}: not a batches field this gateway knows; remove it`, unknown));
    if (typeof body.input_file_id !== 'string' || body.input_file_id === '')
      return send(reply, bad('input_file_id: is required: the id of a file uploaded with purpose=batch', 'input_file_id'));
    if (body.endpoint !== '/v1/chat/completions')
      return send(
        reply,
        bad(
          body.endpoint === undefined
            ? 'endpoint: is required: "/v1/chat/completions"'
            : `endpoint: only "/v1/chat/completions" is supported (got ${JSON.stringify(body.endpoint).slice(0, 60)})`,
          'endpoint',
        ),
      );
    if (body.completion_window !== WINDOW) return send(reply, bad(`completion_window: must be "${WINDOW}"`, 'completion_window'));
    const metadata = metadataOf(body.metadata);
    if ('error' in metadata) return send(reply, metadata.error);
    if (body.output_expires_after !== undefined && body.output_expires_after !== null)
      return send(reply, bad('output_expires_after: output files are kept until deleted here; remove it', 'output_expires_after'));
    const owner = deps.ownerOf(req.principal) ?? 'admin';
    const input = await store.get(body.input_file_id, deps.ownerOf(req.principal));
    if (!input) return send(reply, notFound('File', body.input_file_id, 'input_file_id'));
    if (input.purpose !== 'batch') return send(reply, bad(`input_file_id: file ${input.id} has purpose ${input.purpose}, not batch`, 'input_file_id'));
    const key = deps.keyFields(req.principal);
    if (!key.ok) return send(reply, key.error);
    if (input.lines > MAX_BATCH_REQUESTS)
      return send(
        reply,
        bad(`input_file_id: file ${input.id} holds ${input.lines} lines; a batch holds at most ${MAX_BATCH_REQUESTS} requests`, 'input_file_id'),
      );

    const id = newId('batch_');
    const created = now();
    const defaults: BatchDefaults = { category: key.category, overrides: key.overrides, requestIdPrefix: `${id}/` };
    const record: BatchRecord = {
      id,
      owner,
      endpoint: '/v1/chat/completions',
      input_file_id: input.id,
      completion_window: WINDOW,
      metadata: metadata.value,
      created_at: created,
      expires_at: created + Math.ceil(windowMs / 1000),
      total: input.lines,
      refused: 0,
      defaults,
    };
    await store.putBatch(record);
    // Validate every line before anything runs: the counts, and the refused lines (they go to the error file).
    let valid = 0;
    let refused = 0;
    const duplicates: number[] = [];
    const firstErrors: NonNullable<BatchRecord['errors']>['data'] = [];
    for await (const e of batchLines(store.pathOf(input.id), defaults)) {
      if (e.ok) valid += 1;
      else {
        refused += 1;
        if (e.duplicate) duplicates.push(e.bad.line);
        if (firstErrors.length < 100) firstErrors.push({ code: 'invalid_request', message: e.bad.error, param: null, line: e.bad.line });
      }
    }
    const fail = async (code: string, message: string, param: string | null = null) => {
      const failed: BatchRecord = {
        ...record,
        refused,
        failed_at: now(),
        errors: { object: 'list', data: [{ code, message, param, line: null }, ...firstErrors.slice(0, 20)] },
      };
      await store.putBatch(failed);
      return batchObject(failed, 'failed');
    };
    if (valid + refused > MAX_BATCH_REQUESTS)
      return fail('too_many_requests', `the file holds ${valid + refused} requests; a batch holds at most ${MAX_BATCH_REQUESTS}`);
    if (valid === 0) return fail('empty_batch', 'no line of the file is a valid request; see the errors by line');
    if (duplicates.length > MAX_DUPLICATE_LINES)
      return fail('duplicate_custom_id', `${duplicates.length} lines repeat an earlier line's custom_id (more than ${MAX_DUPLICATE_LINES}): make them unique`);
    const path = store.pathOf(input.id);
    try {
      await client.batches.startBatch({
        batchId: id,
        source: { path, sha256: await fileSha256(path), sizeBytes: input.bytes, lines: input.lines, originalName: input.filename },
        concurrency: deps.concurrency,
        category: key.category,
        overrides: key.overrides,
        requestIdPrefix: `${id}/`,
        ...(duplicates.length > 0 ? { duplicates } : {}),
      });
    } catch (e) {
      await store.putBatch({
        ...record,
        refused,
        failed_at: now(),
        errors: { object: 'list', data: [{ code: 'start_failed', message: (e as Error).message, param: null, line: null }] },
      });
      throw e;
    }
    // A cancel that came while the lines were checked is kept, and acted on now the workflow exists.
    const latest = await store.getBatch<BatchRecord>(id, undefined);
    const started: BatchRecord = { ...record, refused, in_progress_at: now(), ...(latest?.cancelling_at ? { cancelling_at: latest.cancelling_at } : {}) };
    await store.putBatch(started);
    if (started.cancelling_at) {
      await client.temporal.workflow.getHandle(batchWorkflowId(id)).cancel();
      return batchObject(started, 'cancelling', { completed: 0, failed: refused });
    }
    return batchObject(started, 'in_progress', { completed: 0, failed: refused });
  });

  app.get<{ Params: { id: string } }>('/v1/batches/:id', async (req, reply) => {
    const b = await store.getBatch<BatchRecord>(req.params.id, deps.ownerOf(req.principal));
    return b ? present(b) : send(reply, notFound('Batch', req.params.id));
  });

  app.get<{ Querystring: { limit?: string; after?: string } }>('/v1/batches', async (req, reply) => {
    const limit = limitOf(req.query.limit, 100, 20);
    if (typeof limit !== 'number') return send(reply, limit);
    const { data, hasMore } = await store.listBatches<BatchRecord>(deps.ownerOf(req.principal), {
      ...(req.query.after ? { after: req.query.after } : {}),
      limit,
    });
    const shown: Array<Record<string, unknown> & { id: string }> = [];
    for (const b of data) shown.push({ ...(await present(b)), id: b.id });
    return listOf(shown, hasMore);
  });

  app.post<{ Params: { id: string } }>('/v1/batches/:id/cancel', async (req, reply) => {
    const b = await store.getBatch<BatchRecord>(req.params.id, deps.ownerOf(req.principal));
    if (!b) return send(reply, notFound('Batch', req.params.id));
    if (b.final || b.errors)
      return send(
        reply,
        openAIError(409, 'invalid_request_error', `batch ${b.id} has ended (${b.final?.status ?? 'failed'}); there is nothing to cancel`, null, 'batch_ended'),
      );
    const marked = await update(b.id, (x) => {
      x.cancelling_at ??= now();
    });
    if (marked?.final || marked?.errors) return present(marked);
    await client.temporal.workflow
      .getHandle(batchWorkflowId(b.id))
      .cancel()
      .catch((e: unknown) => {
        if (!(e instanceof WorkflowNotFoundError)) throw e;
      });
    return present(marked ?? b);
  });

  /** The batch as OpenAI shows it, its status read from the workflow (and its files written once it ended). */
  async function present(b: BatchRecord): Promise<Record<string, unknown>> {
    if (b.errors) return batchObject(b, 'failed');
    if (b.final) return batchObject(b, b.final.status, { completed: b.final.completed, failed: b.final.failed });
    const handle = client.temporal.workflow.getHandle(batchWorkflowId(b.id));
    let desc;
    try {
      desc = await handle.describe();
    } catch (e) {
      if (!(e instanceof WorkflowNotFoundError)) throw e;
      // Started, and its workflow is gone: it ended longer ago than the namespace keeps histories
      // (the sweeper below writes files as soon as a batch ends, while any gateway runs).
      // Not started: checking lines takes seconds, so a record this old lost its gateway mid-create.
      if (!b.in_progress_at && Date.now() / 1000 - b.created_at < VALIDATION_STALE_S) return batchObject(b, 'validating');
      const why = b.in_progress_at
        ? {
            code: 'workflow_gone',
            message: `the batch's workflow (${batchWorkflowId(b.id)}) is no longer kept by Temporal: it ended longer ago than the namespace's retention, before any gateway wrote its files`,
          }
        : { code: 'validation_interrupted', message: 'the gateway checking this batch stopped before it started; create it again' };
      const failed = await update(b.id, (x) => {
        x.failed_at = now();
        x.errors = { object: 'list', data: [{ ...why, param: null, line: null }] };
      });
      return failed?.final ? present(failed) : batchObject(failed ?? b, 'failed');
    }
    if (desc.status.name === 'RUNNING') {
      const st: BatchRunStatus | undefined = await handle.query(batchStatusQuery).catch(() => undefined);
      const counts = { completed: st?.summary.completed ?? 0, failed: (st?.summary.failed ?? 0) + b.refused };
      if (!b.cancelling_at && Date.now() / 1000 >= b.expires_at) {
        // The window ran out: stop the batch; what was answered is kept, the rest is `batch_expired`.
        const marked = await update(b.id, (x) => {
          x.cancelling_at ??= now();
          x.expiring = true;
        });
        if (marked) Object.assign(b, { cancelling_at: marked.cancelling_at, expiring: marked.expiring });
        await handle.cancel();
      }
      return batchObject(b, b.cancelling_at ? 'cancelling' : 'in_progress', counts, st);
    }
    const status: NonNullable<BatchRecord['final']>['status'] =
      desc.status.name === 'COMPLETED' ? 'completed' : desc.status.name === 'CANCELLED' ? (b.expiring ? 'expired' : 'cancelled') : 'failed';
    let job = finalizing.get(b.id);
    if (!job) {
      job = finalize(b, status).finally(() => finalizing.delete(b.id));
      finalizing.set(b.id, job);
      job.catch((e: unknown) =>
        deps.log?.error({ batch: b.id, err: (e as Error).message }, 'gateway: writing a batch output failed; the next retrieve tries again'),
      );
    }
    // A small batch is written by the time a client asks again; a large one shows `finalizing` meanwhile.
    await Promise.race([job.catch(() => undefined), new Promise((r) => setTimeout(r, 2_000))]);
    const now2 = await store.getBatch<BatchRecord>(b.id, undefined);
    if (now2?.final) return batchObject(now2, now2.final.status, { completed: now2.final.completed, failed: now2.final.failed });
    return batchObject(b, 'finalizing');
  }

  /**
   * Writes the output file (a line per answered custom_id) and the error file (a line per failed,
   * refused or never-run custom_id), in input order, then records the batch as ended. One writer
   * per batch across gateways: a lock file; a writer that died leaves a stale lock, taken over
   * after 10 minutes.
   */
  async function finalize(b: BatchRecord, status: NonNullable<BatchRecord['final']>['status']): Promise<void> {
    const lock = join(store.dir, 'batches', `${b.id}.lock`);
    try {
      await writeFile(lock, String(Date.now()), { flag: 'wx' });
    } catch {
      const { readFile } = await import('node:fs/promises');
      const at = Number(await readFile(lock, 'utf8').catch(() => '0'));
      if (Date.now() - at < 10 * 60_000) return;
      await writeFile(lock, String(Date.now()));
    }
    try {
      // Another gateway may have written the files since this one read the record.
      const current = await store.getBatch<BatchRecord>(b.id, undefined);
      if (!current || current.final || current.errors) return;
      const finalizingAt = now();
      const created = Math.floor(Date.now() / 1000);
      const outFile = await store.writer({ filename: `${b.id}_output.jsonl`, purpose: 'batch_output', owner: b.owner });
      const errFile = await store.writer({ filename: `${b.id}_error.jsonl`, purpose: 'batch_output', owner: b.owner });
      let completed = 0;
      let failed = 0;
      let cost = 0;
      let baseline = 0;
      const never = status === 'expired' ? 'batch_expired' : status === 'cancelled' ? 'batch_cancelled' : 'batch_failed';
      // Results are read 16 at a time and written in input order; nothing holds the whole file.
      let pending: Array<Promise<BatchResultLine> | BadLine> = [];
      const flush = async () => {
        for (const p of pending) {
          if (!(p instanceof Promise)) {
            failed += 1;
            await errFile.write(JSON.stringify(toOpenAIRefusedLine(p, b.id)));
            continue;
          }
          const line = await p;
          cost += line.costNanos;
          baseline += line.premiumBaselineCostNanos;
          const out = JSON.stringify(toOpenAIBatchOutput(line, created));
          if (line.status === 'completed') {
            completed += 1;
            await outFile.write(out);
          } else {
            failed += 1;
            await errFile.write(out);
          }
        }
        pending = [];
      };
      for await (const e of batchLines(store.pathOf(b.input_file_id), b.defaults)) {
        if (e.ok) {
          const p = lineFor(e.item.id, workflowIdFor(e.item.request.requestId), never);
          // Awaited in order by flush(); a failure is not unhandled meanwhile.
          p.catch(() => undefined);
          pending.push(p);
        } else pending.push(e.bad);
        if (pending.length >= 16) await flush();
      }
      await flush();
      const output = (await outFile.close())?.id ?? null;
      const error = (await errFile.close())?.id ?? null;
      await update(b.id, (x) => {
        x.final = {
          status,
          finalizing_at: finalizingAt,
          at: now(),
          output_file_id: output,
          error_file_id: error,
          completed,
          failed,
          costNanos: cost,
          premiumBaselineCostNanos: baseline,
        };
      });
    } finally {
      await rm(lock, { force: true });
    }
  }

  /** One line's outcome: its request's result or failure; a request never started is `never` (cancelled or expired). */
  async function lineFor(id: string, workflowId: string, never: string): Promise<BatchResultLine> {
    const handle = client.temporal.workflow.getHandle(workflowId);
    try {
      await handle.describe();
    } catch (e) {
      if (e instanceof WorkflowNotFoundError)
        return {
          id,
          workflowId,
          status: 'failed',
          model: null,
          tier: null,
          costNanos: 0,
          premiumBaselineCostNanos: 0,
          error: { type: never, message: `the batch ended (${never.replace('batch_', '')}) before this request ran` },
        };
      throw e;
    }
    try {
      return completedResultLine(id, await client.result(workflowId));
    } catch (e) {
      const line = failedLine(id, workflowId, e);
      // Stopped with its batch (read after it ended: a cancel reaches it after the batch closed). What it spent stays charged and counted.
      const cancelled = (await handle.describe()).status.name === 'CANCELLED';
      return cancelled ? { ...line, error: { type: never, message: `the batch ended (${never.replace('batch_', '')}) while this request ran` } } : line;
    }
  }
}

/**
 * A batch file's lines as the batch's workers read them (activities/batch readPage: a page at a
 * time, a line over LINE_MAX_BYTES refused without being held), in order, with repeated ids marked.
 */
async function* batchLines(path: string, defaults: BatchDefaults): AsyncGenerator<BatchEntry> {
  const source = { path, sha256: '', sizeBytes: (await stat(path)).size, lines: 0, originalName: '' };
  const ids = new IdRegistry();
  let cursor = { offset: 0, lineNo: 0 };
  for (;;) {
    const page = await readPage(source, cursor, 1_000, defaults);
    const entries: Array<{ line: number; e: BatchEntry }> = [
      ...page.items.map((item) => ({ line: item.line, e: { ok: true as const, item } })),
      ...page.invalid.map((bad) => ({ line: bad.line, e: { ok: false as const, bad } })),
    ].sort((a, b) => a.line - b.line);
    for (const { e } of entries) {
      if (e.ok) {
        const first = ids.claim(e.item.request.requestId, e.item.line);
        if (first !== undefined) {
          yield { ok: false, bad: duplicateLine(e.item.id, e.item.line, first, e.item.request.requestId), duplicate: true };
          continue;
        }
      }
      yield e;
    }
    cursor = page.next;
    if (page.eof || (page.items.length === 0 && page.invalid.length === 0)) return;
  }
}

/** OpenAI's batch object for a record in a status, with its counts and Switchyard's extension. */
function batchObject(b: BatchRecord, status: Status, counts?: { completed: number; failed: number }, st?: BatchRunStatus): Record<string, unknown> {
  const f = b.final;
  const c = counts ?? { completed: 0, failed: b.errors ? 0 : b.refused };
  return {
    id: b.id,
    object: 'batch',
    endpoint: b.endpoint,
    errors: b.errors ?? null,
    input_file_id: b.input_file_id,
    completion_window: b.completion_window,
    status,
    output_file_id: f?.output_file_id ?? null,
    error_file_id: f?.error_file_id ?? null,
    created_at: b.created_at,
    in_progress_at: b.in_progress_at ?? null,
    expires_at: b.expires_at,
    finalizing_at: f?.finalizing_at ?? null,
    completed_at: f?.status === 'completed' ? f.at : null,
    failed_at: b.failed_at ?? (f?.status === 'failed' ? f.at : null),
    expired_at: f?.status === 'expired' ? f.at : null,
    cancelling_at: b.cancelling_at ?? null,
    cancelled_at: f?.status === 'cancelled' ? f.at : null,
    request_counts: { total: b.total, completed: c.completed, failed: c.failed },
    metadata: b.metadata,
    switchyard: {
      workflow_id: batchWorkflowId(b.id),
      cost_nanos: f?.costNanos ?? st?.summary.costNanos ?? 0,
      premium_baseline_cost_nanos: f?.premiumBaselineCostNanos ?? st?.summary.premiumBaselineCostNanos ?? 0,
      ...(st ? { by_tier: st.summary.byTier } : {}),
    },
  };
}

/** OpenAI's batch metadata: at most 16 string pairs, keys up to 64 characters, values up to 512. */
function metadataOf(raw: unknown): { value: Record<string, string> | null } | { error: GatewayError } {
  if (raw === undefined || raw === null) return { value: null };
  if (typeof raw !== 'object' || Array.isArray(raw)) return { error: bad('metadata: must be an object of up to 16 string values', 'metadata') };
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > 16) return { error: bad('metadata: may hold at most 16 keys', 'metadata') };
  for (const [k, v] of entries) {
    if (k.length > 64) return { error: bad(`metadata: the key "${k.slice(0, 20)}..." is longer than 64 characters`, 'metadata') };
    if (typeof v !== 'string' || v.length > 512) return { error: bad(`metadata.${k}: must be a string of at most 512 characters`, `metadata.${k}`) };
  }
  return { value: Object.fromEntries(entries) as Record<string, string> };
}
