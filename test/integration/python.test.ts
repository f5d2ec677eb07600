/**
 * A pipeline in Python: the example script starts requests with Temporal's own Python SDK
 * (`temporalio` from PyPI, in a virtual environment cached next to the Temporal CLI) against the
 * real dev server and a Switchyard worker: a completed request, a failed one with its failure type
 * and details, and a re-submission of the same id that collects instead of running again.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pythonWith } from '../helpers/python.js';
import { useTestStack } from '../helpers/stack.js';

const TEMPORALIO = '1.35.0';

function runScript(python: string, args: string[]): Promise<{ code: number | null; out: unknown; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(python, [join(process.cwd(), 'examples', 'python', 'switchyard_request.py'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code, signal) =>
      resolve({ code, out: stdout.trim() ? (JSON.parse(stdout) as unknown) : undefined, stderr: `${stderr}${signal ? `killed by ${signal}` : ''}` }),
    );
  });
}

describe('a Python pipeline (temporalio)', () => {
  let python: string;
  beforeAll(() => {
    python = pythonWith([`temporalio==${TEMPORALIO}`]);
  }, 300_000);
  const stack = useTestStack();

  it('starts a request by name with JSON input, reads the result and a failure, and never runs an id twice', async () => {
    const base = ['--address', stack.address, '--task-queue', stack.config.taskQueue];
    const id = `py-${Date.now()}`;
    const ok = await runScript(python, [...base, '--request-id', id, '--prompt', 'Classify the sentiment: I love it.', '--category', 'batch']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const r = ok.out as { workflowId: string; model: string; costNanos: number; category: string; text: string };
    expect(r.workflowId).toBe(`llm-${id}`);
    expect(r.category).toBe('batch');
    expect(r.costNanos).toBeGreaterThan(0);
    expect(r.text.length).toBeGreaterThan(0);
    // The run carries what the CLI sets: category search attribute and memo title.
    const desc = await stack.client.temporal.workflow.getHandle(`llm-${id}`).describe();
    expect(desc.memo?.title).toBe('Classify the sentiment: I love it.');
    // Again with the same id: collected, not run again (one ledger entry).
    const again = await runScript(python, [...base, '--request-id', id, '--prompt', 'Classify the sentiment: I love it.', '--category', 'batch']);
    expect((again.out as { costNanos: number }).costNanos).toBe(r.costNanos);
    expect(stack.ledger.entries().filter((e) => e.workflowId === `llm-${id}`)).toHaveLength(1);
    // A failure comes back with its type and the details of every attempt.
    const bad = await runScript(python, [...base, '--request-id', `${id}-nomodel`, '--prompt', 'hi', '--extra', '{"maxLatencyMs": 1}']);
    expect(bad.code).toBe(3);
    expect(bad.out).toMatchObject({ error: { type: 'NoEligibleModel', message: expect.stringMatching(/maxLatencyMs/) } });
  });
});
