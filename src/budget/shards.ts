/**
 * Sharded budgets: one scope's budget split across N entity workflows, so that reservations and
 * settlements spread over N workflows instead of queueing on one. Each shard owns an exact share of
 * the total (the shares sum to the total); a request reserves on its home shard (a hash of its
 * workflow id) and spills over to the others in order before its category's policy applies, so the
 * whole budget stays usable and no shard ever overspends. Pure.
 */
import { allocate } from './allocation.js';
import type { BudgetSettings, BudgetStatus, CategoryStatus, PeriodSummary } from './book.js';

export const MAX_SHARDS = 64;

/**
 * A budget entity's workflow id. Entities live with the task queue whose workers serve them, so a
 * scope is per task queue: `budget:<queue>:<scope>`, and `#<k>` per shard.
 */
export function shardWorkflowId(taskQueue: string, scope: string, shard: number, shards: number): string {
  const base = `budget:${taskQueue}:${scope}`;
  return shards <= 1 ? base : `${base}#${shard}`;
}

/** FNV-1a: a stable, fast string hash for picking a home shard. */
export function homeShard(key: string, shards: number): number {
  if (shards <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % shards;
}

/** The order in which a request tries the shards: home first, then the others in turn. */
export function shardOrder(key: string, shards: number): number[] {
  const home = homeShard(key, shards);
  return Array.from({ length: Math.max(1, shards) }, (_, i) => (home + i) % Math.max(1, shards));
}

export function shardTotals(totalNanos: number, shards: number): number[] {
  if (shards <= 1) return [totalNanos];
  const parts = allocate(totalNanos, Object.fromEntries(Array.from({ length: shards }, (_, i) => [`s${String(i).padStart(3, '0')}`, 1 / shards])));
  return Array.from({ length: shards }, (_, i) => parts[`s${String(i).padStart(3, '0')}`] ?? 0);
}

export function settingsForShard(settings: BudgetSettings, shard: number, shards: number): BudgetSettings {
  return shards <= 1 ? settings : { ...settings, totalNanos: shardTotals(settings.totalNanos, shards)[shard] ?? 0 };
}

/** One status for the scope from its shards' statuses. */
export function combineStatuses(parts: BudgetStatus[]): BudgetStatus {
  const first = parts[0];
  if (!first) throw new RangeError('no shard statuses to combine');
  if (parts.length === 1) return first;
  const categories: Record<string, CategoryStatus> = {};
  for (const p of parts) {
    for (const [name, c] of Object.entries(p.categories)) {
      const acc = categories[name];
      if (!acc) categories[name] = { ...c };
      else {
        acc.allocatedNanos += c.allocatedNanos;
        acc.spentNanos += c.spentNanos;
        acc.reservedNanos += c.reservedNanos;
        acc.remainingNanos += c.remainingNanos;
      }
    }
  }
  for (const c of Object.values(categories)) c.utilization = c.allocatedNanos > 0 ? c.spentNanos / c.allocatedNanos : 0;
  const sum = (f: (s: BudgetStatus) => number): number => parts.reduce((a, s) => a + f(s), 0);
  const totalNanos = sum((s) => s.totalNanos);
  const spentNanos = sum((s) => s.spentNanos);
  const counters = { ...first.counters };
  for (const p of parts.slice(1))
    for (const k of Object.keys(counters) as Array<keyof typeof counters>) counters[k] = (counters[k] ?? 0) + (p.counters[k] ?? 0);
  return {
    ...first,
    totalNanos,
    spentNanos,
    reservedNanos: sum((s) => s.reservedNanos),
    remainingNanos: sum((s) => s.remainingNanos),
    utilization: totalNanos > 0 ? spentNanos / totalNanos : 0,
    openReservations: sum((s) => s.openReservations),
    categories,
    counters,
  };
}

/** Shards close their periods on their own timers; merge the summaries of the same period. */
export function combineHistories(parts: PeriodSummary[][]): PeriodSummary[] {
  const byStart = new Map<number, PeriodSummary>();
  for (const h of parts) {
    for (const p of h) {
      const acc = byStart.get(p.start);
      if (!acc) {
        byStart.set(p.start, { ...p, categories: Object.fromEntries(Object.entries(p.categories).map(([k, v]) => [k, { ...v }])) });
        continue;
      }
      const cats = { ...acc.categories };
      for (const [k, v] of Object.entries(p.categories)) {
        const c = cats[k];
        cats[k] = c ? { allocatedNanos: c.allocatedNanos + v.allocatedNanos, spentNanos: c.spentNanos + v.spentNanos } : { ...v };
      }
      byStart.set(p.start, {
        ...acc,
        end: Math.max(acc.end, p.end),
        totalNanos: acc.totalNanos + p.totalNanos,
        spentNanos: acc.spentNanos + p.spentNanos,
        categories: cats,
      });
    }
  }
  return [...byStart.values()].sort((a, b) => a.start - b.start);
}
