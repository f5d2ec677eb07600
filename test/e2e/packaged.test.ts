/**
 * What the package and the image ship (dist/, bin/, package.json: no src/) runs on its own, with
 * encryption on: the failure converter and the encoded-failures bundle are in dist/. Run after
 * `npm run build` (npm test builds first).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-packaged-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the packaged layout', () => {
  it('npm pack lists the failure converter and both workflow bundles', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, maxBuffer: 64 << 20 });
    const files = new Set((JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
    for (const want of ['dist/src/security/failureConverter.cjs', 'dist/workflow-bundle.js', 'dist/workflow-bundle-encoded-failures.js', 'bin/switchyard.js'])
      expect([want, files.has(want)]).toEqual([want, true]);
  });

  it("dist/ alone replays a recorded run with an encryption key (the image's layout: dist, bin, node_modules)", async () => {
    for (const part of ['dist', 'bin', 'package.json']) cpSync(join(root, part), join(dir, part), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    const env = {
      ...process.env,
      SWITCHYARD_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      SWITCHYARD_ENCRYPTION_KEY_ID: 'pkg',
      SWITCHYARD_STATE_DIR: join(dir, 'state'),
    };
    const { stdout } = await run(
      process.execPath,
      [join(dir, 'bin', 'switchyard.js'), 'replay', '--file', join(root, 'test', 'histories', 'v8-success.json')],
      { cwd: dir, env },
    );
    expect(stdout).toContain('replayed 1 run(s): 1 ok, 0 failed');
  }, 120_000);
});
