/** The package's public API: the client library for pipelines, and the types it speaks. */
export { SwitchyardClient, RequestFailedError, BudgetNotFoundError, workflowIdFor, requestRunsQuery } from './client/client.js';
export type { SwitchyardClientOptions, StartOptions, RunSummary, RunInspection, RedriveReport } from './client/client.js';
export type { RequestInput, RequestResult, Attempt, RequestFailureDetails } from './workflows/request/contract.js';
export { FAILURE_TYPES } from './workflows/request/contract.js';
export type { BatchResultLine, BatchSummary } from './batch/summary.js';
export type { BatchProgress, RunBatchOptions } from './batch/runBatch.js';
export type { BatchRunStatus, BatchRunInput } from './workflows/batch/contract.js';
export type { RequestTrace } from './workflows/request/contract.js';
export type { BudgetStatus } from './budget/book.js';
export { ValidationError } from './util/validation.js';
export { formatSummary } from './batch/summary.js';
