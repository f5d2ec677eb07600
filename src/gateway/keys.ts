/**
 * Who may call the gateway (docs/gateway-keys.md): virtual keys from the key registry entity
 * (src/workflows/keys), read every `keyRefreshMs` by each gateway instance, and an admin key from
 * the environment (SWITCHYARD_ADMIN_KEY). While neither exists the gateway is open, and binds
 * loopback only. A key's rate limits (requests and tokens per minute, requests at once) are
 * counted by each gateway instance for the requests it serves.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Logger } from 'pino';
import { type KeyGrant, type KeyRecord, keyRegistryWorkflowId, keysQuery } from '../workflows/keys/contract.js';
import { type GatewayError, openAIError } from './errors.js';
import { adminMatches, parseKey, secretMatches } from '../security/apiKeys.js';

/** The caller of a request: a key (its id and grant), or the admin key. */
export interface Principal {
  readonly keyId: string;
  readonly admin: boolean;
  readonly grant?: KeyGrant;
}

export const ADMIN_KEY_ID = 'admin';

/** The key records every gateway reads: a query of the registry, refreshed on a timer. */
export class KeyStore {
  private byId = new Map<string, KeyRecord>();
  private loadedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
    readonly refreshMs: number,
    private readonly log?: Logger,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * A key id not known yet (made a moment ago): read the registry now, at most once a second
   * whatever callers send, so a new key works at once and random ids cannot flood the registry.
   */
  async refreshForUnknown(): Promise<void> {
    if (!this.pending) {
      if (Date.now() - this.lastOnDemand < 1_000) return;
      this.lastOnDemand = Date.now();
      this.pending = this.refresh().finally(() => (this.pending = undefined));
    }
    await this.pending;
  }

  private pending: Promise<void> | undefined;
  private lastOnDemand = 0;

  async refresh(): Promise<void> {
    try {
      const keys = await this.temporal.workflow.getHandle(keyRegistryWorkflowId(this.taskQueue)).query(keysQuery);
      this.byId = new Map(keys.map((k) => [k.id, k]));
      this.loadedAt = Date.now();
      this.lastError = undefined;
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) {
        // No key was ever made.
        this.byId = new Map();
        this.loadedAt = Date.now();
        this.lastError = undefined;
        return;
      }
      const message = e instanceof Error ? e.message : String(e);
      if (message !== this.lastError) this.log?.warn({ err: message }, 'gateway: cannot read the key registry');
      this.lastError = message;
    }
  }

  /** Whether any key was ever made (the gateway then asks every caller for one). */
  get hasKeys(): boolean {
    return this.byId.size > 0;
  }

  /** Records older than this are not trusted (a revocation could be missed): callers get 503. */
  get stale(): boolean {
    return Date.now() - this.loadedAt > Math.max(5_000, 2 * this.refreshMs);
  }

  get(id: string): KeyRecord | undefined {
    return this.byId.get(id);
  }

  list(): KeyRecord[] {
    return [...this.byId.values()];
  }

  /** The first key of a key's rotations (itself when it was never rotated, or its predecessors are unknown). */
  lineageOf(id: string): string {
    let at = id;
    for (let hops = 0; hops < 1_000; hops++) {
      const from = this.byId.get(at)?.rotatedFrom;
      if (from === undefined || !this.byId.has(from)) return at;
      at = from;
    }
    return at;
  }

  /** Whether the registry was read at least once (until then nobody is let in on a key). */
  get loaded(): boolean {
    return this.loadedAt > 0;
  }
}

/** Authenticates callers: undefined when the gateway is open (no keys, no admin key). */
export class Gatekeeper {
  constructor(
    private readonly store: KeyStore | undefined,
    private readonly adminKey: string | undefined,
  ) {}

  /**
   * Keys are asked for once one exists, or while the registry has never been read (it may hold
   * keys: a gateway that cannot read it at its start is not open, it answers 503).
   */
  get required(): boolean {
    return this.adminKey !== undefined || (this.store !== undefined && (this.store.hasKeys || !this.store.loaded));
  }

  async authenticate(authorization: string | undefined): Promise<{ ok: true; principal: Principal | undefined } | { ok: false; error: GatewayError }> {
    if (!this.required) return { ok: true, principal: undefined };
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    const refuse = (message: string): { ok: false; error: GatewayError } => ({
      ok: false,
      error: openAIError(401, 'invalid_request_error', message, null, 'invalid_api_key'),
    });
    if (!token) return refuse('no API key: send one as "Authorization: Bearer sk-sy-..." (made with `switchyard keys create`)');
    if (this.adminKey !== undefined && adminMatches(token, this.adminKey)) return { ok: true, principal: { keyId: ADMIN_KEY_ID, admin: true } };
    const parsed = parseKey(token);
    if (!parsed) return refuse('the API key is not a Switchyard key (sk-sy-...)');
    if (this.store?.stale)
      return {
        ok: false,
        error: openAIError(503, 'service_unavailable', 'the gateway cannot read its key registry (is a Switchyard worker running?); retry shortly'),
      };
    if (this.store && this.store.get(parsed.id) === undefined) await this.store.refreshForUnknown();
    const k = this.store?.get(parsed.id);
    // One message for an unknown key and a wrong secret: a caller learns nothing about which ids exist.
    if (!k || !secretMatches(parsed.secret, k.secretSha256)) return refuse('the API key is not valid');
    if (k.revokedAt !== undefined) return refuse(`the API key ${k.id} was revoked`);
    if (k.expiresAt !== undefined && Date.parse(k.expiresAt) <= Date.now()) return refuse(`the API key ${k.id} expired at ${k.expiresAt}`);
    return { ok: true, principal: { keyId: k.id, admin: false, grant: k } };
  }
}

interface Bucket {
  requests: number;
  tokens: number;
  at: number;
  inFlight: number;
}

/** Per-key limits on this gateway instance: token buckets for requests and tokens per minute, and a count of requests in flight. */
export class KeyLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly streams = new Map<string, number>();

  /** `maxStreams`: streams open at once per key (or for all callers of an open gateway), whatever the key's own limits. */
  constructor(private readonly maxStreams = 100) {}

  /** A stream's slot, held until it ends; 429 when the key has `maxStreams` open. */
  acquireStream(p: Principal | undefined): { ok: true; release: () => void } | { ok: false; error: GatewayError; retryAfterS: number } {
    const id = p?.keyId ?? '(open)';
    const open = this.streams.get(id) ?? 0;
    if (open >= this.maxStreams)
      return {
        ok: false,
        retryAfterS: 1,
        error: openAIError(
          429,
          'rate_limit_exceeded',
          `${p ? `key ${p.keyId}` : 'this gateway'} has ${open} streams open, the most it may; retry when one ends`,
          null,
          'too_many_streams',
        ),
      };
    this.streams.set(id, open + 1);
    return {
      ok: true,
      release: once(() => {
        const n = (this.streams.get(id) ?? 1) - 1;
        if (n <= 0) this.streams.delete(id);
        else this.streams.set(id, n);
      }),
    };
  }

  acquire(p: Principal | undefined, tokens: number): { ok: true; release: () => void } | { ok: false; error: GatewayError; retryAfterS: number } {
    const g = p?.grant;
    if (!p || !g || (g.rpm === undefined && g.tpm === undefined && g.maxConcurrency === undefined)) return { ok: true, release: () => undefined };
    const now = Date.now();
    const b = this.buckets.get(p.keyId) ?? { requests: g.rpm ?? 0, tokens: g.tpm ?? 0, at: now, inFlight: 0 };
    this.buckets.set(p.keyId, b);
    const minutes = (now - b.at) / 60_000;
    b.at = now;
    if (g.rpm !== undefined) b.requests = Math.min(g.rpm, b.requests + minutes * g.rpm);
    if (g.tpm !== undefined) b.tokens = Math.min(g.tpm, b.tokens + minutes * g.tpm);
    const limited = (message: string, retryAfterS: number) => ({
      ok: false as const,
      retryAfterS: Math.max(1, Math.ceil(retryAfterS)),
      error: openAIError(429, 'rate_limit_exceeded', message, null, 'rate_limit_exceeded'),
    });
    if (g.maxConcurrency !== undefined && b.inFlight >= g.maxConcurrency)
      return limited(`key ${p.keyId} has ${b.inFlight} requests open, its limit (max-concurrency ${g.maxConcurrency}); retry when one ends`, 1);
    if (g.rpm !== undefined && b.requests < 1) return limited(`key ${p.keyId} is over its ${g.rpm} requests per minute`, ((1 - b.requests) / g.rpm) * 60);
    if (g.tpm !== undefined) {
      if (tokens > g.tpm) return limited(`the request has ${tokens} input tokens, more than key ${p.keyId}'s ${g.tpm} tokens per minute`, 60);
      if (b.tokens < tokens) return limited(`key ${p.keyId} is over its ${g.tpm} tokens per minute`, ((tokens - b.tokens) / g.tpm) * 60);
      b.tokens -= tokens;
    }
    if (g.rpm !== undefined) b.requests -= 1;
    b.inFlight += 1;
    return { ok: true, release: once(() => (b.inFlight -= 1)) };
  }
}

/** A release that counts once, however often the response's end is reported. */
function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
