/** The deferred lane's pure rules: deadlines, when a line must be submitted or leave, poll backoff, line ids. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_COLLECTOR, deadlineAt, leaveAt, nextPollMs, parseDeadline, submitBy, worthDeferring } from '../../src/deferred/deadline.js';
import { lineIdOf } from '../../src/workflows/deferred/contract.js';
import { JoinCoalescer } from '../../src/activities/deferred/joinCoalescer.js';
import { waitOutcome } from '../../src/activities/deferred/index.js';

describe('deadlines', () => {
  it('reads durations and ISO times with their offset; refuses the rest, saying what it takes', () => {
    expect(parseDeadline('90s')).toEqual({ afterMs: 90_000 });
    expect(parseDeadline('1.5h')).toEqual({ afterMs: 5_400_000 });
    expect(parseDeadline('1d')).toEqual({ afterMs: 86_400_000 });
    expect(parseDeadline('2026-12-07T18:00:00Z')).toEqual({ atMs: Date.parse('2026-12-07T18:00:00Z') });
    expect(parseDeadline('2026-12-07T18:00:00+02:00')).toEqual({ atMs: Date.parse('2026-12-07T16:00:00Z') });
    for (const bad of ['tomorrow', '6 hours', '2026-12-07T18:00:00', '0s', '-1h'])
      expect((parseDeadline(bad) as { error?: string }).error, bad).toMatch(/duration such as 90s|positive/);
    expect((parseDeadline('25h') as { error: string }).error).toMatch(/at most 24h/);
    expect(deadlineAt('30m', 1_000)).toBe(1_000 + 1_800_000);
    expect(() => deadlineAt('soon', 0)).toThrow(/deadline must be a duration/);
  });

  it('a line leaves in time for a live call, and is submitted by half its time (or maxAgeMs)', () => {
    expect(leaveAt(100_000, 1_000, 10_000)).toBe(87_000);
    const s = { ...DEFAULT_COLLECTOR, maxAgeMs: 60_000 };
    // A short deadline does not wait out maxAgeMs; a long one waits maxAgeMs at most.
    expect(submitBy(0, 40_000, s)).toBe(20_000);
    expect(submitBy(0, 3_600_000, s)).toBe(60_000);
    expect(worthDeferring(1_000, s, 500)).toBe(false);
    expect(worthDeferring(3_600_000, s, 500)).toBe(true);
    expect([0, 1, 2, 3, 10].map((n) => nextPollMs(n, s))).toEqual([5_000, 10_000, 20_000, 40_000, 300_000]);
  });

  it('line ids are short, in every provider custom id alphabet, and differ per attempt', () => {
    const a = lineIdOf('llm-req-1', 'a1');
    expect(a).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(lineIdOf('llm-req-1', 'a1')).toBe(a);
    const ids = new Set(Array.from({ length: 20_000 }, (_, i) => lineIdOf(`llm-req-${i}`, 'a1')));
    expect(ids.size).toBe(20_000);
    expect(lineIdOf('llm-req-1', 'a2')).not.toBe(a);
  });
});

describe('joins gathered into one signal per collector', () => {
  const gather = (send: (id: string, lines: readonly number[]) => Promise<void>, windowMs = 15, maxLines = 4) =>
    new JoinCoalescer<string, number>((id, _to, lines) => send(id, lines), windowMs, maxLines);

  it('sends a burst to each collector once, and a join resolves only after its signal went', async () => {
    const sent: Array<[string, number[]]> = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const c = gather(async (id, lines) => {
      await gate;
      sent.push([id, [...lines]]);
    });
    let done = 0;
    const all = [c.join('a', 'A', 1), c.join('b', 'B', 2), c.join('a', 'A', 3)].map((p) => p.then(() => (done += 1)));
    expect(c.waiting).toBe(3);
    await new Promise((r) => setTimeout(r, 40));
    // The window has passed: the signals are on their way, but nobody is told before they arrive.
    expect(c.waiting).toBe(0);
    expect(done).toBe(0);
    release();
    await Promise.all(all);
    expect(sent.sort()).toEqual([
      ['a', [1, 3]],
      ['b', [2]],
    ]);
  });

  it('sends a full burst at once, without waiting out the window', async () => {
    const sent: number[][] = [];
    const c = gather(async (_id, lines) => void sent.push([...lines]), 60_000, 3);
    await Promise.all([1, 2, 3].map((n) => c.join('a', 'A', n)));
    expect(sent).toEqual([[1, 2, 3]]);
    expect(c.waiting).toBe(0);
  });

  it('a signal that fails fails every join it carried (each local activity retries with its line)', async () => {
    let calls = 0;
    const c = gather(async () => {
      calls += 1;
      throw new Error('frontend unavailable');
    });
    const r = await Promise.allSettled([c.join('a', 'A', 1), c.join('a', 'A', 2)]);
    expect(calls).toBe(1);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    expect((r[0] as PromiseRejectedResult).reason).toHaveProperty('message', 'frontend unavailable');
  });
});

describe("a request's wait, read from its history (a retried delivery asks no worker)", () => {
  const ev = (eventId: number, attrs: Record<string, unknown>) => ({ eventId, ...attrs });
  const scheduled = ev(5, { activityTaskScheduledEventAttributes: { activityId: 'batch-wait-a1' } });
  const other = ev(6, { activityTaskScheduledEventAttributes: { activityId: 'batch-wait-a2' } });

  it('taken when the wait was completed; left when it timed out, failed or was cancelled', () => {
    expect(waitOutcome({ events: [scheduled, ev(7, { activityTaskCompletedEventAttributes: { scheduledEventId: 5 } })] }, 'batch-wait-a1')).toBe('taken');
    for (const k of ['activityTaskTimedOutEventAttributes', 'activityTaskFailedEventAttributes', 'activityTaskCanceledEventAttributes'])
      expect(waitOutcome({ events: [scheduled, ev(7, { [k]: { scheduledEventId: 5 } })] }, 'batch-wait-a1'), k).toBe('left');
  });

  it("another attempt's completion is not this one's", () => {
    const h = { events: [scheduled, other, ev(7, { activityTaskCompletedEventAttributes: { scheduledEventId: 6 } })] };
    expect(waitOutcome(h, 'batch-wait-a1')).toBeUndefined();
    expect(waitOutcome(h, 'batch-wait-a2')).toBe('taken');
  });

  it('unknown while the wait is open, even in a closed run (the answer may have come by the update), or before it was scheduled', () => {
    expect(waitOutcome({ events: [scheduled, ev(8, { workflowExecutionCompletedEventAttributes: {} })] }, 'batch-wait-a1')).toBeUndefined();
    expect(waitOutcome({ events: [scheduled] }, 'batch-wait-a1')).toBeUndefined();
    expect(waitOutcome({ events: [] }, 'batch-wait-a1')).toBeUndefined();
  });
});
