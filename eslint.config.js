// Flat config: typescript-eslint's recommended rules plus the layering rule
// of the design card. Floors, top to bottom:
//   agent/ (on the node)  |  conductor/ (beside Ironic)   the two programs, side by side
//   service/              what a credential change means, and what both programs share
//   ipmi-kcs/             how bytes reach a BMC
// Arrows point down only and the two programs never import each other. The rule
// below sees static imports, re-exports and dynamic import() alike, so a lazy
// load cannot hide an upward arrow.
import { dirname, relative, resolve, sep } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const root = dirname(new URL(import.meta.url).pathname);

/** What each floor may import from this tree (its own folder always). */
const MAY_IMPORT = {
  'ipmi-kcs': [],
  service: ['ipmi-kcs'],
  agent: ['service', 'ipmi-kcs'],
  conductor: ['service', 'ipmi-kcs'],
};
/** npm packages a floor must not load (service/ and conductor/ never serve Koa). */
const FORBIDDEN_PACKAGES = {
  'ipmi-kcs': ['koa', '@koa/router', 'winston'],
  service: ['koa', '@koa/router'],
  conductor: ['koa', '@koa/router'],
};

function floorOf(file) {
  const top = relative(root, file).split(sep)[0];
  return top in MAY_IMPORT ? top : undefined;
}

const layers = {
  rules: {
    'imports-point-down': {
      meta: { type: 'problem', schema: [], messages: { up: '{{from}}/ may not import {{to}}/ ({{why}})', pkg: '{{from}}/ may not load {{pkg}}' } },
      create(context) {
        const file = context.filename ?? context.getFilename();
        const from = floorOf(file);
        if (!from) return {};
        const check = (node, source) => {
          if (!source || source.type !== 'Literal' || typeof source.value !== 'string') return;
          const spec = source.value;
          if (!spec.startsWith('.')) {
            const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
            if ((FORBIDDEN_PACKAGES[from] ?? []).includes(pkg)) context.report({ node, messageId: 'pkg', data: { from, pkg } });
            return;
          }
          const to = floorOf(resolve(dirname(file), spec));
          if (!to || to === from || MAY_IMPORT[from].includes(to)) return;
          const why = (from === 'agent' && to === 'conductor') || (from === 'conductor' && to === 'agent')
            ? 'the two programs talk over HTTP only; what both need belongs in service/'
            : 'arrows point down only';
          context.report({ node, messageId: 'up', data: { from, to, why } });
        };
        return {
          ImportDeclaration: (n) => check(n, n.source),
          ExportNamedDeclaration: (n) => check(n, n.source),
          ExportAllDeclaration: (n) => check(n, n.source),
          ImportExpression: (n) => check(n, n.source),
          TSImportType: (n) => check(n, n.argument?.literal ?? n.argument),
        };
      },
    },
  },
};

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
    files: ['ipmi-kcs/**/*.ts', 'service/**/*.ts', 'agent/**/*.ts', 'conductor/**/*.ts'],
    plugins: { layers },
    rules: { 'layers/imports-point-down': 'error' },
  },
  {
    files: ['scripts/**/*.mjs', 'bin/**/*.js', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' } },
  },
  {
    // bin/ is CommonJS (bin/package.json): the entry starts without Node's ES module loader.
    files: ['bin/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', globalThis: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
