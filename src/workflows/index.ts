/** Every workflow the worker registers. Workflow code is deterministic: no Node built-ins, no I/O. */
export { llmRequest } from './request/llmRequest.js';
export { budgetEntity } from './budgetEntity.js';
export { healthEntity } from './healthEntity.js';
export { batchRun } from './batchRun.js';
