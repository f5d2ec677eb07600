/**
 * Import rules of src/, checked by dependency-cruiser in `npm test` (`npm run deps`); the layout and
 * the reasons are in docs/architecture.md. Folders, bottom up:
 * - pure domain (util/bytes, names, table, validation; catalog; ledger/entry; deferred; routing, budget,
 *   learning/*.ts, quality): no
 *   Temporal, no I/O, nothing above them;
 * - contracts (workflows/<name>/contract.ts and the other workflow-side modules named below, and
 *   src/contracts): what clients, activities and workflows share;
 * - workflow code (src/workflows): contracts, pure code and @temporalio/workflow (or common);
 * - activities, providers, ledger, metrics, security, ...: the worker side, never the client, the CLI
 *   or workflow implementations;
 * - workers/, client/, cli/: the only places that see every workflow.
 */
const PURE =
  '^src/(util/(bytes|names|table|validation)\\.ts|catalog/(schema|catalog|pricing|defaultCatalog|tiers)\\.ts|ledger/entry\\.ts|deferred/|routing/|budget/|learning/[^/]+\\.ts$|quality/)';
// Workflow-side modules anyone may import: the contracts, and the small shared modules workflows
// and their callers agree on (ids, task queues, limits, conversation shapes, sinks, alerts, messages).
const WORKFLOW_CONTRACTS =
  '^src/workflows/([^/]+/contract|request/activities|request/limits|request/failure|taskQueues|conversation|sinks|alerts|patches)\\.ts$';
const WORKFLOW_IMPL = '^src/workflows/';
// What pure modules may take from npm: computation only (validation, a tokenizer, a linear-time regex engine).
const PURE_NPM = '(^|/)node_modules/(ajv|gpt-tokenizer|re2js|zod)/';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'No import circles.', from: {}, to: { circular: true } },
    {
      name: 'pure-no-io',
      severity: 'error',
      comment: 'Pure domain modules do no I/O: no Node core module at all (prefixed or not).',
      from: { path: PURE },
      to: { dependencyTypes: ['core'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'pure-no-temporal-or-io',
      severity: 'error',
      comment: 'Pure domain modules use only computation libraries from npm (no Temporal, no drivers, no HTTP clients).',
      from: { path: PURE },
      to: {
        dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'],
        pathNot: PURE_NPM,
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'pure-nothing-above',
      severity: 'error',
      comment: 'Pure domain modules import only pure domain modules (types of providers errors aside).',
      from: { path: PURE },
      to: { path: '^src/', pathNot: [PURE, '^src/providers/errors\\.ts$', '^src/util/'] },
    },
    {
      name: 'workflow-code-imports',
      severity: 'error',
      comment: 'Workflow code imports contracts, pure code and @temporalio/workflow or common only (activities as types, through contracts).',
      from: { path: WORKFLOW_IMPL },
      to: {
        dependencyTypesNot: ['type-only'],
        pathNot: [
          WORKFLOW_IMPL,
          PURE,
          '^src/contracts/',
          '^src/security/plaintextMarker\\.ts$',
          '^src/providers/(errors|types)\\.ts$',
          '^src/batch/summary\\.ts$',
          '@temporalio/(workflow|common)',
          '^src/health/(circuit|policy)',
        ],
      },
    },
    {
      name: 'workflow-code-types-only',
      severity: 'error',
      comment: 'Workflow code takes only types from src/contracts (its zod schemas stay out of the workflow bundle) and from npm beyond the workflow SDK.',
      from: { path: WORKFLOW_IMPL },
      to: { path: ['^src/contracts/', '(^|/)node_modules/'], pathNot: '(^|/)node_modules/@temporalio/(workflow|common)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'activities-not-above',
      severity: 'error',
      comment: 'Activities never import workflow implementations, the client, the CLI or the workers.',
      from: { path: '^src/activities/' },
      to: { path: ['^src/(client|cli|workers)/', WORKFLOW_IMPL], pathNot: WORKFLOW_CONTRACTS },
    },
    {
      name: 'only-composers-see-workflows',
      severity: 'error',
      comment: 'Only workers/, client/ and cli/ (and the workflows index) import workflow implementations; others use contracts.',
      from: { pathNot: ['^src/(workers|client|cli|workflows)/', '^src/index\\.ts$'] },
      to: { path: WORKFLOW_IMPL, pathNot: WORKFLOW_CONTRACTS },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      comment: 'The CLI is the top: nothing imports it.',
      from: { pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '^src/.*\\.cjs$' },
  },
};
