/**
 * The worker's side of learning: every request that ends (the workflow's sink, called once per
 * request, never in replay) is folded into outcome counts (category x tier x band) and spend
 * (scope x category x model x feature, and the category's total); every `everyMs` the sums go to
 * the routing entity in one signal. A report that cannot be delivered is kept and merged into the
 * next one; a worker killed between reports loses at most that interval's counts (statistics for
 * the tuner and the detector, never money: the budget and the ledger have their own path).
 */
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { addOutcome, type OutcomeCounts, outcomeKey } from '../tuner.js';
import { spendKeyOf } from '../anomalies.js';
import type { ControlSettings, OutcomeReport } from '../routingControl.js';
import type { LearningOutcome } from '../../workflows/sinks.js';
import { reportSignal } from '../../workflows/routing/contract.js';
import { signalRouting } from './routingHandle.js';
import { jsonBytes } from '../../util/bytes.js';

/** Spend entries kept between reports at most (a long outage folds the rest into the last one). */
const MAX_SPEND_ENTRIES = 10_000;
/** One report signal's JSON at most: well under the server's 2 MiB payload limit (a longer report goes as several). */
export const REPORT_MAX_BYTES = 256 * 1024;

/**
 * A report cut into signals of at most `maxBytes` each (the counts in the first, the spend entries
 * in order after them). Spend keys hold scope, category, model and feature: at their longest 10,000
 * entries take several megabytes, which one signal could not carry (and would be refused again on
 * every retry).
 */
export function splitReport(report: OutcomeReport, maxBytes = REPORT_MAX_BYTES): OutcomeReport[] {
  const parts: OutcomeReport[] = [];
  let counts: OutcomeCounts = report.counts;
  let spend: OutcomeReport['spend'][number][] = [];
  let size = jsonBytes({ counts, spend: [] });
  for (const entry of report.spend) {
    const add = jsonBytes(entry) + 1;
    if (spend.length > 0 && size + add > maxBytes) {
      parts.push({ counts, spend });
      counts = {};
      spend = [];
      size = jsonBytes({ counts, spend: [] });
    }
    spend.push(entry);
    size += add;
  }
  parts.push({ counts, spend });
  return parts;
}

export class OutcomeReporter {
  private counts: OutcomeCounts = {};
  private spend: Array<{ key: string; at: number; nanos: number }> = [];
  /** Each key's latest entry in `spend` (so a request's fold is O(1), not a scan of the window). */
  private latest = new Map<string, { key: string; at: number; nanos: number }>();
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;

  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    private readonly settings: () => ControlSettings,
    private readonly everyMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.everyMs);
    this.timer.unref();
  }

  record(o: LearningOutcome, at = Date.now()): void {
    if (o.firstTier !== undefined && o.byThresholds !== false && o.judged !== false)
      this.counts = addOutcome(this.counts, outcomeKey(o.category, o.firstTier, o.band, o.explore), 1, o.good ? 1 : 0);
    for (const s of o.spend) {
      if (!(s.costNanos > 0)) continue;
      this.add(spendKeyOf({ scope: o.scope, category: o.category, model: s.model, feature: o.feature }), at, s.costNanos);
      this.add(spendKeyOf({ scope: o.scope, category: o.category, model: '*', feature: '*' }), at, s.costNanos);
    }
  }

  private add(key: string, at: number, nanos: number): void {
    const last = this.latest.get(key);
    // Same key within a second: one entry (a report stays small under load).
    if (last && at - last.at < 1_000) last.nanos += nanos;
    else if (this.spend.length < MAX_SPEND_ENTRIES) {
      const entry = { key, at, nanos };
      this.spend.push(entry);
      this.latest.set(key, entry);
    } else if (last) last.nanos += nanos;
  }

  /** Sends what has accumulated (nothing when there is nothing). */
  async flush(): Promise<void> {
    if (this.sending) return this.sending;
    if (Object.keys(this.counts).length === 0 && this.spend.length === 0) return;
    const parts = splitReport({ counts: this.counts, spend: this.spend });
    this.counts = {};
    this.spend = [];
    this.latest = new Map();
    this.sending = (async () => {
      for (let i = 0; i < parts.length; i++) {
        try {
          await signalRouting(this.temporal, this.taskQueue, this.settings(), reportSignal, [parts[i]!]);
        } catch (e) {
          this.log.warn({ err: (e as Error).message, parts: parts.length - i }, 'outcome report not delivered; kept for the next one');
          const rest = parts.slice(i);
          for (const part of rest) for (const [k, c] of Object.entries(part.counts)) this.counts = addOutcome(this.counts, k, c.n, c.good);
          this.spend = [...rest.flatMap((p) => p.spend), ...this.spend].slice(-MAX_SPEND_ENTRIES);
          return;
        }
      }
    })().finally(() => {
      this.sending = undefined;
    });
    return this.sending;
  }

  /** Stops the timer and sends the last report. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // A send in flight may have left newer counts behind it: flush until nothing is left (or a send fails).
    for (let i = 0; i < 3 && (Object.keys(this.counts).length > 0 || this.spend.length > 0 || this.sending); i++) await this.flush();
  }
}
