/**
 * Deferred requests' deadlines and the collector's rules, as pure functions: a deadline is an ISO
 * time or a duration from the request's start ("90s", "30m", "6h", "1d"); a request leaves its
 * batch for a live call when the deadline comes near (its model's live latency and a margin).
 */

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
/** Providers answer a batch within 24 h: a longer deadline gains nothing. */
export const MAX_DEFER_MS = 24 * 3_600_000;

/** What a deadline is: a duration's milliseconds, or an ISO time's epoch milliseconds. */
export type ParsedDeadline = { readonly afterMs: number } | { readonly atMs: number };

/** Parses a deadline; a string that is neither form is an error naming both. */
export function parseDeadline(text: string): ParsedDeadline | { readonly error: string } {
  const d = DURATION.exec(text.trim());
  if (d) {
    const ms = Math.round(Number(d[1]) * (UNITS[d[2] ?? 's'] ?? 1_000));
    if (ms <= 0) return { error: 'must be a positive duration' };
    if (ms > MAX_DEFER_MS) return { error: `must be at most 24h (the providers' batch window), got ${text}` };
    return { afterMs: ms };
  }
  // An ISO time with its offset (Z or +hh:mm): a time without one would be read in each machine's own zone.
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text.trim())) {
    const at = Date.parse(text);
    if (!Number.isNaN(at)) return { atMs: at };
  }
  return { error: `must be a duration such as 90s, 30m, 6h or 1d, or an ISO time with its offset such as 2026-12-07T18:00:00Z; got "${text}"` };
}

/** The deadline's epoch milliseconds for a request that started at `startedAtMs`. */
export function deadlineAt(text: string, startedAtMs: number): number {
  const p = parseDeadline(text);
  if ('error' in p) throw new RangeError(`deadline ${p.error}`);
  return 'afterMs' in p ? startedAtMs + p.afterMs : p.atMs;
}

/** When a deferred request leaves its batch to be called live in time: its deadline less the live call's expected latency and a margin. */
export function leaveAt(deadlineMs: number, liveLatencyMs: number, marginMs: number): number {
  return deadlineMs - liveLatencyMs * 3 - marginMs;
}

/**
 * When a deferred request goes to a stronger model at its batch price instead of the model routed
 * for it: `no_dearer` when the stronger model's batch price is at or below what the routed model
 * would cost deferred (its batch price, or its live price when it has no batch API), so the bill
 * never grows; `up_to_live` when it is at or below the routed model's live price (a better answer
 * for at most the live bill); `off` never.
 */
export const BATCH_UPGRADES = ['off', 'no_dearer', 'up_to_live'] as const;
export type BatchUpgrade = (typeof BATCH_UPGRADES)[number];

/** The collector's rules: a batch goes when it is this full or its oldest line this old. */
export interface CollectorSettings {
  readonly maxLines: number;
  readonly maxAgeMs: number;
  /** First and longest wait between polls of a provider batch (the wait doubles up to the longest). */
  readonly pollMinMs: number;
  readonly pollMaxMs: number;
  /** How long before its deadline a request leaves the batch, beyond its live latency. */
  readonly leaveMarginMs: number;
  /** Whether routing may pick a stronger model for the batch (BatchUpgrade); absent: no_dearer. */
  readonly upgrade?: BatchUpgrade | undefined;
}

export const DEFAULT_COLLECTOR: CollectorSettings = {
  maxLines: 1000,
  maxAgeMs: 60_000,
  pollMinMs: 5_000,
  pollMaxMs: 300_000,
  leaveMarginMs: 60_000,
  upgrade: 'no_dearer',
};

/** Whether a request with this much time left can go through a batch at all: one poll, and leaving in time for a live call. */
export function worthDeferring(timeLeftMs: number, s: CollectorSettings, liveLatencyMs: number): boolean {
  return timeLeftMs > 2 * s.pollMinMs + liveLatencyMs * 3 + s.leaveMarginMs;
}

/**
 * When a waiting line must be submitted: once it is maxAgeMs old, or has used half the time it has
 * before leaving for a live call (a short deadline does not wait out a long maxAgeMs).
 */
export function submitBy(joinedAtMs: number, leaveAtMs: number, s: CollectorSettings): number {
  return Math.min(joinedAtMs + s.maxAgeMs, joinedAtMs + Math.max(0, Math.floor((leaveAtMs - joinedAtMs) / 2)));
}

/** The next wait between polls: doubling from pollMinMs, at most pollMaxMs. */
export function nextPollMs(polls: number, s: CollectorSettings): number {
  return Math.min(s.pollMaxMs, s.pollMinMs * 2 ** Math.min(polls, 20));
}
