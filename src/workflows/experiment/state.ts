/**
 * What an experiment entity holds and how each message changes it: the arms' statistics, the
 * outcome and feedback ids seen (against duplicate reports), the stopping rule's looks and frozen
 * verdict, the state (running, concluded, stopped, promoted), and what routing still has to be
 * told. No Temporal calls: the workflow (./experimentEntity.ts) is a shell that registers these
 * as handlers and owns the messages to routing, the promotion and continue-as-new.
 */
import {
  type ArmStats,
  armReport,
  confidenceAtLook,
  EMPTY_ARM,
  lookAt,
  recordFeedback,
  recordOutcome,
  type Verdict,
  verdict,
  zFor,
} from '../../learning/experiments.js';
import type { ExperimentSpec } from '../../learning/experiments.js';
import type { PolicyChange } from '../../learning/routingControl.js';
import { own, setOwn } from '../../util/names.js';
import { boundCarried } from './carry.js';
import type { ExperimentEntityInput, ExperimentFeedback, ExperimentState, ExperimentStatus, FeedbackComment } from './contract.js';
import { isMessage } from '../messages.js';
import type { ExperimentOutcome } from '../../learning/experiments.js';

/** Outcome ids remembered against duplicates (a re-run request reports again); bounded so the carried state stays small. */
const SEEN_MAX = 5_000;
const COMMENTS_MAX = 20;

export class ExperimentEntityState {
  readonly createdAt: number;
  state: ExperimentState;
  private readonly arms: Map<string, ArmStats>;
  private readonly seen: Set<string>;
  private readonly seenOrder: string[];
  private readonly feedbackSeen: Set<string>;
  private readonly comments: Record<string, FeedbackComment[]>;
  private endedAt: number | undefined;
  promotion: PolicyChange | undefined;
  /** Messages in this run (the entity continues as new after a bound). */
  messages = 0;
  /** A promotion is under way (a second one is refused). */
  promoting = false;
  private lastLook: number;
  private concluded: Verdict | undefined;
  /** What routing has yet to be told: that the experiment started, or that it ended. */
  announce: 'start' | 'end' | undefined;
  private readonly z: number;

  constructor(
    readonly spec: ExperimentSpec,
    input: ExperimentEntityInput,
    now: number,
  ) {
    const c = input.carried;
    this.createdAt = input.createdAt ?? now;
    this.state = c?.state ?? 'running';
    this.arms = new Map(spec.arms.map((a) => [a.name, c?.arms[a.name] ?? EMPTY_ARM]));
    this.seen = new Set(c?.seen ?? []);
    this.seenOrder = [...(c?.seen ?? [])];
    this.feedbackSeen = new Set(c?.feedbackSeen ?? []);
    this.comments = { ...(c?.comments ?? {}) };
    this.endedAt = c?.endedAt;
    this.promotion = c?.promotion;
    this.lastLook = c?.lastLook ?? -1;
    this.concluded = c?.concluded;
    this.announce = c ? undefined : 'start';
    this.z = zFor(spec.confidence);
  }

  /** The stopping rule's verdict now, at the current look's confidence. */
  private currentVerdict(): Verdict {
    const look = lookAt(Math.min(...[...this.arms.values()].map((a) => a.requests)), this.spec.minSamples);
    return verdict({ minSamples: this.spec.minSamples, confidence: confidenceAtLook(this.spec.confidence, look ?? 0) }, this.arms);
  }

  /** The frozen verdict once concluded, else the interim one. */
  verdict(): Verdict {
    return this.concluded ?? this.currentVerdict();
  }

  get ended(): boolean {
    return this.state === 'promoted' || this.state === 'stopped';
  }

  status(): ExperimentStatus {
    const v = this.verdict();
    return {
      name: this.spec.name,
      state: this.state,
      arms: Object.fromEntries([...this.arms].map(([n, s]) => [n, armReport(s, this.z)])),
      winner: v.winner,
      verdict: v,
      interim: this.concluded === undefined,
      spec: this.spec,
      createdAt: new Date(this.createdAt).toISOString(),
      endedAt: this.endedAt === undefined ? null : new Date(this.endedAt).toISOString(),
      ...(this.promotion ? { promotion: this.promotion } : {}),
      comments: this.comments,
    };
  }

  /** Moves to an end state; leaving `running` means routing must be told. */
  end(to: ExperimentState, now: number): void {
    if (this.state === 'running') this.announce = 'end';
    this.state = to;
    this.endedAt ??= now;
  }

  /** What routing has yet to be told, taken (sent once). */
  takeAnnouncement(): 'start' | 'end' | undefined {
    const a = this.announce;
    this.announce = undefined;
    return a;
  }

  /**
   * A request's outcome (a signal, so a malformed one is dropped): counted once per request. Returns
   * the verdict when this outcome concluded the experiment.
   */
  outcome(o: ExperimentOutcome, now: number): Verdict | undefined {
    this.messages += 1;
    if (!isMessage(o)) return undefined;
    const s = this.arms.get(o.arm);
    if (!s || typeof o.workflowId !== 'string' || typeof o.costNanos !== 'number' || typeof o.quality !== 'number' || this.seen.has(o.workflowId))
      return undefined;
    this.seen.add(o.workflowId);
    this.seenOrder.push(o.workflowId);
    if (this.seenOrder.length > SEEN_MAX) this.seen.delete(this.seenOrder.shift()!);
    this.arms.set(o.arm, recordOutcome(s, o));
    if (this.state !== 'running') return undefined;
    // The stopping rule looks only at the scheduled looks (alpha spent across them), and freezes its verdict.
    const look = lookAt(Math.min(...[...this.arms.values()].map((a) => a.requests)), this.spec.minSamples);
    const full = this.spec.maxSamples !== undefined && [...this.arms.values()].every((a) => a.requests >= this.spec.maxSamples!);
    if ((look === null || look <= this.lastLook) && !full) return undefined;
    if (look !== null) this.lastLook = look;
    const v = this.currentVerdict();
    if (v.state !== 'decided' && !full) return undefined;
    this.concluded = v;
    this.end('concluded', now);
    return v;
  }

  /** Feedback on a request this experiment counted: replaces its automatic quality score, once. */
  feedback(f: ExperimentFeedback): void {
    this.messages += 1;
    if (!isMessage(f)) return;
    const s = this.arms.get(f.arm);
    if (!s || typeof f.workflowId !== 'string' || typeof f.score !== 'number' || !Number.isFinite(f.score) || this.feedbackSeen.has(f.workflowId)) return;
    // Feedback only on a request this experiment counted (its automatic quality is what is replaced).
    if (!this.seen.has(f.workflowId)) return;
    this.feedbackSeen.add(f.workflowId);
    if (this.feedbackSeen.size > SEEN_MAX) this.feedbackSeen.delete(this.feedbackSeen.values().next().value!);
    this.arms.set(f.arm, recordFeedback(s, f.score, f.automaticQuality));
    if (typeof f.comment === 'string' && f.comment !== '') {
      const list = own(this.comments, f.arm) ?? setOwn(this.comments, f.arm, []);
      list.push({ workflowId: f.workflowId, score: f.score, comment: f.comment.slice(0, 2_000) });
      if (list.length > COMMENTS_MAX) list.shift();
    }
  }

  /** Why a promotion is refused now (already promoted, or no winner yet), or undefined. */
  promotionRefusal(): { message: string; type?: string } | undefined {
    if (this.state === 'promoted' || this.promoting) return { message: `experiment "${this.spec.name}" was promoted already` };
    const v = this.verdict();
    if (v.winner === null)
      return { message: `experiment "${this.spec.name}" has no winner to promote (${v.reason}); wait for more samples, or stop it`, type: 'NoWinner' };
    return undefined;
  }

  /** What the next run starts from (bounded in bytes). */
  carry(taskQueue: string): ExperimentEntityInput {
    return {
      spec: this.spec,
      taskQueue,
      createdAt: this.createdAt,
      carried: boundCarried({
        state: this.state,
        arms: Object.fromEntries(this.arms),
        seen: this.seenOrder,
        feedbackSeen: [...this.feedbackSeen],
        comments: this.comments,
        lastLook: this.lastLook,
        ...(this.concluded ? { concluded: this.concluded } : {}),
        ...(this.endedAt !== undefined ? { endedAt: this.endedAt } : {}),
        ...(this.promotion ? { promotion: this.promotion } : {}),
      }),
    };
  }
}
