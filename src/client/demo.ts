/** The demo batch: bundled realistic prompts through the router on the local stack, and the bill. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { z } from 'zod';
import { formatUsd } from '../catalog/pricing.js';
import { packageRoot } from '../workers/bundle.js';
import type { RequestResult } from '../workflows/requestTypes.js';
import { RequestFailedError, type SwitchyardClient } from './client.js';

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

export interface DemoSummary {
  requests: number;
  completed: number;
  failed: number;
  costNanos: number;
  premiumBaselineCostNanos: number;
  byModel: Record<string, { tier: string; requests: number; costNanos: number }>;
  byTier: Record<string, { requests: number; costNanos: number }>;
  failures: Record<string, number>;
  wallMs: number;
}

export async function runDemo(
  client: SwitchyardClient,
  opts: { requests: number; concurrency: number; runId: string; progress: boolean },
): Promise<{ summary: DemoSummary; results: RequestResult[] }> {
  const prompts = loadDemoPrompts();
  const jobs = Array.from({ length: opts.requests }, (_, i) => ({ i, p: prompts[i % prompts.length] as DemoPrompt }));
  const started = Date.now();
  const results: RequestResult[] = [];
  const summary: DemoSummary = { requests: jobs.length, completed: 0, failed: 0, costNanos: 0, premiumBaselineCostNanos: 0, byModel: {}, byTier: {}, failures: {}, wallMs: 0 };
  const bar = opts.progress
    ? new cliProgress.SingleBar({ format: 'demo [{bar}] {value}/{total} requests | {failed} failed | spend {spend} | ETA {eta}s', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(jobs.length, 0, { failed: 0, spend: formatUsd(0) });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++];
      if (!job) break;
      try {
        const r = await client.ask({ requestId: `demo-${opts.runId}-${String(job.i).padStart(4, '0')}`, prompt: job.p.prompt, context: job.p.context, category: job.p.category });
        results.push(r);
        summary.completed += 1;
        summary.costNanos += r.costNanos;
        summary.premiumBaselineCostNanos += r.premiumBaselineCostNanos;
        const m = (summary.byModel[r.model] ??= { tier: r.tier, requests: 0, costNanos: 0 });
        m.requests += 1;
        m.costNanos += r.costNanos;
        const t = (summary.byTier[r.tier] ??= { requests: 0, costNanos: 0 });
        t.requests += 1;
        t.costNanos += r.costNanos;
      } catch (e) {
        summary.failed += 1;
        const reason = e instanceof RequestFailedError ? (e.failureType ?? 'failed') : (e as Error).name;
        summary.failures[reason] = (summary.failures[reason] ?? 0) + 1;
        if (e instanceof RequestFailedError) summary.costNanos += e.details?.costNanos ?? 0;
      }
      bar?.increment(1, { failed: summary.failed, spend: formatUsd(summary.costNanos) });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, () => worker()));
  bar?.stop();
  summary.wallMs = Date.now() - started;
  return { summary, results };
}

export function formatDemoTable(s: DemoSummary): string {
  const rows: string[][] = [['tier', 'model', 'requests', 'cost']];
  const order = ['economy', 'standard', 'premium'];
  const models = Object.entries(s.byModel).sort((a, b) => order.indexOf(a[1].tier) - order.indexOf(b[1].tier) || a[0].localeCompare(b[0]));
  for (const [name, m] of models) rows.push([m.tier, name, String(m.requests), formatUsd(m.costNanos)]);
  rows.push(['', '', '', '']);
  for (const t of order) {
    const v = s.byTier[t];
    if (v) rows.push([t, '(all)', String(v.requests), formatUsd(v.costNanos)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  const saved = s.premiumBaselineCostNanos > 0 ? (1 - s.costNanos / s.premiumBaselineCostNanos) * 100 : 0;
  return [
    ...rows.map(line),
    '',
    `requests ${s.requests}, completed ${s.completed}, failed ${s.failed}${Object.keys(s.failures).length ? ` (${Object.entries(s.failures).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}`,
    `total cost            ${formatUsd(s.costNanos)}`,
    `on the premium model  ${formatUsd(s.premiumBaselineCostNanos)}  (routing saved ${saved.toFixed(1)}%)`,
    `wall time             ${(s.wallMs / 1000).toFixed(1)} s (${(s.requests / (s.wallMs / 1000)).toFixed(1)} requests/s)`,
  ].join('\n');
}
