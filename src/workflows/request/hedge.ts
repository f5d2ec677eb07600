/**
 * The hedge step (latency SLO): a second paid call to a higher tier when the first has not
 * answered in time; the first answer wins and the other is cancelled, its reservation released,
 * or settled if it answered too.
 */
import { CancellationScope, isCancellation, log, sleep } from '@temporalio/workflow';
import type { Candidate } from '../../routing/router.js';
import { TIERS } from '../../catalog/tiers.js';
import type { RoutingReason } from '../sinks.js';
import { attemptOf, type Leg, type LegIds, payCandidate } from './legs.js';
import type { RequestState } from './state.js';

/** The hedge for a candidate: the first later candidate of a higher tier, else the next one. */
export function hedgeFor(s: RequestState, c: Candidate): Candidate | undefined {
  const rest = s.chain.filter((x) => x.model !== c.model && !s.skipped.has(x.model));
  return rest.find((x) => TIERS.indexOf(x.tier) > TIERS.indexOf(c.tier)) ?? rest[0];
}

/** Latency SLO: if the first call has not answered in `afterMs`, start the hedge; the first answer wins. */
export async function hedged(s: RequestState, cand: Candidate, hedgeTo: Candidate, afterMs: number, reason: RoutingReason): Promise<Leg> {
  /** A leg this step cancelled ends as `hedged_out`; a cancellation of the request itself goes on up. */
  const leg = (
    c: Candidate,
    scope: CancellationScope,
    ids: LegIds,
    why: RoutingReason,
    cancelledHere: () => boolean,
  ): Promise<Leg | { cancelled: true; cand: Candidate; attemptId: string; t0: number }> =>
    scope
      .run(() => payCandidate(s, c, 1, why, ids))
      .catch((e: unknown) => {
        if (isCancellation(e) && cancelledHere()) return { cancelled: true as const, cand: c, attemptId: ids.attemptId, t0: ids.t0 };
        throw e;
      });
  let cancelled: 'a' | 'b' | undefined;
  const scopeA = new CancellationScope();
  const pA = leg(cand, scopeA, { ...s.nextAttempt(), t0: Date.now() }, reason, () => cancelled === 'a');
  const timerScope = new CancellationScope();
  const timer = timerScope
    .run(() => sleep(afterMs))
    .then(
      () => 'timer' as const,
      () => 'timer' as const,
    );
  if ((await Promise.race([pA.then(() => 'answer' as const), timer])) === 'answer') {
    timerScope.cancel();
    const a = await pA;
    if ('cancelled' in a) throw new Error('a leg was cancelled before the hedge started');
    return a;
  }
  const scopeB = new CancellationScope();
  const pB = leg(hedgeTo, scopeB, { ...s.nextAttempt(), t0: Date.now() }, 'hedge', () => cancelled === 'b');
  const answered = (l: Leg | { cancelled: true }): l is Leg & { outcome: { kind: 'answered' } } => !('cancelled' in l) && l.outcome.kind === 'answered';
  // Whichever answers first wins; a leg that failed or was denied waits for the other.
  const tag = <T>(p: Promise<T>, which: 'a' | 'b') => p.then((l) => ({ which, l }));
  const first = await Promise.race([tag(pA, 'a'), tag(pB, 'b')]);
  const other = first.which === 'a' ? pB : pA;
  let winner: Leg;
  let loser: 'a' | 'b';
  if (answered(first.l)) {
    winner = first.l;
    loser = first.which === 'a' ? 'b' : 'a';
    cancelled = loser;
    (loser === 'a' ? scopeA : scopeB).cancel();
  } else {
    const o = await other;
    const [a, b] = first.which === 'a' ? [first.l, o] : [o, first.l];
    if (!answered(o)) {
      // Neither answered: the first call's outcome goes the usual way; a failed hedge is recorded here.
      if ('cancelled' in a || 'cancelled' in b) throw new Error('a leg was cancelled before either answered');
      if (b.outcome.kind === 'failed') {
        const f = b.outcome.failure;
        s.record({ ...attemptOf(b), outcome: f.kind, status: f.status, message: f.message, decision: 'hedge failed too' });
      }
      return a;
    }
    winner = o;
    loser = first.which;
  }
  log.info('latency SLO missed; hedged', { first: cand.model, hedge: hedgeTo.model, afterMs });
  const lost = await (loser === 'a' ? pA : pB);
  const at = attemptOf(lost);
  if (answered(lost)) {
    // Both answered: both were paid for.
    s.record({ ...at, outcome: 'ok', costNanos: lost.outcome.out.costNanos, decision: `hedge: ${winner.cand.model} answered first` });
  } else if ('cancelled' in lost || lost.outcome.kind !== 'denied') {
    s.record({ ...at, outcome: 'hedged_out', decision: `cancelled: ${winner.cand.model} answered first` });
  }
  if (winner.cand === hedgeTo) s.escalations.push({ from: cand.model, to: hedgeTo.model, reason: `latency: no answer within ${afterMs} ms` });
  return winner;
}
