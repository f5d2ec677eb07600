/** Google Gemini generateContent through the official `@google/genai` SDK, SDK retries off. */
import { ApiError, type Content, type FunctionCall, type GenerateContentConfig, GoogleGenAI, type GenerateContentResponse } from '@google/genai';
import { fromHttpStatus, ProviderError, transient } from './errors.js';
import { geminiContents, geminiTools } from './toolWire.js';
import { functionCallsOf, geminiResponseOf, textOf } from './geminiResponse.js';
import { GeminiBatchApi } from './geminiBatchApi.js';
import { type AdapterOptions, type BatchApi, type ChatRequest, type ChatResponse, type ProviderAdapter, REQUEST_ID_HEADER } from './types.js';

export class GeminiAdapter implements ProviderAdapter {
  readonly provider = 'google';
  private readonly client: GoogleGenAI;
  private readonly timeoutMs: number;
  readonly batch: BatchApi;

  constructor(opts: AdapterOptions) {
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.client = new GoogleGenAI({
      apiKey: opts.apiKey,
      httpOptions: {
        ...(opts.baseURL ? { baseUrl: opts.baseURL } : {}),
        timeout: this.timeoutMs,
        // No retryOptions: with them the SDK wraps errors in p-retry and loses the HTTP status;
        // without them it makes one plain fetch, which is what we want (Temporal owns retries).
      },
    });
    this.batch = new GeminiBatchApi(this.client, (l) => {
      // A batch line: the live call's request without its per-call HTTP options, keyed by the line's custom id.
      const { model, contents, config } = this.params(l.req);
      const { httpOptions: _h, abortSignal: _a, ...lineConfig } = config as GenerateContentConfig;
      return { model, contents, config: lineConfig, metadata: { key: l.customId } };
    });
  }

  private params(req: ChatRequest) {
    return {
      model: req.model,
      // Gemini names the assistant's turns "model"; toolWire.ts builds the SDK's shapes without importing it.
      contents: geminiContents(req.turns) as unknown as Content[],
      config: {
        ...(geminiTools(req.tools) as Pick<GenerateContentConfig, 'tools' | 'toolConfig'>),
        maxOutputTokens: req.maxOutputTokens,
        ...(req.system ? { systemInstruction: req.system } : {}),
        ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
        ...(req.signal ? { abortSignal: req.signal } : {}),
        httpOptions: {
          timeout: req.timeoutMs ?? this.timeoutMs,
          ...(req.requestId ? { headers: { [REQUEST_ID_HEADER]: req.requestId } } : {}),
        },
      },
    };
  }

  async chatStream(req: ChatRequest, onText: (text: string) => void): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    let text = '';
    let last: GenerateContentResponse | undefined;
    const calls: FunctionCall[] = [];
    try {
      for await (const res of await this.client.models.generateContentStream(this.params(req))) {
        last = res;
        const piece = textOf(res);
        if (piece) {
          text += piece;
          onText(piece);
        }
        calls.push(...functionCallsOf(res));
      }
    } catch (e) {
      throw mapGeminiError(e, where);
    }
    return this.responseOf(last, text, calls, req, where);
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    let res: GenerateContentResponse;
    try {
      res = await this.client.models.generateContent(this.params(req));
    } catch (e) {
      throw mapGeminiError(e, where);
    }
    return this.responseOf(res, textOf(res), functionCallsOf(res), req, where);
  }

  /** A response (a stream's last piece) as the adapter's: its usage and finish reason, with the text. */
  private responseOf(
    res: GenerateContentResponse | undefined,
    text: string,
    calls: readonly FunctionCall[],
    req: ChatRequest,
    where: { provider: string; model: string },
  ): ChatResponse {
    const out = res ? geminiResponseOf(res, text, calls, req.requestId, where.model) : undefined;
    if (!out) throw transient('malformed response: missing candidates or usageMetadata', where);
    return out;
  }
}

export function mapGeminiError(e: unknown, where: { provider: string; model: string }): ProviderError {
  if (e instanceof ProviderError) return e;
  if (e instanceof ApiError) {
    // The SDK does not expose response headers on ApiError, so Retry-After is not available here;
    // the workflow's backoff applies instead.
    return fromHttpStatus(e.status, e.message, undefined, where);
  }
  const err = e as Error;
  if (err?.name === 'AbortError') return transient('request aborted or timed out', where);
  return transient(`${err?.message ?? String(e)}`, where);
}
