/**
 * scripts/test-tools.sh, the first step of `npm test`: on a machine without the tools it must stop
 * at once and name each missing tool with its package (never let a test skip), and with them it
 * must pass. The "without" machine is this one with PATH cut down to a folder holding only what
 * the script itself runs (bash, id, dirname): chromium, nghttpx, openssl, promtool,
 * docker-compose and go are then missing, and SWITCHYARD_NO_INSTALL forbids apt-get.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const script = join(import.meta.dirname, '..', '..', 'scripts', 'test-tools.sh');
const bin = mkdtempSync(join(tmpdir(), 'sy-tools-'));
afterAll(() => rmSync(bin, { recursive: true, force: true }));

function which(cmd: string): string {
  const r = spawnSync('bash', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (!path) throw new Error(`${cmd} is needed to run this test`);
  return path;
}

describe('scripts/test-tools.sh', () => {
  it('stops at once on a machine without the tools, naming each missing tool and its package', () => {
    for (const cmd of ['bash', 'id', 'dirname']) symlinkSync(which(cmd), join(bin, cmd));
    const r = spawnSync(join(bin, 'bash'), [script], { encoding: 'utf8', env: { PATH: bin, HOME: tmpdir(), SWITCHYARD_NO_INSTALL: '1' } });
    expect(r.status).toBe(1);
    for (const [tool, pkg] of [
      ['chromium', 'chromium'],
      ['nghttpx', 'nghttp2-proxy'],
      ['openssl', 'openssl'],
      ['promtool', 'prometheus'],
      ['docker-compose', 'docker-compose'],
    ]) {
      expect(r.stderr).toContain(`${tool} (Debian package ${pkg})`);
    }
    expect(r.stderr).toMatch(/sudo apt-get install .*chromium.*nghttp2-proxy/);
    expect(r.stdout).not.toContain('all present');
  });

  it('passes where the tools are installed', () => {
    const r = spawnSync('bash', [script], { encoding: 'utf8', env: { ...process.env, SWITCHYARD_NO_INSTALL: '1' } });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('test tools: all present');
    expect(r.status).toBe(0);
  });
});
