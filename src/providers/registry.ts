/**
 * Builds one adapter per provider from configuration. Keys come from the worker's environment
 * only; they never enter workflow input, history, logs or metric labels.
 */
import type { ProviderName } from '../catalog/schema.js';
import { AnthropicAdapter } from './anthropicAdapter.js';
import { GeminiAdapter } from './geminiAdapter.js';
import { MistralAdapter } from './mistralAdapter.js';
import { OpenAIAdapter } from './openaiAdapter.js';
import type { ProviderAdapter } from './types.js';

export interface ProviderEndpoint {
  readonly apiKey?: string | undefined;
  readonly baseURL?: string | undefined;
}

export type ProviderEndpoints = Partial<Record<ProviderName, ProviderEndpoint>>;

/** The worker has no credentials or endpoint for a provider: an attempt on it cannot be made here. */
export class ProviderNotConfiguredError extends Error {
  override readonly name = 'ProviderNotConfiguredError';
  constructor(readonly provider: ProviderName) {
    super(`provider ${provider} is not configured on this worker: set ${envHint(provider)}`);
  }
}

export class ProviderRegistry {
  private readonly adapters = new Map<ProviderName, ProviderAdapter>();

  constructor(
    private readonly endpoints: ProviderEndpoints,
    private readonly timeoutMs: number,
  ) {}

  /** Whether this worker can call the provider (a key or an endpoint is set). */
  isConfigured(provider: ProviderName): boolean {
    const ep = this.endpoints[provider];
    return ep !== undefined && Boolean(ep.apiKey || ep.baseURL);
  }

  get(provider: ProviderName): ProviderAdapter {
    const cached = this.adapters.get(provider);
    if (cached) return cached;
    const ep = this.endpoints[provider];
    if (!ep || !this.isConfigured(provider)) throw new ProviderNotConfiguredError(provider);
    const apiKey = ep.apiKey ?? 'not-needed';
    const common = { apiKey, baseURL: ep.baseURL, timeoutMs: this.timeoutMs };
    let adapter: ProviderAdapter;
    switch (provider) {
      case 'openai':
        adapter = new OpenAIAdapter({ provider, ...common });
        break;
      case 'self-hosted':
        adapter = new OpenAIAdapter({ provider, ...common });
        break;
      case 'anthropic':
        adapter = new AnthropicAdapter(common);
        break;
      case 'google':
        adapter = new GeminiAdapter(common);
        break;
      case 'mistral':
        adapter = new MistralAdapter(common);
        break;
    }
    this.adapters.set(provider, adapter);
    return adapter;
  }
}

export function envHint(provider: ProviderName): string {
  switch (provider) {
    case 'openai':
      return 'OPENAI_API_KEY (and OPENAI_BASE_URL for a proxy)';
    case 'anthropic':
      return 'ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL)';
    case 'google':
      return 'GEMINI_API_KEY (and GEMINI_BASE_URL)';
    case 'mistral':
      return 'MISTRAL_API_KEY (and MISTRAL_BASE_URL)';
    case 'self-hosted':
      return 'SELF_HOSTED_BASE_URL (an OpenAI-compatible server: vLLM, Ollama, llama.cpp) and SELF_HOSTED_API_KEY if it needs one';
  }
}
