/** Helpers shared by the CLI's commands: option parsers, the client from the environment, traces. */
import { parseDeadline } from '../deferred/deadline.js';
import { controlSettingsFrom } from '../learning/worker/routingHandle.js';
import { InvalidArgumentError } from 'commander';
import { formatUsd } from '../catalog/pricing.js';
import { loadConfig, type SwitchyardConfig } from '../config/config.js';
import { settingsFromConfig } from '../budget/settings.js';
import type { RequestResult } from '../workflows/request/contract.js';
import { SwitchyardClient } from '../client/client.js';
import { freePort } from '../temporal/devServer.js';

export const DEFAULT_ADDRESS = '127.0.0.1:7233';

export function int(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number >= ${min}`);
    return n;
  };
}
export function num(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}]`);
    return n;
  };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: milliseconds, or a number with a unit: 500ms, 30s, 10m, 2h, 1d. */
export function duration(name: string) {
  return (v: string): number => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim());
    const ms = m ? Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1)) : NaN;
    if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`${name} must be a duration such as 30s, 10m or 2h (or milliseconds), got "${v}"`);
    return ms;
  };
}

/** Where the SDK's metrics go for a worker process (a free local port), when metrics are on. */
export async function sdkMetricsAddress(cfg: SwitchyardConfig): Promise<string | undefined> {
  return cfg.metrics.enabled ? `127.0.0.1:${await freePort()}` : undefined;
}

export function config(overrides: Partial<SwitchyardConfig> = {}): SwitchyardConfig {
  return loadConfig(process.env, overrides);
}

/** Runs until SIGINT or SIGTERM, then runs `stop` once. */
export function untilSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`\n${sig}: stopping...\n`);
      stop().then(resolve, (e: unknown) => {
        process.stderr.write(`error while stopping: ${(e as Error).message}\n`);
        resolve();
      });
    };
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  });
}

/** Connects a client from the environment's configuration, runs `fn`, and always closes it. */
export async function withClient<T>(fn: (client: SwitchyardClient, cfg: SwitchyardConfig) => Promise<T>): Promise<T> {
  const cfg = config();
  const client = await SwitchyardClient.connect({
    address: cfg.temporalAddress ?? DEFAULT_ADDRESS,
    namespace: cfg.namespace,
    taskQueue: cfg.taskQueue,
    budgetDefaults: settingsFromConfig(cfg.budget),
    budgetShards: cfg.budget.shards,
    access: cfg.access,
    controlSettings: controlSettingsFrom(cfg),
    categoryDeadlines: cfg.deferred.categoryDeadlines,
  });
  try {
    return await fn(client, cfg);
  } finally {
    await client.close();
  }
}

export function printTrace(r: RequestResult): void {
  const out = process.stdout;
  const calls = (r.toolCalls ?? []).map((c) => `-> calls ${c.name}(${c.arguments}) [${c.id}]`);
  out.write(`${[r.text, ...calls].filter((x) => x !== '').join('\n')}\n\n`);
  out.write(`-- ${r.workflowId}\n`);
  out.write(
    `classified: complexity ${r.classification.complexity.toFixed(2)} -> ${r.classification.preferredTier}; ${r.classification.inputTokens} input tokens; capabilities [${r.classification.capabilities.join(', ')}]; signals ${r.classification.signals.join(' ') || '-'}\n`,
  );
  if (r.skipped?.length) out.write(`skipped: ${r.skipped.map((k) => `${k.model} (${k.why})`).join('; ')}\n`);
  out.write('candidates:\n');
  r.candidates.forEach((c, i) => out.write(`  ${i + 1}. ${c.model} (${c.tier}, ${c.provider}) est ${formatUsd(c.estimatedCostNanos)}: ${c.reason}\n`));
  out.write('attempts:\n');
  for (const e of r.escalations) out.write(`escalated ${e.from} -> ${e.to}: ${e.reason}\n`);
  for (const a of r.attempts) {
    out.write(
      `  ${a.attemptId} ${a.model}: ${a.outcome}${a.qualityFailures ? ` (quality: ${a.qualityFailures.join('; ')})` : ''}${a.status ? ` ${a.status}` : ''}${a.waitBeforeMs ? ` after ${a.waitBeforeMs} ms wait` : ''}, ${a.durationMs} ms, ${formatUsd(a.costNanos)}${a.decision ? ` -> ${a.decision}` : ''}\n`,
    );
  }
  out.write(
    `answered by ${r.model} (${r.tier}); usage in ${r.usage.inputTokens} / cached ${r.usage.cachedInputTokens} / out ${r.usage.outputTokens}; cost ${formatUsd(r.costNanos)} (premium baseline ${formatUsd(r.premiumBaselineCostNanos)})\n`,
  );
}

/** A commander parser for a deadline (a duration such as 6h, or an ISO time), naming the flag when it is neither. */
export function deadlineArg(flag: string): (v: string) => string {
  return (v: string) => {
    const p = parseDeadline(v);
    if ('error' in p) throw new InvalidArgumentError(`${flag} ${p.error}`);
    return v;
  };
}
