/**
 * Payload encryption on a real dev server: what the server stores holds no prompt, answer or memo
 * text; the client and worker read everything back; key rotation keeps old runs readable; the
 * codec endpoint decodes for the official Temporal CLI (`--codec-endpoint`) and refuses strangers.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { RequestFailedError, SwitchyardClient } from '../../src/client/client.js';
import { loadConfig } from '../../src/config/config.js';
import { CodecServer } from '../../src/security/codecServer.js';
import { encryptionKeysFromEnv } from '../../src/security/encryptionKeys.js';
import { AesGcmPayloadCodec, payloadKeyId } from '../../src/security/payloadCodec.js';
import { startTestStack, type TestStack, useTestStack } from '../helpers/stack.js';
import { createSwitchyardWorker } from '../../src/workers/createWorker.js';
import { FileLedger } from '../../src/ledger/fileLedger.js';
import { createLogger } from '../../src/util/logger.js';
import { join } from 'node:path';
import { findKeyMismatches } from '../../src/temporal/keyCheck.js';
import { entityTaskQueue } from '../../src/workflows/taskQueues.js';
import { runCli } from '../helpers/cli.js';
import { REDACTED_TITLE } from '../../src/workflows/request/contract.js';
import { replayHistories } from '../../src/replay/replay.js';
import { encodedFailuresBundlePath } from '../../src/workers/bundle.js';
import { dataConverterFor } from '../../src/temporal/connection.js';

const run = promisify(execFile);
const KEY1 = randomBytes(32).toString('base64');
const KEY2 = randomBytes(32).toString('base64');

function access(env: Record<string, string>) {
  const keys = encryptionKeysFromEnv(env);
  if (!keys) throw new Error('no keys');
  return { codec: new AesGcmPayloadCodec(keys), encryptionKeyId: keys.active.id, encryptionKeys: keys };
}

/** Everything the server stores for a run (history and description), as raw bytes. */
async function storedBytes(raw: Client, workflowId: string): Promise<Buffer> {
  const handle = raw.workflow.getHandle(workflowId);
  const history = await handle.fetchHistory();
  const described = await raw.connection.workflowService.describeWorkflowExecution({ namespace: 'default', execution: { workflowId } });
  return Buffer.concat([
    Buffer.from(temporal.api.history.v1.History.encode(history).finish()),
    Buffer.from(temporal.api.workflowservice.v1.DescribeWorkflowExecutionResponse.encode(described).finish()),
  ]);
}

function keyIdsIn(history: temporal.api.history.v1.IHistory): Set<string> {
  const ids = new Set<string>();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  for (const p of started?.input?.payloads ?? []) ids.add(payloadKeyId(p) ?? 'plaintext');
  for (const e of history.events ?? []) {
    for (const p of e.workflowExecutionCompletedEventAttributes?.result?.payloads ?? []) ids.add(payloadKeyId(p) ?? 'plaintext');
    for (const p of e.activityTaskCompletedEventAttributes?.result?.payloads ?? []) ids.add(payloadKeyId(p) ?? 'plaintext');
  }
  return ids;
}

/** The CLI's JSON history shows payload data as base64: every payload's data, decoded, and the raw text. */
function payloadText(json: string): string {
  const parts: string[] = [json];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'data' && typeof x === 'string') parts.push(Buffer.from(x, 'base64').toString('utf8'));
        else walk(x);
      }
    }
  };
  walk(JSON.parse(json));
  return parts.join('\n');
}

describe('payload encryption', () => {
  const stack = useTestStack(() => ({ config: { access: access({ SWITCHYARD_ENCRYPTION_KEY: KEY1, SWITCHYARD_ENCRYPTION_KEY_ID: 'k1' }) } }));
  let raw: Client;
  let rawConnection: Connection;
  const marker = `zebra-${randomUUID().slice(0, 8)}`;
  const prompt = `Summarise this note about the ${marker} migration in two sentences: the herd moved north in May.`;
  let firstId = '';
  let firstText = '';

  beforeAll(async () => {
    rawConnection = await Connection.connect({ address: stack.address });
    raw = new Client({ connection: rawConnection });
  });
  afterAll(async () => {
    await rawConnection?.close();
  });

  it('stores no prompt, answer or memo text on the server, and reads it all back', async () => {
    const r = await stack.client.ask({ prompt, context: `Appendix: ${marker} census figures`, requestId: `enc-${randomUUID()}` });
    firstId = r.workflowId;
    firstText = r.text;
    expect(r.text.length).toBeGreaterThan(20);
    const stored = await storedBytes(raw, r.workflowId);
    expect(stored.length).toBeGreaterThan(1000);
    expect(stored.includes(marker)).toBe(false);
    expect(stored.includes('herd moved north')).toBe(false);
    expect(stored.includes(r.text.slice(0, 30))).toBe(false);
    // The same run through the worker's own client: decoded, memo without prompt text.
    const shown = await stack.client.inspect(r.workflowId);
    expect(shown.title).toBe(REDACTED_TITLE);
    expect(JSON.stringify(shown)).toContain(r.text.slice(0, 30));
    expect(keyIdsIn(await raw.workflow.getHandle(r.workflowId).fetchHistory())).toEqual(new Set(['k1']));
  });

  it('failure messages go through the codec: the server stores "Encoded failure", clients read the real message', async () => {
    stack.simulator.setFaults({ 'gpt-4o-mini': { errorRates: {}, hangRate: 0, malformedRate: 0, dropRate: 0, script: [400] } });
    try {
      const requestId = `enc-400-${randomUUID()}`;
      const err = await stack.client
        .ask({ prompt: `Classify ${marker}: fine.`, model: 'gpt-4o-mini', noFallback: true, requestId })
        .catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(RequestFailedError);
      // The client (with the key) reads the real reason back.
      expect((err as Error).message).toContain('openai 400');
      const stored = await storedBytes(raw, `llm-${requestId}`);
      expect(stored.includes('simulated bad request')).toBe(false);
      expect(stored.includes(marker)).toBe(false);
      // Not even Switchyard's own wording of the failure is stored in the clear.
      expect(stored.includes('openai 400')).toBe(false);
      expect(stored.includes('Encoded failure')).toBe(true);
      // Every failure in the history carries its message as an encrypted payload under the key.
      const history = await raw.workflow.getHandle(`llm-${requestId}`).fetchHistory();
      const failures = (history.events ?? []).flatMap((e) =>
        [e.activityTaskFailedEventAttributes?.failure, e.workflowExecutionFailedEventAttributes?.failure].filter((f) => f != null),
      );
      expect(failures.length).toBeGreaterThan(0);
      for (const f of failures) {
        expect(f?.message).toBe('Encoded failure');
        expect(f?.encodedAttributes ? payloadKeyId(f.encodedAttributes) : undefined).toBe('k1');
      }
      // The run replays on the bundle a worker with encryption runs (`switchyard replay` picks it).
      const replayed = [];
      for await (const r of replayHistories(
        [{ workflowId: `llm-${requestId}`, history }],
        { bundlePath: encodedFailuresBundlePath(inject('workflowBundlePath')) },
        { dataConverter: dataConverterFor(stack.config.access) },
      ))
        replayed.push(r);
      expect(replayed).toEqual([{ workflowId: `llm-${requestId}`, runId: expect.any(String) as string, ok: true }]);
    } finally {
      stack.simulator.setFaults({});
    }
  });

  it('`codec server` refuses to listen beyond loopback without a token', async () => {
    const r = await runCli(['codec', 'server', '--host', '0.0.0.0', '--port', '0'], {
      ...process.env,
      SWITCHYARD_ENCRYPTION_KEY: KEY1,
      SWITCHYARD_CODEC_TOKEN: '',
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--host 0\.0\.0\.0 would let anyone .*SWITCHYARD_CODEC_TOKEN/);
  });

  it('a client without the key cannot read the result, and says which key it needs', async () => {
    const stranger = await SwitchyardClient.connect({
      address: stack.address,
      taskQueue: stack.config.taskQueue,
      access: access({ SWITCHYARD_ENCRYPTION_KEY: KEY2, SWITCHYARD_ENCRYPTION_KEY_ID: 'k2' }),
    });
    try {
      await expect(stranger.temporal.workflow.getHandle(firstId).result()).rejects.toThrow(/key id "k1".*SWITCHYARD_ENCRYPTION_OLD_KEYS/);
    } finally {
      await stranger.close();
    }
  });

  it('the CLI without any key says the payloads are encrypted and which variables to set', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: stack.address,
      SWITCHYARD_TASK_QUEUE: stack.config.taskQueue,
      SWITCHYARD_LOG_LEVEL: 'warn',
    };
    delete env.SWITCHYARD_ENCRYPTION_KEY;
    const r = await runCli(['show', firstId], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/payloads are encrypted and this process has no key: set SWITCHYARD_ENCRYPTION_KEY/);
  });

  it('rotation: a new key encrypts new runs, the old one still reads old runs', async () => {
    const rotated = await startTestStack({
      config: { access: access({ SWITCHYARD_ENCRYPTION_KEY: KEY2, SWITCHYARD_ENCRYPTION_KEY_ID: 'k2', SWITCHYARD_ENCRYPTION_OLD_KEYS: `k1:${KEY1}` }) },
    });
    try {
      const old = (await rotated.client.temporal.workflow.getHandle(firstId).result()) as { text: string };
      expect(old.text).toBe(firstText);
      const r = await rotated.client.ask({ prompt: `Name one ${marker} fact.`, requestId: `enc2-${randomUUID()}` });
      const history = await raw.workflow.getHandle(r.workflowId).fetchHistory();
      expect(keyIdsIn(history)).toEqual(new Set(['k2']));
      expect((await storedBytes(raw, r.workflowId)).includes(marker)).toBe(false);
    } finally {
      await rotated.stop();
    }
  });

  it('a key replaced under the same id: the worker refuses to start, naming the fix; listing the earlier key under that id works', async () => {
    const KEY3 = randomBytes(32).toString('base64');
    const start = (env: Record<string, string>) =>
      createSwitchyardWorker({
        config: { ...stack.config, access: access(env) },
        address: stack.address,
        ledger: new FileLedger(join(stack.config.stateDir, `keycheck-${randomUUID()}.jsonl`)),
        workflowBundlePath: inject('workflowBundlePath'),
        log: createLogger('error'),
      });
    await expect(start({ SWITCHYARD_ENCRYPTION_KEY: KEY3, SWITCHYARD_ENCRYPTION_KEY_ID: 'k1' })).rejects.toThrow(
      /encryption key "k1" \(fingerprint [0-9a-f]{16}\) is not the key that encrypted \d+ recent run\(s\).*fingerprint [0-9a-f]{16}.*give the new key a new id.*SWITCHYARD_ENCRYPTION_OLD_KEYS=k1:<earlier key>/,
    );
    const message = await start({ SWITCHYARD_ENCRYPTION_KEY: KEY3, SWITCHYARD_ENCRYPTION_KEY_ID: 'k1' }).catch((e: unknown) => (e as Error).message);
    expect(message).not.toContain(KEY3.slice(0, 12));
    expect(message).not.toContain(KEY1.slice(0, 12));
    // Rotated under the same id, with the earlier key listed under it: the check passes (the worker is
    // not started here: it would poll this stack's queue beside the stack's own worker, which does not
    // have the new key), and a client reads the old run.
    const both = access({ SWITCHYARD_ENCRYPTION_KEY: KEY3, SWITCHYARD_ENCRYPTION_KEY_ID: 'k1', SWITCHYARD_ENCRYPTION_OLD_KEYS: `k1:${KEY1}` }).encryptionKeys;
    const found = await findKeyMismatches(raw.connection, 'default', [stack.config.taskQueue, entityTaskQueue(stack.config.taskQueue)], both);
    expect(found.mismatches).toEqual([]);
    const alone = await findKeyMismatches(
      raw.connection,
      'default',
      [stack.config.taskQueue, entityTaskQueue(stack.config.taskQueue)],
      access({ SWITCHYARD_ENCRYPTION_KEY: KEY3 }).encryptionKeys,
    );
    expect(alone.mismatches.length).toBeGreaterThan(0);
    const reader = await SwitchyardClient.connect({
      address: stack.address,
      taskQueue: stack.config.taskQueue,
      access: access({ SWITCHYARD_ENCRYPTION_KEY: KEY3, SWITCHYARD_ENCRYPTION_OLD_KEYS: `k1:${KEY1}` }),
    });
    try {
      expect(((await reader.temporal.workflow.getHandle(firstId).result()) as { text: string }).text).toBe(firstText);
    } finally {
      await reader.close();
    }
  });

  it('the codec endpoint decodes for `temporal workflow show --codec-endpoint`, only with the token and an allowed origin', async () => {
    const token = randomBytes(16).toString('hex');
    const server = new CodecServer({
      codec: access({ SWITCHYARD_ENCRYPTION_KEY: KEY1, SWITCHYARD_ENCRYPTION_KEY_ID: 'k1' }).codec,
      allowedOrigins: ['http://localhost:8233'],
      namespace: 'default',
      token,
    });
    const url = await server.start();
    try {
      const cli = inject('temporalCli');
      const show = (extra: string[]) =>
        run(cli, ['workflow', 'show', '--address', stack.address, '--workflow-id', firstId, '--output', 'json', ...extra], { maxBuffer: 64 * 1024 * 1024 });
      const plain = await show([]);
      expect(payloadText(plain.stdout).includes(marker)).toBe(false);
      const decoded = await show(['--codec-endpoint', url, '--codec-auth', `Bearer ${token}`]);
      expect(payloadText(decoded.stdout)).toContain(marker);
      await expect(show(['--codec-endpoint', url, '--codec-auth', 'Bearer wrong'])).rejects.toThrow();

      const body = JSON.stringify({ payloads: [] });
      const post = (headers: Record<string, string>) =>
        fetch(`${url}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });
      expect((await post({ Authorization: `Bearer ${token}`, Origin: 'http://evil.example' })).status).toBe(403);
      expect((await post({ Authorization: `Bearer ${token}`, 'X-Namespace': 'other' })).status).toBe(403);
      const ok = await post({ Authorization: `Bearer ${token}`, Origin: 'http://localhost:8233', 'X-Namespace': 'default' });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
      expect(await ok.json()).toEqual({ payloads: [] });
      const bad = await fetch(`${url}/decode`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: '{"payloads": 3}' });
      expect(bad.status).toBe(400);
    } finally {
      await server.stop();
    }
  });
});

describe('a worker that requires encryption (SWITCHYARD_ENCRYPTION_REQUIRED)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    const keys = encryptionKeysFromEnv({ SWITCHYARD_ENCRYPTION_KEY: KEY1, SWITCHYARD_ENCRYPTION_KEY_ID: 'k1' })!;
    stack = await startTestStack({
      config: {
        access: { codec: new AesGcmPayloadCodec(keys, { refusePlaintext: true }), encryptionKeyId: 'k1', encryptionKeys: keys, encryptionRequired: true },
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('fails a request started in plaintext at once, naming the fix; nothing is called, charged or stuck', async () => {
    const plain = await SwitchyardClient.connect({ address: stack.address, taskQueue: stack.config.taskQueue });
    try {
      const before = stack.simulator.received().length;
      const failed = await plain.ask({ requestId: `plain-${Date.now()}`, prompt: 'Name a colour.' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failed).toBeInstanceOf(RequestFailedError);
      expect((failed as RequestFailedError).failureType).toBe('EncryptionRequired');
      expect((failed as RequestFailedError).message).toMatch(/started with a plaintext payload.*SWITCHYARD_ENCRYPTION_KEY/);
      expect(stack.simulator.received().length).toBe(before);
      expect(stack.ledger.entries()).toEqual([]);
    } finally {
      await plain.close();
    }
    // An encrypted client is served as usual.
    expect((await stack.client.ask({ requestId: `enc-${Date.now()}`, prompt: 'Name a colour.' })).text.length).toBeGreaterThan(0);
  });

  it('a worker refuses to start while a running run holds plaintext (it could not replay it), naming it; and starts once it is gone', async () => {
    // Encrypted runs are running on its queues (the entities of the request above): no refusal.
    await stack.restartWorker();
    const plain = await SwitchyardClient.connect({ address: stack.address, taskQueue: stack.config.taskQueue });
    const id = `plaintext-entity-${Date.now()}`;
    try {
      // A run started in plaintext before encryption was required (a type no worker runs: it stays Running).
      await plain.temporal.workflow.start('startedBeforeEncryption', { workflowId: id, taskQueue: stack.config.taskQueue, args: [{ note: 'plaintext' }] });
      await expect(stack.restartWorker()).rejects.toThrow(
        new RegExp(`SWITCHYARD_ENCRYPTION_REQUIRED: 1 running run\\(s\\).*${id}.*without SWITCHYARD_ENCRYPTION_REQUIRED`),
      );
      await plain.temporal.workflow.getHandle(id).terminate('test');
    } finally {
      await plain.close();
    }
    await stack.restartWorker();
    expect((await stack.client.ask({ requestId: `enc-after-${Date.now()}`, prompt: 'Name a colour.' })).text.length).toBeGreaterThan(0);
  });

  it('is refused without a key to encrypt with', () => {
    expect(() => loadConfig({ SWITCHYARD_ENCRYPTION_REQUIRED: 'true' })).toThrow(/SWITCHYARD_ENCRYPTION_REQUIRED=true needs SWITCHYARD_ENCRYPTION_KEY/);
    expect(() => loadConfig({ SWITCHYARD_ENCRYPTION_REQUIRED: 'yes' })).toThrow(/SWITCHYARD_ENCRYPTION_REQUIRED: must be true or false/);
  });
});
