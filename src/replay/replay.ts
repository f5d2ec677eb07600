/**
 * Replays recorded workflow histories against the current workflow code: from history files
 * (proto JSON, as `temporal workflow show --output json` writes them) or fetched from the server
 * by workflow id or visibility query. A determinism error means the code changed in a way that
 * breaks runs already in flight: guard the change with `patched()` (docs/operations.md).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Client } from '@temporalio/client';
import type { DataConverter, HistoryAndWorkflowId } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';

export interface ReplayOutcome {
  readonly workflowId: string;
  readonly runId: string;
  readonly ok: boolean;
  /** `nondeterminism`: the code no longer produces the commands the history recorded. */
  readonly kind?: 'nondeterminism' | 'error';
  readonly error?: string;
}

/** Which workflow code to replay against: a prebuilt bundle or the workflows' source module. */
export type WorkflowCode = { readonly bundlePath: string } | { readonly workflowsPath: string };

export function historiesFromFiles(paths: readonly string[]): HistoryAndWorkflowId[] {
  return paths.map((p) => {
    let history: unknown;
    try {
      history = JSON.parse(readFileSync(p, 'utf8'));
    } catch (e) {
      throw new Error(`${p}: not a JSON history file (${(e as Error).message}); write one with \`temporal workflow show --output json --workflow-id ID\``);
    }
    return { workflowId: basename(p, '.json'), history };
  });
}

/** Histories from the server: one workflow (its latest run, or a given run) or every run a query matches. */
export function historiesFromServer(
  client: Client,
  select: { workflowId: string; runId?: string } | { query: string; limit?: number },
): AsyncIterable<HistoryAndWorkflowId> {
  if ('workflowId' in select) {
    return (async function* () {
      const handle = client.workflow.getHandle(select.workflowId, select.runId);
      yield { workflowId: select.workflowId, history: await handle.fetchHistory() };
    })();
  }
  return client.workflow.list({ query: select.query, ...(select.limit ? { pageSize: Math.min(select.limit, 1000) } : {}) }).intoHistories({ concurrency: 5 });
}

async function* limited<T>(items: AsyncIterable<T> | Iterable<T>, limit: number | undefined): AsyncGenerator<T> {
  let n = 0;
  for await (const item of items) {
    if (limit !== undefined && n >= limit) return;
    n += 1;
    yield item;
  }
}

/** `dataConverter`: the one the runs were written with (the payload codec, when encryption is on). */
export async function* replayHistories(
  histories: AsyncIterable<HistoryAndWorkflowId> | Iterable<HistoryAndWorkflowId>,
  code: WorkflowCode,
  opts: { limit?: number; dataConverter?: DataConverter } = {},
): AsyncGenerator<ReplayOutcome> {
  const options = {
    ...('bundlePath' in code ? { workflowBundle: { codePath: code.bundlePath } } : { workflowsPath: code.workflowsPath }),
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
  };
  for await (const r of Worker.runReplayHistories(options, limited(histories, opts.limit))) {
    if (!r.error) {
      yield { workflowId: r.workflowId, runId: r.runId, ok: true };
      continue;
    }
    const nondeterminism = r.error instanceof DeterminismViolationError || /nondetermin/i.test(r.error.message);
    yield { workflowId: r.workflowId, runId: r.runId, ok: false, kind: nondeterminism ? 'nondeterminism' : 'error', error: r.error.message };
  }
}
