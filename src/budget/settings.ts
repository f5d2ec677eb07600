/** Budget settings from configuration. Pure. */
import { usdToNanos } from '../catalog/schema.js';
import type { BudgetSettings, DenialPolicy } from './book.js';
import type { Periodicity } from './periods.js';
import type { ReallocationSettings } from './reallocation.js';

export interface BudgetConfigLike {
  readonly amountUsd: number;
  readonly periodicity: Periodicity;
  readonly periodMs?: number | undefined;
  readonly timeZone: string;
  readonly allocations: Record<string, number>;
  readonly limits: Record<string, 'hard' | 'soft'>;
  readonly policies: Record<string, DenialPolicy>;
  readonly alertThresholds: number[];
  readonly webhookUrl?: string | undefined;
  readonly maxWaitMs: number;
  readonly reservationTtlMs: number;
  readonly shards: number;
  readonly reallocation?: ReallocationSettings | undefined;
}

/** The scope-wide settings (before any split into shards). */
export function settingsFromConfig(b: Omit<BudgetConfigLike, 'shards'>): BudgetSettings {
  return {
    totalNanos: usdToNanos(b.amountUsd),
    allocations: b.allocations,
    limits: b.limits,
    policies: b.policies,
    periodicity: b.periodicity,
    ...(b.periodMs !== undefined ? { periodMs: b.periodMs } : {}),
    timeZone: b.timeZone,
    alertThresholds: b.alertThresholds,
    ...(b.webhookUrl !== undefined ? { webhookUrl: b.webhookUrl } : {}),
    maxWaitMs: b.maxWaitMs,
    reservationTtlMs: b.reservationTtlMs,
    ...(b.reallocation ? { reallocation: b.reallocation } : {}),
  };
}
