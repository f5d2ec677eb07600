/**
 * What a request knows while it runs: the routing (classification, chain, selection), where it is
 * in the chain, every attempt and escalation, and the operator's signals. The trace query reports
 * it. Two kinds of field: where the loop goes next (cursor, skips, rate limits, waits), written
 * only by serve() as it applies each step's `Next` (./next.ts), after the routing step that
 * starts the request set the first selection (`routed`); and the record of what happened
 * (attempts, escalations, quality scores), which the steps append to.
 */
import { condition, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import type { RequestConstraints } from './activities.js';
import type { Classification } from '../../routing/classifier.js';
import type { Candidate } from '../../routing/router.js';
import { type Tier, TIERS } from '../../catalog/tiers.js';
import { own } from '../../util/names.js';
import { jsonBytes, utf8Bytes } from '../../util/bytes.js';
import type { RoutingDecision } from '../sinks.js';
import type { RecordedSelection } from './v4/recorded.js';
import {
  type Attempt,
  type Deferral,
  type RequestInput,
  type RequestResult,
  type ValidRequest,
  approveSpendSignal,
  escalateSignal,
  type RequestTrace,
  traceQuery,
} from './contract.js';

/** The tier above `t` (the top tier stays). */
export function tierAbove(t: Tier): Tier {
  return TIERS[Math.min(TIERS.length - 1, TIERS.indexOf(t) + 1)] ?? t;
}

/** What the attempts cost together. */
export function totalCost(attempts: readonly Attempt[]): number {
  return attempts.reduce((s, a) => s + a.costNanos, 0);
}

/** Text above this size travels by reference: activities read it from the run's start input. */
const INLINE_TEXT_BYTES = 16 * 1024;

type WaitOn = NonNullable<RequestTrace['waiting']>['on'];

export class RequestState {
  readonly workflowId: string;
  readonly runId: string;
  readonly requestId: string;
  readonly startedAt = Date.now();
  phase: RequestTrace['phase'] = 'classifying';
  waiting: RequestTrace['waiting'];
  cls: Classification | undefined;
  sel: RecordedSelection | undefined;
  chain: Candidate[] = [];
  /** Next chain position to try. */
  cursor = 0;
  /** Models not to try again in this pass of the chain. */
  readonly skipped = new Set<string>();
  /** Models found too dear for the budget (downgrades). */
  readonly tooDear = new Set<string>();
  /** Models whose answers failed the quality checks. */
  readonly qualityFailed: string[] = [];
  /** Rate-limited models: tried again after the earliest reset when nothing else answered. */
  readonly rateLimited = new Map<string, { until: number; candidate: Candidate }>();
  readonly attempts: Attempt[] = [];
  readonly escalations: RequestResult['escalations'] = [];
  readonly skippedModels: Array<{ model: string; why: string }> = [];
  /** A durable wait before the next attempt, and whether it is a provider's rate-limit reset. */
  waitBeforeMs = 0;
  rateLimitWait = false;
  /** How long every candidate being rate-limited may be waited out (the worker's last verdict). */
  maxRateLimitWaitMs: number | undefined;
  budgetWaitSince: number | undefined;
  /** Every paid call's routing decision, and each judged or checked answer's quality (the metrics sink). */
  readonly routes: RoutingDecision[] = [];
  readonly qualityScores: Array<{ model: string; score: number }> = [];
  qualityEscalations = 0;
  private seq = 0;
  approved = false;
  /** A request with a deadline: its provider batch, or why it went live. */
  deferral: Deferral | undefined;
  /** An operator's escalation not yet acted on (the signal sets it; serve() takes it). */
  escalation: { model?: string; reason?: string } | undefined;

  private valid: ValidRequest | undefined;
  /** The request's text is large: calls read it from the run's start input (one copy in history). */
  readonly textByRef: boolean;

  /** `raw` is the start input as it came: validated by the first paid call (or route), not here. */
  constructor(readonly raw: RequestInput) {
    const info = workflowInfo();
    this.workflowId = info.workflowId;
    this.runId = info.runId;
    const r = raw as Partial<Record<string, unknown>> | null;
    this.requestId = typeof r?.requestId === 'string' ? r.requestId : info.workflowId;
    // Read before validation, so only strings count.
    const str = (v: unknown): number => (typeof v === 'string' ? utf8Bytes(v) : 0);
    const msgs = Array.isArray(r?.messages) ? r.messages.reduce((n: number, m: unknown) => n + str((m as { content?: unknown } | null)?.content), 0) : 0;
    // Tool definitions and calls travel with the text (none before tools were accepted: the same sum then).
    const calls = Array.isArray(r?.messages)
      ? r.messages.reduce(
          (n: number, m: unknown) =>
            n + (Array.isArray((m as { toolCalls?: unknown } | null)?.toolCalls) ? jsonBytes((m as { toolCalls: unknown }).toolCalls) : 0),
          0,
        )
      : 0;
    const tools = Array.isArray(r?.tools) ? jsonBytes(r.tools) : 0;
    this.textByRef = str(r?.prompt) + str(r?.context) + str(r?.system) + msgs + calls + tools > INLINE_TEXT_BYTES;
    setHandler(approveSpendSignal, () => {
      this.approved = true;
    });
    setHandler(escalateSignal, (e) => {
      this.escalation = e ?? {};
    });
    setHandler(traceQuery, () => this.trace());
  }

  /** The operator's escalation, if one came: taken, so it is acted on once. */
  takeEscalation(): { model?: string; reason?: string } | undefined {
    const e = this.escalation;
    this.escalation = undefined;
    return e;
  }

  /** A new attempt id (a1, a2, ... or j3 for a judge) and its reservation id. */
  nextAttempt(prefix: 'a' | 'j' = 'a'): { attemptId: string; reservationId: string } {
    this.seq += 1;
    const attemptId = `${prefix}${this.seq}`;
    return { attemptId, reservationId: `${this.workflowId}/${this.runId}/${attemptId}` };
  }

  /** The id an operator escalation is recorded under (no attempt of its own). */
  escalationId(): string {
    return `e${this.seq}`;
  }

  record(a: Omit<Attempt, 'waitBeforeMs' | 'costNanos'> & { costNanos?: number }): void {
    this.attempts.push({ waitBeforeMs: this.waitBeforeMs, costNanos: 0, ...a });
  }

  /** The validated request (its fields from the activity that validated it, its text from the input). */
  get req(): ValidRequest {
    if (!this.valid) throw new Error('the request was read before it was validated');
    return this.valid;
  }

  get isValidated(): boolean {
    return this.valid !== undefined;
  }

  /**
   * How the routing policy shaped the request's first selection (its experiment arm, rule,
   * exploration): kept for the whole request, since a re-route (escalation, downgrade) replaces `sel`.
   */
  learning: RecordedSelection['learning'];

  /**
   * Whether that first learning is what the request reports (its experiment outcome, its result):
   * decided at the first re-route whose selection shaped it differently. Runs recorded before
   * 3ef47c9 reported the latest selection's (an escalated experiment request reported to no
   * experiment): without the patch marker in their history they replay that way
   * (test/histories/v7-experiment-escalation.json).
   */
  private learningKept: boolean | undefined;

  get reportedLearning(): RecordedSelection['learning'] {
    return this.learningKept === false ? this.sel?.learning : this.learning;
  }

  routed(cls: Classification, sel: RecordedSelection, request: RequestConstraints): void {
    const raw = this.raw;
    this.learning ??= sel.learning;
    this.valid = {
      ...request,
      prompt: typeof raw.prompt === 'string' ? raw.prompt.trim() : undefined,
      messages: raw.messages,
      system: raw.system,
      context: raw.context,
      ...(raw.tools !== undefined ? { tools: raw.tools, toolChoice: raw.toolChoice, parallelToolCalls: raw.parallelToolCalls } : {}),
    };
    this.cls = cls;
    this.useSelection(sel);
  }

  /** A new chain: tried from its start. */
  useSelection(sel: RecordedSelection): void {
    if (this.learningKept === undefined && this.sel !== undefined && JSON.stringify(sel.learning) !== JSON.stringify(this.learning))
      this.learningKept = patched('learning-kept-through-reroutes');
    this.sel = sel;
    this.chain = sel.decision.chain;
    this.cursor = 0;
    for (const s of sel.skipped ?? []) if (!this.skippedModels.some((k) => k.model === s.model)) this.skippedModels.push(s);
  }

  /** The next candidate of this pass that is not skipped; undefined when the pass is over. */
  nextCandidate(): Candidate | undefined {
    while (this.cursor < this.chain.length) {
      const c = this.chain[this.cursor];
      this.cursor += 1;
      if (c && !this.skipped.has(c.model)) return c;
    }
    return undefined;
  }

  /** What to reserve for a model: its estimate with the provider's margin (budget.reservationMargin). */
  reserveFor(c: Candidate): number {
    return (this.sel?.reserveNanos ? own(this.sel.reserveNanos, c.model) : undefined) ?? c.estimatedCostNanos;
  }

  /** A durable wait, visible in the trace; an operator's signal (`done`) cuts it short. */
  async waitFor(on: WaitOn, ms: number, done: () => boolean): Promise<boolean> {
    this.phase = 'waiting';
    this.waiting = { on, until: new Date(Date.now() + ms).toISOString() };
    try {
      return await condition(done, Math.max(1, ms));
    } finally {
      this.phase = 'calling';
      this.waiting = undefined;
    }
  }

  trace(): RequestTrace {
    return {
      workflowId: this.workflowId,
      requestId: this.requestId,
      category: this.valid?.category ?? (typeof this.raw.category === 'string' ? this.raw.category : 'standard'),
      phase: this.phase,
      ...(this.waiting ? { waiting: this.waiting } : {}),
      classification: this.cls
        ? { complexity: this.cls.complexity, capabilities: this.cls.capabilities, inputTokens: this.cls.inputTokens, signals: this.cls.signals }
        : null,
      skipped: this.skippedModels,
      candidates: this.chain,
      attempts: this.attempts,
      escalations: this.escalations,
      costNanos: totalCost(this.attempts),
      ...(this.deferral ? { deferred: this.deferral } : {}),
    };
  }
}
