/** Google Gemini generateContent through the official `@google/genai` SDK, SDK retries off. */
import { ApiError, GoogleGenAI, type GenerateContentResponse } from '@google/genai';
import { fromHttpStatus, ProviderError, transient } from './errors.js';
import { type AdapterOptions, type ChatRequest, type ChatResponse, type ProviderAdapter, REQUEST_ID_HEADER } from './types.js';

export class GeminiAdapter implements ProviderAdapter {
  readonly provider = 'google';
  private readonly client: GoogleGenAI;
  private readonly timeoutMs: number;

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
  }

  private params(req: ChatRequest) {
    return {
      model: req.model,
      // Gemini names the assistant's turns "model".
      contents: req.turns.map((t) => ({ role: t.role === 'assistant' ? 'model' : 'user', parts: [{ text: t.content }] })),
      config: {
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
    try {
      for await (const res of await this.client.models.generateContentStream(this.params(req))) {
        last = res;
        const piece = res.text;
        if (piece) {
          text += piece;
          onText(piece);
        }
      }
    } catch (e) {
      throw mapGeminiError(e, where);
    }
    return this.responseOf(last, text, where);
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    let res: GenerateContentResponse;
    try {
      res = await this.client.models.generateContent(this.params(req));
    } catch (e) {
      throw mapGeminiError(e, where);
    }
    return this.responseOf(res, res.text ?? '', where);
  }

  /** A response (a stream's last piece) as the adapter's: its usage and finish reason, with the text. */
  private responseOf(res: GenerateContentResponse | undefined, text: string, where: { provider: string; model: string }): ChatResponse {
    const usage = res?.usageMetadata;
    const candidate = res?.candidates?.[0];
    if (!res || !candidate || !usage || typeof usage.promptTokenCount !== 'number') {
      throw transient('malformed response: missing candidates or usageMetadata', where);
    }
    const cached = usage.cachedContentTokenCount ?? 0;
    return {
      text,
      usage: {
        inputTokens: usage.promptTokenCount - cached,
        cachedInputTokens: cached,
        outputTokens: (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0),
      },
      finishReason: candidate.finishReason ?? 'unknown',
      providerModel: res.modelVersion ?? where.model,
    };
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
