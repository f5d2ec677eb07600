/**
 * Replay: the checked-in histories of earlier workflow versions replay against the current code
 * (an incompatible change fails CI here), and a deliberately non-deterministic change is caught.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { historiesFromFiles, type ReplayOutcome, replayHistories } from '../../src/replay/replay.js';

const dir = join(process.cwd(), 'test', 'histories');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => join(dir, f));

async function collect(it: AsyncIterable<ReplayOutcome>): Promise<ReplayOutcome[]> {
  const out: ReplayOutcome[] = [];
  for await (const r of it) out.push(r);
  return out;
}

describe('replay of recorded histories', () => {
  it('has the representative runs checked in', () => {
    const names = files.map((f) => f.replace(/^.*\/v\d+-/, '').replace(/\.json$/, ''));
    for (const want of [
      'success',
      'fallback',
      'escalation',
      'budget-denied',
      'budget-downgrade',
      'budget-entity',
      'health-entity',
      'experiment-request',
      'experiment-entity',
      'routing-entity',
      'deferred-batch',
      'deferred-live',
      'deferred-rebatch',
      'deferred-collector-entity',
      'deferred-batch-entity',
      'deferred-batch-entity-unsettled',
      'budget-realloc-entity',
    ])
      expect(names).toContain(want);
  });

  it('every checked-in history replays against the current workflow code', async () => {
    const results = await collect(replayHistories(historiesFromFiles(files), { bundlePath: inject('workflowBundlePath') }));
    expect(results).toHaveLength(files.length);
    expect(results.filter((r) => !r.ok)).toEqual([]);
  });

  it('a change that is not guarded by patched() is reported as a determinism error, per run', async () => {
    const requests = files.filter((f) => !/entity|batch-run/.test(f)); // request runs (the altered workflow is llmRequest)
    const results = await collect(replayHistories(historiesFromFiles(requests), { workflowsPath: join(dir, 'nondeterministic', 'workflows.ts') }));
    expect(results).toHaveLength(requests.length);
    for (const r of results) {
      expect(r.ok).toBe(false);
      expect(r.kind).toBe('nondeterminism');
      expect(r.error).toMatch(/nondetermin/i);
    }
  });
});
