/**
 * A/B experiments on routing, pure: arms and their parsing, sticky assignment of a unit (a user,
 * a tenant; the request when it names none) to an arm, per-arm running statistics, and the
 * verdict: is a difference significant, and which arm wins on cost at equal quality.
 *
 * Fixes of the seed's ModelABTester: assignment hashes the unit (deterministic, sticky) instead of
 * `random.choices`; bad specs are errors naming the field instead of asserts; no statistic divides
 * by zero (an arm without samples has no mean); means come with 95% confidence intervals and
 * differences with a two-sided Welch z-test.
 */
import type { Capability, Tier } from '../catalog/tiers.js';
import { TIERS } from '../catalog/tiers.js';
import { isReservedName, RESERVED_MESSAGE } from '../util/names.js';

export interface ArmSpec {
  readonly name: string;
  readonly weight: number;
  /** What the arm does: pin a model, start at a tier, or route with other complexity thresholds. */
  readonly model?: string;
  readonly minTier?: Tier;
  readonly thresholds?: { readonly standard: number; readonly premium: number };
}

export interface TrafficFilter {
  readonly category?: string | undefined;
  readonly feature?: string | undefined;
  readonly capability?: Capability | undefined;
}

export interface ExperimentSpec {
  readonly name: string;
  readonly arms: readonly ArmSpec[];
  readonly filter: TrafficFilter;
  /** Requests per arm before any verdict. */
  readonly minSamples: number;
  /** Stop by itself once every arm has this many requests, winner or not (absent: only on a significant result). */
  readonly maxSamples?: number | undefined;
  /** Confidence for significance: 0.95 by default. */
  readonly confidence: number;
}

export const EXPERIMENT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export class ExperimentSpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ExperimentSpecError';
  }
}

/**
 * Arms from the CLI's `--arms` ("gpt-4o-mini=0.5,claude-3-5-haiku=0.5"): each `ARM=WEIGHT`, where
 * ARM is a catalog model, `tier:economy|standard|premium`, or `thresholds:S/P` (the complexity at
 * which the standard / premium tier is preferred). Weights are normalised to sum to 1.
 */
export function parseArms(text: string, isModel: (name: string) => boolean): ArmSpec[] {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length < 2)
    throw new ExperimentSpecError('--arms', `an experiment needs at least two arms, e.g. gpt-4o-mini=0.5,claude-3-5-haiku=0.5 (got "${text}")`);
  const arms = parts.map((p): ArmSpec => {
    const eq = p.lastIndexOf('=');
    const name = eq === -1 ? p : p.slice(0, eq);
    const weight = eq === -1 ? 1 : Number(p.slice(eq + 1));
    if (!Number.isFinite(weight) || weight <= 0)
      throw new ExperimentSpecError('--arms', `arm "${name}": the weight must be a number above 0 (got "${p.slice(eq + 1)}")`);
    if (name.startsWith('tier:')) {
      const tier = name.slice(5) as Tier;
      if (!TIERS.includes(tier)) throw new ExperimentSpecError('--arms', `arm "${name}": the tier must be one of ${TIERS.join(', ')}`);
      return { name, weight, minTier: tier };
    }
    if (name.startsWith('thresholds:')) {
      const m = /^thresholds:(0(?:\.\d+)?|1(?:\.0+)?)\/(0(?:\.\d+)?|1(?:\.0+)?)$/.exec(name);
      const standard = Number(m?.[1]);
      const premium = Number(m?.[2]);
      if (!m || standard > premium)
        throw new ExperimentSpecError('--arms', `arm "${name}": write thresholds:S/P with 0 <= S <= P <= 1, e.g. thresholds:0.3/0.6`);
      return { name, weight, thresholds: { standard, premium } };
    }
    if (!isModel(name))
      throw new ExperimentSpecError('--arms', `arm "${name}" is not a catalog model (see \`switchyard models\`), tier:TIER or thresholds:S/P`);
    return { name, weight, model: name };
  });
  const names = new Set<string>();
  for (const a of arms) {
    if (names.has(a.name)) throw new ExperimentSpecError('--arms', `arm "${a.name}" is given twice`);
    if (isReservedName(a.name)) throw new ExperimentSpecError('--arms', `arm "${a.name}" ${RESERVED_MESSAGE}`);
    names.add(a.name);
  }
  const total = arms.reduce((s, a) => s + a.weight, 0);
  return arms.map((a) => ({ ...a, weight: a.weight / total }));
}

/**
 * Checks a whole spec (the entity's input, which may come from code rather than the CLI); weights
 * come back normalised. Arm names that are members of every JavaScript object (`constructor`,
 * `__proto__`, ...) are refused; the entity itself passes `reservedArmNames: 'allow'` (it keeps
 * comments by own property, so any name is safe there, and refusing in workflow code would change
 * how runs started before this check replay).
 */
const MAX_ARMS = 20;
const MAX_NAME_CHARS = 100;
const MAX_FILTER_CHARS = 200;

export function validateExperiment(spec: ExperimentSpec, opts: { reservedArmNames?: 'refuse' | 'allow' } = {}): ExperimentSpec {
  if (typeof spec?.name !== 'string' || !EXPERIMENT_NAME.test(spec.name))
    throw new ExperimentSpecError('name', `"${String(spec?.name)}" must be 1-63 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit`);
  // Not Array.isArray: it would narrow the arms to any[].
  if (typeof (spec.arms as unknown[] | undefined)?.length !== 'number' || spec.arms.length < 2)
    throw new ExperimentSpecError('arms', 'an experiment needs at least two arms');
  // Sizes, for a new spec (the entity carries it, and registers it with the routing entity): an
  // experiment's state must stay far below a payload's limit whatever it is given.
  if (opts.reservedArmNames !== 'allow') {
    if (spec.arms.length > MAX_ARMS) throw new ExperimentSpecError('arms', `at most ${MAX_ARMS} arms (got ${spec.arms.length})`);
    spec.arms.forEach((a, i) => {
      if (typeof a?.name === 'string' && a.name.length > MAX_NAME_CHARS)
        throw new ExperimentSpecError(`arms.${i}.name`, `at most ${MAX_NAME_CHARS} characters`);
      if (typeof a?.model === 'string' && a.model.length > MAX_NAME_CHARS)
        throw new ExperimentSpecError(`arms.${i}.model`, `at most ${MAX_NAME_CHARS} characters`);
    });
    for (const [k, v] of Object.entries((spec.filter ?? {}) as Record<string, unknown>)) {
      if (typeof v === 'string' && v.length > MAX_FILTER_CHARS) throw new ExperimentSpecError(`filter.${k}`, `at most ${MAX_FILTER_CHARS} characters`);
    }
  }
  if (!Number.isInteger(spec.minSamples) || spec.minSamples < 2)
    throw new ExperimentSpecError('minSamples', `must be an integer >= 2 (got ${spec.minSamples})`);
  if (spec.maxSamples !== undefined && (!Number.isInteger(spec.maxSamples) || spec.maxSamples < spec.minSamples))
    throw new ExperimentSpecError('maxSamples', `must be an integer >= minSamples (${spec.minSamples})`);
  if (!(typeof spec.confidence === 'number' && spec.confidence > 0.5 && spec.confidence < 1))
    throw new ExperimentSpecError('confidence', `must be between 0.5 and 1 (got ${String(spec.confidence)})`);
  const names = new Set<string>();
  spec.arms.forEach((a, i) => {
    const at = `arms.${i}`;
    if (typeof a?.name !== 'string' || a.name === '') throw new ExperimentSpecError(`${at}.name`, 'required');
    if (names.has(a.name)) throw new ExperimentSpecError(`${at}.name`, `"${a.name}" is given twice`);
    if (opts.reservedArmNames !== 'allow' && isReservedName(a.name)) throw new ExperimentSpecError(`${at}.name`, `"${a.name}" ${RESERVED_MESSAGE}`);
    names.add(a.name);
    if (!(typeof a.weight === 'number' && Number.isFinite(a.weight) && a.weight > 0))
      throw new ExperimentSpecError(`${at}.weight`, `must be a number above 0 (got ${String(a.weight)})`);
    if ([a.model, a.minTier, a.thresholds].filter((x) => x !== undefined).length !== 1)
      throw new ExperimentSpecError(at, `arm "${a.name}" must set exactly one of model, minTier, thresholds`);
    if (a.model !== undefined && (typeof a.model !== 'string' || a.model === '')) throw new ExperimentSpecError(`${at}.model`, 'must be a catalog model name');
    if (a.minTier !== undefined && !TIERS.includes(a.minTier)) throw new ExperimentSpecError(`${at}.minTier`, `must be one of ${TIERS.join(', ')}`);
    const t = a.thresholds;
    if (t !== undefined && !(typeof t.standard === 'number' && typeof t.premium === 'number' && t.standard >= 0 && t.standard <= t.premium && t.premium <= 1))
      throw new ExperimentSpecError(`${at}.thresholds`, 'must be {standard, premium} with 0 <= standard <= premium <= 1');
  });
  if (spec.filter === null || typeof spec.filter !== 'object') throw new ExperimentSpecError('filter', 'must be an object ({} for all traffic)');
  const total = spec.arms.reduce((t, a) => t + a.weight, 0);
  return { ...spec, arms: spec.arms.map((a) => ({ ...a, weight: a.weight / total })) };
}

/** FNV-1a, 32 bits, then murmur3's finaliser (so that units differing in one last character spread): a stable hash of a string to [0, 1). */
export function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** The arm a unit sees: the same arm every time for the same experiment and unit. */
export function assignArm(spec: Pick<ExperimentSpec, 'name' | 'arms'>, unit: string): ArmSpec {
  const x = unitHash(`${spec.name}\u0000${unit}`);
  let acc = 0;
  for (const a of spec.arms) {
    acc += a.weight;
    if (x < acc) return a;
  }
  return spec.arms[spec.arms.length - 1]!;
}

export function matchesFilter(filter: TrafficFilter, r: { category: string; feature?: string | undefined; capabilities: readonly string[] }): boolean {
  return (
    (filter.category === undefined || filter.category === r.category) &&
    (filter.feature === undefined || filter.feature === r.feature) &&
    (filter.capability === undefined || r.capabilities.includes(filter.capability))
  );
}

/** A running mean and variance (sums; mergeable, serialisable). */
export interface Moments {
  readonly n: number;
  readonly sum: number;
  readonly sumSq: number;
}
export const NO_MOMENTS: Moments = { n: 0, sum: 0, sumSq: 0 };
export const addSample = (m: Moments, x: number): Moments => ({ n: m.n + 1, sum: m.sum + x, sumSq: m.sumSq + x * x });
/** Replaces one sample's value (explicit feedback replacing the automatic quality score). */
export const replaceSample = (m: Moments, from: number, to: number): Moments => ({ n: m.n, sum: m.sum - from + to, sumSq: m.sumSq - from * from + to * to });

export function mean(m: Moments): number | null {
  return m.n === 0 ? null : m.sum / m.n;
}
/** Sample variance; 0 below two samples. */
export function variance(m: Moments): number {
  if (m.n < 2) return 0;
  return Math.max(0, (m.sumSq - (m.sum * m.sum) / m.n) / (m.n - 1));
}

/** Two-sided normal quantile for a confidence (0.95 -> 1.96), by Acklam's rational approximation. */
export function zFor(confidence: number): number {
  const p = 1 - (1 - confidence) / 2;
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const q = p < 0.5 ? p : 1 - p;
  const t = Math.sqrt(-2 * Math.log(q));
  const tail = (((((c[0]! * t + c[1]!) * t + c[2]!) * t + c[3]!) * t + c[4]!) * t + c[5]!) / ((((d[0]! * t + d[1]!) * t + d[2]!) * t + d[3]!) * t + 1);
  if (p > 0.97575) return -tail;
  const r = p - 0.5;
  const s = r * r;
  return (
    ((((((a[0]! * s + a[1]!) * s + a[2]!) * s + a[3]!) * s + a[4]!) * s + a[5]!) * r) / (((((b[0]! * s + b[1]!) * s + b[2]!) * s + b[3]!) * s + b[4]!) * s + 1)
  );
}

export function confidenceInterval(m: Moments, z: number): [number, number] | null {
  const mu = mean(m);
  if (mu === null || m.n < 2) return null;
  const half = z * Math.sqrt(variance(m) / m.n);
  return [mu - half, mu + half];
}

/** Whether two means differ at this z (Welch's unequal-variance z-test); null without enough samples. */
export function differs(a: Moments, b: Moments, z: number): boolean | null {
  if (a.n < 2 || b.n < 2) return null;
  const se = Math.sqrt(variance(a) / a.n + variance(b) / b.n);
  const diff = (mean(a) ?? 0) - (mean(b) ?? 0);
  if (se === 0) return diff !== 0;
  return Math.abs(diff) / se > z;
}

/**
 * Peeking without inflating false positives: the stopping rule looks at the data only when the
 * smallest arm reaches minSamples x 2^k (k = 0, 1, 2, ...), and look k tests at
 * alpha / 2^(k+3) (an eighth of alpha at the first look, a sixteenth at the next, ...): summed
 * over every look and both tests (quality, cost), the chance of declaring a winner between
 * identical arms stays below alpha/2 by the union bound, which leaves room for the normal
 * approximation at small samples (measured: test/unit/learning.test.ts).
 */
export function lookAt(minArmRequests: number, minSamples: number): number | null {
  if (minArmRequests < minSamples) return null;
  return Math.floor(Math.log2(minArmRequests / minSamples));
}

export function confidenceAtLook(confidence: number, look: number): number {
  return 1 - (1 - confidence) / 2 ** (look + 3);
}

export interface ArmStats {
  readonly requests: number;
  readonly failed: number;
  readonly escalations: number;
  readonly cost: Moments;
  readonly latency: Moments;
  /** Per request: the judge's score or checks passed (1) / failed or escalated (0); feedback replaces it. */
  readonly quality: Moments;
  readonly feedback: Moments;
}
export const EMPTY_ARM: ArmStats = { requests: 0, failed: 0, escalations: 0, cost: NO_MOMENTS, latency: NO_MOMENTS, quality: NO_MOMENTS, feedback: NO_MOMENTS };

/** One request's outcome, as the request workflow reports it to its experiment. */
export interface ExperimentOutcome {
  readonly workflowId: string;
  readonly arm: string;
  readonly costNanos: number;
  readonly latencyMs: number;
  readonly quality: number;
  readonly failed: boolean;
  readonly escalations: number;
}

export function recordOutcome(s: ArmStats, o: ExperimentOutcome): ArmStats {
  return {
    requests: s.requests + 1,
    failed: s.failed + (o.failed ? 1 : 0),
    escalations: s.escalations + o.escalations,
    cost: addSample(s.cost, o.costNanos),
    latency: addSample(s.latency, o.latencyMs),
    quality: addSample(s.quality, clamp01(o.quality)),
    feedback: s.feedback,
  };
}

/** Explicit feedback on one request of the arm: it replaces that request's automatic quality. */
export function recordFeedback(s: ArmStats, score: number, automaticQuality: number): ArmStats {
  return { ...s, quality: replaceSample(s.quality, clamp01(automaticQuality), clamp01(score)), feedback: addSample(s.feedback, clamp01(score)) };
}

const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

export interface ArmReport {
  readonly requests: number;
  readonly failed: number;
  readonly escalations: number;
  readonly costNanos: number;
  readonly meanCostNanos: number | null;
  readonly costCi: [number, number] | null;
  readonly meanLatencyMs: number | null;
  readonly latencyCi: [number, number] | null;
  readonly meanQuality: number | null;
  readonly qualityCi: [number, number] | null;
  readonly feedback: { readonly n: number; readonly mean: number | null };
  /** Mean cost per unit of mean quality (nanodollars); null while quality is 0 or unknown. */
  readonly costPerQualityNanos: number | null;
}

export interface Verdict {
  /** collecting: some arm is below minSamples; decided: a winner; no_difference: enough samples, nothing significant. */
  readonly state: 'collecting' | 'decided' | 'no_difference';
  readonly winner: string | null;
  readonly reason: string;
  readonly qualitySignificant: boolean | null;
  readonly costSignificant: boolean | null;
}

export function armReport(s: ArmStats, z: number): ArmReport {
  const q = mean(s.quality);
  const c = mean(s.cost);
  return {
    requests: s.requests,
    failed: s.failed,
    escalations: s.escalations,
    costNanos: Math.round(s.cost.sum),
    meanCostNanos: c === null ? null : Math.round(c),
    costCi: confidenceInterval(s.cost, z),
    meanLatencyMs: mean(s.latency),
    latencyCi: confidenceInterval(s.latency, z),
    meanQuality: q,
    qualityCi: confidenceInterval(s.quality, z),
    feedback: { n: s.feedback.n, mean: mean(s.feedback) },
    costPerQualityNanos: q === null || q === 0 || c === null ? null : Math.round(c / q),
  };
}

/**
 * The verdict over all arms: the best-quality arm against each other; if one is significantly
 * better, it wins on quality; if none is, the cheapest arm wins when it is significantly cheaper
 * than every other (equal quality, lower cost); else no difference.
 */
export function verdict(spec: Pick<ExperimentSpec, 'minSamples' | 'confidence'>, arms: ReadonlyMap<string, ArmStats>): Verdict {
  const z = zFor(spec.confidence);
  const list = [...arms.entries()];
  const short = list.filter(([, s]) => s.requests < spec.minSamples);
  if (short.length > 0 || list.length < 2) {
    return {
      state: 'collecting',
      winner: null,
      reason: `waiting for ${spec.minSamples} requests per arm (${short.map(([n, s]) => `${n}: ${s.requests}`).join(', ')})`,
      qualitySignificant: null,
      costSignificant: null,
    };
  }
  const byQuality = [...list].sort((a, b) => (mean(b[1].quality) ?? 0) - (mean(a[1].quality) ?? 0));
  const best = byQuality[0]!;
  const qualityWins = byQuality
    .slice(1)
    .every(([, s]) => differs(best[1].quality, s.quality, z) === true && (mean(best[1].quality) ?? 0) > (mean(s.quality) ?? 0));
  if (qualityWins)
    return {
      state: 'decided',
      winner: best[0],
      reason: `${best[0]} has significantly higher quality than every other arm`,
      qualitySignificant: true,
      costSignificant: null,
    };
  const byCost = [...list].sort((a, b) => (mean(a[1].cost) ?? 0) - (mean(b[1].cost) ?? 0));
  const cheapest = byCost[0]!;
  const anyQualityDiff = list.some(([na, a]) => list.some(([nb, b]) => na < nb && differs(a.quality, b.quality, z) === true));
  const costWins = !anyQualityDiff && byCost.slice(1).every(([, s]) => differs(cheapest[1].cost, s.cost, z) === true);
  if (costWins)
    return {
      state: 'decided',
      winner: cheapest[0],
      reason: `no significant quality difference, and ${cheapest[0]} is significantly cheaper`,
      qualitySignificant: false,
      costSignificant: true,
    };
  return {
    state: 'no_difference',
    winner: null,
    reason: anyQualityDiff ? 'quality differs between some arms, but no arm is best against all' : 'no significant difference in quality or cost',
    qualitySignificant: anyQualityDiff,
    costSignificant: false,
  };
}
