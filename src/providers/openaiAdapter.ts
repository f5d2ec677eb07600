/**
 * OpenAI chat completions through the official `openai` SDK, SDK retries off. Also serves
 * OpenAI-compatible self-hosted servers (vLLM, Ollama, llama.cpp): same wire format, other base URL.
 */
import OpenAI from 'openai';
import { type ProviderError, transient } from './errors.js';
import { mapSdkError, stainlessOptions } from './stainlessErrors.js';
import { callsOfOpenAI, openAIMessage, openAITools, ToolCallAssembler } from './toolWire.js';
import { OpenAIBatchApi } from './openaiBatchApi.js';
import { type AdapterOptions, type BatchApi, type ChatRequest, type ChatResponse, type ProviderAdapter } from './types.js';

export interface OpenAIAdapterOptions extends AdapterOptions {
  /** "openai" or "self-hosted": the same wire format. */
  readonly provider: string;
}

export class OpenAIAdapter implements ProviderAdapter {
  readonly provider: string;
  private readonly client: OpenAI;
  /** OpenAI's Batch API (a self-hosted server has none). */
  readonly batch: BatchApi | undefined;

  constructor(opts: OpenAIAdapterOptions) {
    this.provider = opts.provider;
    this.client = new OpenAI({
      apiKey: opts.apiKey,
      baseURL: opts.baseURL,
      maxRetries: 0,
      timeout: opts.timeoutMs ?? 120_000,
    });
    this.batch = opts.provider === 'openai' ? new OpenAIBatchApi(this.client, (l) => this.params(l.req), opts.provider) : undefined;
  }

  private params(req: ChatRequest) {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [];
    if (req.system) messages.push({ role: 'system', content: req.system });
    // toolWire.ts builds the SDK's message and tool shapes without importing the SDK.
    for (const t of req.turns) messages.push(openAIMessage(t) as unknown as OpenAI.Chat.ChatCompletionMessageParam);
    return {
      model: req.model,
      messages,
      max_completion_tokens: req.maxOutputTokens,
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(openAITools(req.tools) as Pick<OpenAI.Chat.ChatCompletionCreateParams, 'tools' | 'tool_choice' | 'parallel_tool_calls'>),
    };
  }

  async chatStream(req: ChatRequest, onText: (text: string) => void): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    let text = '';
    let finish = 'unknown';
    let model = req.model;
    let usage: OpenAI.CompletionUsage | undefined;
    const calls = new ToolCallAssembler();
    try {
      const stream = await this.client.chat.completions.create(
        { ...this.params(req), stream: true, stream_options: { include_usage: true } },
        stainlessOptions(req),
      );
      for await (const chunk of stream) {
        model = chunk.model ?? model;
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices?.[0];
        const piece = choice?.delta?.content;
        if (piece) {
          text += piece;
          onText(piece);
        }
        calls.add(choice?.delta?.tool_calls);
        if (choice?.finish_reason) finish = choice.finish_reason;
      }
    } catch (e) {
      throw mapOpenAIError(e, where);
    }
    if (!usage || typeof usage.prompt_tokens !== 'number' || typeof usage.completion_tokens !== 'number')
      throw transient('malformed stream: no usage at its end', where);
    const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
    const toolCalls = calls.calls(req.requestId ?? 'call');
    return {
      text,
      ...(toolCalls ? { toolCalls } : {}),
      usage: { inputTokens: usage.prompt_tokens - cached, cachedInputTokens: cached, outputTokens: usage.completion_tokens },
      finishReason: finish,
      providerModel: model,
    };
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    let res: OpenAI.Chat.ChatCompletion;
    try {
      res = await this.client.chat.completions.create(this.params(req), stainlessOptions(req));
    } catch (e) {
      throw mapOpenAIError(e, where);
    }
    const choice = res.choices?.[0];
    const usage = res.usage;
    if (!choice || !usage || typeof usage.prompt_tokens !== 'number' || typeof usage.completion_tokens !== 'number') {
      throw transient('malformed response: missing choices or usage', where);
    }
    const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
    const toolCalls = callsOfOpenAI(
      choice.message?.tool_calls?.filter((c) => c.type === 'function'),
      req.requestId ?? 'call',
    );
    return {
      text: choice.message?.content ?? '',
      ...(toolCalls ? { toolCalls } : {}),
      usage: { inputTokens: usage.prompt_tokens - cached, cachedInputTokens: cached, outputTokens: usage.completion_tokens },
      finishReason: choice.finish_reason ?? 'unknown',
      providerModel: res.model ?? req.model,
    };
  }
}

export function mapOpenAIError(e: unknown, where: { provider: string; model: string }): ProviderError {
  return mapSdkError(e, where, OpenAI);
}
