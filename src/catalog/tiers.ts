/** Tiers, capabilities and providers: the names the catalog, the router and the workflows share. Pure, no dependencies (safe in workflow code). */
export const TIERS = ['economy', 'standard', 'premium'] as const;
export type Tier = (typeof TIERS)[number];

export const CAPABILITIES = ['reasoning', 'coding', 'creative', 'factual', 'multilingual', 'vision', 'long_context', 'json', 'tools'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const PROVIDERS = ['openai', 'anthropic', 'google', 'mistral', 'self-hosted'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** Nanodollars per USD. */
export const NANOS_PER_USD = 1_000_000_000;
