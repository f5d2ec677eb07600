/** The one interface every provider adapter implements. */
import type { Usage } from '../catalog/pricing.js';

/** A tool (function) the model may call: its name, what it is for, and its arguments' JSON Schema. */
export interface ToolSpec {
  readonly name: string;
  readonly description?: string | undefined;
  /** A JSON Schema of type object. */
  readonly parameters: Readonly<Record<string, unknown>>;
}

/** Which tools the model may call: as it sees fit, none, at least one, or the one named. */
export type ToolChoice = 'auto' | 'none' | 'required' | { readonly name: string };

/** A call the model made: its id (the provider's, or one made up where the provider has none), the tool, and the arguments as JSON text as the model wrote them (they may not parse). */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  readonly arguments: string;
}

/**
 * One turn of a conversation; system instructions travel separately (`ChatRequest.system`). An
 * assistant turn may carry the tool calls it made; a tool turn is the result of one of them.
 */
export type ChatTurn =
  | { readonly role: 'user'; readonly content: string }
  | { readonly role: 'assistant'; readonly content: string; readonly toolCalls?: readonly ToolCall[] | undefined }
  | { readonly role: 'tool'; readonly content: string; readonly toolCallId: string; readonly name: string };

/** The tools a request offers the model (absent: none). */
export interface ToolUse {
  readonly tools: readonly ToolSpec[];
  readonly choice?: ToolChoice | undefined;
  /** false: at most one call per answer (absent: the provider's default, several allowed). */
  readonly parallel?: boolean | undefined;
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
  readonly tools?: ToolUse | undefined;
}

export interface ChatResponse {
  readonly text: string;
  /** The calls the model made (absent or empty: none); the finish reason is then the provider's for tool use. */
  readonly toolCalls?: readonly ToolCall[] | undefined;
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
