/**
 * One heartbeat per activity execution: the paid call and the provider call inside it share it, so
 * a stream's progress (tokens, model) is what the server last heard, not overwritten by an empty beat.
 * The activity context is a stand-in (an object with heartbeat() and info): the SDK's is made only by a worker.
 */
import type { Context } from '@temporalio/activity';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { heartbeatFor, streamedSoFar } from '../../src/activities/request/heartbeat.js';

describe('heartbeatFor', () => {
  afterEach(() => vi.useRealTimers());

  it('joins the beat already going; every beat carries the details; the last user stops it', () => {
    vi.useFakeTimers();
    const sent: unknown[] = [];
    const ctx = { heartbeat: (d?: unknown) => sent.push(d), info: {} } as unknown as Context;
    const outer = heartbeatFor(ctx);
    vi.advanceTimersByTime(1_000);
    expect(sent).toEqual([undefined]);
    const inner = heartbeatFor(ctx);
    expect(inner.details).toBe(outer.details);
    Object.assign(inner.details, { model: 'gpt-4o-mini', streamedTokens: 12 });
    vi.advanceTimersByTime(3_000);
    // One timer: three beats in three seconds, each with the details.
    expect(sent.slice(1)).toEqual([
      { model: 'gpt-4o-mini', streamedTokens: 12 },
      { model: 'gpt-4o-mini', streamedTokens: 12 },
      { model: 'gpt-4o-mini', streamedTokens: 12 },
    ]);
    inner.stop();
    inner.stop();
    vi.advanceTimersByTime(1_000);
    expect(sent).toHaveLength(5);
    outer.stop();
    vi.advanceTimersByTime(5_000);
    expect(sent).toHaveLength(5);
  });

  it("reads a stream's progress from the last attempt's details, ignoring what is not a count or a name", () => {
    const ctx = (d: unknown) => ({ info: { heartbeatDetails: d } }) as unknown as Context;
    expect(streamedSoFar(ctx({ streamedTokens: 7, model: 'm' }))).toEqual({ streamedTokens: 7, model: 'm' });
    expect(streamedSoFar(ctx(undefined))).toEqual({ streamedTokens: 0 });
    expect(streamedSoFar(ctx({ streamedTokens: '7', model: 3 }))).toEqual({ streamedTokens: 0 });
  });
});
