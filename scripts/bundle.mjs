#!/usr/bin/env node
// The build step behind start-up: bundles the `inband-agent` entry with esbuild
// into dist/bundle/ (part of `npm run build`; scripts/package.mjs calls it for
// the release). bin/inband-agent.js runs the bundle when it is there, else
// dist/ as tsc compiled it.
//
//   node scripts/bundle.mjs [--out DIR]
//
//   DIR/agent.js, DIR/conductor.js, DIR/chunk-*.js
//       the two programs, split: each command loads the chunks it needs and
//       no more (`--version` and `user list` never load Koa, the API, the
//       inventory or the Ironic client; `serve` loads those after it listens);
//   DIR/agent-commands.cjs, DIR/agent-commands.cjs.v8cache
//       the agent's one-shot commands as one CommonJS file, without the
//       daemon, and its V8 code cache (scripts/code-cache.mjs); what
//       bin/inband-agent.js runs for every agent command but `serve`;
//   DIR/meta.json
//       what each output holds (esbuild's metafile), for the start-up tests.
//
// The daemon runs from the same chunks. One file for it, every lazy import
// inlined (2.1 MB with systeminformation and ajv), was measured slower: 162 ms
// of main-thread CPU from exec to the first status answer vs 106 ms from the
// chunks (bare node:http 75 ms): V8 parses the whole file before running it.
//
// What the bundle does that the source does not:
// - every npm package but node-pty (a native addon) is inside: no module
//   resolution, no CommonJS wrapper per file at start;
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

/** The agent's commands as one CommonJS file (beside agent.js), run with a code cache. */
export const COMMANDS_FILE = 'agent-commands.cjs';

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
  const { metafile } = await build({
    bundle: true, platform: 'node', format: 'esm', target: 'node20', external: EXTERNAL, plugins: [generated, oneMimeTable],
    banner: { js: BANNER }, legalComments: 'none', metafile: true, logLevel: 'warning', absWorkingDir: root,
    entryPoints: { agent: path.join(root, 'agent', 'cli.ts'), conductor: path.join(root, 'conductor', 'cli.ts') },
    outdir: outDir, splitting: true, chunkNames: 'chunk-[hash]',
  });
  // The agent's one-shot commands, once more as one CommonJS file that
  // bin/inband-agent.js compiles through node:vm with a V8 code cache
  // (bin/code-cache.js; the cache is made by scripts/code-cache.mjs).
  // Node 20 has no code cache for ES modules, and the chunks' module loading
  // is most of a command's start on a slow CPU: measured in the qemu guest
  // (TCG), `user list --backend simulated` took 1,550 ms from the chunks,
  // 1,000 ms from this file without a cache and 690 ms with one (`node -e 0`
  // 270 ms there). The daemon is not in it: `serve` runs from the chunks
  // above, so this file holds no Koa, winston, systeminformation, API or
  // Ironic client (the daemon's modules are replaced by a stub that says so).
  const daemonStub = {
    name: 'daemon-not-in-commands',
    setup(b) {
      b.onResolve({ filter: /^\.\/(serve|startup)\.js$/ }, (args) =>
        (path.resolve(args.resolveDir) === path.join(root, 'agent') ? { path: args.path, namespace: 'daemon-stub' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'daemon-stub' }, (args) => ({
        contents: `const no = () => { throw new Error('${args.path}: the daemon runs from dist/bundle/agent.js (bin/inband-agent.js routes serve there), not from the commands file'); };\n`
          + 'export const serve = no; export const startupV8 = no;\n',
        loader: 'js',
      }));
    },
  };
  const commands = await build({
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: EXTERNAL, plugins: [generated, oneMimeTable, daemonStub],
    // The file runs through vm.Script, not as a module: import.meta.url is the file's URL, which the loader sets.
    define: { 'import.meta.url': 'globalThis.__inbandCommandsUrl' }, legalComments: 'none', metafile: true, logLevel: 'warning', absWorkingDir: root,
    entryPoints: { [COMMANDS_FILE.replace(/\.cjs$/, '')]: path.join(root, 'agent', 'cli.ts') }, outdir: outDir, outExtension: { '.js': '.cjs' },
  });
  const commandsFile = path.join(outDir, COMMANDS_FILE);
  // vm.Script has no module loader in Node 20: an import() left in the file would fail at run time.
  if (/\bimport\(/.test(readFileSync(commandsFile, 'utf8'))) throw new Error(`${COMMANDS_FILE} still has a dynamic import(); vm.Script cannot run it`);
  Object.assign(metafile.inputs, commands.metafile.inputs);
  Object.assign(metafile.outputs, commands.metafile.outputs);
  writeFileSync(path.join(outDir, 'meta.json'), JSON.stringify(metafile));
  // Its code cache, from a fresh process: V8 rejects a cache made under other flags than a command starts with.
  const cc = spawnSync(process.execPath, [path.join(root, 'scripts', 'code-cache.mjs'), commandsFile], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  if (cc.status !== 0) throw new Error(`the commands' code cache: ${(cc.stderr || cc.error?.message || '').trim()}`);
  return { outDir, meta: metafile, commandsFile, codeCache: cc.stderr.trim() };
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
    process.stderr.write(`bundle: ${path.relative(process.cwd(), outDir) || outDir} in ${Date.now() - t0} ms: agent.js ${kib(size('agent.js'))}, ` +
      `conductor.js ${kib(size('conductor.js'))}, ${chunks.length} chunks of ${kib(chunks.reduce((a, [, o]) => a + o.bytes, 0))}, ` +
      `${COMMANDS_FILE} ${kib(size(COMMANDS_FILE))}; ${codeCache}\n`);
  }, (err) => {
    process.stderr.write(`bundle: failed: ${err.message}\n`);
    process.exitCode = 1;
  });
}
