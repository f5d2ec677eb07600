/** Every workflow the worker registers. Workflow code is deterministic: no Node built-ins, no I/O. */
export { llmRequest } from './request/llmRequest.js';
export { budgetEntity } from './budget/budgetEntity.js';
export { healthEntity } from './health/healthEntity.js';
export { batchRun } from './batch/batchRun.js';
export { routingEntity } from './routing/routingEntity.js';
export { experimentEntity } from './experiment/experimentEntity.js';
export { ledgerOutbox } from './ledger/ledgerOutbox.js';
export { keyRegistry } from './keys/keyRegistry.js';
export { deferredBatch } from './deferred/batch.js';
export { deferredCollector } from './deferred/collector.js';
