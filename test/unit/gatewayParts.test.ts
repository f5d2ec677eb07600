/**
 * The gateway's pure parts: the model a client names (auto, tiers, aliases, pins) and what its key
 * allows; Switchyard's options from headers and metadata; the chat body's delivery; the stream's
 * chunks; key material; the key registry's state; per-key limits; and the key check. The key
 * check runs here on an in-memory record list standing in for the registry query (the integration
 * tests read the real registry entity).
 */
import { describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../src/catalog/catalog.js';
import { Gatekeeper, KeyLimits, type KeyStore, type Principal } from '../../src/gateway/keys.js';
import { ChunkWriter, requestFromChatBody } from '../../src/gateway/openaiChat.js';
import { optionRefusal, optionsFromHeaders, resolveModel } from '../../src/gateway/options.js';
import { adminMatches, newKey, parseKey, secretMatches } from '../../src/security/apiKeys.js';
import type { KeyRecord } from '../../src/workflows/keys/contract.js';
import { KeyRegistryState } from '../../src/workflows/keys/state.js';
import type { RequestResult } from '../../src/workflows/request/contract.js';

const catalog = defaultCatalog();
const key = (grant: Partial<KeyRecord> = {}): Principal => ({
  keyId: 'abc123def456',
  admin: false,
  grant: { scope: 'team', ...grant },
});

describe('the model a client names', () => {
  it('auto routes within what the key allows; a tier routes within it; an alias stands for either; a catalog model is pinned', () => {
    expect(resolveModel(catalog, 'auto', key({ models: ['gpt-4o-mini'] }))).toMatchObject({ ok: true, fields: { allowedModels: ['gpt-4o-mini'] } });
    const tier = resolveModel(catalog, 'switchyard/premium', undefined, {}, { model: 'switchyard/premium', messages: [] });
    expect(tier).toMatchObject({ ok: true, fields: { allowedTiers: ['premium'] } });
    expect(tier.ok && (tier.body as Record<string, unknown>).model).toBeUndefined();
    const alias = resolveModel(catalog, 'gpt-4', undefined, { 'gpt-4': 'gpt-4o' }, { model: 'gpt-4' });
    expect(alias.ok && (alias.body as Record<string, unknown>).model).toBe('gpt-4o');
    expect(resolveModel(catalog, 'fast', undefined, { fast: 'switchyard/economy' }, {})).toMatchObject({ ok: true, fields: { allowedTiers: ['economy'] } });
  });

  it('refuses an unknown tier or model (404) and what the key may not use (403), naming the param', () => {
    const r = (m: string, p?: Principal) => resolveModel(catalog, m, p, {}, { model: m });
    expect(r('switchyard/deluxe')).toMatchObject({ ok: false, error: { status: 404, body: { error: { param: 'model' } } } });
    expect(r('gpt-99')).toMatchObject({ ok: false, error: { status: 404, body: { error: { code: 'model_not_found' } } } });
    expect(r('gpt-4o', key({ models: ['gpt-4o-mini'] }))).toMatchObject({ ok: false, error: { status: 403, body: { error: { param: 'model' } } } });
    expect(r('switchyard/premium', key({ tiers: ['economy'] }))).toMatchObject({ ok: false, error: { status: 403 } });
    const premium = catalog.models.find((m) => m.tier === 'premium')?.name ?? '';
    expect(r(premium, key({ tiers: ['economy', 'standard'] }))).toMatchObject({ ok: false, error: { status: 403 } });
  });
});

describe("Switchyard's options on a chat call", () => {
  it('reads x-switchyard-* headers before metadata, typed, and names the header or key at fault', () => {
    const o = optionsFromHeaders(
      { 'x-switchyard-category': 'batch', 'x-switchyard-max-latency-ms': '2500' },
      { switchyard_category: 'critical', switchyard_feature: 'search', switchyard_min_quality: '0.8' },
      undefined,
    );
    expect(o).toMatchObject({ ok: true, fields: { category: 'batch', maxLatencyMs: 2500, feature: 'search', minQuality: 0.8 }, buffered: false });
    expect(optionsFromHeaders({ 'x-switchyard-max-latency-ms': '2.5s' }, undefined, undefined)).toMatchObject({
      ok: false,
      error: { status: 400, body: { error: { param: 'x-switchyard-max-latency-ms' } } },
    });
    expect(optionsFromHeaders({}, { switchyard_min_quality: 5 }, undefined)).toMatchObject({
      ok: false,
      error: { body: { error: { param: 'metadata.switchyard_min_quality' } } },
    });
    expect(optionsFromHeaders({ 'x-switchyard-stream': 'later' }, undefined, undefined)).toMatchObject({ ok: false, error: { status: 400 } });
    expect(optionsFromHeaders({ 'x-switchyard-quality': '{"regex": "\\\\d+"}' }, undefined, undefined)).toMatchObject({
      ok: true,
      fields: { quality: { regex: '\\d+' } },
    });
    expect(optionsFromHeaders({}, { switchyard_quality: '[1]' }, undefined)).toMatchObject({
      ok: false,
      error: { body: { error: { param: 'metadata.switchyard_quality' } } },
    });
    expect(optionsFromHeaders({ 'x-switchyard-stream': 'buffered' }, undefined, undefined)).toMatchObject({ ok: true, buffered: true });
  });

  it('names the header behind a field the request schema refuses; metadata must be an object', () => {
    expect(optionRefusal('feature: must be a lowercase name')).toEqual({
      param: 'x-switchyard-feature',
      message: 'header x-switchyard-feature (or metadata.switchyard_feature): must be a lowercase name',
    });
    expect(optionRefusal('quality.regex: not a valid regular expression')?.param).toBe('x-switchyard-quality');
    // response_format's schema, and fields no option sets, are named elsewhere.
    expect(optionRefusal('quality.jsonSchema: must be an object')).toBeUndefined();
    expect(optionRefusal('temperature: too big')).toBeUndefined();
    expect(optionsFromHeaders({}, 'x', undefined)).toMatchObject({ ok: false, error: { status: 400, body: { error: { param: 'metadata' } } } });
    expect(optionsFromHeaders({}, null, undefined)).toMatchObject({ ok: true });
  });

  it("a key's scope and categories bind its requests; its id goes with them (the admin's does not)", () => {
    const k = key({ categories: ['batch', 'standard'] });
    expect(optionsFromHeaders({}, undefined, k)).toMatchObject({ ok: true, fields: { budgetScope: 'team', category: 'batch', keyId: 'abc123def456' } });
    expect(optionsFromHeaders({ 'x-switchyard-budget-scope': 'other' }, undefined, k)).toMatchObject({ ok: false, error: { status: 403 } });
    expect(optionsFromHeaders({ 'x-switchyard-category': 'critical' }, undefined, k)).toMatchObject({ ok: false, error: { status: 403 } });
    const admin = optionsFromHeaders({ 'x-switchyard-budget-scope': 'ops' }, undefined, { keyId: 'admin', admin: true });
    expect(admin).toMatchObject({ ok: true, fields: { budgetScope: 'ops' } });
    expect(admin.ok && 'keyId' in admin.fields).toBe(false);
  });
});

describe('the chat body and the stream', () => {
  it('stream and stream_options set the delivery; their wrong types and combinations are refused by name', () => {
    const msgs = [{ role: 'user', content: 'hi' }];
    expect(requestFromChatBody({ messages: msgs, stream: true, stream_options: { include_usage: true } }, 'r1')).toMatchObject({
      ok: true,
      delivery: { stream: true, includeUsage: true },
    });
    expect(requestFromChatBody({ messages: msgs, stream: 'yes' }, 'r1')).toMatchObject({ ok: false, refusal: { param: 'stream' } });
    expect(requestFromChatBody({ messages: msgs, stream_options: { include_usage: true } }, 'r1')).toMatchObject({
      ok: false,
      refusal: { param: 'stream_options' },
    });
    expect(requestFromChatBody({ messages: msgs, stream: true, stream_options: { include_usage: 1 } }, 'r1')).toMatchObject({
      ok: false,
      refusal: { param: 'stream_options.include_usage' },
    });
  });

  it("writes OpenAI's chunks: the role, the pieces, the finish, the usage chunk when asked, then [DONE]", () => {
    const r = {
      workflowId: 'llm-x',
      model: 'gpt-4o-mini',
      tier: 'standard',
      provider: 'openai',
      finishReason: 'stop',
      usage: { inputTokens: 10, cachedInputTokens: 2, outputTokens: 5 },
      costNanos: 123,
      premiumBaselineCostNanos: 456,
    } as RequestResult;
    const events = (s: string) =>
      s
        .split('\n\n')
        .filter(Boolean)
        .map((e) => e.replace(/^data: /, ''));
    const w = new ChunkWriter('chatcmpl-x', 'gpt-4o-mini', 1, true);
    const all = [...events(w.role()), ...events(w.delta('Hel')), ...events(w.end(r))];
    expect(all.at(-1)).toBe('[DONE]');
    const chunks = all.slice(0, -1).map((e) => JSON.parse(e) as { object: string; choices: Array<{ delta: unknown; finish_reason: unknown }>; usage: unknown });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks[1]?.choices[0]?.delta).toEqual({ content: 'Hel' });
    expect(chunks[2]?.choices[0]?.finish_reason).toBe('stop');
    expect(chunks[3]?.choices).toEqual([]);
    expect(chunks[3]?.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 });
    const plain = events(new ChunkWriter('c', 'm', 1, false).end(r));
    expect(plain).toHaveLength(2);
    expect(JSON.parse(ChunkWriter.error('broke', 'stream_interrupted').replace(/^data: /, ''))).toMatchObject({ error: { code: 'stream_interrupted' } });
  });
});

describe('keys', () => {
  it('a key is sk-sy-<id>-<256-bit secret>; only its SHA-256 is kept, and compared whole', () => {
    const k = newKey();
    const parsed = parseKey(k.token);
    expect(parsed?.id).toBe(k.id);
    expect(k.token).not.toContain(k.secretSha256);
    expect(secretMatches(parsed?.secret ?? '', k.secretSha256)).toBe(true);
    expect(secretMatches(`${parsed?.secret.slice(0, -1) ?? ''}x`, k.secretSha256)).toBe(false);
    expect(parseKey('sk-proj-abc')).toBeUndefined();
    expect(newKey().id).not.toBe(k.id);
    expect(adminMatches('a-long-admin-key', 'a-long-admin-key')).toBe(true);
    expect(adminMatches('a-long-admin-ke', 'a-long-admin-key')).toBe(false);
  });

  it("the registry's state refuses malformed and duplicate keys by field, lets a rotation share its name, and revokes once", () => {
    const s = new KeyRegistryState();
    const base = { id: 'abcd1234', name: 'team', scope: 'team', secretSha256: 'a'.repeat(64) };
    expect(s.refusal({ ...base, id: 'BAD' })).toMatch(/^id:/);
    expect(s.refusal({ ...base, secretSha256: 'xyz' })).toMatch(/^secretSha256:/);
    expect(s.refusal({ ...base, scope: 'no spaces' })).toMatch(/^scope:/);
    expect(s.refusal(base)).toBeUndefined();
    s.create(base, 0);
    expect(s.refusal(base)).toMatch(/exists already/);
    expect(s.refusal({ ...base, id: 'efgh5678' })).toMatch(/^name:/);
    expect(s.refusal({ ...base, id: 'efgh5678', rotatedFrom: 'abcd1234' })).toBeUndefined();
    const revoked = s.revoke('abcd1234', 1_000);
    expect(revoked.revokedAt).toBe(new Date(1_000).toISOString());
    expect(s.revoke('abcd1234', 2_000).revokedAt).toBe(revoked.revokedAt);
    expect(s.revocationRefusal('nope')).toMatch(/no key/);
  });

  it('limits: requests per minute, tokens per minute, requests and streams at once', () => {
    const limits = new KeyLimits(1);
    const rpm = key({ rpm: 2 });
    expect(limits.acquire(rpm, 1).ok).toBe(true);
    expect(limits.acquire(rpm, 1).ok).toBe(true);
    const third = limits.acquire(rpm, 1);
    expect(third).toMatchObject({ ok: false, error: { status: 429 } });
    expect(!third.ok && third.retryAfterS).toBeGreaterThanOrEqual(1);
    const tpm = { ...key({ tpm: 100 }), keyId: 'tpm00000' };
    expect(limits.acquire(tpm, 500)).toMatchObject({ ok: false, error: { body: { error: { message: expect.stringMatching(/500 input tokens/) as string } } } });
    expect(limits.acquire(tpm, 80).ok).toBe(true);
    expect(limits.acquire(tpm, 80).ok).toBe(false);
    const conc = { ...key({ maxConcurrency: 1 }), keyId: 'conc0000' };
    const held = limits.acquire(conc, 1);
    expect(limits.acquire(conc, 1).ok).toBe(false);
    if (held.ok) {
      held.release();
      held.release();
    }
    expect(limits.acquire(conc, 1).ok).toBe(true);
    const stream = limits.acquireStream(rpm);
    expect(limits.acquireStream(rpm)).toMatchObject({ ok: false, error: { body: { error: { code: 'too_many_streams' } } } });
    if (stream.ok) stream.release();
    expect(limits.acquireStream(rpm).ok).toBe(true);
  });

  it('the key check: closed until the registry is read; open while no keys exist; then a valid key passes, a revoked, expired or forged one does not', async () => {
    const made = newKey();
    const records = new Map<string, KeyRecord>();
    // Stands in for the registry query (read for real in test/integration/gatewayKeys.test.ts).
    let read = false;
    const store = {
      get hasKeys() {
        return records.size > 0;
      },
      get loaded() {
        return read;
      },
      get stale() {
        return !read;
      },
      get: (id: string) => records.get(id),
      refreshForUnknown: async () => undefined,
    } as unknown as KeyStore;
    const gate = new Gatekeeper(store, undefined);
    // Never read (the registry unreachable at the start): not open, a key is asked for and the gateway answers 503.
    expect(await gate.authenticate(undefined)).toMatchObject({ ok: false, error: { status: 401 } });
    expect(await gate.authenticate(`Bearer ${made.token}`)).toMatchObject({ ok: false, error: { status: 503 } });
    read = true;
    expect(await gate.authenticate(undefined)).toEqual({ ok: true, principal: undefined });
    records.set(made.id, { id: made.id, name: 't', scope: 'team', secretSha256: made.secretSha256, createdAt: new Date(0).toISOString() });
    expect(await gate.authenticate(undefined)).toMatchObject({ ok: false, error: { status: 401 } });
    expect(await gate.authenticate(`Bearer ${made.token}`)).toMatchObject({ ok: true, principal: { keyId: made.id, grant: { scope: 'team' } } });
    expect(await gate.authenticate(`Bearer ${made.token.slice(0, -2)}zz`)).toMatchObject({ ok: false, error: { status: 401 } });
    records.set(made.id, { ...records.get(made.id)!, expiresAt: new Date(Date.now() - 1).toISOString() });
    expect(await gate.authenticate(`Bearer ${made.token}`)).toMatchObject({
      ok: false,
      error: { body: { error: { message: expect.stringMatching(/expired/) as string } } },
    });
    records.set(made.id, { ...records.get(made.id)!, expiresAt: undefined, revokedAt: new Date().toISOString() });
    expect(await gate.authenticate(`Bearer ${made.token}`)).toMatchObject({
      ok: false,
      error: { body: { error: { message: expect.stringMatching(/revoked/) as string } } },
    });
    const withAdmin = new Gatekeeper(undefined, 'the-admin-key-0123456789');
    expect(await withAdmin.authenticate('Bearer the-admin-key-0123456789')).toMatchObject({ ok: true, principal: { admin: true } });
    expect(await withAdmin.authenticate('Bearer nope')).toMatchObject({ ok: false, error: { status: 401 } });
  });
});
