/**
 * One Temporal dev server for the whole test run, started through @temporalio/testing with the
 * CLI the project installs (no download), and the project's search attributes registered. The
 * workflow bundle is built once from the sources. TEMPORAL_ADDRESS set: that server is used.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TestProject } from 'vitest/node';
import { ensureTemporalCli } from '../../src/temporal/cli.js';
import { writeWorkflowBundle } from '../../src/workers/bundle.js';
import { dynamicConfigFlags } from '../../src/temporal/devServer.js';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/request/contract.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
    temporalCli: string;
  }
}

let env: TestWorkflowEnvironment | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-test-'));
  const cli = await ensureTemporalCli();
  const bundlePath = await writeWorkflowBundle(join(dir, 'workflow-bundle.js'), join(process.cwd(), 'src', 'workflows', 'index.ts'));
  let address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: cli },
        ip: '127.0.0.1',
        searchAttributes: SEARCH_ATTRIBUTES,
        extraArgs: ['--log-level', 'error', ...dynamicConfigFlags()],
      },
    });
    address = env.address;
  }
  project.provide('temporalAddress', address);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('temporalCli', cli);
}

export async function teardown(): Promise<void> {
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
