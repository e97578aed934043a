// Lint rules, including the purity rules of the style guide: src/core imports no Node, Temporal or
// systeminformation and reads no clock or randomness; src/workflows imports only
// @temporalio/workflow and src/core (and its own modules, and types).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const nodeBuiltins = [
  'node:*',
  'fs',
  'path',
  'os',
  'child_process',
  'crypto',
  'http',
  'https',
  'net',
  'util',
  'events',
  'stream',
  'url',
  'worker_threads',
];

const patchesOnlyInVersions = {
  name: '@temporalio/workflow',
  importNames: ['patched', 'deprecatePatch'],
  message: 'Call patches through src/workflows/versions.ts, which lists each live patch and when it retires.',
};

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      '.venv/',
      '.allot/',
      'test-artifacts/',
      'bin/',
      'scripts/',
      '**/*.mjs',
      '**/*.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
    },
  },
  {
    // Versioning markers are set in one module, which lists each live patch with the fixture that
    // pins it and when it retires (see docs/upgrading.md). src/core forbids Temporal altogether.
    files: ['**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [patchesOnlyInVersions] }] },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...nodeBuiltins, '@temporalio/*', 'systeminformation'] }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
          message: 'src/core takes `now` as a parameter; it never reads the clock.',
        },
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'src/core takes `now` as a parameter; it never reads the clock.',
        },
        {
          selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']",
          message: 'src/core is deterministic: pass a seed instead of using Math.random.',
        },
      ],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [patchesOnlyInVersions],
          patterns: [
            {
              group: [
                ...nodeBuiltins,
                'systeminformation',
                '@temporalio/client',
                '@temporalio/worker',
                '@temporalio/activity',
                '@temporalio/common',
                '@temporalio/testing',
                '@temporalio/envconfig',
              ],
              message: 'Workflows import only @temporalio/workflow and src/core.',
            },
            {
              group: ['../activities', '../activities/*', '../workers', '../workers/*', '../cli', '../cli/*'],
              allowTypeImports: true,
              message: 'Workflows import only @temporalio/workflow and src/core (types are fine).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/workflows/versions.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(?!@temporalio/workflow$)', message: 'versions.ts imports only @temporalio/workflow.' },
          ],
        },
      ],
    },
  },
);
