/**
 * What workflows tell their worker outside of history: replay-aware sinks (the SDK calls them
 * only when a workflow task runs for the first time, never in replay), so that what a request
 * reports when it ends is counted once however often its history is replayed.
 */
import type { Sinks } from '@temporalio/workflow';
import type { Tier } from '../catalog/tiers.js';
import type { Band } from '../learning/tuner.js';

/**
 * Why a provider call went to the tier it went to (`llm_routing_decisions_total{reason}`): the
 * router's choice (`primary`), the same model again (`retry`), the next model after a failure
 * (`fallback`), after a rate limit (`rate_limit`), after failed quality checks
 * (`quality_escalation`), a latency hedge, a budget downgrade, the preferred tier's models left
 * out (`circuit_open`, `unavailable`), an operator's escalation. Judge calls are not routing.
 */
export type RoutingReason =
  'primary' | 'retry' | 'fallback' | 'rate_limit' | 'quality_escalation' | 'hedge' | 'budget_downgrade' | 'circuit_open' | 'unavailable' | 'operator';

export interface RoutingDecision {
  /** The tier the classifier preferred for the request. */
  readonly fromTier: string;
  /** The tier of the model the paid call went to. */
  readonly toTier: string;
  readonly reason: RoutingReason;
}

/** What the tuner and the anomaly detector learn from one request (see learning/worker/outcomeReporter.ts). */
export interface LearningOutcome {
  readonly category: string;
  readonly scope: string;
  readonly feature: string;
  /** The tier of the first paid call (absent when nothing was called). */
  readonly firstTier?: Tier | undefined;
  readonly band: Band;
  /** Routed by the base thresholds to keep measuring a tuned category's cheaper tier. */
  readonly explore: boolean;
  /** Routed by the thresholds (not an experiment arm, a promoted rule or an anomaly's downgrade): what the tuner learns from. */
  readonly byThresholds?: boolean;
  /** Its quality is known (answered, or escalated on quality): a provider outage says nothing about a tier's quality. */
  readonly judged?: boolean;
  /** Answered without a quality escalation. */
  readonly good: boolean;
  readonly spend: ReadonlyArray<{ readonly model: string; readonly costNanos: number }>;
}

/** What a request reports when it ends. */
export interface RequestEnded {
  readonly routing: readonly RoutingDecision[];
  /** Quality per judged or checked answer: a judge's score, or 1 / 0 for checks passed / failed. */
  readonly quality: ReadonlyArray<{ readonly model: string; readonly score: number }>;
  /** Absent for requests that ended before they were routed. */
  readonly learning?: LearningOutcome;
}

export interface SwitchyardSinks extends Sinks {
  readonly metrics: {
    requestEnded(e: RequestEnded): void;
  };
}
