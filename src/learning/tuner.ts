/**
 * The routing tuner, pure: from outcomes per category x tier x complexity band, move each
 * category's complexity thresholds (where the standard / premium tier starts) within bounds, so
 * that the cheapest tier a category is sent to holds the quality target.
 *
 * - A tier whose requests in a category fail the target (answers escalated, judged low, failed,
 *   or explicit feedback below 0.5) with enough samples: that category's threshold for the tier
 *   above moves down a step (more of its traffic goes up a tier), never past the lower bound.
 * - A category whose thresholds were moved keeps sending an exploration share of its requests by
 *   the base thresholds; when those hold the target again (the cheap model was fixed), the
 *   thresholds move back up a step, never past the base. Cost falls back with them.
 * Every change carries its evidence (the counts it was decided on).
 */
import type { Tier } from '../catalog/schema.js';

export interface Thresholds {
  readonly standard: number;
  readonly premium: number;
}

export interface TunerSettings {
  /** Share of outcomes that must be good (0..1). */
  readonly qualityTarget: number;
  /** Outcomes of a category x tier before the tuner acts on it. */
  readonly minSamples: number;
  /** How far one change moves a threshold. */
  readonly step: number;
  /** The lowest a threshold may go (0: every request of the category at that tier or above). */
  readonly minThreshold: number;
  /** Share of a tuned category's requests routed by the base thresholds, to keep measuring the cheaper tier. */
  readonly explore: number;
}

export const DEFAULT_TUNER: TunerSettings = { qualityTarget: 0.9, minSamples: 20, step: 0.35, minThreshold: 0, explore: 0.2 };

export type Band = 'low' | 'mid' | 'high';

/** The band of a complexity under the base thresholds (the one outcomes are grouped by). */
export function bandOf(complexity: number, base: Thresholds): Band {
  return complexity >= base.premium ? 'high' : complexity >= base.standard ? 'mid' : 'low';
}

export interface OutcomeCount {
  readonly n: number;
  readonly good: number;
}

/** Outcome counts keyed by `category|tier|band|explore` (explore: 1 if routed by the base thresholds for exploration). */
export type OutcomeCounts = Record<string, OutcomeCount>;

export function outcomeKey(category: string, tier: Tier, band: Band, explore: boolean): string {
  return `${category}|${tier}|${band}|${explore ? 1 : 0}`;
}

export function addOutcome(counts: OutcomeCounts, key: string, n: number, good: number): OutcomeCounts {
  const c = counts[key] ?? { n: 0, good: 0 };
  return { ...counts, [key]: { n: c.n + n, good: c.good + good } };
}

export interface ThresholdChange {
  readonly category: string;
  readonly from: Thresholds;
  readonly to: Thresholds;
  readonly why: string;
  /** What it was decided on: per tier, outcomes and good outcomes. */
  readonly evidence: Record<string, OutcomeCount>;
}

/** The tier above and the threshold that sends traffic to it. */
const RAISE: Partial<Record<Tier, keyof Thresholds>> = { economy: 'standard', standard: 'premium' };

function sum(counts: OutcomeCounts, pred: (category: string, tier: string, band: string, explore: string) => boolean): OutcomeCount {
  let n = 0;
  let good = 0;
  for (const [k, c] of Object.entries(counts)) {
    const [cat, tier, band, explore] = k.split('|') as [string, string, string, string];
    if (pred(cat, tier, band, explore)) {
      n += c.n;
      good += c.good;
    }
  }
  return { n, good };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * The changes the outcomes call for. `current` holds each tuned category's thresholds (a category
 * absent from it uses `base`).
 */
export function proposeChanges(
  counts: OutcomeCounts,
  current: Readonly<Record<string, Thresholds>>,
  base: Thresholds,
  settings: TunerSettings,
): ThresholdChange[] {
  const categories = [...new Set(Object.keys(counts).map((k) => k.split('|')[0]!))].sort();
  const changes: ThresholdChange[] = [];
  for (const category of categories) {
    const from = current[category] ?? base;
    let to: Thresholds = from;
    const evidence: Record<string, OutcomeCount> = {};
    const reasons: string[] = [];
    // Down: a tier failing the target on this category's normally routed traffic.
    for (const tier of ['economy', 'standard'] as const) {
      const c = sum(counts, (cat, t, _b, explore) => cat === category && t === tier && explore === '0');
      if (c.n < settings.minSamples) continue;
      evidence[tier] = c;
      if (c.good / c.n < settings.qualityTarget) {
        const key = RAISE[tier]!;
        const moved = round2(Math.max(settings.minThreshold, to[key] - settings.step));
        if (moved < to[key]) {
          to = key === 'standard' ? { standard: moved, premium: Math.max(moved, to.premium) } : { standard: Math.min(to.standard, moved), premium: moved };
          reasons.push(`${tier} held ${pct(c)} good (< ${Math.round(settings.qualityTarget * 100)}% target): more ${category} traffic to ${key}`);
        }
      }
    }
    // Up: a moved category whose exploration traffic at the cheaper tier holds the target again.
    if (to === from && (from.standard < base.standard || from.premium < base.premium)) {
      for (const tier of ['economy', 'standard'] as const) {
        const key = RAISE[tier]!;
        if (from[key] >= base[key]) continue;
        const c = sum(counts, (cat, t, _b, explore) => cat === category && t === tier && explore === '1');
        if (c.n < settings.minSamples) continue;
        evidence[`${tier} (exploration)`] = c;
        if (c.good / c.n >= settings.qualityTarget) {
          const moved = round2(Math.min(base[key], to[key] + settings.step));
          to = key === 'standard' ? { standard: moved, premium: Math.max(moved, to.premium) } : { standard: Math.min(to.standard, moved), premium: moved };
          reasons.push(`${tier} holds ${pct(c)} good again on exploration traffic: ${category} back toward the base thresholds`);
        }
      }
    }
    if (to.standard !== from.standard || to.premium !== from.premium) changes.push({ category, from, to, why: reasons.join('; '), evidence });
  }
  return changes;
}

function pct(c: OutcomeCount): string {
  return `${c.good}/${c.n} (${Math.round((100 * c.good) / c.n)}%)`;
}

/** Whether a request of a tuned category goes by the base thresholds, to keep measuring (sticky per request id). */
export function explores(hash: number, settings: Pick<TunerSettings, 'explore'>): boolean {
  return hash < settings.explore;
}
