#!/usr/bin/env node
// The build step behind start-up: bundles the `inband-agent` entry with esbuild
// into dist/bundle/ (part of `npm run build`; scripts/package.mjs calls it for
// the release). bin/inband-agent.js runs the bundle when it is there, else
// dist/ as tsc compiled it.
//
//   node scripts/bundle.mjs [--out DIR]
//
//   DIR/agent.cjs
//       the agent program (every command, the daemon too) as one CommonJS
//       file, run through node:vm with a V8 code cache;
//   DIR/agent.cjs.v8cache, DIR/agent.cjs.serve.v8cache
//       its caches, one trained on the one-shot commands and one on the
//       daemon's start (scripts/code-cache.mjs);
//   DIR/packages/{koa,winston,ajv,systeminformation}.cjs
//       the npm packages no command needs, each required when first imported
//       (`--version` and `user list` never read them; `serve` loads them
//       after it listens);
//   DIR/conductor.js, DIR/chunk-*.js
//       the conductor side, as ES module chunks it loads as it needs them;
//   DIR/meta.json
//       what each output holds (esbuild's metafile), for the start-up tests.
//
// Not kept, measured: the whole daemon in one file with every package inside
// (2.1 MB) and no cache: 162 ms of main-thread CPU from exec to the first
// status answer vs 106 ms from ES module chunks: V8 parses the whole file
// before running it. With the packages apart and a cache, no parse is left.
//
// What the bundle does that the source does not:
// - every npm package but node-pty (a native addon) is inside it or under
//   packages/: no module resolution, no CommonJS wrapper per file at start;
// - agent/config-validator.ts is replaced by ajv's standalone code for the
//   config schema, generated now (agent/tools/gen-config-validator.ts), so
//   no command loads ajv's compiler to check its flags.
// The files sit two levels under the package root, like dist/<layer>/*.js, so
// package.json (service/version.ts) and build/Release/ipmi_kcs.node
// (ipmi-kcs/kcs-native.ts) are found from the bundle as from dist/.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The agent program as one CommonJS file, run with a code cache (bin/code-cache.js). */
export const AGENT_FILE = 'agent.cjs';

/**
 * The npm packages the agent file leaves out, by the file under packages/
 * that holds them, and what each import of a package reads from that file.
 * Koa and its router share one file (and so one copy of http-errors and
 * friends, as they share them in node_modules).
 */
const PACKAGE_FILES = {
  koa: { koa: 'koa', '@koa/router': 'router' },
  winston: { winston: 'winston' },
  ajv: { ajv: 'ajv' },
  systeminformation: { systeminformation: 'systeminformation' },
};

/** In the agent file: `import X from 'koa'` reads X from packages/koa.cjs, required at that import. */
function packagesApart() {
  const fileOf = new Map(Object.entries(PACKAGE_FILES).flatMap(([file, pkgs]) => Object.entries(pkgs).map(([pkg, key]) => [pkg, { file, key }])));
  return {
    name: 'packages-apart',
    setup(b) {
      b.onResolve({ filter: /^[@a-z]/ }, (args) => (fileOf.has(args.path) ? { path: args.path, namespace: 'package-apart' } : undefined));
      b.onResolve({ filter: /^\.\/packages\// }, (args) => (args.namespace === 'package-apart' ? { path: args.path, external: true } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'package-apart' }, (args) => {
        const { file, key } = fileOf.get(args.path);
        return { contents: `export default require(${JSON.stringify(`./packages/${file}.cjs`)})[${JSON.stringify(key)}];\n`, loader: 'js' };
      });
    },
  };
}

/** The files under packages/: each exports the default import of its packages, as the agent's sources import them. */
function packageEntries(root) {
  return {
    name: 'package-entries',
    setup(b) {
      b.onResolve({ filter: /^package-file:/ }, (args) => ({ path: args.path.slice('package-file:'.length), namespace: 'package-file' }));
      b.onLoad({ filter: /.*/, namespace: 'package-file' }, (args) => ({
        contents: Object.entries(PACKAGE_FILES[args.path]).map(([pkg, key]) => `export { default as ${key} } from ${JSON.stringify(pkg)};`).join('\n'),
        loader: 'js', resolveDir: root,
      }));
    },
  };
}

/**
 * node:crypto, required when a function of it is first called. Every module
 * of ours in the agent file runs when the file starts, and crypto with its 20
 * internal modules costs ~1.7 ms of a process start here (after node:http),
 * yet the daemon first calls it for a request's token check, and of the
 * one-shot commands only those that change a credential call it. Each function the module
 * exports is a wrapper (classes are constructed, as `new X509Certificate()`
 * is); an import of anything else (constants, webcrypto) fails the build.
 */
const lazyCrypto = {
  name: 'lazy-crypto',
  setup(b) {
    b.onResolve({ filter: /^node:crypto$/ }, (args) => (args.kind === 'import-statement' ? { path: 'node:crypto', namespace: 'lazy-crypto' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-crypto' }, async () => {
      const crypto = await import('node:crypto');
      const names = Object.keys(crypto).filter((n) => n !== 'default' && typeof crypto[n] === 'function');
      const lines = ["let crypto;", "const c = () => (crypto ??= require('node:crypto'));"];
      for (const n of names) lines.push(/^[A-Z]/.test(n) ? `export function ${n}(...a) { return new (c().${n})(...a); }` : `export function ${n}(...a) { return c().${n}(...a); }`);
      return { contents: lines.join('\n'), loader: 'js' };
    });
  },
};

/**
 * `await import('node:https')` (serve.ts loads https and dgram only in the
 * modes that use them) becomes a require at that point: vm.Script cannot run
 * an import().
 */
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, namespace: 'lazy-builtin' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});\n`, loader: 'js' }));
  },
};

/**
 * The agent's package files carry mime-db's entries for the types the API
 * names and Koa picks for a body (json; text and html for a string; bin for
 * a Buffer or stream), not all 2,500: mime-types turns the whole table into
 * lookup maps when Koa loads, ~0.5 MiB of the idle daemon's heap, for
 * extensions and types no agent request or answer has. A type outside the
 * list is what mime-types answers for an unknown one (no charset added;
 * `ctx.type = 'xml'` sets none); test/agent/bundle-startup.test.ts checks the
 * app's answers and that the list is what the file holds.
 */
export const API_MIME_TYPES = ['application/json', 'text/plain', 'text/html', 'application/octet-stream'];
const apiMimeTable = {
  name: 'api-mime-table',
  setup(b) {
    b.onLoad({ filter: /[\\/]mime-db[\\/]db\.json$/ }, (args) => {
      const db = JSON.parse(readFileSync(args.path, 'utf8'));
      return { contents: JSON.stringify(Object.fromEntries(API_MIME_TYPES.map((t) => [t, db[t]]))), loader: 'json' };
    });
  },
};

/**
 * In the package files, winston's `readable-stream` (v3, a copy of Node 10's
 * streams) is Node's own node:stream, already loaded for sockets: what
 * readable-stream itself hands over when READABLE_STREAM=disable. 55 KB of
 * source and its classes less in the idle daemon. winston-transport reaches
 * into `readable-stream/lib/_stream_writable.js`: those paths map to the
 * node:stream class of the same name; any other path fails the build.
 */
const nodeStreams = {
  name: 'node-streams',
  setup(b) {
    b.onResolve({ filter: /^readable-stream(\/lib\/_stream_\w+\.js)?$/ }, (args) => ({ path: args.path, namespace: 'node-stream' }));
    b.onLoad({ filter: /.*/, namespace: 'node-stream' }, (args) => {
      const part = /_stream_(\w+)\.js$/.exec(args.path)?.[1];
      const cls = part ? { readable: 'Readable', writable: 'Writable', duplex: 'Duplex', transform: 'Transform', passthrough: 'PassThrough' }[part] : undefined;
      if (part && !cls) throw new Error(`readable-stream: no node:stream class for ${args.path}`);
      return { contents: `module.exports = require('node:stream')${cls ? `.${cls}` : ''};\n`, loader: 'js' };
    });
  },
};

/**
 * In the package files, `require('crypto')` and `require('zlib')` hand over a
 * view that loads the built-in on first use: Koa's cookies (keygrip, tsscmp)
 * and destroy require them at load and use them only for signed cookies and
 * compressed stream bodies, which the API has neither of. Loading them cost
 * the idle daemon ~0.5 MiB of heap (crypto 347 KiB, zlib 180 KiB).
 */
const LAZY_PACKAGE_BUILTINS = ['crypto', 'zlib'];
const lazyPackageBuiltins = {
  name: 'lazy-package-builtins',
  setup(b) {
    const filter = new RegExp(`^(node:)?(${LAZY_PACKAGE_BUILTINS.join('|')})$`);
    b.onResolve({ filter }, (args) => (args.kind === 'require-call' ? { path: args.path.replace(/^node:/, ''), namespace: 'lazy-package-builtin' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-package-builtin' }, (args) => ({
      contents: [
        'let m;',
        `const real = () => (m ??= require(${JSON.stringify(`node:${args.path}`)}));`,
        'module.exports = new Proxy({}, {',
        '  get: (_, k) => real()[k],',
        '  has: (_, k) => k in real(),',
        '  ownKeys: () => Reflect.ownKeys(real()),',
        '  getOwnPropertyDescriptor: (_, k) => { const d = Reflect.getOwnPropertyDescriptor(real(), k); return d && { ...d, configurable: true }; },',
        '});',
      ].join('\n'),
      loader: 'js',
    }));
  },
};

/** Packages that stay outside the bundle: native addons are loaded from node_modules at run time. */
const EXTERNAL = ['node-pty'];

// esbuild's ESM output turns a bundled CommonJS package's `require('node:…')`
// into a call that needs a real `require`.
const BANNER = "import { createRequire as __inbandRequire } from 'node:module'; const require = __inbandRequire(import.meta.url);";

async function esbuild(root) {
  try {
    return await import(pathToFileURL(path.join(root, 'node_modules', 'esbuild', 'lib', 'main.js')).href);
  } catch (e) {
    throw new Error(`esbuild is not installed (npm ci installs it): ${e.message}`);
  }
}

/** ajv's standalone code for configSchema(), from the current sources. */
async function configValidatorModule(root, build, tmpDir) {
  const out = path.join(tmpDir, 'gen-config-validator.mjs');
  await build({
    entryPoints: [path.join(root, 'agent', 'tools', 'gen-config-validator.ts')],
    outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning',
  });
  const { generateConfigValidator } = await import(pathToFileURL(out).href);
  return generateConfigValidator();
}

/** Builds the bundle into `outDir` (default dist/bundle). Returns the output paths and esbuild's metafiles. */
export async function buildBundle({ root = projectRoot, outDir = path.join(root, 'dist', 'bundle') } = {}) {
  const { build } = await esbuild(root);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  // Inside the project, so the generator's imports resolve from node_modules.
  const tmpDir = path.join(root, 'node_modules', '.cache', 'inband-bundle', String(process.pid));
  mkdirSync(tmpDir, { recursive: true });
  let validator;
  try {
    validator = await configValidatorModule(root, build, tmpDir);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  const generated = {
    name: 'generated-config-validator',
    setup(b) {
      b.onResolve({ filter: /^\.\/config-validator\.js$/ }, (args) =>
        (path.resolve(args.resolveDir) === path.join(root, 'agent') ? { path: 'config-validator', namespace: 'generated' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'generated' }, () => ({ contents: validator, loader: 'js', resolveDir: path.join(root, 'agent') }));
    },
  };
  const oneMimeTable = {
    name: 'one-mime-table',
    setup(b) {
      const top = path.join(root, 'node_modules', 'mime-types', 'index.js');
      b.onResolve({ filter: /^mime-types$/ }, () => ({ path: top }));
    },
  };
  // Whitespace and syntax minified, names kept (stack traces still name
  // functions): the loaded sources stay in the heap for V8's lazy compiling,
  // and a comment with one non-Latin-1 character (an em dash) makes V8 hold a
  // whole file as a two-byte string. Measured (bench/daemon.ts, VmRSS idle):
  // 56.3 MiB unminified, 55.0 minified.
  const compact = { minifyWhitespace: true, minifySyntax: true, legalComments: 'none', charset: 'ascii' };
  const { metafile } = await build({
    bundle: true, platform: 'node', format: 'esm', target: 'node20', external: EXTERNAL, plugins: [generated, oneMimeTable],
    banner: { js: BANNER }, ...compact, metafile: true, logLevel: 'warning', absWorkingDir: root,
    entryPoints: { conductor: path.join(root, 'conductor', 'cli.ts') },
    outdir: outDir, splitting: true, chunkNames: 'chunk-[hash]',
  });
  // The agent program as one CommonJS file that bin/inband-agent.js compiles
  // through node:vm with a V8 code cache (bin/code-cache.js; the caches are
  // made by scripts/code-cache.mjs): Node 20 keeps no code cache for ES
  // modules, and module loading is most of a process's start on a slow CPU.
  // Measured in the qemu guest (TCG), `user list --backend simulated` took
  // 1,550 ms from ES module chunks, 1,000 ms from this file without a cache
  // and 690 ms with one (`node -e 0` 270 ms there); on the host the daemon's
  // exec -> first status answer went from 119 ms (chunks) to 103 ms (bare
  // node:http 75 ms).
  //
  // Every module of ours is in it once; a module reached only through
  // `await import()` (the API app, the engine, the inventory, the Ironic
  // client) runs when that import runs, as from chunks. The npm packages a
  // command never needs (Koa and its router, winston, ajv,
  // systeminformation) are files of their own under packages/, required when
  // first imported: no command reads, compiles or holds them, and the
  // daemon loads them after it answers its first status request.
  const agent = await build({
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: EXTERNAL, plugins: [generated, oneMimeTable, packagesApart(), lazyBuiltins, lazyCrypto],
    // The file runs through vm.Script, not as a module: import.meta.url is the file's URL, which the loader sets.
    define: { 'import.meta.url': 'globalThis.__inbandAgentFileUrl' }, ...compact, metafile: true, logLevel: 'warning', absWorkingDir: root,
    entryPoints: { [AGENT_FILE.replace(/\.cjs$/, '')]: path.join(root, 'agent', 'cli.ts') }, outdir: outDir, outExtension: { '.js': '.cjs' },
  });
  const packages = await build({
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: EXTERNAL, plugins: [packageEntries(root), oneMimeTable, apiMimeTable, nodeStreams, lazyPackageBuiltins],
    ...compact, metafile: true, logLevel: 'warning', absWorkingDir: root,
    entryPoints: Object.keys(PACKAGE_FILES).map((name) => ({ in: `package-file:${name}`, out: name })),
    outdir: path.join(outDir, 'packages'), outExtension: { '.js': '.cjs' },
  });
  for (const m of [agent.metafile, packages.metafile]) {
    Object.assign(metafile.inputs, m.inputs);
    Object.assign(metafile.outputs, m.outputs);
  }
  const agentFile = path.join(outDir, AGENT_FILE);
  // vm.Script has no module loader in Node 20: an import() left in the file would fail at run time.
  if (/\bimport\(/.test(readFileSync(agentFile, 'utf8'))) throw new Error(`${AGENT_FILE} still has a dynamic import(); vm.Script cannot run it`);
  writeFileSync(path.join(outDir, 'meta.json'), JSON.stringify(metafile));
  // Its code caches, each from a fresh process: V8 rejects a cache made under other flags than a command starts with.
  const caches = [];
  for (const kind of ['commands', 'serve']) {
    const cc = spawnSync(process.execPath, [path.join(root, 'scripts', 'code-cache.mjs'), '--for', kind, agentFile], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 120_000 });
    if (cc.status !== 0) throw new Error(`the agent file's code cache (${kind}): ${(cc.stderr || cc.error?.message || '').trim()}`);
    caches.push(cc.stderr.trim());
  }
  return { outDir, meta: metafile, agentFile, codeCache: caches.join('; ') };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--out');
  const unknown = argv.filter((a, i) => a !== '--out' && argv[i - 1] !== '--out');
  if (unknown.length || (at >= 0 && !argv[at + 1])) {
    console.error(`usage: node scripts/bundle.mjs [--out DIR]${unknown.length ? ` (unknown: ${unknown.join(' ')})` : ''}`);
    process.exit(2);
  }
  const t0 = Date.now();
  buildBundle(at >= 0 ? { outDir: path.resolve(argv[at + 1]) } : {}).then(({ outDir, meta, codeCache }) => {
    const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
    const outs = Object.entries(meta.outputs);
    const size = (f) => meta.outputs[path.relative(projectRoot, path.join(outDir, f))]?.bytes ?? 0;
    const chunks = outs.filter(([f]) => /chunk-/.test(f));
    const pkgs = outs.filter(([f]) => /\/packages\//.test(f));
    process.stderr.write(`bundle: ${path.relative(process.cwd(), outDir) || outDir} in ${Date.now() - t0} ms: ${AGENT_FILE} ${kib(size(AGENT_FILE))}, ` +
      `${pkgs.length} package files of ${kib(pkgs.reduce((a, [, o]) => a + o.bytes, 0))}, conductor.js ${kib(size('conductor.js'))} and ${chunks.length} chunks of ${kib(chunks.reduce((a, [, o]) => a + o.bytes, 0))}; ${codeCache}\n`);
  }, (err) => {
    process.stderr.write(`bundle: failed: ${err.message}\n`);
    process.exitCode = 1;
  });
}
