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
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_CLI: inject('temporalCli'),
    SWITCHYARD_LOG_LEVEL: 'warn',
    SWITCHYARD_STATE_DIR: state,
    SWITCHYARD_ENCRYPTION_KEY: KEY,
    SWITCHYARD_ENCRYPTION_KEY_ID: 'e2e',
  };
  for (const k of [
    'OPENAI_API_KEY',
    'ANTHROPIC_API_KEY',
    'GEMINI_API_KEY',
    'MISTRAL_API_KEY',
    'SELF_HOSTED_BASE_URL',
    'SWITCHYARD_SIMULATOR_URL',
    'SWITCHYARD_CODEC_TOKEN',
  ])
    delete e[k];
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
  it("decodes through the stack's codec endpoint, only for a browser signed in with its one-time link; the server stores ciphertext", async () => {
    const address = /Temporal\s+(\S+:\d+)/.exec(banner)?.[1] ?? '';
    const signIn = /Temporal UI\s+(http\S+)/.exec(banner)?.[1] ?? '';
    expect(signIn, banner).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/switchyard\/sign-in\?code=\d+\.[\w-]{16}\.[\w-]{43}$/);
    const uiUrl = new URL(signIn).origin;
    const codecUrl = /codec\s+(http\S+) \(payloads encrypted with key e2e/.exec(banner)?.[1] ?? '';
    expect(codecUrl, banner).toBe(`${uiUrl}/codec`);
    // What any local process can find: the UI's settings and the dev server's command line name the
    // endpoint, and that alone decodes nothing (issue 21, item 11).
    const settings = (await (await fetch(`${uiUrl}/api/v1/settings`)).json()) as { Codec: { Endpoint: string } };
    expect(settings.Codec.Endpoint).toBe(codecUrl);
    const ps = await run('ps', ['-eo', 'args']);
    const devServerArgs = ps.stdout.split('\n').find((l) => l.includes('start-dev') && l.includes(codecUrl)) ?? '';
    expect(devServerArgs).toContain(`--ui-codec-endpoint ${codecUrl}`);
    const probe = { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: uiUrl }, body: '{"payloads":[]}' };
    expect((await fetch(`${codecUrl}/decode`, probe)).status).toBe(403);
    expect((await fetch(`${codecUrl}/decode`, { ...probe, headers: { ...probe.headers, Cookie: 'switchyard_ui_session=guess' } })).status).toBe(403);
    // A forged link is refused.
    const forged = signIn.replace(/\.[\w-]{43}$/, `.${'A'.repeat(43)}`);
    expect((await fetch(forged, { redirect: 'manual' })).status).toBe(403);

    // `switchyard ui` in another shell makes a new link from the stack record; it signs in once.
    const ui = await runCli(['ui'], { ...env(), TEMPORAL_ADDRESS: address }, state);
    expect(ui.code, ui.stderr).toBe(0);
    const fresh = ui.stdout.trim();
    expect(fresh.startsWith(`${uiUrl}/switchyard/sign-in?code=`)).toBe(true);
    expect(fresh).not.toBe(signIn);
    const signedIn = await fetch(fresh, { redirect: 'manual' });
    expect(signedIn.status).toBe(303);
    const cookie = /^(switchyard_ui_session=[\w-]+);.*Path=\/codec; HttpOnly; SameSite=Strict/.exec(signedIn.headers.get('set-cookie') ?? '')?.[1];
    expect(cookie).toBeDefined();
    expect((await fetch(`${codecUrl}/decode`, { ...probe, headers: { ...probe.headers, Cookie: cookie ?? '' } })).status).toBe(200);
    // Where no stack runs, `ui` says so.
    const none = await runCli(['ui'], { ...env(), TEMPORAL_ADDRESS: '127.0.0.1:1' }, state);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('no `switchyard up` runs a UI at 127.0.0.1:1');
    const again = await fetch(fresh, { redirect: 'manual' });
    expect(again.status).toBe(403);
    expect(await again.text()).toContain('already used');

    const requestId = `enc-ui-${Date.now()}`;
    const asked = await runCli(
      ['ask', '--json', '--request-id', requestId, `Summarise the ${marker} field notes in one line.`],
      { ...env(), TEMPORAL_ADDRESS: address },
      state,
    );
    expect(asked.code, asked.stderr).toBe(0);
    const raw = await run(inject('temporalCli'), ['workflow', 'show', '--address', address, '--workflow-id', `llm-${requestId}`, '--output', 'json'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(raw.stdout.includes(marker)).toBe(false);
    const payloads = [...raw.stdout.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1] ?? '', 'base64').toString('utf8'));
    expect(payloads.length).toBeGreaterThan(3);
    expect(payloads.some((p) => p.includes(marker))).toBe(false);

    browser = await launchHeadless();
    // Not signed in: the page loads (through the gate) but shows no prompt.
    const stranger = await browser.newPage();
    // The UI asks the codec and is refused (it leaves refused answers unread, so no "networkidle").
    const refused = stranger.waitForResponse((r) => r.url().startsWith(`${codecUrl}/decode`) && r.status() === 403, { timeout: 30_000 });
    await stranger.goto(`${uiUrl}/namespaces/default/workflows/llm-${requestId}`, { waitUntil: 'load' });
    await refused;
    await expect.poll(async () => (await stranger.locator('body').innerText()).includes(`llm-${requestId}`), { timeout: 30_000 }).toBe(true);
    expect((await stranger.locator('body').innerText()).includes(marker)).toBe(false);
    await stranger.context().close();
    // Signed in with the link `up` printed: the same page shows the prompt, decoded.
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(signIn, { waitUntil: 'networkidle' });
    expect(new URL(page.url()).pathname).not.toContain('sign-in');
    await page.goto(`${uiUrl}/namespaces/default/workflows/llm-${requestId}`, { waitUntil: 'networkidle' });
    await expect.poll(async () => (await page.locator('body').innerText()).includes(marker), { timeout: 30_000 }).toBe(true);
  });

  it('when its dev server dies, the gate passes nothing through and `up` stops with an error (no half-stack left)', async () => {
    const signIn = /Temporal UI\s+(http\S+)/.exec(banner)?.[1] ?? '';
    const uiUrl = new URL(signIn).origin;
    const ps = await run('ps', ['-eo', 'pid,args']);
    const line = ps.stdout.split('\n').find((l) => l.includes('start-dev') && l.includes(`${uiUrl}/codec`)) ?? '';
    const pid = Number(line.trim().split(/\s+/)[0]);
    expect(pid, ps.stdout).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    const ended = await up!.exited;
    expect(ended.code).toBe(1);
    expect(ended.output).toContain('the Temporal dev server exited on its own');
    await expect(fetch(uiUrl)).rejects.toThrow();
  });
});
