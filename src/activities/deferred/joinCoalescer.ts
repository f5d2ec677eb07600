/**
 * Joins to one collector, gathered for a moment and sent as one signal: a signal is a billed
 * Temporal action, and a pipeline defers requests in bursts, so one signal per line would cost a
 * whole action per request where one per burst costs a fraction. Each join waits until the signal
 * that carries its line is accepted (its local activity retries, and sends the line again, if it is
 * not); the collector drops a line it already holds. Written here because the batching libraries
 * (dataloader and the like) gather within one event-loop tick, and joins from different workflow
 * tasks arrive milliseconds apart.
 */

/** Sends one collector its lines (a signal-with-start, `to` saying how to start it); rejects if none were delivered. */
export type SendJoins<T, L> = (collectorId: string, to: T, lines: readonly L[]) => Promise<void>;

interface Pending<T, L> {
  readonly to: T;
  readonly lines: L[];
  readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }>;
  timer?: ReturnType<typeof setTimeout>;
}

export class JoinCoalescer<T, L> {
  private readonly open = new Map<string, Pending<T, L>>();

  /**
   * @param send delivers one collector's lines
   * @param windowMs how long the first line of a burst waits for others
   * @param maxLines a burst this large goes at once (a signal's payload stays well under Temporal's limit)
   */
  constructor(
    private readonly send: SendJoins<T, L>,
    private readonly windowMs = 200,
    private readonly maxLines = 500,
  ) {}

  /** Resolves once a signal carrying `line` reached the collector. */
  join(collectorId: string, to: T, line: L): Promise<void> {
    let p = this.open.get(collectorId);
    if (!p) {
      p = { to, lines: [], waiters: [] };
      this.open.set(collectorId, p);
      p.timer = setTimeout(() => this.flush(collectorId), this.windowMs);
    }
    const done = new Promise<void>((resolve, reject) => p.waiters.push({ resolve, reject }));
    p.lines.push(line);
    if (p.lines.length >= this.maxLines) this.flush(collectorId);
    return done;
  }

  /** Lines waiting to be sent, over all collectors. */
  get waiting(): number {
    let n = 0;
    for (const p of this.open.values()) n += p.lines.length;
    return n;
  }

  private flush(collectorId: string): void {
    const p = this.open.get(collectorId);
    if (!p) return;
    this.open.delete(collectorId);
    if (p.timer) clearTimeout(p.timer);
    this.send(collectorId, p.to, p.lines).then(
      () => {
        for (const w of p.waiters) w.resolve();
      },
      (e: unknown) => {
        for (const w of p.waiters) w.reject(e);
      },
    );
  }
}
