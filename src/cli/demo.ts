/** The demo batch: bundled realistic prompts through the router on the local stack, and the bill. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { packageRoot } from '../workers/bundle.js';
import { type BatchEntry, runBatch } from '../batch/runBatch.js';
import { progressReporter } from '../batch/progress.js';
import type { BatchSummary } from '../batch/summary.js';
import type { SwitchyardClient } from '../client/client.js';

const demoPromptSchema = z.object({
  kind: z.string(),
  category: z.string(),
  prompt: z.string(),
  context: z.string().optional(),
});
export type DemoPrompt = z.infer<typeof demoPromptSchema>;

export function loadDemoPrompts(): DemoPrompt[] {
  const raw: unknown = JSON.parse(readFileSync(join(packageRoot(), 'data', 'demo-prompts.json'), 'utf8'));
  return z.array(demoPromptSchema).parse(raw);
}

/** The bundled prompts as batch entries (the set repeats past its length), ids `demo-<runId>-NNNN`. */
export function demoEntries(requests: number, runId: string): BatchEntry[] {
  const prompts = loadDemoPrompts();
  return Array.from({ length: requests }, (_, i) => {
    const p = prompts[i % prompts.length] as DemoPrompt;
    const id = `demo-${runId}-${String(i).padStart(4, '0')}`;
    return {
      ok: true as const,
      item: { line: i + 1, id, request: { requestId: id, prompt: p.prompt, category: p.category, ...(p.context ? { context: p.context } : {}) } },
    };
  });
}

/** Runs the demo batch; returns its summary and the workflow ids of its requests. */
export async function runDemo(
  client: SwitchyardClient,
  opts: { requests: number; concurrency: number; runId: string; progress: boolean; deadline?: string },
): Promise<{ summary: BatchSummary; workflowIds: string[] }> {
  const bar = opts.progress ? progressReporter('demo', opts.requests) : undefined;
  const workflowIds: string[] = [];
  try {
    const summary = await runBatch(client, demoEntries(opts.requests, opts.runId), {
      onResult: (r) => {
        workflowIds.push(r.workflowId);
      },
      concurrency: opts.concurrency,
      total: opts.requests,
      batchId: `demo-${opts.runId}`,
      ...(opts.deadline !== undefined ? { requestDefaults: { deadline: opts.deadline } } : {}),
      ...(bar ? { onProgress: (p) => bar.update(p) } : {}),
    });
    return { summary, workflowIds };
  } finally {
    bar?.stop();
  }
}
