/**
 * The prebuilt workflow bundles: `npm run build` writes dist/workflow-bundle.js, and beside it
 * dist/workflow-bundle-encoded-failures.js (the same code with the failure converter that sends
 * failure messages through the payload codec, for workers with encryption on), so a worker starts
 * without running webpack. Run directly, this module writes both.
 */
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { failureConverterPath } from '../security/failureConverterPath.js';

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

/** The bundle with encoded failures that sits beside a plain one. */
export function encodedFailuresBundlePath(plainPath: string): string {
  return plainPath.replace(/(\.js)?$/, '-encoded-failures.js');
}

/**
 * What a Worker or replayer runs: the prebuilt bundle that matches the failure converter (the one
 * with encoded failures when encryption is on), else the sources, bundled at start.
 */
export function workflowCode(opts: { encodedFailures: boolean; bundlePath?: string }): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  const plain = opts.bundlePath ?? defaultBundlePath();
  const path = opts.encodedFailures ? encodedFailuresBundlePath(plain) : plain;
  return existsSync(path) ? { workflowBundle: { codePath: path } } : { workflowsPath: workflowsSourcePath() };
}

/** Writes the plain bundle to outPath and the encoded-failures one beside it; returns outPath. */
export async function writeWorkflowBundle(outPath: string, workflowsPath = workflowsSourcePath()): Promise<string> {
  const logger = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };
  const plain = await bundleWorkflowCode({ workflowsPath, logger });
  writeFileSync(outPath, plain.code);
  const encoded = await bundleWorkflowCode({ workflowsPath, logger, failureConverterPath: failureConverterPath() });
  writeFileSync(encodedFailuresBundlePath(outPath), encoded.code);
  return outPath;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // The failure converter is CommonJS, which tsc does not emit: the build puts it beside the
  // compiled modules, so dist/ (the package, the image) runs on its own.
  const cjs = join(packageRoot(), 'dist', 'src', 'security', 'failureConverter.cjs');
  copyFileSync(join(packageRoot(), 'src', 'security', 'failureConverter.cjs'), cjs);
  const out = defaultBundlePath();
  await writeWorkflowBundle(out);
  process.stderr.write(`workflow bundles written to ${out} and ${encodedFailuresBundlePath(out)}\n`);
}
