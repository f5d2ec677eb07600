/**
 * The routing policy's shapes (the view workers route by, its changes, experiments, rules,
 * anomaly alerts, the entity's settings and carried state) and the checks that a message from any
 * client or worker release is one the router can use. Pure; the state's operations are in
 * ./routingControl.ts.
 */
import type { Anomaly, AnomalySettings, Baseline } from './anomalies.js';
import type { ArmSpec, TrafficFilter } from './experiments.js';
import type { OutcomeCounts, ThresholdChange, Thresholds, TunerSettings } from './tuner.js';
import { jsonBytes } from '../util/bytes.js';

export interface ActiveExperiment {
  readonly name: string;
  readonly arms: readonly ArmSpec[];
  readonly filter: TrafficFilter;
}

/** A promoted experiment winner: this traffic routes by this arm from now on. */
export interface RoutingRule {
  readonly filter: TrafficFilter;
  readonly arm: ArmSpec;
  readonly experiment: string;
  readonly at: number;
}

export interface AnomalyAlert extends Anomaly {
  readonly id: string;
  readonly at: number;
  readonly scope: string;
  readonly category: string;
  readonly model: string;
  readonly feature: string;
  /** What was applied until acknowledged. */
  readonly action: AnomalySettings['action'];
  acknowledgedAt?: number;
}

/** What workers read (cached) and route by. */
export interface PolicyView {
  readonly version: number;
  /**
   * Bumped on every change to what workers route by (not only versioned changes: experiments,
   * anomaly actions and their acknowledgements too). The entity publishes it in its memo, so a
   * worker can tell with one cheap describe whether its copy is behind. Absent before it existed.
   */
  readonly epoch?: number;
  readonly categories: Readonly<Record<string, Thresholds>>;
  readonly explore: number;
  readonly rules: readonly RoutingRule[];
  readonly experiments: readonly ActiveExperiment[];
  /** `scope|category` -> the action of an unacknowledged anomaly. */
  readonly actions: Readonly<Record<string, { readonly action: 'downgrade' | 'pause'; readonly alertId: string }>>;
}

/** The versioned part of the policy: what `routing revert` restores. */
export interface PolicySnapshot {
  readonly categories: Record<string, Thresholds>;
  readonly rules: RoutingRule[];
}

export interface PolicyChange {
  readonly version: number;
  readonly at: number;
  readonly by: 'tuner' | 'operator' | 'experiment' | 'revert';
  readonly summary: string;
  readonly changes?: ThresholdChange[];
  readonly evidence?: unknown;
  readonly before: PolicySnapshot;
  readonly after: PolicySnapshot;
}

/** A worker's report: outcome counts and spend since its last report. */
export interface OutcomeReport {
  readonly counts: OutcomeCounts;
  /** Spend per anomaly key (scope|category|model|feature), with when it was spent. */
  readonly spend: ReadonlyArray<{ readonly key: string; readonly at: number; readonly nanos: number }>;
}

export interface FeedbackReport {
  readonly workflowId: string;
  /** `category|tier|band|explore` of the answer: the tier that answered (see tuner.outcomeKey). */
  readonly key: string;
  readonly score: number;
  /**
   * The request's automatic outcome on this key (1 good, 0 bad), when it was counted there (the
   * answering tier was also the first): the feedback replaces it instead of adding a sample.
   */
  readonly replaces?: 0 | 1;
}

export interface ControlSettings {
  readonly base: Thresholds;
  readonly tuner: TunerSettings & { readonly enabled: boolean; readonly intervalMs: number };
  readonly anomaly: AnomalySettings & { readonly enabled: boolean; readonly webhookUrl?: string | undefined };
}

export interface ControlState {
  version: number;
  categories: Record<string, Thresholds>;
  rules: RoutingRule[];
  experiments: Record<string, ActiveExperiment>;
  history: PolicyChange[];
  counts: OutcomeCounts;
  baselines: Record<string, Baseline>;
  alerts: AnomalyAlert[];
  feedbackSeen: string[];
  alertSeq: number;
  /** See PolicyView.epoch (absent in state carried before it existed). */
  epoch?: number;
  /** When the tuner runs next (carried over continue-as-new, so a busy entity still tunes on time). */
  nextTuneAt?: number;
}

/**
 * What the carried state must keep whatever its size (promoted rules, tuned thresholds, running
 * experiments, open anomaly actions) is bounded where it comes in: these many rules and experiments,
 * and open actions on these many scope|category pairs (beyond: raised, but without an action).
 */
export const RULES_MAX = 100;
/** One experiment, rule or settings message as JSON at most (a spec of 20 arms takes a few KB). */
export const MESSAGE_MAX_BYTES = 64 * 1024;

/**
 * Whether an experiment as registered (from any client, or a worker of another release) is one
 * the router can use: a name, at least two arms each with a name, a positive weight and exactly
 * one of model, minTier, thresholds; a filter object; within MESSAGE_MAX_BYTES. Pure.
 */
export function wellFormedExperiment(e: unknown): e is ActiveExperiment {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as Record<string, unknown>;
  if (typeof x.name !== 'string' || x.name === '' || !Array.isArray(x.arms) || x.arms.length < 2) return false;
  if (typeof x.filter !== 'object' || x.filter === null || Array.isArray(x.filter)) return false;
  const armOk = (a: unknown): boolean => {
    if (typeof a !== 'object' || a === null) return false;
    const r = a as Record<string, unknown>;
    const set = [r.model, r.minTier, r.thresholds].filter((v) => v !== undefined).length;
    return typeof r.name === 'string' && r.name !== '' && typeof r.weight === 'number' && Number.isFinite(r.weight) && r.weight > 0 && set === 1;
  };
  return x.arms.every(armOk) && jsonBytes(e) <= MESSAGE_MAX_BYTES;
}

/** A promoted rule the router can use (its arm as an experiment's), within MESSAGE_MAX_BYTES. */
export function wellFormedRule(r: unknown): r is RoutingRule {
  if (typeof r !== 'object' || r === null) return false;
  const x = r as Record<string, unknown>;
  return (
    typeof x.experiment === 'string' &&
    typeof x.filter === 'object' &&
    x.filter !== null &&
    wellFormedExperiment({ name: 'rule', arms: [x.arm, x.arm], filter: x.filter }) &&
    jsonBytes(r) <= MESSAGE_MAX_BYTES
  );
}
export const EXPERIMENTS_MAX = 50;
export const OPEN_ACTIONS_MAX = 500;
