/**
 * The routing control state of a task queue, pure: the policy workers route by (tuned thresholds
 * per category, promoted experiment rules, active experiments, anomaly actions), its versioned
 * history, and the evidence the tuner and the anomaly detector learn from. The routing entity
 * workflow delegates every message to this object and adds only timers and delivery.
 */
import { type Anomaly, addSpend, advance, parseSpendKey } from './anomalies.js';
import type { TrafficFilter } from './experiments.js';
import { addOutcome, proposeChanges, type ThresholdChange } from './tuner.js';
import { jsonBytes, newestWithin } from '../util/bytes.js';
import {
  EXPERIMENTS_MAX,
  OPEN_ACTIONS_MAX,
  RULES_MAX,
  type ActiveExperiment,
  type AnomalyAlert,
  type ControlSettings,
  type ControlState,
  type FeedbackReport,
  type OutcomeReport,
  type PolicyChange,
  type PolicySnapshot,
  type PolicyView,
  type RoutingRule,
} from './routingPolicy.js';

/** The policy's shapes, from where they are defined. */
export { EXPERIMENTS_MAX, MESSAGE_MAX_BYTES, OPEN_ACTIONS_MAX, RULES_MAX, wellFormedExperiment, wellFormedRule } from './routingPolicy.js';
export type {
  ActiveExperiment,
  AnomalyAlert,
  ControlSettings,
  ControlState,
  FeedbackReport,
  OutcomeReport,
  PolicyChange,
  PolicySnapshot,
  PolicyView,
  RoutingRule,
} from './routingPolicy.js';

const HISTORY_MAX = 200;
const ALERTS_MAX = 200;
/**
 * What the entity carries over continue-as-new is bounded by bytes, not only counts: a payload is
 * refused by the server above 2 MiB, and a refused continue-as-new would end the entity with what it
 * knew. Half of that leaves room for the codec and the settings.
 */
export const CARRY_MAX_BYTES = 1_048_576;
/** Of which the remembered feedback ids (long request ids: fewer of them). */
const FEEDBACK_SEEN_BYTES = 256 * 1024;
const FEEDBACK_SEEN_MAX = 5_000;
const BASELINES_MAX = 2_000;
/** A key that has not spent for this long is dropped (its baseline would be stale anyway). */
const BASELINE_IDLE_MS = 7 * 86_400_000;

export function newControlState(): ControlState {
  return { version: 0, categories: {}, rules: [], experiments: {}, history: [], counts: {}, baselines: {}, alerts: [], feedbackSeen: [], alertSeq: 0 };
}

export class RoutingControl {
  private readonly feedbackIds: Set<string>;

  constructor(
    readonly state: ControlState,
    public settings: ControlSettings,
  ) {
    this.feedbackIds = new Set(state.feedbackSeen);
    this.publishedKey = JSON.stringify(this.routingView());
  }

  private publishedKey: string;

  /**
   * After a message: bumps the epoch when what workers route by changed since the last call.
   * Returns the epoch, and whether it moved.
   */
  publish(): { epoch: number; changed: boolean } {
    const key = JSON.stringify(this.routingView());
    const changed = key !== this.publishedKey;
    if (changed) {
      this.publishedKey = key;
      this.state.epoch = (this.state.epoch ?? 0) + 1;
    }
    return { epoch: this.state.epoch ?? 0, changed };
  }

  policy(): PolicyView {
    const view = this.routingView();
    return this.state.epoch === undefined ? view : { ...view, epoch: this.state.epoch };
  }

  private routingView(): PolicyView {
    const actions: Record<string, { action: 'downgrade' | 'pause'; alertId: string }> = {};
    for (const a of this.state.alerts) {
      if (a.acknowledgedAt === undefined && a.action !== 'none') actions[`${a.scope}|${a.category}`] = { action: a.action, alertId: a.id };
    }
    return {
      version: this.state.version,
      categories: this.state.categories,
      explore: this.settings.tuner.explore,
      rules: this.state.rules,
      experiments: Object.values(this.state.experiments),
      actions,
    };
  }

  private snapshot(): PolicySnapshot {
    return { categories: { ...this.state.categories }, rules: [...this.state.rules] };
  }

  private commit(
    by: PolicyChange['by'],
    summary: string,
    now: number,
    before: PolicySnapshot,
    extra: Pick<PolicyChange, 'changes' | 'evidence'> = {},
  ): PolicyChange {
    this.state.version += 1;
    const change: PolicyChange = { version: this.state.version, at: now, by, summary, ...extra, before, after: this.snapshot() };
    this.state.history.push(change);
    if (this.state.history.length > HISTORY_MAX) this.state.history.splice(0, this.state.history.length - HISTORY_MAX);
    return change;
  }

  /** A worker's report: outcome counts for the tuner, spend for the detector. Returns new anomalies. */
  report(r: OutcomeReport, now: number): AnomalyAlert[] {
    for (const [k, c] of Object.entries(r.counts)) {
      if (!(c.n >= 0 && c.good >= 0 && c.good <= c.n)) continue;
      this.state.counts = addOutcome(this.state.counts, k, c.n, c.good);
    }
    const found: AnomalyAlert[] = [];
    if (!this.settings.anomaly.enabled) return found;
    for (const s of r.spend) {
      if (!(Number.isSafeInteger(s.nanos) && s.nanos >= 0 && Number.isFinite(s.at))) continue;
      if (this.state.baselines[s.key] === undefined && Object.keys(this.state.baselines).length >= BASELINES_MAX) continue;
      const res = addSpend(this.state.baselines[s.key], s.key, Math.min(s.at, now), s.nanos, this.settings.anomaly);
      this.state.baselines[s.key] = res.baseline;
      found.push(...res.anomalies.map((a) => this.alert(a, now)));
    }
    return found;
  }

  /** Closes quiet spend buckets up to `now` (the entity's timer): a burst followed by silence is still judged. */
  tick(now: number): AnomalyAlert[] {
    const found: AnomalyAlert[] = [];
    if (!this.settings.anomaly.enabled) return found;
    for (const [key, b] of Object.entries(this.state.baselines)) {
      if (b.openNanos === 0 && now - (b.lastSpendAt ?? b.open) > BASELINE_IDLE_MS) {
        delete this.state.baselines[key];
        continue;
      }
      const res = advance(b, key, now, this.settings.anomaly);
      this.state.baselines[key] = res.baseline;
      found.push(...res.anomalies.map((a) => this.alert(a, now)));
    }
    return found;
  }

  /** When the next spend bucket closes (for the entity's timer); undefined with nothing to watch. */
  nextBucketAt(): number | undefined {
    const opens = Object.values(this.state.baselines).map((b) => b.open);
    if (!this.settings.anomaly.enabled || opens.length === 0) return undefined;
    return Math.min(...opens) + this.settings.anomaly.bucketMs;
  }

  private alert(a: Anomaly, now: number): AnomalyAlert {
    const k = parseSpendKey(a.key);
    this.state.alertSeq += 1;
    const open = this.openActionKeys();
    const key = `${k.scope}|${k.category}`;
    // Beyond OPEN_ACTIONS_MAX pairs with an open action, a new pair's anomaly is raised without one.
    const action = this.settings.anomaly.action !== 'none' && !open.has(key) && open.size >= OPEN_ACTIONS_MAX ? 'none' : this.settings.anomaly.action;
    const alert: AnomalyAlert = { ...a, ...k, id: `anomaly-${this.state.alertSeq}`, at: now, action };
    this.state.alerts.push(alert);
    this.trimAlerts();
    return alert;
  }

  private openActionKeys(): Set<string> {
    return new Set(this.state.alerts.filter((a) => a.acknowledgedAt === undefined && a.action !== 'none').map((a) => `${a.scope}|${a.category}`));
  }

  /**
   * Keeps ALERTS_MAX alerts, dropping the oldest that holds no open action first: an
   * unacknowledged pause or downgrade is never forgotten because later alerts came (the newest
   * open alert of each scope|category is kept; older ones of the same pair end with it anyway).
   */
  private trimAlerts(): void {
    this.state.alerts = keepAlerts(this.state.alerts, ALERTS_MAX);
  }

  /**
   * Acknowledges an anomaly, and every other open one of the same scope and category (one burst
   * raises one per key it touched: the model's and the category's total), so its action ends.
   */
  acknowledge(id: string, now: number): AnomalyAlert {
    const a = this.state.alerts.find((x) => x.id === id);
    if (!a) throw new RangeError(`no anomaly "${id}"; \`switchyard anomalies list\` shows them`);
    for (const x of this.state.alerts) if (x.scope === a.scope && x.category === a.category) x.acknowledgedAt ??= now;
    return a;
  }

  /** Explicit feedback for the tuner, once per request. Returns false for a repeat. */
  feedback(f: FeedbackReport): boolean {
    if (this.feedbackIds.has(f.workflowId)) return false;
    this.feedbackIds.add(f.workflowId);
    this.state.feedbackSeen.push(f.workflowId);
    if (this.state.feedbackSeen.length > FEEDBACK_SEEN_MAX) this.feedbackIds.delete(this.state.feedbackSeen.shift()!);
    const good = f.score >= 0.5 ? 1 : 0;
    const c = this.state.counts[f.key];
    // Replace the automatic outcome when it is still in this window; else the feedback is a sample of its own.
    if (f.replaces !== undefined && c && c.n >= 1)
      this.state.counts = { ...this.state.counts, [f.key]: { n: c.n, good: Math.min(c.n, Math.max(0, c.good - f.replaces + good)) } };
    else this.state.counts = addOutcome(this.state.counts, f.key, 1, good);
    return true;
  }

  /** What the tuner would change now (the dry run). */
  proposal(): ThresholdChange[] {
    return proposeChanges(this.state.counts, this.state.categories, this.settings.base, this.settings.tuner);
  }

  /**
   * Applies the tuner's proposal (recorded with its evidence) and starts a new window: each tick
   * decides on the outcomes since the last one, so a model that was fixed (or broke) is judged on
   * what it does now, not on what it did before.
   */
  tune(now: number, by: 'tuner' | 'operator'): PolicyChange | undefined {
    const changes = this.proposal();
    let change: PolicyChange | undefined;
    if (changes.length > 0) {
      const before = this.snapshot();
      const base = this.settings.base;
      for (const c of changes) {
        if (c.to.standard === base.standard && c.to.premium === base.premium) delete this.state.categories[c.category];
        else this.state.categories[c.category] = c.to;
      }
      change = this.commit(
        by,
        changes
          .map((c) => `${c.category}: standard ${c.from.standard} -> ${c.to.standard}, premium ${c.from.premium} -> ${c.to.premium} (${c.why})`)
          .join('; '),
        now,
        before,
        {
          changes,
        },
      );
    }
    this.state.counts = {};
    return change;
  }

  /** Restores the policy as it was before `version` (itself a new, recorded version). */
  revert(version: number, now: number): PolicyChange {
    const target = this.state.history.find((h) => h.version === version);
    if (!target) throw new RangeError(`no routing change ${version} in the history (kept: the last ${HISTORY_MAX}); \`switchyard routing history\` lists them`);
    const before = this.snapshot();
    this.state.categories = { ...target.before.categories };
    this.state.rules = [...target.before.rules];
    return this.commit('revert', `reverted change ${version} (${target.summary})`, now, before, { evidence: { reverted: version } });
  }

  registerExperiment(e: ActiveExperiment): void {
    if (this.state.experiments[e.name] === undefined && Object.keys(this.state.experiments).length >= EXPERIMENTS_MAX) {
      throw new RangeError(`${EXPERIMENTS_MAX} experiments run on this task queue already: stop or promote one first (\`switchyard experiment list\`)`);
    }
    this.state.experiments[e.name] = e;
  }

  endExperiment(name: string): boolean {
    const had = this.state.experiments[name] !== undefined;
    delete this.state.experiments[name];
    return had;
  }

  /** A promoted winner becomes the rule for its traffic (replacing a rule for the same filter). */
  promote(rule: RoutingRule, evidence: unknown, now: number): PolicyChange {
    const before = this.snapshot();
    const same = (f: TrafficFilter): boolean =>
      f.category === rule.filter.category && f.feature === rule.filter.feature && f.capability === rule.filter.capability;
    const others = this.state.rules.filter((r) => !same(r.filter));
    if (others.length >= RULES_MAX) throw new RangeError(`${RULES_MAX} routing rules exist already: \`switchyard routing revert\` an earlier promotion first`);
    this.state.rules = [...others, rule];
    delete this.state.experiments[rule.experiment];
    return this.commit('experiment', `experiment ${rule.experiment} promoted: ${rule.arm.name} for ${describeFilter(rule.filter)}`, now, before, { evidence });
  }

  /**
   * The state to carry over continue-as-new, within `maxBytes` of JSON: the remembered feedback ids
   * to their own share, then the oldest history entries (the last 10 always), alerts without an open
   * action, and the baselines of the keys that spent longest ago, until it fits. What routing depends
   * on (rules, thresholds, experiments, open actions, the counters) is never dropped; it is bounded
   * where it comes in, and should it still not fit this throws, failing the workflow task (retried,
   * visible in the UI) rather than letting the server refuse the continue-as-new and end the entity.
   */
  carry(maxBytes = CARRY_MAX_BYTES): ControlState {
    const s: ControlState = {
      ...this.state,
      feedbackSeen: newestWithin(this.state.feedbackSeen, FEEDBACK_SEEN_BYTES),
      history: [...this.state.history],
      alerts: [...this.state.alerts],
      baselines: { ...this.state.baselines },
    };
    let size = jsonBytes(s);
    while (size > maxBytes && s.history.length > 10) size -= jsonBytes(s.history.shift()) + 1;
    if (size > maxBytes) {
      const droppable = s.alerts.filter((a) => a.acknowledgedAt !== undefined || a.action === 'none');
      for (const a of droppable) {
        if (size <= maxBytes) break;
        s.alerts.splice(s.alerts.indexOf(a), 1);
        size -= jsonBytes(a) + 1;
      }
    }
    if (size > maxBytes) {
      const byAge = Object.entries(s.baselines).sort(([, a], [, b]) => (a.lastSpendAt ?? a.open) - (b.lastSpendAt ?? b.open));
      for (const [key, b] of byAge) {
        if (size <= maxBytes) break;
        delete s.baselines[key];
        size -= jsonBytes(key) + jsonBytes(b) + 2;
      }
    }
    if (size > maxBytes)
      throw new Error(
        `the routing entity's state is ${size} bytes, over the ${maxBytes} it may carry, with nothing left to drop (rules ${s.rules.length}, experiments ${Object.keys(s.experiments).length}, open alerts ${s.alerts.length})`,
      );
    return s;
  }
}

/**
 * At most `max` alerts, dropping the oldest first, but never the newest open (unacknowledged, with
 * an action) alert of a scope|category: its pause or downgrade stays in force until acknowledged.
 */
export function keepAlerts(alerts: readonly AnomalyAlert[], max: number): AnomalyAlert[] {
  let excess = alerts.length - max;
  if (excess <= 0) return [...alerts];
  const newestOpen = new Map<string, string>();
  for (const a of alerts) if (a.acknowledgedAt === undefined && a.action !== 'none') newestOpen.set(`${a.scope}|${a.category}`, a.id);
  return alerts.filter((a) => {
    if (excess > 0 && newestOpen.get(`${a.scope}|${a.category}`) !== a.id) {
      excess -= 1;
      return false;
    }
    return true;
  });
}

export function describeFilter(f: TrafficFilter): string {
  const parts = [f.category && `category ${f.category}`, f.feature && `feature ${f.feature}`, f.capability && `capability ${f.capability}`].filter(Boolean);
  return parts.length > 0 ? parts.join(', ') : 'all traffic';
}
