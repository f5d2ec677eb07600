/**
 * Routing-quality metrics of the RouteLLM paper (Ong et al. 2024): given each prompt's recorded
 * weak- and strong-model quality and a router's difficulty score, the quality reached as more
 * prompts go to the strong model. APGR is the area under that curve between the weak and strong
 * lines (0.5 = a random router); CPT(p) is the share of strong calls needed to recover p of the
 * gap. Thresholds are the score's deciles, ties share a bin: the same procedure as RouteLLM's
 * evaluate.py and `shared/tools/route-eval.py`, so the numbers compare. Pure.
 */

export interface LabelledOutcome {
  readonly id: string;
  /** The cheap model's quality on this prompt (0/1 correctness or a judge score in [0,1]). */
  readonly weak: number;
  /** The premium model's quality on this prompt. */
  readonly strong: number;
}

export interface RouteEvalResult {
  readonly n: number;
  readonly weak: number;
  readonly strong: number;
  /** Average performance gap recovered; null when the two models are equally good (no gap). */
  readonly APGR: number | null;
  /** Percent of strong calls needed to recover 50% / 80% of the gap. */
  readonly CPT50: number | null;
  readonly CPT80: number | null;
  /** (percent routed to strong, mean quality) points, ascending. */
  readonly curve: ReadonlyArray<readonly [number, number]>;
}

function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** numpy.interp: `xs` ascending, clamped at both ends. */
function interp(x: number, xs: readonly number[], ys: readonly number[]): number {
  if (x <= xs[0]!) return ys[0]!;
  if (x >= xs[xs.length - 1]!) return ys[ys.length - 1]!;
  for (let i = 0; i < xs.length - 1; i += 1) {
    const x0 = xs[i]!;
    const x1 = xs[i + 1]!;
    if (x0 <= x && x <= x1) return x1 === x0 ? ys[i]! : ys[i]! + ((ys[i + 1]! - ys[i]!) * (x - x0)) / (x1 - x0);
  }
  return ys[ys.length - 1]!;
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Scores a router. `scores` maps every outcome's id to its difficulty score (higher = needs the
 * strong model more); a missing id is an error naming it.
 */
export function routeEval(data: readonly LabelledOutcome[], scores: ReadonlyMap<string, number>): RouteEvalResult {
  if (data.length === 0) throw new Error('route-eval: the data has no lines; give lines {"id","prompt","weak","strong"}');
  const missing = data.filter((d) => !scores.has(d.id)).map((d) => d.id);
  if (missing.length > 0) throw new Error(`route-eval: ${missing.length} ids have no score, e.g. ${missing.slice(0, 3).join(', ')}`);
  const n = data.length;
  const score = data.map((d) => scores.get(d.id)!);
  const weakQ = data.reduce((s, d) => s + d.weak, 0) / n;
  const strongQ = data.reduce((s, d) => s + d.strong, 0) / n;
  const sorted = [...score].sort((a, b) => a - b);
  const edges = [...new Set(Array.from({ length: 11 }, (_, i) => quantile(sorted, i / 10)))].sort((a, b) => a - b);
  const points: Array<[number, number]> = edges.map((t, i) => {
    const last = i === edges.length - 1;
    let picked = 0;
    let quality = 0;
    for (let j = 0; j < n; j += 1) {
      const strong = last ? score[j]! > t : score[j]! >= t;
      if (strong) picked += 1;
      quality += strong ? data[j]!.strong : data[j]!.weak;
    }
    return [(100 * picked) / n, quality / n];
  });
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  let auc = 0;
  for (let i = 0; i < xs.length - 1; i += 1) auc += ((xs[i + 1]! - xs[i]!) / 100) * ((ys[i]! + ys[i + 1]!) / 2);
  const span = (xs[xs.length - 1]! - xs[0]!) / 100;
  const gap = strongQ - weakQ;
  const apgr = span > 0 && gap !== 0 ? (auc - weakQ * span) / (gap * span) : null;
  const order = ys.map((_, i) => i).sort((a, b) => ys[a]! - ys[b]! || xs[a]! - xs[b]!);
  const ysSorted = order.map((i) => ys[i]!);
  const xsByY = order.map((i) => xs[i]!);
  const cpt = (p: number): number | null => (gap === 0 ? null : round(interp(weakQ + p * gap, ysSorted, xsByY), 2));
  return {
    n,
    weak: round(weakQ, 4),
    strong: round(strongQ, 4),
    APGR: apgr === null ? null : round(apgr, 4),
    CPT50: cpt(0.5),
    CPT80: cpt(0.8),
    curve: points.map(([x, y]) => [round(x, 2), round(y, 4)] as const),
  };
}
