/** Where the adapters reach a running simulator (its own module: no simulator code is loaded for it). */
/** Provider endpoints that point every adapter at a running simulator. */
export function simulatorEndpoints(url: string): Record<'openai' | 'anthropic' | 'google' | 'mistral' | 'self-hosted', { apiKey: string; baseURL: string }> {
  const key = 'sk-simulator';
  return {
    openai: { apiKey: key, baseURL: `${url}/v1` },
    'self-hosted': { apiKey: key, baseURL: `${url}/v1` },
    anthropic: { apiKey: key, baseURL: url },
    google: { apiKey: key, baseURL: url },
    mistral: { apiKey: key, baseURL: url },
  };
}
