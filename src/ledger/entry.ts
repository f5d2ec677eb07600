/** One line of the spend ledger: one paid attempt, keyed by its reservation id. Pure type (workflows use it). */
export interface LedgerEntry {
  readonly key: string;
  readonly workflowId: string;
  readonly attemptId: string;
  readonly model: string;
  readonly provider: string;
  readonly tier: string;
  readonly category: string;
  /** The request's feature ("unspecified" when it named none; absent in entries written before features). */
  readonly feature?: string;
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
  readonly costNanos: number;
  /** The gateway key that sent the request (its id; absent: not sent through a key, reported as "none"). */
  readonly keyId?: string;
  /** The budget scope charged (absent in entries written before reports: "default"). */
  readonly scope?: string;
  /** What the same usage would have cost on the premium baseline model (absent in older entries). */
  readonly baselineNanos?: number;
  /**
   * How it was bought (absent: live): `batch`, answered in a provider batch; `duplicated`, a batch
   * line the provider answered after its request had gone live (billed, so counted).
   */
  readonly mode?: 'batch' | 'duplicated';
  /** A batch line: what the same usage costs live (the saving is liveNanos - costNanos). */
  readonly liveNanos?: number;
  readonly at: string;
}
