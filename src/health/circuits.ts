/**
 * Circuit breakers per model: consecutive failures open a circuit for a cooldown; after it, one
 * trial is let through (half-open: the first request to claim it gets it, the others keep treating
 * the model as open until the trial reports or its hold runs out); a success closes it, a failure
 * opens it again. Pure state; model names are looked up as own properties only.
 */
import { own, setOwn } from '../util/names.js';
export interface CircuitSettings {
  /** Consecutive failures that open a circuit. */
  readonly failureThreshold: number;
  readonly cooldownMs: number;
}

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface Circuit {
  consecutiveFailures: number;
  openUntil: number;
  lastError?: string | undefined;
  lastChange: number;
  opened: number;
  /** A half-open circuit's trial is out until then (0: none). */
  trialUntil?: number;
}

export interface HealthReport {
  readonly model: string;
  readonly ok: boolean;
  readonly kind?: string | undefined;
  readonly at: number;
}

export type HealthState = Record<string, Circuit>;

export function stateOf(c: Circuit | undefined, now: number): CircuitState {
  if (!c || c.openUntil === 0) return 'closed';
  return now < c.openUntil ? 'open' : 'half_open';
}

/** Applies one report; returns the circuit's new state if it changed. */
export function applyReport(state: HealthState, r: HealthReport, s: CircuitSettings): CircuitState | undefined {
  const c = circuitFor(state, r.model, r.at);
  const before = stateOf(c, r.at);
  c.trialUntil = 0;
  if (r.ok) {
    c.consecutiveFailures = 0;
    c.openUntil = 0;
  } else {
    c.consecutiveFailures += 1;
    c.lastError = r.kind;
    if (before === 'half_open' || c.consecutiveFailures >= s.failureThreshold) {
      c.openUntil = r.at + s.cooldownMs;
      if (before !== 'open') c.opened += 1;
    }
  }
  const after = stateOf(c, r.at);
  if (after !== before) {
    c.lastChange = r.at;
    return after;
  }
  return undefined;
}

function circuitFor(state: HealthState, model: string, at: number): Circuit {
  const existing = own(state, model);
  if (existing) return existing;
  const c: Circuit = { consecutiveFailures: 0, openUntil: 0, lastChange: at, opened: 0 };
  return setOwn(state, model, c);
}

/**
 * A request asks to be a half-open circuit's trial. Granted to one caller at a time, for `holdMs`
 * (the longest its call can take); closed circuits need no trial, open ones allow none.
 */
export function claimTrial(state: HealthState, model: string, now: number, holdMs: number): boolean {
  const c = own(state, model);
  if (!c) return true;
  const st = stateOf(c, now);
  if (st === 'closed') return true;
  if (st === 'open' || (c.trialUntil ?? 0) > now) return false;
  c.trialUntil = now + holdMs;
  return true;
}

/** Models whose circuit is open now (half-open ones may take a trial request). */
export function openCircuits(state: HealthState, now: number): string[] {
  return Object.entries(state)
    .filter(([, c]) => stateOf(c, now) === 'open')
    .map(([m]) => m);
}

/** Failures that say something about the model's health (not the request's own fault). */
export function countsAsFailure(kind: string): boolean {
  return kind === 'transient' || kind === 'timeout' || kind === 'rate_limited';
}
