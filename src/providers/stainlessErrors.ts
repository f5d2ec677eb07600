/**
 * The OpenAI and Anthropic SDKs are generated from the same template and share an error class
 * hierarchy and per-call options; one mapper and one options builder serve both.
 */
import { fromHttpStatus, ProviderError, transient } from './errors.js';
import { type ChatRequest, REQUEST_ID_HEADER } from './types.js';

type ErrorClass = abstract new (...args: never[]) => Error;

export interface SdkErrorClasses {
  readonly APIError: ErrorClass;
  readonly APIUserAbortError: ErrorClass;
  readonly APIConnectionTimeoutError: ErrorClass;
  readonly APIConnectionError: ErrorClass;
}

export function mapSdkError(e: unknown, where: { provider: string; model: string }, sdk: SdkErrorClasses): ProviderError {
  if (e instanceof ProviderError) return e;
  if (e instanceof sdk.APIUserAbortError) return transient('request aborted', where);
  if (e instanceof sdk.APIConnectionTimeoutError) return transient('request timed out', where);
  if (e instanceof sdk.APIConnectionError) return transient(`connection failed: ${e.message}`, where);
  if (e instanceof sdk.APIError) {
    const { status, headers } = e as Error & { status?: unknown; headers?: Headers };
    if (typeof status === 'number') return fromHttpStatus(status, e.message, headers, where);
  }
  // JSON parse failures and other surprises from a broken response body.
  return transient(`malformed response: ${(e as Error)?.message ?? String(e)}`, where);
}

/** The per-call options both Stainless SDKs (openai, @anthropic-ai/sdk) take: the abort signal, the timeout, the request-id header. */
export function stainlessOptions(req: ChatRequest): { signal?: AbortSignal | undefined; timeout?: number; headers?: Record<string, string> } {
  return {
    signal: req.signal,
    ...(req.timeoutMs !== undefined ? { timeout: req.timeoutMs } : {}),
    ...(req.requestId ? { headers: { [REQUEST_ID_HEADER]: req.requestId } } : {}),
  };
}
