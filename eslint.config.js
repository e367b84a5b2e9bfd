// Flat config: typescript-eslint's recommended rules plus the layering rule
// of the design card (agent -> service -> ipmi-kcs; arrows point down only).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'artifacts/**', 'build/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['ipmi-kcs/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/service/**', '**/agent/**', '**/conductor/**'], message: 'ipmi-kcs/ is the bottom layer: it must not import service/, agent/ or conductor/.' },
      ] }],
    },
  },
  {
    files: ['service/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['koa', '@koa/router'], patterns: [
        { group: ['**/agent/**', '**/conductor/**'], message: 'service/ must not import agent/ or conductor/ (layers point down only).' },
      ] }],
    },
  },
  {
    files: ['conductor/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['koa', '@koa/router'], patterns: [
        { group: ['**/agent/**'], message: 'conductor/ runs beside Ironic and talks to the agent over its HTTP API only; it must not import agent/.' },
      ] }],
    },
  },
  {
    files: ['scripts/**/*.mjs', 'bin/**/*.js', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' } },
  },
);
