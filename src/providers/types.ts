/** The one interface every provider adapter implements. */
import type { Usage } from '../catalog/pricing.js';

/** One turn of a conversation; system instructions travel separately (`ChatRequest.system`). */
export interface ChatTurn {
  readonly role: 'user' | 'assistant';
  readonly content: string;
}

export interface ChatRequest {
  /** The provider's model id. */
  readonly model: string;
  readonly system?: string | undefined;
  /** Alternating turns, starting and ending with the user's. */
  readonly turns: readonly ChatTurn[];
  readonly maxOutputTokens: number;
  readonly temperature?: number | undefined;
  /** Sent as `x-switchyard-request-id`: correlates provider logs with the workflow. */
  readonly requestId?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs?: number | undefined;
}

export interface ChatResponse {
  readonly text: string;
  readonly usage: Usage;
  readonly finishReason: string;
  readonly providerModel: string;
}

export interface ProviderAdapter {
  readonly provider: string;
  chat(req: ChatRequest): Promise<ChatResponse>;
  /**
   * The same call, streamed: `onText` gets each piece of the answer as the provider sends it; the
   * result is the whole answer with the usage the provider reported at the end. A failure after
   * some text throws as `chat` does (the caller has the text it was given).
   */
  chatStream(req: ChatRequest, onText: (text: string) => void): Promise<ChatResponse>;
}

export const REQUEST_ID_HEADER = 'x-switchyard-request-id';

/** What every adapter is built from: a key, an optional base URL, and the SDK's own timeout. */
export interface AdapterOptions {
  readonly apiKey: string;
  readonly baseURL?: string | undefined;
  readonly timeoutMs?: number | undefined;
}
