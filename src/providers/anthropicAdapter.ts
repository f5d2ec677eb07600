/** Anthropic messages through the official `@anthropic-ai/sdk`, SDK retries off. */
import Anthropic from '@anthropic-ai/sdk';
import { type ProviderError, transient } from './errors.js';
import { mapSdkError, stainlessOptions } from './stainlessErrors.js';
import { anthropicMessages, anthropicTools } from './toolWire.js';
import { anthropicResponseOf } from './anthropicResponse.js';
import { AnthropicBatchApi } from './anthropicBatchApi.js';
import { type AdapterOptions, type BatchApi, type ChatRequest, type ChatResponse, type ProviderAdapter } from './types.js';

export class AnthropicAdapter implements ProviderAdapter {
  readonly provider = 'anthropic';
  private readonly client: Anthropic;
  readonly batch: BatchApi;

  constructor(opts: AdapterOptions) {
    this.client = new Anthropic({ apiKey: opts.apiKey, baseURL: opts.baseURL, maxRetries: 0, timeout: opts.timeoutMs ?? 120_000 });
    this.batch = new AnthropicBatchApi(this.client, (l) => this.params(l.req));
  }

  private params(req: ChatRequest) {
    return {
      model: req.model,
      max_tokens: req.maxOutputTokens,
      // toolWire.ts builds the SDK's message and tool shapes without importing the SDK.
      messages: anthropicMessages(req.turns) as unknown as Anthropic.MessageParam[],
      ...(req.system ? { system: req.system } : {}),
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(anthropicTools(req.tools) as Pick<Anthropic.MessageCreateParams, 'tools' | 'tool_choice'>),
    };
  }

  async chatStream(req: ChatRequest, onText: (text: string) => void): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    let text = '';
    let finish = 'unknown';
    let model = req.model;
    let input: Anthropic.Usage | undefined;
    let output: number | undefined;
    // A tool_use block streams its input as JSON pieces (input_json_delta), by block index.
    const calls = new Map<number, { id: string; name: string; json: string }>();
    try {
      const stream = await this.client.messages.create({ ...this.params(req), stream: true }, stainlessOptions(req));
      for await (const ev of stream) {
        if (ev.type === 'message_start') {
          input = ev.message.usage;
          model = ev.message.model ?? model;
        } else if (ev.type === 'content_block_start' && ev.content_block.type === 'tool_use') {
          calls.set(ev.index, { id: ev.content_block.id, name: ev.content_block.name, json: '' });
        } else if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') {
          const c = calls.get(ev.index);
          if (c) c.json += ev.delta.partial_json;
        } else if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') {
          text += ev.delta.text;
          onText(ev.delta.text);
        } else if (ev.type === 'message_delta') {
          output = ev.usage.output_tokens;
          finish = ev.delta.stop_reason ?? finish;
        }
      }
    } catch (e) {
      throw mapAnthropicError(e, where);
    }
    if (!input || typeof input.input_tokens !== 'number' || typeof output !== 'number') throw transient('malformed stream: no usage', where);
    const toolCalls = [...calls.entries()].sort(([a], [b]) => a - b).map(([, c]) => ({ id: c.id, name: c.name, arguments: c.json === '' ? '{}' : c.json }));
    return {
      text,
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      usage: {
        inputTokens: input.input_tokens + (input.cache_creation_input_tokens ?? 0),
        cachedInputTokens: input.cache_read_input_tokens ?? 0,
        outputTokens: output,
      },
      finishReason: finish,
      providerModel: model,
    };
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    const where = { provider: this.provider, model: req.model };
    let res: Anthropic.Message;
    try {
      res = await this.client.messages.create(this.params(req), stainlessOptions(req));
    } catch (e) {
      throw mapAnthropicError(e, where);
    }
    const usage = res.usage;
    if (!Array.isArray(res.content) || !usage || typeof usage.input_tokens !== 'number' || typeof usage.output_tokens !== 'number') {
      throw transient('malformed response: missing content or usage', where);
    }
    return anthropicResponseOf(res, req.model);
  }
}

export function mapAnthropicError(e: unknown, where: { provider: string; model: string }): ProviderError {
  return mapSdkError(e, where, Anthropic);
}
