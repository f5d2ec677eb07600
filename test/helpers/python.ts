/** Python virtual environments for tests, made once (pip from PyPI) and cached next to the Temporal CLI. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../src/temporal/cli.js';

/** A venv with exactly these pinned packages (`name==version`); returns its python. */
export function pythonWith(packages: readonly string[]): string {
  const venv = join(cacheDir(), `python-${packages.map((p) => p.replace(/[^A-Za-z0-9.]+/g, '-')).join('_')}`);
  const python = join(venv, 'bin', 'python');
  if (existsSync(python)) return python;
  execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...packages], { stdio: 'inherit' });
  return python;
}
