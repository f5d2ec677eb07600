/** The catalog as a value: built from model inputs, merged with a user's file. Pure. */
import { DEFAULT_MODELS } from './defaultCatalog.js';
import { catalogFileSchema, modelInputSchema, type ModelSpec, toModelSpec, TIERS, type Tier } from './schema.js';
import { describeIssues, ValidationError } from '../util/validation.js';

export class Catalog {
  private readonly byName: ReadonlyMap<string, ModelSpec>;

  constructor(readonly models: readonly ModelSpec[]) {
    const m = new Map<string, ModelSpec>();
    for (const spec of models) {
      if (m.has(spec.name)) throw new ValidationError('catalog', [`${spec.name}: duplicate model name`]);
      m.set(spec.name, spec);
    }
    this.byName = m;
  }

  get(name: string): ModelSpec | undefined {
    return this.byName.get(name);
  }

  require(name: string): ModelSpec {
    const spec = this.byName.get(name);
    if (!spec) {
      throw new ValidationError('model', [`"${name}" is not in the catalog; known models: ${[...this.byName.keys()].join(', ')}`]);
    }
    return spec;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /**
   * The model "send everything to premium" means: the cheapest premium model (gpt-4o in the
   * default catalog), so savings quoted against it are the conservative figure.
   */
  premiumBaseline(): ModelSpec {
    const premium = this.models.filter((m) => m.tier === 'premium');
    const pool = premium.length > 0 ? premium : [...this.models];
    const sorted = [...pool].sort((a, b) => a.price.inputNanosPerMTok + a.price.outputNanosPerMTok - (b.price.inputNanosPerMTok + b.price.outputNanosPerMTok));
    const first = sorted[0];
    if (!first) throw new ValidationError('catalog', ['catalog has no models']);
    return first;
  }

  /**
   * Tier labels that contradict prices: a model priced above every model of a higher tier.
   * Reported as warnings; the router does not trust tier labels for cost anyway.
   */
  tierWarnings(): string[] {
    const warnings: string[] = [];
    const rank = (t: Tier): number => TIERS.indexOf(t);
    const blended = (m: ModelSpec): number => m.price.inputNanosPerMTok + m.price.outputNanosPerMTok;
    for (const m of this.models) {
      const higher = this.models.filter((o) => rank(o.tier) > rank(m.tier));
      const cheaperHigher = higher.filter((o) => blended(o) < blended(m) && o.quality >= m.quality);
      if (cheaperHigher.length > 0) {
        warnings.push(
          `${m.name} (${m.tier}) costs more than higher-tier ${cheaperHigher.map((o) => o.name).join(', ')} of equal or better quality; the router ranks it after them`,
        );
      }
    }
    return warnings;
  }
}

export function buildCatalog(inputs: readonly unknown[], source = 'catalog'): Catalog {
  const specs: ModelSpec[] = [];
  const errors: string[] = [];
  inputs.forEach((raw, i) => {
    const r = modelInputSchema.safeParse(raw);
    if (r.success) specs.push(toModelSpec(r.data));
    else errors.push(...describeIssues(r.error, `models[${i}]`));
  });
  if (errors.length > 0) throw new ValidationError(source, errors);
  return new Catalog(specs);
}

export function defaultCatalog(): Catalog {
  return buildCatalog(DEFAULT_MODELS, 'default catalog');
}

/** Merges a parsed catalog file into the defaults (extend) or replaces them. */
export function catalogFromFileContent(content: unknown, source: string): Catalog {
  const r = catalogFileSchema.safeParse(content);
  if (!r.success) {
    // Re-validate model by model for precise paths when the shape is a list or has `models`.
    const models = Array.isArray(content)
      ? content
      : typeof content === 'object' && content !== null && Array.isArray((content as { models?: unknown }).models)
        ? (content as { models: unknown[] }).models
        : undefined;
    if (models) buildCatalog(models, source);
    throw new ValidationError(source, describeIssues(r.error));
  }
  const file = r.data;
  if (Array.isArray(file)) return buildCatalog(file, source);
  const own = buildCatalog(file.models, source);
  if (file.mode === 'replace') return own;
  const overridden = new Set(own.names());
  const removed = new Set(file.remove);
  const unknownRemoved = file.remove.filter((n) => !DEFAULT_MODELS.some((m) => m.name === n));
  if (unknownRemoved.length > 0) {
    throw new ValidationError(
      source,
      unknownRemoved.map((n) => `remove: "${n}" is not a default model`),
    );
  }
  const base = defaultCatalog().models.filter((m) => !overridden.has(m.name) && !removed.has(m.name));
  return new Catalog([...base, ...own.models]);
}
