/**
 * Budget period boundaries in a time zone: calendar days, ISO weeks (Monday start) and calendar
 * months, correct across month ends, leap years and DST changes. Pure: uses only Intl, which
 * Temporal's workflow sandbox provides deterministically.
 */
export const PERIODICITIES = ['daily', 'weekly', 'monthly', 'fixed'] as const;
export type Periodicity = (typeof PERIODICITIES)[number];

export interface Period {
  /** Epoch ms, inclusive. */
  readonly start: number;
  /** Epoch ms, exclusive: the next period's start. */
  readonly end: number;
}

interface LocalParts {
  y: number;
  m: number; // 0-based
  d: number;
  h: number;
  mi: number;
  s: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(tz: string): boolean {
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

export function localParts(ms: number, timeZone: string): LocalParts {
  const parts = formatter(timeZone).formatToParts(new Date(ms));
  const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? '0');
  return { y: get('year'), m: get('month') - 1, d: get('day'), h: get('hour') % 24, mi: get('minute'), s: get('second') };
}

/** The zone's offset from UTC at an instant, in ms (positive east of Greenwich). */
export function offsetMs(ms: number, timeZone: string): number {
  const p = localParts(ms, timeZone);
  const asUtc = Date.UTC(p.y, p.m, p.d, p.h, p.mi, p.s);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant at which the zone's wall clock shows the given local time. For a local time inside
 * a DST gap (it does not exist), an instant just after the gap; for one in an overlap, the first.
 */
export function zonedTimeToUtc(y: number, m: number, d: number, timeZone: string, h = 0, mi = 0): number {
  const wall = Date.UTC(y, m, d, h, mi);
  const before = offsetMs(wall - 36 * 3_600_000, timeZone);
  const after = offsetMs(wall + 36 * 3_600_000, timeZone);
  // Try both offsets around a possible transition; keep the earliest that maps back to the wall time.
  const candidates = [wall - before, wall - after].sort((a, b) => a - b);
  for (const c of candidates) {
    if (c + offsetMs(c, timeZone) === wall) return c;
  }
  // In a gap the wall time never occurs: take the later candidate, which falls after the gap.
  return Math.max(...candidates);
}

/**
 * The period containing an instant. `fixed` periods are `periodMs` long, aligned to the Unix epoch
 * (for hourly budgets, and for tests that need a rollover in seconds).
 */
export function periodContaining(ms: number, periodicity: Periodicity, timeZone: string, periodMs = 0): Period {
  if (periodicity === 'fixed') {
    if (!(periodMs >= 1000)) throw new RangeError('periodMs must be at least 1000 for fixed periods');
    const start = Math.floor(ms / periodMs) * periodMs;
    return { start, end: start + periodMs };
  }
  const p = localParts(ms, timeZone);
  let start: number;
  let end: number;
  switch (periodicity) {
    case 'daily':
      start = zonedTimeToUtc(p.y, p.m, p.d, timeZone);
      end = zonedTimeToUtc(p.y, p.m, p.d + 1, timeZone);
      break;
    case 'weekly': {
      const weekday = new Date(Date.UTC(p.y, p.m, p.d)).getUTCDay(); // 0 = Sunday
      const back = (weekday + 6) % 7; // days since Monday
      start = zonedTimeToUtc(p.y, p.m, p.d - back, timeZone);
      end = zonedTimeToUtc(p.y, p.m, p.d - back + 7, timeZone);
      break;
    }
    default:
      start = zonedTimeToUtc(p.y, p.m, 1, timeZone);
      end = zonedTimeToUtc(p.y, p.m + 1, 1, timeZone);
      break;
  }
  // Guard against a boundary instant that the zone's local clock maps to the previous period.
  if (ms >= end) return periodContaining(end, periodicity, timeZone, periodMs);
  return { start, end };
}

export function nextPeriod(period: Period, periodicity: Periodicity, timeZone: string, periodMs = 0): Period {
  return periodContaining(period.end, periodicity, timeZone, periodMs);
}

/** Whether Intl knows the IANA time zone (an unknown one would throw at every period boundary). */
export function validTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone === '') return false;
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}
