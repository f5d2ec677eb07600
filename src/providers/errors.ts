/**
 * One error taxonomy for every provider. Adapters map their SDK's errors into ProviderError; the
 * workflow decides what to do from `kind` alone.
 *
 * | kind              | from                                                        | what happens            |
 * |-------------------|-------------------------------------------------------------|-------------------------|
 * | rate_limited      | 429, 529 (Anthropic overloaded)                             | wait Retry-After, retry |
 * | transient         | 5xx, 408, 409, timeouts, dropped connections, bad bodies    | backoff, retry          |
 * | context_too_long  | 400/413 with a context-length error                         | next, larger model      |
 * | fatal             | other 4xx (bad request, auth, permission, content policy)   | no retry on this model  |
 */
export const ERROR_KINDS = ['rate_limited', 'transient', 'context_too_long', 'fatal'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface ProviderErrorInfo {
  readonly kind: ErrorKind;
  readonly status?: number | undefined;
  /** From Retry-After (seconds or HTTP date) or the provider's reset headers. */
  readonly retryAfterMs?: number | undefined;
  readonly message: string;
  readonly provider: string;
  readonly model: string;
}

export class ProviderError extends Error implements ProviderErrorInfo {
  override readonly name = 'ProviderError';
  readonly kind: ErrorKind;
  readonly status?: number | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly provider: string;
  readonly model: string;
  constructor(info: ProviderErrorInfo) {
    super(info.message);
    this.kind = info.kind;
    this.status = info.status;
    this.retryAfterMs = info.retryAfterMs;
    this.provider = info.provider;
    this.model = info.model;
  }
  toInfo(): ProviderErrorInfo {
    return { kind: this.kind, status: this.status, retryAfterMs: this.retryAfterMs, message: this.message, provider: this.provider, model: this.model };
  }
}

const CONTEXT_PATTERNS = /context[_ ]length|context window|too many tokens|prompt is too long|maximum context|input.*too long|exceeds the maximum/i;

export function kindForStatus(status: number, message: string): ErrorKind {
  if (status === 429 || status === 529) return 'rate_limited';
  if ((status === 400 || status === 413) && CONTEXT_PATTERNS.test(message)) return 'context_too_long';
  if (status === 408 || status === 409 || status >= 500) return 'transient';
  return 'fatal';
}

type HeaderBag = Headers | Record<string, string | string[] | undefined> | undefined | null;

function header(headers: HeaderBag, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const rec = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(rec).find((k) => k.toLowerCase() === name);
  const v = key === undefined ? undefined : rec[key];
  return Array.isArray(v) ? v[0] : v;
}

/** Parses OpenAI-style durations such as "1s", "6m0s", "250ms", "1h2m3.5s". */
export function parseDuration(v: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = '';
  for (const m of v.matchAll(re)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
    matched += m[0];
  }
  return matched.length > 0 && matched === v.trim() ? Math.ceil(total) : undefined;
}

/**
 * How long a provider asked us to wait, in ms: `retry-after-ms`, `retry-after` (seconds or an
 * HTTP date), then the providers' reset headers (OpenAI `x-ratelimit-reset-*` durations,
 * Anthropic `anthropic-ratelimit-*-reset` RFC 3339 times). `now` is injected for testability.
 */
export function retryAfterMs(headers: HeaderBag, now: number = Date.now()): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms));
  const ra = header(headers, 'retry-after');
  if (ra !== undefined) {
    const t = ra.trim();
    if (/^\d+(\.\d+)?$/.test(t)) return Math.ceil(Number(t) * 1000);
    const date = Date.parse(t);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const resets: number[] = [];
  for (const name of ['x-ratelimit-reset-requests', 'x-ratelimit-reset-tokens']) {
    const v = header(headers, name);
    const d = v === undefined ? undefined : parseDuration(v.trim());
    if (d !== undefined) resets.push(d);
  }
  for (const name of [
    'anthropic-ratelimit-requests-reset',
    'anthropic-ratelimit-tokens-reset',
    'anthropic-ratelimit-input-tokens-reset',
    'anthropic-ratelimit-output-tokens-reset',
  ]) {
    const v = header(headers, name);
    const d = v === undefined ? Number.NaN : Date.parse(v);
    if (!Number.isNaN(d)) resets.push(Math.max(0, d - now));
  }
  return resets.length > 0 ? Math.max(...resets) : undefined;
}

export function fromHttpStatus(status: number, message: string, headers: HeaderBag, where: { provider: string; model: string }): ProviderError {
  const kind = kindForStatus(status, message);
  return new ProviderError({
    kind,
    status,
    retryAfterMs: kind === 'rate_limited' || kind === 'transient' ? retryAfterMs(headers) : undefined,
    message: `${where.provider} ${status}: ${message}`.slice(0, 500),
    ...where,
  });
}

export function transient(message: string, where: { provider: string; model: string }): ProviderError {
  return new ProviderError({ kind: 'transient', message: `${where.provider}: ${message}`.slice(0, 500), ...where });
}

/**
 * A batch submission's failure (any provider's SDK): by the HTTP status its error carries (`status`,
 * or Mistral's `statusCode`), so a refusal (400, 401, 403, 404, 422) is `fatal` and not retried;
 * without a status (a dropped connection), transient.
 */
export function submitFailure(e: unknown, where: { provider: string; model: string }): ProviderError {
  if (e instanceof ProviderError) return e;
  const o = (typeof e === 'object' && e !== null ? e : {}) as { status?: unknown; statusCode?: unknown };
  const status = typeof o.status === 'number' ? o.status : typeof o.statusCode === 'number' ? o.statusCode : undefined;
  const message = `batch submit failed: ${e instanceof Error ? e.message : String(e)}`;
  return status !== undefined ? fromHttpStatus(status, message, undefined, where) : transient(message, where);
}
