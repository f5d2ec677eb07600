/**
 * Batch progress for people: a live bar on a terminal (done, failed, in flight, spend, ETA), and
 * plain lines at most every few seconds otherwise (logs, CI).
 */
import cliProgress from 'cli-progress';
import type { BatchProgress } from './runBatch.js';
import { formatUsd } from '../catalog/pricing.js';

export interface ProgressReporter {
  update(p: BatchProgress): void;
  stop(): void;
}

/** "3 wait on budget (until 2026-12-01 00:00:01Z), 2 on rate limit (...)", or '' when none wait. */
export function describeWaiting(w: BatchProgress['waiting']): string {
  if (!w) return '';
  const names: Record<string, string> = { budget: 'budget', rate_limit: 'rate limit', backoff: 'retry backoff' };
  const parts = Object.entries(w).map(([k, v]) => `${v.count} on ${names[k] ?? k} (until ${v.until.replace('T', ' ').replace(/\.\d+Z$/, 'Z')})`);
  return parts.length > 0 ? `waiting: ${parts.join(', ')}` : '';
}

export function progressReporter(label: string, total: number | undefined, stream: NodeJS.WriteStream = process.stderr, intervalMs = 5_000): ProgressReporter {
  const started = Date.now();
  if (stream.isTTY && total !== undefined) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} | {failed} failed | {inflight} in flight | spend {spend} | ETA {eta_formatted} {waiting}`,
        hideCursor: true,
        clearOnComplete: true,
        stream,
        etaBuffer: 200,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { failed: 0, inflight: 0, spend: formatUsd(0, 4), waiting: '' });
    return {
      update: (p) =>
        bar.update(p.done + p.invalid, {
          failed: p.failed,
          inflight: p.inFlight,
          spend: formatUsd(p.costNanos, 4),
          waiting: describeWaiting(p.waiting) ? `| ${describeWaiting(p.waiting)}` : '',
        }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  let latest: BatchProgress | undefined;
  const print = (p: BatchProgress): void => {
    const elapsed = (Date.now() - started) / 1000;
    const rate = elapsed > 0 ? p.done / elapsed : 0;
    const eta = total !== undefined && rate > 0 ? `, ETA ${Math.ceil((total - p.done - p.invalid) / rate)} s` : '';
    stream.write(
      `${label}: ${p.done + p.invalid}${total !== undefined ? `/${total}` : ''} lines (${p.failed} failed${p.invalid ? `, ${p.invalid} malformed` : ''}), ${p.inFlight} in flight, spend ${formatUsd(p.costNanos, 4)}, ${rate.toFixed(1)} req/s${eta}${p.waiting ? `; ${describeWaiting(p.waiting)}` : ''}\n`,
    );
  };
  return {
    update(p) {
      latest = p;
      const now = Date.now();
      if (now - last >= intervalMs) {
        last = now;
        print(p);
      }
    },
    stop() {
      if (latest) print(latest);
    },
  };
}
