/**
 * Spend anomaly detection, pure: spend per scope x category x model x feature in fixed buckets
 * (one minute by default), against a baseline learned as an exponentially weighted mean and
 * variance of past buckets. A bucket above mean + k x sd (and above an absolute floor, so that
 * cents do not page anyone) once the baseline has warmed up is an anomaly. Quiet buckets count as
 * zero spend within `warmupBuckets` of the last spend (a longer silence leaves the baseline as it
 * was). Anomalous buckets feed the baseline at a tenth of the usual weight, so a burst
 * does not teach itself to be normal within minutes.
 */

export interface AnomalySettings {
  readonly bucketMs: number;
  /** EWMA weight of a new bucket (0..1). */
  readonly alpha: number;
  /** Standard deviations above the mean that count as anomalous. */
  readonly k: number;
  /** Buckets seen before any alert. */
  readonly warmupBuckets: number;
  /** A bucket below this spend is never an anomaly (nanodollars). */
  readonly minSpendNanos: number;
  /** What an anomaly does besides alerting: nothing, downgrade the category to economy, or pause it. */
  readonly action: 'none' | 'downgrade' | 'pause';
}

export const DEFAULT_ANOMALY: AnomalySettings = { bucketMs: 60_000, alpha: 0.1, k: 4, warmupBuckets: 10, minSpendNanos: 10_000_000, action: 'none' };

export interface SpendKey {
  readonly scope: string;
  readonly category: string;
  readonly model: string;
  readonly feature: string;
}

export const spendKeyOf = (k: SpendKey): string => `${k.scope}|${k.category}|${k.model}|${k.feature}`;
export function parseSpendKey(key: string): SpendKey {
  const [scope = '', category = '', model = '', feature = ''] = key.split('|');
  return { scope, category, model, feature };
}

export interface Baseline {
  readonly mean: number;
  readonly variance: number;
  readonly buckets: number;
  /** Start of the bucket being filled, and what it holds so far. */
  readonly open: number;
  readonly openNanos: number;
  /** When this key last spent (for dropping keys idle for long). */
  readonly lastSpendAt?: number;
}

export interface Anomaly {
  readonly key: string;
  readonly bucketStart: number;
  readonly spendNanos: number;
  readonly baselineNanos: number;
  readonly sdNanos: number;
}

const bucketStart = (t: number, s: AnomalySettings): number => Math.floor(t / s.bucketMs) * s.bucketMs;

function fold(b: Baseline, x: number, s: AnomalySettings, anomalous: boolean): Baseline {
  const a = anomalous ? s.alpha / 10 : s.alpha;
  if (b.buckets === 0) return { ...b, mean: x, variance: 0, buckets: 1 };
  const diff = x - b.mean;
  const incr = a * diff;
  return { ...b, mean: b.mean + incr, variance: (1 - a) * (b.variance + diff * incr), buckets: b.buckets + 1 };
}

function judge(b: Baseline, key: string, start: number, x: number, s: AnomalySettings): Anomaly | undefined {
  if (b.buckets < s.warmupBuckets || x < s.minSpendNanos) return undefined;
  const sd = Math.sqrt(b.variance);
  // A flat baseline (sd near 0) would alert on a single extra cent: an anomaly is also at least half again the mean.
  if (x > b.mean + s.k * sd && x > b.mean * 1.5) return { key, bucketStart: start, spendNanos: x, baselineNanos: Math.round(b.mean), sdNanos: Math.round(sd) };
  return undefined;
}

/** Closes every bucket before `now`'s (judging and folding each), returning the anomalies found. */
export function advance(b: Baseline, key: string, now: number, s: AnomalySettings): { baseline: Baseline; anomalies: Anomaly[] } {
  const current = bucketStart(now, s);
  if (current <= b.open) return { baseline: b, anomalies: [] };
  const anomalies: Anomaly[] = [];
  // Quiet buckets count as zero spend only within `warmupBuckets` of the last spend: past that the
  // key is idle (a night, a paused category) and its baseline stays what its traffic was, so the
  // same traffic coming back is not an anomaly against a mean decayed to zero.
  const lastSpend = bucketStart(b.lastSpendAt ?? b.open, s);
  const active = (bucket: number): boolean => bucket - lastSpend <= s.warmupBuckets * s.bucketMs;
  let next = b;
  if (b.openNanos > 0 || active(b.open)) {
    const found = judge(b, key, b.open, b.openNanos, s);
    if (found) anomalies.push(found);
    next = fold(b, b.openNanos, s, found !== undefined);
  }
  for (let t = b.open + s.bucketMs; t < current && active(t); t += s.bucketMs) next = fold(next, 0, s, false);
  return { baseline: { ...next, open: current, openNanos: 0 }, anomalies };
}

/** Adds spend at time `at` (closing earlier buckets first). */
export function addSpend(b: Baseline | undefined, key: string, at: number, nanos: number, s: AnomalySettings): { baseline: Baseline; anomalies: Anomaly[] } {
  if (!b) return { baseline: { mean: 0, variance: 0, buckets: 0, open: bucketStart(at, s), openNanos: nanos, lastSpendAt: at }, anomalies: [] };
  if (at < b.open) return { baseline: { ...b, openNanos: b.openNanos + nanos, lastSpendAt: Math.max(at, b.lastSpendAt ?? at) }, anomalies: [] }; // late report: into the open bucket
  const r = advance(b, key, at, s);
  return { baseline: { ...r.baseline, openNanos: r.baseline.openNanos + nanos, lastSpendAt: at }, anomalies: r.anomalies };
}
