/**
 * Versions in one place (src/workflows/patches.ts): every patched() id the workflow code uses is
 * listed, with recorded histories that hold its marker (the new branch) and histories recorded
 * before it (the old branch), and each history named is there and says so.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PATCHES } from '../../src/workflows/patches.js';

const root = join(import.meta.dirname, '..', '..');
const histories = join(root, 'test', 'histories');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The patch ids whose markers a history holds, and its workflow type. */
function historyOf(file: string): { type: string; markers: Set<string> } {
  const h = JSON.parse(readFileSync(join(histories, file), 'utf8')) as { events: Array<Record<string, any>> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- proto JSON read for two fields
  const markers = new Set<string>();
  for (const e of h.events) {
    const details = (e.markerRecordedEventAttributes?.details ?? {}) as Record<string, { payloads?: Array<{ data?: string }> }>;
    for (const d of Object.values(details)) {
      for (const p of d.payloads ?? []) {
        try {
          const v = JSON.parse(Buffer.from(p.data ?? '', 'base64').toString('utf8')) as { id?: unknown };
          if (typeof v.id === 'string') markers.add(v.id);
        } catch {
          // not a patch marker's payload
        }
      }
    }
  }
  const type = String(h.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '');
  return { type, markers };
}

describe('the patch list', () => {
  const used = new Set(
    sources(join(root, 'src', 'workflows')).flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/(?:patched|deprecatePatch)\('([^']+)'\)/g)].map((m) => m[1]!)),
  );

  it('lists every patch id the workflow code uses, once, and no other', () => {
    const listed = PATCHES.map((p) => p.id);
    expect(new Set(listed).size).toBe(listed.length);
    expect([...used].sort()).toEqual([...listed].sort());
  });

  it.each(PATCHES.map((p) => [p.id, p] as const))(
    '%s: its histories exist, of its workflow, with the marker where it says and without it where recorded before',
    (_id, p) => {
      expect(p.markerIn.length + p.oldBranchIn.length).toBeGreaterThan(0);
      for (const file of p.markerIn) {
        const h = historyOf(file);
        expect([file, h.type, h.markers.has(p.id)]).toEqual([file, p.workflow, true]);
      }
      for (const file of p.oldBranchIn) {
        const h = historyOf(file);
        expect([file, h.type, h.markers.has(p.id)]).toEqual([file, p.workflow, false]);
      }
    },
  );
});
