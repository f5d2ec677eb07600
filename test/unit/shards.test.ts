import { describe, expect, it } from 'vitest';
import { type BudgetSettings, newBook, reserve, settle, status } from '../../src/budget/book.js';
import { periodContaining } from '../../src/budget/periods.js';
import { combineHistories, combineStatuses, homeShard, settingsForShard, shardOrder, shardTotals, shardWorkflowId } from '../../src/budget/shards.js';

const settings: BudgetSettings = {
  totalNanos: 1_000_000_007,
  allocations: { critical: 0.4, standard: 0.35, batch: 0.25 },
  limits: {},
  policies: {},
  periodicity: 'monthly',
  timeZone: 'UTC',
  alertThresholds: [],
  maxWaitMs: 0,
  reservationTtlMs: 3_600_000,
};
const period = periodContaining(Date.parse('2026-11-28T00:00:00Z'), 'monthly', 'UTC');

describe('budget shards', () => {
  it('split the total exactly', () => {
    for (const n of [1, 2, 3, 7, 64]) {
      const t = shardTotals(settings.totalNanos, n);
      expect(t).toHaveLength(n);
      expect(t.reduce((a, b) => a + b, 0)).toBe(settings.totalNanos);
    }
  });

  it('keep one entity id per scope when unsharded, and distinct ids per shard', () => {
    expect(shardWorkflowId('switchyard', 'default', 0, 1)).toBe('budget:switchyard:default');
    expect(new Set([0, 1, 2, 3].map((k) => shardWorkflowId('switchyard', 'default', k, 4))).size).toBe(4);
  });

  it('spread requests over the shards and try every shard once', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[homeShard(`llm-req-${i}`, 4)]! += 1;
    for (const c of counts) expect(c).toBeGreaterThan(800);
    const order = shardOrder('llm-x', 4);
    expect([...order].sort()).toEqual([0, 1, 2, 3]);
    expect(order[0]).toBe(homeShard('llm-x', 4));
  });

  it('combine shard statuses into the scope totals', () => {
    const books = [0, 1, 2].map((k) => newBook('s', settingsForShard(settings, k, 3), period));
    reserve(books[0]!, { reservationId: 'a', category: 'batch', amountNanos: 100, workflowId: 'w' }, 0);
    settle(books[0]!, 'a', 'batch', 60, 0);
    reserve(books[2]!, { reservationId: 'b', category: 'batch', amountNanos: 50, workflowId: 'w' }, 0);
    const st = combineStatuses(books.map(status));
    expect(st.totalNanos).toBe(settings.totalNanos);
    expect(st.spentNanos).toBe(60);
    expect(st.reservedNanos).toBe(50);
    expect(Object.values(st.categories).reduce((a, c) => a + c.allocatedNanos, 0)).toBe(settings.totalNanos);
    expect(st.categories.batch).toMatchObject({ spentNanos: 60, reservedNanos: 50 });
    expect(st.remainingNanos).toBe(settings.totalNanos - 110);
  });

  it('merge the histories of one period', () => {
    const h = combineHistories([
      [{ start: 1, end: 2, totalNanos: 10, spentNanos: 3, categories: { batch: { allocatedNanos: 10, spentNanos: 3 } }, closedBy: 'timer' }],
      [{ start: 1, end: 2, totalNanos: 11, spentNanos: 4, categories: { batch: { allocatedNanos: 11, spentNanos: 4 } }, closedBy: 'timer' }],
    ]);
    expect(h).toEqual([{ start: 1, end: 2, totalNanos: 21, spentNanos: 7, categories: { batch: { allocatedNanos: 21, spentNanos: 7 } }, closedBy: 'timer' }]);
  });
});
