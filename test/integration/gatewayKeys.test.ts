/**
 * Virtual keys end to end: `switchyard keys` makes, lists, shows, rotates and revokes keys in the
 * key registry entity; a gateway in front of the same stack asks for a key, charges each key's
 * requests to its budget scope, holds it to its categories, models and rate limits (429 with
 * Retry-After), refuses a revoked key within seconds, and `switchyard report --by key` splits the
 * spend by key. Official openai client; curl-shaped fetches for the statuses.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../../src/gateway/keys.js';
import { runCli } from '../helpers/cli.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { useTestStack } from '../helpers/stack.js';

const ADMIN = 'admin-secret-for-tests-0123456789';

describe('gateway keys', () => {
  const stack = useTestStack();
  let gateway: TestGateway;
  let keys: KeyStore;
  const env = (): NodeJS.ProcessEnv => ({
    ...process.env,
    TEMPORAL_ADDRESS: stack.address,
    SWITCHYARD_TASK_QUEUE: stack.config.taskQueue,
    SWITCHYARD_LEDGER: stack.config.ledgerPath,
    SWITCHYARD_STATE_DIR: stack.config.stateDir,
    SWITCHYARD_LOG_LEVEL: 'warn',
  });
  const create = async (args: string[]): Promise<{ id: string; key: string; scope: string }> => {
    const r = await runCli(['keys', 'create', ...args, '--json'], env());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as { id: string; key: string; scope: string };
  };
  const client = (key: string) => new OpenAI({ apiKey: key, baseURL: gateway.base, maxRetries: 0 });
  const ask = (key: string, extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {}, headers: Record<string, string> = {}) =>
    client(key)
      .chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'Name a planet.' }], ...extra }, { headers })
      .withResponse();

  beforeAll(async () => {
    keys = new KeyStore(stack.client.temporal, stack.config.taskQueue, 200);
    await keys.start();
    gateway = await startGateway(stack, { keys, adminKey: ADMIN });
  });
  afterAll(async () => {
    keys?.stop();
    await gateway?.stop();
  });

  it('makes a key shown once, stored as a digest; the gateway charges its requests to its scope', async () => {
    const k = await create(['team-a', '--scope', 'team-a', '--categories', 'standard,batch']);
    expect(k.key).toMatch(/^sk-sy-[a-z0-9]{12}-[A-Za-z0-9_-]{43}$/);
    const listed = await runCli(['keys', 'list', '--json'], env());
    expect(listed.stdout).not.toContain(k.key.slice(-43));
    expect(listed.stdout).not.toContain('secretSha256');
    await keys.refresh();
    const { data, response } = await ask(k.key);
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    const r = await stack.client.result(response.headers.get('x-switchyard-workflow-id')!);
    expect(r.category).toBe('standard');
    const entry = stack.ledger.entries().find((e) => e.workflowId === r.workflowId);
    expect(entry?.scope).toBe('team-a');
    expect(entry?.keyId).toBe(k.id);
    // The key's history and logs never hold the secret.
    const history = JSON.stringify(await stack.client.temporal.workflow.getHandle(r.workflowId).fetchHistory());
    expect(history).not.toContain(k.key.slice(-43));
    // Metrics carry the key id, never the key.
    const metrics = await (await fetch(stack.metricsUrl)).text();
    expect(Number(new RegExp(`^switchyard_key_spend_dollars\\{key="${k.id}"\\} (\\S+)$`, 'm').exec(metrics)?.[1])).toBe(entry!.costNanos / 1e9);
    expect(metrics).not.toContain(k.key.slice(-43));
    // Names a request could never use, and models with tiers, are refused when the key is made.
    const badCategory = await runCli(['keys', 'create', 'team-bad', '--scope', 'bad', '--categories', 'Bad Cat'], env());
    expect(badCategory.code).not.toBe(0);
    expect(badCategory.stderr).toMatch(/--categories: "Bad Cat" is not a category name/);
    const both = await runCli(['keys', 'create', 'team-bad', '--scope', 'bad', '--models', 'gpt-4o', '--tiers', 'economy'], env());
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/--models and --tiers/);
    const show = await runCli(['keys', 'show', 'team-a'], env());
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/budget scope team-a, period .*: spent \$0\.\d+/);
  });

  it('refuses callers without a valid key (401), and what a key may not use (403)', async () => {
    const k = await create(['team-b', '--scope', 'team-b', '--categories', 'batch', '--models', 'gpt-4o-mini,claude-3-5-haiku']);
    await keys.refresh();
    const none = await fetch(`${gateway.base}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    const forged = await ask(`${k.key.slice(0, -4)}AAAA`).catch((e: unknown) => e);
    expect(forged).toBeInstanceOf(OpenAI.AuthenticationError);
    const wrongModel = await ask(k.key, { model: 'gpt-4o' }).catch((e: unknown) => e);
    expect(wrongModel).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((wrongModel as InstanceType<typeof OpenAI.PermissionDeniedError>).param).toBe('model');
    const wrongCategory = await ask(k.key, {}, { 'x-switchyard-category': 'critical' }).catch((e: unknown) => e);
    expect(wrongCategory).toBeInstanceOf(OpenAI.PermissionDeniedError);
    const otherScope = await ask(k.key, {}, { 'x-switchyard-budget-scope': 'team-a' }).catch((e: unknown) => e);
    expect(otherScope).toBeInstanceOf(OpenAI.PermissionDeniedError);
    // Nor as the judge of its checks.
    const judge = await ask(k.key, {}, { 'x-switchyard-quality': '{"judge":{"model":"o1","threshold":0.5}}' }).catch((e: unknown) => e);
    expect(judge).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((judge as InstanceType<typeof OpenAI.PermissionDeniedError>).param).toBe('quality.judge.model');
    // Routed within its models, in its one category.
    const { response } = await ask(k.key);
    const r = await stack.client.result(response.headers.get('x-switchyard-workflow-id')!);
    expect(['gpt-4o-mini', 'claude-3-5-haiku']).toContain(r.model);
    expect(r.category).toBe('batch');
    // Its model list shows what it may use.
    const models = (await client(k.key).models.list()).data.map((m) => m.id);
    expect(models).toContain('gpt-4o-mini');
    expect(models).not.toContain('gpt-4o');
    // A key collects only its own requests.
    const other = await create(['team-c', '--scope', 'team-c']);
    await keys.refresh();
    const peek = await fetch(`${gateway.base}/switchyard/requests/${r.workflowId}`, { headers: { authorization: `Bearer ${other.key}` } });
    expect(peek.status).toBe(404);
    const own = await fetch(`${gateway.base}/switchyard/requests/${r.workflowId}`, { headers: { authorization: `Bearer ${k.key}` } });
    expect(own.status).toBe(200);
  });

  it("answers 429 with Retry-After over a key's requests per minute", async () => {
    const k = await create(['team-rpm', '--scope', 'team-rpm', '--rpm', '2']);
    await keys.refresh();
    await ask(k.key);
    await ask(k.key);
    const third = await fetch(`${gateway.base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${k.key}` },
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'Name a moon.' }] }),
    });
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
  });

  it('refuses a revoked key within seconds, and a rotated key hands over to its successor', async () => {
    const k = await create(['team-r', '--scope', 'team-r']);
    await keys.refresh();
    const before = await ask(k.key, {}, { 'Idempotency-Key': 'before-rotation' });
    const rotated = await runCli(['keys', 'rotate', 'team-r', '--json'], env());
    expect(rotated.code).toBe(0);
    const next = JSON.parse(rotated.stdout) as { key: string; revoked: string };
    expect(next.revoked).toBe(k.id);
    // The gateway reads the registry on its timer (200 ms here; 2 s by default): no refresh called.
    const deadline = Date.now() + 5_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await fetch(`${gateway.base}/models`, { headers: { authorization: `Bearer ${k.key}` } })).status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
    const ok = await fetch(`${gateway.base}/models`, { headers: { authorization: `Bearer ${next.key}` } });
    expect(ok.status).toBe(200);
    // The successor keeps its predecessor's Idempotency-Keys and requests: a retry after a rotation is not paid twice.
    const retried = await ask(next.key, {}, { 'Idempotency-Key': 'before-rotation' });
    const workflowId = retried.response.headers.get('x-switchyard-workflow-id')!;
    expect(workflowId).toBe(before.response.headers.get('x-switchyard-workflow-id'));
    const collected = await fetch(`${gateway.base}/switchyard/requests/${encodeURIComponent(workflowId)}`, {
      headers: { authorization: `Bearer ${next.key}` },
    });
    expect(collected.status).toBe(200);
    expect(stack.ledger.entries().filter((e) => e.workflowId === workflowId)).toHaveLength(1);
    const revoked = await runCli(['keys', 'revoke', 'team-r'], env());
    expect(revoked.stdout).toMatch(/^revoked /);
  });

  it('checks the key on the route, however its path is spelled (percent-encoded)', async () => {
    const origin = gateway.base.replace(/\/v1$/, '');
    for (const path of ['/%761/switchyard/admin/keys', '/%761/models', '/v1/switchyard/%61dmin/keys']) {
      const r = await fetch(`${origin}${path}`);
      expect(r.status, path).toBe(401);
    }
    const chat = await fetch(`${origin}/%761/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-switchyard-budget-scope': 'team-a' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Free lunch?' }] }),
    });
    expect(chat.status).toBe(401);
    const k = await create(['team-enc', '--scope', 'team-enc']);
    await keys.refresh();
    const admin = await fetch(`${origin}/%761/switchyard/admin/keys`, { headers: { authorization: `Bearer ${k.key}` } });
    expect(admin.status).toBe(403);
  });

  it('a pending request with an Idempotency-Key: its Location collects it, and a key whose call is dropped keeps its slot free', async () => {
    const k = await create(['team-wait', '--scope', 'team-wait', '--tpm', '1000000', '--max-concurrency', '1']);
    await keys.refresh();
    const quick = await startGateway(stack, { keys, adminKey: ADMIN, waitMs: 300 });
    const release = stack.simulator.hold('gpt-4o-mini');
    try {
      // Calls dropped by their client at once, some maybe while the gateway counts their tokens: none keeps the key's one slot.
      for (let i = 0; i < 5; i++) {
        const ac = new AbortController();
        const dropped = fetch(`${quick.base}/chat/completions`, {
          method: 'POST',
          signal: ac.signal,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${k.key}` },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Dropped ${i}.` }] }),
        }).catch(() => undefined);
        setTimeout(() => ac.abort(), i);
        await dropped;
      }
      await new Promise((r) => setTimeout(r, 300));
      const slow = await fetch(`${quick.base}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${k.key}`, 'idempotency-key': 'collect-me' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Take your time: name two seas.' }] }),
      });
      expect(slow.status).toBe(504);
      const location = slow.headers.get('location')!;
      // The workflow id holds the key's id and a slash: the Location is encoded, and it leads to the run.
      expect(location).toMatch(/^\/v1\/switchyard\/requests\/llm-[^/]+%2F/);
      release();
      const got = await fetch(`${quick.base.replace(/\/v1$/, '')}${location}`, { headers: { authorization: `Bearer ${k.key}` } });
      expect(got.status).toBe(200);
      expect(((await got.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content.length).toBeGreaterThan(0);
    } finally {
      release();
      await quick.stop();
    }
  });

  it('guards the admin routes with the admin key; the admin key may call everything', async () => {
    const k = await create(['team-x', '--scope', 'team-x']);
    await keys.refresh();
    const denied = await fetch(`${gateway.base}/switchyard/admin/keys`, { headers: { authorization: `Bearer ${k.key}` } });
    expect(denied.status).toBe(403);
    const listed = await fetch(`${gateway.base}/switchyard/admin/keys`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(listed.status).toBe(200);
    const body = await listed.text();
    expect(body).toContain(k.id);
    expect(body).not.toContain('secretSha256');
    const { data } = await ask(ADMIN, {}, { 'x-switchyard-budget-scope': 'ops' });
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
  });

  it('switchyard report --by key splits the spend by key', async () => {
    const r = await runCli(['report', '--by', 'key', '--json'], env());
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { rows: Array<{ group: { key: string }; costNanos: number }> };
    const keyIds = report.rows.map((x) => x.group.key);
    expect(keyIds).toContain('none');
    const keyed = report.rows.filter((x) => x.group.key !== 'none');
    expect(keyed.length).toBeGreaterThanOrEqual(3);
    for (const row of keyed) expect(row.costNanos).toBeGreaterThan(0);
  });
});
