/**
 * Classification off the worker's event loop for large prompts. Classifying is linear in the
 * prompt but not free: 1.5 MB of prose (the largest request accepted) takes ~100 ms of tokenizing,
 * which on the main thread would hold up every other activity, heartbeat and workflow task of the
 * worker meanwhile. Prompts over OFF_THREAD_BYTES go to a small pool of worker threads (piscina);
 * smaller ones classify inline, where a thread hop would cost more than the work.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import { type Classification, type ClassifyInput, classify } from '../../routing/classifier.js';
import { utf8Bytes } from '../../util/bytes.js';

export const OFF_THREAD_BYTES = 64 * 1024;

/** The thread's module: beside this one when built; from the TypeScript sources (tests), the built copy. */
function threadModule(): string | undefined {
  const here = fileURLToPath(new URL('./classifyThread.js', import.meta.url));
  if (existsSync(here)) return here;
  const built = here.replace(/\/src\/activities\/request\/classifyThread\.js$/, '/dist/src/activities/request/classifyThread.js');
  return existsSync(built) ? built : undefined;
}

export function inputBytes(input: ClassifyInput): number {
  return (
    utf8Bytes(input.prompt) +
    utf8Bytes(input.system ?? '') +
    utf8Bytes(input.context ?? '') +
    (input.history ?? []).reduce((t, h) => t + utf8Bytes(h.content), 0)
  );
}

export class ClassifyPool {
  private pool: Piscina | undefined;
  /** Calls classified in a thread (for tests and the debug log). */
  offThread = 0;

  constructor(private readonly log: Logger) {}

  async classify(input: ClassifyInput): Promise<Classification> {
    if (inputBytes(input) <= OFF_THREAD_BYTES) return classify(input);
    const pool = this.ensure();
    if (!pool) return classify(input);
    this.offThread += 1;
    return (await pool.run(input)) as Classification;
  }

  private ensure(): Piscina | undefined {
    if (this.pool) return this.pool;
    const filename = threadModule();
    if (!filename) {
      this.log.warn('classifier thread module not built (npm run build); large prompts classify on the main thread');
      return undefined;
    }
    this.pool = new Piscina({ filename, minThreads: 0, maxThreads: Math.max(1, availableParallelism() - 1), idleTimeout: 30_000 });
    return this.pool;
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
    this.pool = undefined;
  }
}
