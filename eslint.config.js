// ESLint: typescript-eslint with type information, plus the Temporal workflow rules: workflow
// files may not import Node built-ins or activity implementations, and promises may not float.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bin/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    // The CommonJS failure converter (the SDK require()s it by path): plain JS, no type information.
    files: ['**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, sourceType: 'commonjs', globals: { require: 'readonly', exports: 'writable' } },
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow code must not use Node built-ins (non-deterministic); do it in an activity.' })),
          patterns: [
            { group: ['**/activities/*', '**/activities'], allowTypeImports: true, message: 'Workflows import activities only as types (proxyActivities).' },
            { group: ['**/providers/*', '!**/providers/errors.js'], allowTypeImports: true, message: 'Provider calls belong in activities.' },
            {
              group: ['pino', 'openai', '@anthropic-ai/*', '@google/*', '@mistralai/*', '@temporalio/client', '@temporalio/worker'],
              message: 'Not allowed in workflow code.',
            },
            // Every module a workflow loads is set up again for each run: zod costs ~20 ms of worker CPU a request (BENCHMARKS "Request path").
            {
              group: ['zod', '**/contracts/*', '**/catalog/schema.js', '**/quality/spec.js', '**/util/validation.js'],
              allowTypeImports: true,
              message: 'No zod in workflow code: validate in an activity (the paid call validates the request).',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'No process access in workflows.' },
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() from @temporalio/workflow.' },
      ],
    },
  },
  {
    // Pure domain logic: no Temporal, no I/O.
    files: [
      'src/routing/**/*.ts',
      'src/budget/**/*.ts',
      'src/catalog/schema.ts',
      'src/catalog/catalog.ts',
      'src/catalog/pricing.ts',
      'src/catalog/defaultCatalog.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Pure domain modules do no I/O.' })),
          patterns: [{ group: ['@temporalio/*'], message: 'Pure domain modules do not depend on Temporal.' }],
        },
      ],
    },
  },
  {
    // Imports point one way: cli -> client -> batch -> contracts; activities serve workflows, not clients.
    files: ['src/activities/**/*.ts', 'src/batch/**/*.ts', 'src/contracts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/client/*', '**/cli/*'],
              allowTypeImports: false,
              message: 'Activities, the batch code and contracts do not import the client or the CLI (see README "Architecture").',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/cli/*'], message: 'The SDK client does not import the command-line application.' }] }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
);
