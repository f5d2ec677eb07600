/**
 * The prebuilt workflow bundle: `npm run build` writes dist/workflow-bundle.js, so a worker starts
 * without running webpack. Run directly, this module writes the bundle.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const here = dirname(fileURLToPath(import.meta.url));

/** The package root, from either src/workers (tests) or dist/src/workers (built). */
export function packageRoot(): string {
  let dir = here;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`cannot find package.json above ${here}`);
}

export function defaultBundlePath(): string {
  return join(packageRoot(), 'dist', 'workflow-bundle.js');
}

export function workflowsSourcePath(): string {
  const js = join(here, '..', 'workflows', 'index.js');
  return existsSync(js) ? js : join(here, '..', 'workflows', 'index.ts');
}

export async function writeWorkflowBundle(outPath: string, workflowsPath = workflowsSourcePath()): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } });
  writeFileSync(outPath, code);
  return outPath;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = defaultBundlePath();
  await writeWorkflowBundle(out);
  process.stderr.write(`workflow bundle written to ${out}\n`);
}
