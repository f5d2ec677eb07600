/**
 * `switchyard up` with an encryption key: the embedded Temporal UI is configured with the codec
 * endpoint the stack runs, and shows a request's prompt decoded in headless Chromium, while the
 * server holds only ciphertext (the CLI's raw `workflow show` does not contain it).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { runCli, startUp, type UpProcess } from '../helpers/cli.js';
import { launchHeadless } from '../helpers/browser.js';

const run = promisify(execFile);
const state = mkdtempSync(join(tmpdir(), 'switchyard-e2e-enc-'));
const marker = `okapi-${Date.now().toString(36)}`;
let up: UpProcess | undefined;
let banner = '';
let browser: Browser | undefined;

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_CLI: inject('temporalCli'), SWITCHYARD_LOG_LEVEL: 'warn', SWITCHYARD_STATE_DIR: state, SWITCHYARD_ENCRYPTION_KEY: KEY, SWITCHYARD_ENCRYPTION_KEY_ID: 'e2e' };
  for (const k of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'MISTRAL_API_KEY', 'SELF_HOSTED_BASE_URL', 'SWITCHYARD_SIMULATOR_URL', 'SWITCHYARD_CODEC_TOKEN']) delete e[k];
  return e;
}
const KEY = randomBytes(32).toString('base64');

beforeAll(async () => {
  up = await startUp(['--port', '0', '--ui-port', '0', '--state-dir', join(state, 'stack'), '--latency-scale', '0'], env());
  banner = up.banner;
});

afterAll(async () => {
  await browser?.close();
  await up?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe('the embedded UI with payload encryption', () => {
  it('decodes through the stack\'s codec endpoint; the server stores ciphertext', async () => {
    const address = /Temporal\s+(\S+:\d+)/.exec(banner)?.[1] ?? '';
    const uiUrl = /Temporal UI\s+(http\S+)/.exec(banner)?.[1] ?? '';
    const codecUrl = /codec\s+(http\S+) \(payloads encrypted with key e2e/.exec(banner)?.[1] ?? '';
    // A capability URL: a random path under the port (issue 21, item 11).
    expect(codecUrl, banner).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{32}$/);
    const settings = (await (await fetch(`${uiUrl}/api/v1/settings`)).json()) as { Codec: { Endpoint: string } };
    expect(settings.Codec.Endpoint).toBe(codecUrl);
    // Another local process that knows only the port decodes nothing.
    const port = new URL(codecUrl).port;
    const guess = await fetch(`http://127.0.0.1:${port}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"payloads":[]}' });
    expect(guess.status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/${'0'.repeat(32)}/decode`, { method: 'POST', body: '{"payloads":[]}' })).status).toBe(404);
    expect((await fetch(`${codecUrl}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"payloads":[]}' })).status).toBe(200);

    const requestId = `enc-ui-${Date.now()}`;
    const asked = await runCli(['ask', '--json', '--request-id', requestId, `Summarise the ${marker} field notes in one line.`], { ...env(), TEMPORAL_ADDRESS: address }, state);
    expect(asked.code, asked.stderr).toBe(0);
    const raw = await run(inject('temporalCli'), ['workflow', 'show', '--address', address, '--workflow-id', `llm-${requestId}`, '--output', 'json'], { maxBuffer: 64 * 1024 * 1024 });
    expect(raw.stdout.includes(marker)).toBe(false);
    const payloads = [...raw.stdout.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1] ?? '', 'base64').toString('utf8'));
    expect(payloads.length).toBeGreaterThan(3);
    expect(payloads.some((p) => p.includes(marker))).toBe(false);

    browser = await launchHeadless();
    const page = await browser.newPage();
    await page.goto(`${uiUrl}/namespaces/default/workflows/llm-${requestId}`, { waitUntil: 'networkidle' });
    await expect.poll(async () => (await page.locator('body').innerText()).includes(marker), { timeout: 30_000 }).toBe(true);
  });
});
