/**
 * Builds one adapter per provider from configuration. Keys come from the worker's environment
 * only; they never enter workflow input, history, logs or metric labels.
 */
import type { ProviderName } from '../catalog/schema.js';
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
  private readonly adapters = new Map<ProviderName, Promise<ProviderAdapter>>();

  constructor(
    private readonly endpoints: ProviderEndpoints,
    private readonly timeoutMs: number,
  ) {}

  /** Whether this worker can call the provider (a key or an endpoint is set). */
  isConfigured(provider: ProviderName): boolean {
    const ep = this.endpoints[provider];
    return ep !== undefined && Boolean(ep.apiKey || ep.baseURL);
  }

  /**
   * The provider's adapter, created on first use. Each adapter module (and its provider SDK) is
   * loaded only then: a worker with one provider key holds one SDK in memory, not four (the four
   * SDKs are ~70 MB of a worker's idle RSS).
   */
  get(provider: ProviderName): Promise<ProviderAdapter> {
    const cached = this.adapters.get(provider);
    if (cached) return cached;
    const ep = this.endpoints[provider];
    if (!ep || !this.isConfigured(provider)) return Promise.reject(new ProviderNotConfiguredError(provider));
    const apiKey = ep.apiKey ?? 'not-needed';
    const common = { apiKey, baseURL: ep.baseURL, timeoutMs: this.timeoutMs };
    const created = (async (): Promise<ProviderAdapter> => {
      switch (provider) {
        case 'openai':
        case 'self-hosted':
          return new (await import('./openaiAdapter.js')).OpenAIAdapter({ provider, ...common });
        case 'anthropic':
          return new (await import('./anthropicAdapter.js')).AnthropicAdapter(common);
        case 'google':
          return new (await import('./geminiAdapter.js')).GeminiAdapter(common);
        case 'mistral':
          return new (await import('./mistralAdapter.js')).MistralAdapter(common);
      }
    })();
    this.adapters.set(provider, created);
    // Not cached when it failed (an adapter that threw while being built is tried again).
    created.catch(() => this.adapters.delete(provider));
    return created;
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
