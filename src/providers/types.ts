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
  /** The provider's batch API (absent: it has none, or this adapter does not speak it yet). */
  readonly batch?: BatchApi | undefined;
}

export const REQUEST_ID_HEADER = 'x-switchyard-request-id';

/** What every adapter is built from: a key, an optional base URL, and the SDK's own timeout. */
export interface AdapterOptions {
  readonly apiKey: string;
  readonly baseURL?: string | undefined;
  readonly timeoutMs?: number | undefined;
}

/** One line of a provider batch: the id it is answered under, and the call. */
export interface BatchLine {
  readonly customId: string;
  readonly req: ChatRequest;
}

/**
 * A provider batch as the provider reports it: `running` (validating, in progress, finalizing),
 * or ended as `completed`, `failed` (nothing answered), `expired` (its window passed; lines
 * answered before that have results) or `cancelled`.
 */
export interface ProviderBatch {
  readonly id: string;
  readonly state: 'running' | 'completed' | 'failed' | 'expired' | 'cancelled';
  readonly createdAtMs: number;
  /** What the provider says when it failed the whole batch. */
  readonly message?: string | undefined;
}

/** One line's outcome in an ended batch: its answer, or why it has none. */
export type BatchLineResult =
  | { readonly customId: string; readonly ok: true; readonly res: ChatResponse }
  | { readonly customId: string; readonly ok: false; readonly why: 'errored' | 'expired' | 'cancelled'; readonly message: string };

/**
 * A provider's batch API (OpenAI files + batches, Anthropic message batches, ...). `submit` tags
 * the batch so that `find` can find it again after a worker died between creating it and
 * recording its id (docs/deferred.md says how each provider keeps the tag).
 */
export interface BatchApi {
  submit(lines: readonly BatchLine[], tag: string, model: string): Promise<ProviderBatch>;
  /** The batch submitted with this tag since `sinceMs` (with `count` lines), if the provider has it. */
  find(tag: string, sinceMs: number, count: number): Promise<ProviderBatch | undefined>;
  get(id: string): Promise<ProviderBatch>;
  results(id: string): Promise<BatchLineResult[]>;
  cancel(id: string): Promise<void>;
}
