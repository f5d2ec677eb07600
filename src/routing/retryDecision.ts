/**
 * What to do after a failed provider attempt: the error semantics table, as a pure function.
 * The workflow applies it with durable timers, so waits survive worker restarts.
 */
import type { ErrorKind } from '../providers/errors.js';

export interface RetryPolicy {
  readonly maximumAttempts: number;
  readonly initialIntervalMs: number;
  readonly backoffCoefficient: number;
  readonly maximumIntervalMs: number;
  readonly maxRetryAfterMs: number;
  /** When every candidate is rate-limited, wait (durably) this long at most for the earliest reset. */
  readonly maxRateLimitWaitMs: number;
}

/**
 * What a failed attempt can be: a provider's answer (ErrorKind), an activity timeout, a provider the
 * worker has no credentials for (`unavailable`), or anything else that went wrong on the worker
 * (`internal`: a bug, a malformed usage block, a model missing from the worker's catalog).
 */
export type FailureKind = ErrorKind | 'timeout' | 'unavailable' | 'internal';
export const FAILURE_KINDS: readonly FailureKind[] = ['rate_limited', 'transient', 'context_too_long', 'fatal', 'timeout', 'unavailable', 'internal'];

export function isFailureKind(k: unknown): k is FailureKind {
  return typeof k === 'string' && (FAILURE_KINDS as readonly string[]).includes(k);
}

export interface FailureFacts {
  readonly kind: FailureKind;
  readonly status?: number | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly message: string;
  /** 1-based attempt number on this model. */
  readonly attempt: number;
}

export type Decision =
  | { readonly action: 'retry'; readonly delayMs: number; readonly why: string }
  | {
      readonly action: 'next';
      readonly why: string;
      readonly needLargerContext?: boolean;
      readonly otherProvider?: boolean;
      /** Rate-limited for this long: the model may be retried after that if nothing else answers. */
      readonly rateLimitedForMs?: number;
    }
  | { readonly action: 'fail'; readonly why: string };

/**
 * The worker's answer to a failed attempt: its retry policy applied (the policy stays on the
 * worker), and how long a request may wait for rate-limited models to reset.
 */
export interface RetryVerdict {
  readonly decision: Decision;
  readonly maxRateLimitWaitMs: number;
}

const POLICY_REFUSAL = /content[ _-]?policy|safety|moderation|refus/i;

export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const raw = policy.initialIntervalMs * policy.backoffCoefficient ** Math.max(0, attempt - 1);
  return Math.min(policy.maximumIntervalMs, Math.round(raw));
}

export interface DecisionOptions {
  /** A Retry-After on a 5xx above maxRetryAfterMs moves on instead of being waited out (default true). */
  readonly capTransientRetryAfter?: boolean;
}

export function decideAfterFailure(f: FailureFacts, policy: RetryPolicy, opts: DecisionOptions = {}): Decision {
  const attemptsLeft = f.attempt < policy.maximumAttempts;
  switch (f.kind) {
    case 'rate_limited': {
      const wait = f.retryAfterMs ?? backoffMs(policy, f.attempt);
      if (wait > policy.maxRetryAfterMs)
        return { action: 'next', why: `rate limited for ${wait} ms > bound ${policy.maxRetryAfterMs} ms`, rateLimitedForMs: wait };
      if (!attemptsLeft) return { action: 'next', why: `rate limited; ${policy.maximumAttempts} attempts spent`, rateLimitedForMs: wait };
      return { action: 'retry', delayMs: wait, why: f.retryAfterMs !== undefined ? `Retry-After ${wait} ms` : `rate limited, backoff ${wait} ms` };
    }
    case 'transient':
    case 'timeout': {
      if (!attemptsLeft) return { action: 'next', why: `${f.kind}; ${policy.maximumAttempts} attempts spent` };
      // A Retry-After on a 5xx is honoured up to the same bound as on a 429, never a year-long timer.
      if (opts.capTransientRetryAfter !== false && f.retryAfterMs !== undefined && f.retryAfterMs > policy.maxRetryAfterMs) {
        return { action: 'next', why: `${f.kind} with Retry-After ${f.retryAfterMs} ms > bound ${policy.maxRetryAfterMs} ms` };
      }
      const wait = Math.max(backoffMs(policy, f.attempt), f.retryAfterMs ?? 0);
      return { action: 'retry', delayMs: wait, why: `${f.kind}, backoff ${wait} ms` };
    }
    case 'unavailable':
      return { action: 'next', why: `provider not available on the worker: ${f.message}`, otherProvider: true };
    case 'internal':
      return { action: 'next', why: `worker error: ${f.message}` };
    case 'context_too_long':
      return { action: 'next', why: 'context too long for this model', needLargerContext: true };
    case 'fatal': {
      if (f.status === 401 || f.status === 403) return { action: 'next', why: `HTTP ${f.status}: credentials of this provider`, otherProvider: true };
      if (POLICY_REFUSAL.test(f.message)) return { action: 'next', why: 'content-policy refusal', otherProvider: true };
      return { action: 'fail', why: `non-retryable: ${f.message}` };
    }
    default: {
      // Unreachable for typed callers; a kind from an older or newer worker must still end in a decision.
      const unknown: never = f.kind;
      return { action: 'next', why: `unrecognised failure (${String(unknown)}): ${f.message}` };
    }
  }
}
