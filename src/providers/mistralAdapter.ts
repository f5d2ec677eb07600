/** Mistral chat completions through the official `@mistralai/mistralai` SDK, SDK retries off. */
import { Mistral } from '@mistralai/mistralai';
import { HTTPClientError, MistralError } from '@mistralai/mistralai/models/errors';
import type { ChatCompletionRequest } from '@mistralai/mistralai/models/components';
import { fromHttpStatus, ProviderError, transient } from './errors.js';
import { callsOfOpenAI, mistralMessage, mistralTools, ToolCallAssembler } from './toolWire.js';
import { MistralBatchApi } from './mistralBatchApi.js';
import { type AdapterOptions, type BatchApi, type ChatRequest, type ChatResponse, type ProviderAdapter, REQUEST_ID_HEADER } from './types.js';

export class MistralAdapter implements ProviderAdapter {
  readonly provider = 'mistral';
  private readonly client: Mistral;
  readonly batch: BatchApi;

  constructor(opts: AdapterOptions) {
    this.client = new Mistral({
      apiKey: opts.apiKey,
      ...(opts.baseURL ? { serverURL: opts.baseURL } : {}),
      retryConfig: { strategy: 'none' },
      timeoutMs: opts.timeoutMs ?? 120_000,
    });
    this.batch = new MistralBatchApi(this.client, (l) => mistralWireBody(this.params(l.req)));
  }

  private params(req: ChatRequest) {
    // toolWire.ts builds the SDK's message and tool shapes without importing the SDK.
    const messages = [
      ...(req.system ? [{ role: 'system', content: req.system }] : []),
      ...req.turns.map(mistralMessage),
    ] as unknown as ChatCompletionRequest['messages'];
    return {
      model: req.model,
      messages,
      maxTokens: req.maxOutputTokens,
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(mistralTools(req.tools) as Pick<ChatCompletionRequest, 'tools' | 'toolChoice' | 'parallelToolCalls'>),
    };
  }

  private options(req: ChatRequest) {
    return {
      retries: { strategy: 'none' as const },
      ...(req.signal ? { signal: req.signal } : {}),
      ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {}),
      ...(req.requestId ? { headers: { [REQUEST_ID_HEADER]: req.requestId } } : {}),
    };
  }

  async chatStream(req: ChatRequest, onText: (text: string) => void): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    let text = '';
    let finish = 'unknown';
    let model = req.model;
    let usage: { promptTokens?: number | undefined; completionTokens?: number | undefined } | undefined;
    const calls = new ToolCallAssembler();
    try {
      const stream = await this.client.chat.stream(this.params(req), this.options(req));
      for await (const ev of stream) {
        const chunk = ev.data;
        model = chunk.model ?? model;
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices[0];
        const content = choice?.delta.content;
        const piece =
          typeof content === 'string'
            ? content
            : Array.isArray(content)
              ? content.map((c) => ('text' in c && typeof c.text === 'string' ? c.text : '')).join('')
              : '';
        if (piece) {
          text += piece;
          onText(piece);
        }
        calls.add(choice?.delta.toolCalls);
        if (choice?.finishReason) finish = choice.finishReason;
      }
    } catch (e) {
      throw mapMistralError(e, where);
    }
    if (typeof usage?.promptTokens !== 'number' || typeof usage.completionTokens !== 'number') throw transient('malformed stream: no usage at its end', where);
    const toolCalls = calls.calls(req.requestId ?? 'call');
    return {
      text,
      ...(toolCalls ? { toolCalls } : {}),
      usage: { inputTokens: usage.promptTokens, cachedInputTokens: 0, outputTokens: usage.completionTokens },
      finishReason: finish,
      providerModel: model,
    };
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    let res: Awaited<ReturnType<Mistral['chat']['complete']>>;
    try {
      res = await this.client.chat.complete(this.params(req), this.options(req));
    } catch (e) {
      throw mapMistralError(e, where);
    }
    const choice = res.choices?.[0];
    const usage = res.usage;
    if (!choice || !usage || typeof usage.promptTokens !== 'number' || typeof usage.completionTokens !== 'number') {
      throw transient('malformed response: missing choices or usage', where);
    }
    const content = choice.message?.content;
    const text =
      typeof content === 'string'
        ? content
        : Array.isArray(content)
          ? content.map((c) => ('text' in c && typeof c.text === 'string' ? c.text : '')).join('')
          : '';
    const toolCalls = callsOfOpenAI(choice.message?.toolCalls, req.requestId ?? 'call');
    return {
      text,
      ...(toolCalls ? { toolCalls } : {}),
      usage: { inputTokens: usage.promptTokens, cachedInputTokens: 0, outputTokens: usage.completionTokens },
      finishReason: choice.finishReason ?? 'unknown',
      providerModel: res.model ?? req.model,
    };
  }
}

export function mapMistralError(e: unknown, where: { provider: string; model: string }): ProviderError {
  if (e instanceof ProviderError) return e;
  if (e instanceof MistralError) return fromHttpStatus(e.statusCode, e.body || e.message, e.headers, where);
  if (e instanceof HTTPClientError) return transient(`${e.name}: ${e.message}`, where);
  return transient(`malformed response: ${(e as Error)?.message ?? String(e)}`, where);
}

/**
 * A chat request as Mistral's wire carries it (snake_case), for a batch line: the SDK converts only
 * the requests it sends itself, and a batch line's body is opaque to it. The model is the job's.
 * Keys inside tool schemas are left as they are (they are the caller's JSON Schema).
 */
export function mistralWireBody(p: Record<string, unknown>): Record<string, unknown> {
  const top: Record<string, string> = { maxTokens: 'max_tokens', toolChoice: 'tool_choice', parallelToolCalls: 'parallel_tool_calls' };
  const msg: Record<string, string> = { toolCallId: 'tool_call_id', toolCalls: 'tool_calls' };
  const rename = (o: Record<string, unknown>, map: Record<string, string>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [map[k] ?? k, v]));
  const { model: _model, messages, ...rest } = p;
  return {
    ...rename(rest, top),
    messages: (Array.isArray(messages) ? (messages as Array<Record<string, unknown>>) : []).map((m) => rename(m, msg)),
  };
}
