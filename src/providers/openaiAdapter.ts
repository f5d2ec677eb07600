/**
 * OpenAI chat completions through the official `openai` SDK, SDK retries off. Also serves
 * OpenAI-compatible self-hosted servers (vLLM, Ollama, llama.cpp): same wire format, other base URL.
 */
import OpenAI from 'openai';
import { type ProviderError, transient } from './errors.js';
import { mapSdkError } from './stainlessErrors.js';
import { type AdapterOptions, type ChatRequest, type ChatResponse, type ProviderAdapter, REQUEST_ID_HEADER } from './types.js';

export interface OpenAIAdapterOptions extends AdapterOptions {
  /** "openai" or "self-hosted": the same wire format. */
  readonly provider: string;
}

export class OpenAIAdapter implements ProviderAdapter {
  readonly provider: string;
  private readonly client: OpenAI;

  constructor(opts: OpenAIAdapterOptions) {
    this.provider = opts.provider;
    this.client = new OpenAI({
      apiKey: opts.apiKey,
      baseURL: opts.baseURL,
      maxRetries: 0,
      timeout: opts.timeoutMs ?? 120_000,
    });
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [];
    if (req.system) messages.push({ role: 'system', content: req.system });
    for (const t of req.turns) messages.push({ role: t.role, content: t.content });
    let res: OpenAI.Chat.ChatCompletion;
    try {
      res = await this.client.chat.completions.create(
        { model: req.model, messages, max_completion_tokens: req.maxOutputTokens, ...(req.temperature !== undefined ? { temperature: req.temperature } : {}) },
        {
          signal: req.signal,
          ...(req.timeoutMs !== undefined ? { timeout: req.timeoutMs } : {}),
          ...(req.requestId ? { headers: { [REQUEST_ID_HEADER]: req.requestId } } : {}),
        },
      );
    } catch (e) {
      throw mapOpenAIError(e, where);
    }
    const choice = res.choices?.[0];
    const usage = res.usage;
    if (!choice || !usage || typeof usage.prompt_tokens !== 'number' || typeof usage.completion_tokens !== 'number') {
      throw transient('malformed response: missing choices or usage', where);
    }
    const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
    return {
      text: choice.message?.content ?? '',
      usage: { inputTokens: usage.prompt_tokens - cached, cachedInputTokens: cached, outputTokens: usage.completion_tokens },
      finishReason: choice.finish_reason ?? 'unknown',
      providerModel: res.model ?? req.model,
    };
  }
}

export function mapOpenAIError(e: unknown, where: { provider: string; model: string }): ProviderError {
  return mapSdkError(e, where, OpenAI);
}
