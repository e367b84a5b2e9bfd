#!/usr/bin/env node
// Builds the self-contained release tarball for ramdisk image builders:
//
//   node scripts/package.mjs [--if-stale] [--no-strip] [--out DIR] [--keep-staging]
//
//   artifacts/inband-agent-<version>-linux-<arch>.tar.gz
//     inband-agent-<version>-linux-<arch>/
//       install.sh            install.sh --root DIR [--enable] (scripts/package/install.sh)
//       dib/inband-agent/     diskimage-builder element running install.sh (scripts/package/dib/)
//       VERSION, ARCH, BUILD-INFO.json
//       root/                 the tree install.sh lays out under DIR:
//         usr/bin/inband-agent                      launcher (scripts/package/inband-agent.sh)
//         usr/lib/inband-agent/bin/node             the Node runtime running this script, stripped
//         usr/lib/inband-agent/app/                 package.json, bin/, dist/bundle/ (what bin/ runs:
//                                                   scripts/bundle.mjs), dist/ (agent, service,
//                                                   ipmi-kcs; no tests), production node_modules
//                                                   (pruned), build/Release/ipmi_kcs.node
//         usr/lib/systemd/system/inband-agent.service, usr/lib/modules-load.d/inband-agent.conf
//         etc/default/inband-agent, etc/inband-agent/agent.json
//         usr/share/doc/inband-agent/               README.md, Node's LICENSE
//   artifacts/inband-agent-<version>-linux-<arch>.json   sizes, timings, digest of the inputs
//
// Why a tarball and not a Node single executable application: Node 20's SEA
// runs one CommonJS script (this app is ESM), cannot dlopen an addon from
// inside the blob (ipmi_kcs.node and node-pty's pty.node would be written out
// to disk anyway), and needs postject plus a bundler; the result would be the
// same ~86 MB runtime plus the same few MB of JS, so nothing to win in size.
//
// --if-stale reuses the existing tarball when the digest of everything that
// goes into it is unchanged (tests and CI call it that way, see ensureArtifact).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync,
  statSync, writeFileSync,
} from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBundle } from './bundle.mjs';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The layers the agent runs from; tests and benchmarks are not shipped. */
const RUNTIME_SOURCE_DIRS = ['agent', 'service', 'ipmi-kcs'];
const ADDON = path.join('build', 'Release', 'ipmi_kcs.node');
// The idle daemon's memory give-back (agent/native/memory.cc), built for the Node the artifact carries.
const MEMORY_ADDON = path.join('build', 'Release', 'agent_memory.node');

// Pruned from every production package: documentation, tests, type
// declarations, TypeScript sources, source maps, build files. Licences stay.
const PRUNE_DIRS = new Set(['.github', '.bin', 'test', 'tests', '__tests__', 'example', 'examples', 'doc', 'docs',
  'benchmark', 'benchmarks', 'coverage', '.vscode', '.idea']);
// Top-level folders of a native package (node-pty) that only its build reads.
const ADDON_BUILD_DIRS = new Set(['src', 'deps', 'third_party', 'scripts', 'typings']);
// Declared as runtime dependencies, read only when compiling (and @types/*: declarations only).
const BUILD_ONLY_PACKAGES = new Set(['node-addon-api']);
const PRUNE_FILE = /(\.d\.[cm]?ts|\.ts|\.tsx|\.map|\.md|\.markdown|\.tsbuildinfo|\.gyp|\.gypi|\.c|\.cc|\.cpp|\.h|\.flow|\.test\.js|\.spec\.js|\.tgz)$|^(\.npmignore|\.eslintrc.*|\.prettierrc.*|\.editorconfig|\.travis\.yml|\.nycrc.*|\.airtap\.yml|tsconfig.*\.json|Makefile|binding\.gyp|yarn\.lock|package-lock\.json)$/i;
const KEEP_FILE = /^(licen[cs]e|copying|notice|authors)(\..*)?$/i;

function log(msg) {
  process.stderr.write(`package: ${msg}\n`);
}

export function readPackage(root = projectRoot) {
  return JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
}

export function artifactName(root = projectRoot) {
  return `inband-agent-${readPackage(root).version}-linux-${process.arch}`;
}

export function artifactPaths(root = projectRoot, outDir = path.join(root, 'artifacts')) {
  const name = artifactName(root);
  return { name, outDir, tarball: path.join(outDir, `${name}.tar.gz`), manifest: path.join(outDir, `${name}.json`) };
}

function walk(dir, out = []) {
  let ents;
  try {
    ents = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of ents.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function runtimeSources(root) {
  return RUNTIME_SOURCE_DIRS.flatMap((d) => walk(path.join(root, d))).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
}

/** The production dependency closure: [package dir relative to root], resolved the way Node resolves. */
export function dependencyClosure(root = projectRoot) {
  const seen = new Set();
  const order = [];
  const visit = (pkgDir, isRoot) => {
    const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
    const deps = { ...(pkg.optionalDependencies ?? {}), ...(pkg.dependencies ?? {}) };
    for (const name of Object.keys(deps).sort()) {
      if (BUILD_ONLY_PACKAGES.has(name) || name.startsWith('@types/')) continue;
      let found;
      for (let dir = pkgDir; ; dir = path.dirname(dir)) {
        const candidate = path.join(dir, 'node_modules', name);
        if (existsSync(path.join(candidate, 'package.json'))) {
          found = candidate;
          break;
        }
        if (dir === root || dir === path.dirname(dir)) break;
      }
      if (!found) {
        if (pkg.optionalDependencies?.[name]) continue;
        throw new Error(`${isRoot ? 'the project' : path.relative(root, pkgDir)} needs ${name}, which is not installed (run npm ci)`);
      }
      const rel = path.relative(root, found);
      if (seen.has(rel)) continue;
      seen.add(rel);
      order.push(rel);
      visit(found, false);
    }
  };
  visit(root, true);
  return order.sort();
}

/**
 * Digest of everything that goes into the artifact: runtime sources, the
 * launcher/install/config files, units, lock file, built addons and the
 * identity of the Node runtime. Same digest, same artifact.
 */
export function inputsDigest(root = projectRoot, { strip = true } = {}) {
  const h = createHash('sha256');
  const files = [
    ...runtimeSources(root),
    ...walk(path.join(root, 'systemd')),
    ...walk(path.join(root, 'scripts', 'package')),
    path.join(root, 'scripts', 'package.mjs'),
    path.join(root, 'scripts', 'bundle.mjs'),
    path.join(root, 'scripts', 'code-cache.mjs'),
    ...walk(path.join(root, 'bin')),
    path.join(root, 'package.json'),
    path.join(root, 'package-lock.json'),
    path.join(root, 'tsconfig.json'),
    path.join(root, 'README.md'),
    path.join(root, ADDON),
    path.join(root, MEMORY_ADDON),
    path.join(root, 'node_modules', 'node-pty', 'build', 'Release', 'pty.node'),
  ];
  for (const f of files) {
    h.update(`${path.relative(root, f)}\0`);
    try {
      h.update(readFileSync(f));
    } catch {
      h.update('(missing)');
    }
    h.update('\0');
  }
  const st = statSync(process.execPath);
  h.update(`node ${process.version} ${process.arch} ${st.size} ${st.mtimeMs}`);
  h.update(`strip ${strip}`);
  return h.digest('hex');
}

/** The manifest of a built artifact when it matches the current inputs, else undefined. */
export function freshArtifact(root = projectRoot, outDir) {
  const p = artifactPaths(root, outDir);
  try {
    const manifest = JSON.parse(readFileSync(p.manifest, 'utf8'));
    if (manifest.inputs === inputsDigest(root) && statSync(p.tarball).size === manifest.sizes.tarball) return { ...p, manifest };
  } catch {
    // none, or unreadable: build
  }
  return undefined;
}

/** dist/ holds a compiled file for every runtime source, none older than its source. */
function distIsFresh(root) {
  for (const ts of runtimeSources(root)) {
    const js = path.join(root, 'dist', path.relative(root, ts)).replace(/\.ts$/, '.js');
    try {
      if (statSync(js).mtimeMs < statSync(ts).mtimeMs) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.signal ?? `exit ${r.status}`}):\n${(r.stdout ?? '') + (r.stderr ?? '')}`.trim());
  return r;
}

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/** Compiled JS of the runtime layers into `dest`: from dist/ when current, else tsc (type errors fail the build). */
function compileApp(root, staging, dest) {
  let from = path.join(root, 'dist');
  let how = 'dist/ (up to date)';
  if (!distIsFresh(root)) {
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    if (!existsSync(tsc)) throw new Error('dist/ is out of date and TypeScript is not installed: run `npm ci` (or `npm run build`) first');
    from = path.join(staging, 'compiled');
    const tsconfig = path.join(staging, 'tsconfig.json');
    writeFileSync(tsconfig, JSON.stringify({
      extends: path.join(root, 'tsconfig.json'),
      compilerOptions: { rootDir: root, outDir: from, noEmitOnError: true, sourceMap: false, declaration: false,
        typeRoots: [path.join(root, 'node_modules', '@types')] },
      include: RUNTIME_SOURCE_DIRS.map((d) => path.join(root, d, '**', '*.ts')),
    }));
    run(process.execPath, [tsc, '-p', tsconfig]);
    how = 'tsc (dist/ was out of date)';
  }
  for (const ts of runtimeSources(root)) {
    const rel = path.relative(root, ts).replace(/\.ts$/, '.js');
    mkdirSync(path.dirname(path.join(dest, rel)), { recursive: true });
    copyFileSync(path.join(from, rel), path.join(dest, rel));
  }
  return how;
}

/** Copies one package without its nested node_modules (those are closure members of their own) and pruned. */
function copyPackage(src, dest, isAddonPackage) {
  const copyDir = (s, d, depth) => {
    for (const e of readdirSync(s, { withFileTypes: true })) {
      const sp = path.join(s, e.name);
      const dp = path.join(d, e.name);
      if (e.isDirectory()) {
        if (depth === 0 && e.name === 'node_modules') continue;
        if (PRUNE_DIRS.has(e.name)) continue;
        if (depth === 0 && isAddonPackage && ADDON_BUILD_DIRS.has(e.name)) continue;
        // Native packages: only the compiled addon of build/, and prebuilds for this platform.
        if (depth === 0 && e.name === 'build' && isAddonPackage) {
          const rel = path.join(s, 'build', 'Release');
          for (const f of existsSync(rel) ? readdirSync(rel) : []) {
            if (!f.endsWith('.node')) continue;
            mkdirSync(path.join(d, 'build', 'Release'), { recursive: true });
            copyFileSync(path.join(rel, f), path.join(d, 'build', 'Release', f));
          }
          continue;
        }
        if (depth === 0 && e.name === 'prebuilds') {
          const own = path.join(sp, `${process.platform}-${process.arch}`);
          // A freshly built addon in build/Release wins over a prebuilt one.
          if (existsSync(own) && !existsSync(path.join(s, 'build', 'Release'))) copyDir(own, path.join(dp, `${process.platform}-${process.arch}`), depth + 2);
          continue;
        }
        copyDir(sp, dp, depth + 1);
      } else if (e.isFile()) {
        if (!KEEP_FILE.test(e.name) && PRUNE_FILE.test(e.name)) continue;
        mkdirSync(d, { recursive: true });
        copyFileSync(sp, dp);
      }
    }
  };
  copyDir(src, dest, 0);
}

function treeSize(dir) {
  let bytes = 0;
  let files = 0;
  for (const f of walk(dir)) {
    bytes += lstatSync(f).size;
    files++;
  }
  return { bytes, files };
}

function stripBinary(src, dest, mode) {
  if (mode && onPath('strip')) {
    // --strip-all keeps .dynsym: addons still resolve napi_* from the runtime.
    run('strip', [mode, '-o', dest, src]);
    return true;
  }
  copyFileSync(src, dest);
  return false;
}

function pipeTarGz(cwd, entry, out, level) {
  const epoch = process.env.SOURCE_DATE_EPOCH ?? String(Math.floor(Date.now() / 1000));
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${epoch}`, '-cf', '-', entry],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const gz = spawn('sh', ['-c', `gzip -${level} -n > "$1"`, 'sh', out], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    tar.stderr.on('data', (d) => { err += d; });
    gz.stderr.on('data', (d) => { err += d; });
    tar.stdout.pipe(gz.stdin);
    let pending = 2;
    const done = (who) => (code) => {
      if (code !== 0) reject(new Error(`${who} failed (exit ${code}): ${err.trim()}`));
      else if (--pending === 0) resolve();
    };
    tar.on('close', done('tar'));
    gz.on('close', done('gzip'));
    tar.on('error', reject);
    gz.on('error', reject);
  });
}

/** Builds the artifact. Returns the paths and the manifest written next to the tarball. */
export async function buildArtifact({ root = projectRoot, outDir, strip = true, keepStaging = false, gzipLevel = 6 } = {}) {
  const t0 = Date.now();
  const p = artifactPaths(root, outDir);
  const pkg = readPackage(root);
  if (process.platform !== 'linux') throw new Error(`the artifact is a Linux ramdisk payload (this is ${process.platform})`);
  const addon = path.join(root, ADDON);
  if (!existsSync(addon)) {
    const why = existsSync(path.join(root, 'build', 'addon-build-error.txt'))
      ? readFileSync(path.join(root, 'build', 'addon-build-error.txt'), 'utf8').split('\n')[0] : 'not built';
    throw new Error(`${ADDON} is missing (${why}): a ramdisk artifact without the native backend is useless; run \`INBAND_AGENT_ADDON_REQUIRED=1 node scripts/build-addon.mjs\``);
  }
  const inputs = inputsDigest(root, { strip });
  mkdirSync(p.outDir, { recursive: true });
  // Leftovers of builds that died (staging trees are ~90 MB each).
  for (const f of readdirSync(p.outDir)) {
    const m = /^\.staging-(\d+)$|\.tmp-(\d+)$/.exec(f);
    const pid = m && Number(m[1] ?? m[2]);
    if (pid && pid !== process.pid && !pidAlive(pid)) rmSync(path.join(p.outDir, f), { recursive: true, force: true });
  }
  const staging = path.join(p.outDir, `.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  const top = path.join(staging, p.name);
  const tree = path.join(top, 'root');
  const lib = path.join(tree, 'usr', 'lib', 'inband-agent');
  const app = path.join(lib, 'app');
  const timings = {};
  const lap = (k, since) => { timings[k] = Date.now() - since; };
  try {
    // Node runtime.
    let t = Date.now();
    mkdirSync(path.join(lib, 'bin'), { recursive: true });
    const stripped = stripBinary(process.execPath, path.join(lib, 'bin', 'node'), strip ? '--strip-all' : null);
    chmodSync(path.join(lib, 'bin', 'node'), 0o755);
    lap('runtimeMs', t);

    // The app: package.json ("type": "module", name and version for agent_version), entry, compiled JS.
    t = Date.now();
    mkdirSync(path.join(app, 'bin'), { recursive: true });
    writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({
      name: pkg.name, version: pkg.version, description: pkg.description, license: pkg.license, private: true,
      type: 'module', bin: pkg.bin, dependencies: pkg.dependencies,
    }, null, 2)}\n`);
    // The entry is CommonJS (bin/package.json) and runs the commands file with its code cache (bin/code-cache.js).
    for (const f of ['inband-agent.js', 'code-cache.js', 'package.json']) copyFileSync(path.join(root, 'bin', f), path.join(app, 'bin', f));
    chmodSync(path.join(app, 'bin', 'inband-agent.js'), 0o755);
    const compiledFrom = compileApp(root, staging, path.join(app, 'dist'));
    // What bin/inband-agent.js runs: the bundle, built from the same sources.
    await buildBundle({ root, outDir: path.join(app, 'dist', 'bundle') });
    mkdirSync(path.join(app, 'build', 'Release'), { recursive: true });
    stripBinary(addon, path.join(app, ADDON), strip ? '--strip-unneeded' : null);
    if (existsSync(path.join(root, MEMORY_ADDON))) stripBinary(path.join(root, MEMORY_ADDON), path.join(app, MEMORY_ADDON), strip ? '--strip-unneeded' : null);
    lap('appMs', t);

    // Production dependencies only, pruned.
    t = Date.now();
    const closure = dependencyClosure(root);
    for (const rel of closure) {
      const isAddon = existsSync(path.join(root, rel, 'binding.gyp'));
      copyPackage(path.join(root, rel), path.join(app, rel), isAddon);
    }
    lap('dependenciesMs', t);

    // Launcher, units, configuration, documentation.
    const put = (src, rel, mode) => {
      const dest = path.join(tree, rel);
      mkdirSync(path.dirname(dest), { recursive: true });
      copyFileSync(src, dest);
      chmodSync(dest, mode);
    };
    put(path.join(root, 'scripts', 'package', 'inband-agent.sh'), 'usr/bin/inband-agent', 0o755);
    put(path.join(root, 'systemd', 'inband-agent.service'), 'usr/lib/systemd/system/inband-agent.service', 0o644);
    put(path.join(root, 'systemd', 'modules-load.d', 'inband-agent.conf'), 'usr/lib/modules-load.d/inband-agent.conf', 0o644);
    // 0600 like agent.json: it is where an image builder may put INBAND_AGENT_AGENT_TOKEN.
    put(path.join(root, 'systemd', 'inband-agent.default'), 'etc/default/inband-agent', 0o600);
    put(path.join(root, 'scripts', 'package', 'agent.json'), 'etc/inband-agent/agent.json', 0o600);
    const doc = path.join(tree, 'usr', 'share', 'doc', 'inband-agent');
    mkdirSync(doc, { recursive: true });
    if (existsSync(path.join(root, 'README.md'))) put(path.join(root, 'README.md'), 'usr/share/doc/inband-agent/README.md', 0o644);
    const nodeLicense = [path.resolve(process.execPath, '..', '..', 'share', 'doc', 'nodejs', 'LICENSE'),
      path.resolve(process.execPath, '..', '..', 'share', 'doc', 'node', 'LICENSE'),
      path.resolve(process.execPath, '..', '..', 'LICENSE')].find((f) => existsSync(f));
    if (nodeLicense) put(nodeLicense, 'usr/share/doc/inband-agent/LICENSE.node', 0o644);
    writeFileSync(path.join(doc, 'THIRD-PARTY'), `Bundled with inband-agent ${pkg.version}; each package's licence is in its directory under /usr/lib/inband-agent/app/.\n` +
      `node ${process.version} (/usr/lib/inband-agent/bin/node)\n${closure.map((rel) => {
        const dep = JSON.parse(readFileSync(path.join(root, rel, 'package.json'), 'utf8'));
        return `${rel.replace(/^node_modules\//, '').replace(/\/node_modules\//g, ' > ')} ${dep.version} ${dep.license ?? ''}`.trim();
      }).join('\n')}\n`);

    // The install step and what it reports.
    put(path.join(root, 'scripts', 'package', 'install.sh'), '../install.sh', 0o755);
    // A diskimage-builder element that runs install.sh (ELEMENTS_PATH=<release>/dib).
    cpSync(path.join(root, 'scripts', 'package', 'dib'), path.join(top, 'dib'), { recursive: true });
    writeFileSync(path.join(top, 'VERSION'), `${pkg.version}\n`);
    writeFileSync(path.join(top, 'ARCH'), `${process.arch}\n`);

    // Smoke test of the staged tree: the bundled node, an empty PATH.
    const smoke = spawnSync(path.join(tree, 'usr', 'bin', 'inband-agent'), ['--version'], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
    if (smoke.status !== 0 || !smoke.stdout.includes(pkg.version)) {
      throw new Error(`the staged launcher does not run: ${smoke.error?.message ?? ''}${smoke.stdout}${smoke.stderr}`);
    }

    const sizes = {
      runtime: statSync(path.join(lib, 'bin', 'node')).size,
      appJs: treeSize(path.join(app, 'dist')).bytes,
      nodeModules: treeSize(path.join(app, 'node_modules')).bytes,
      addon: statSync(path.join(app, ADDON)).size,
    };
    const unpacked = treeSize(top);
    sizes.unpacked = unpacked.bytes;
    const buildInfo = { name: pkg.name, version: pkg.version, node: process.version, arch: process.arch, inputs, compiledFrom,
      strippedRuntime: stripped, dependencies: closure.length };
    writeFileSync(path.join(top, 'BUILD-INFO.json'), `${JSON.stringify(buildInfo, null, 2)}\n`);

    t = Date.now();
    const tmp = `${p.tarball}.tmp-${process.pid}`;
    await pipeTarGz(staging, p.name, tmp, gzipLevel);
    renameSync(tmp, p.tarball);
    lap('tarGzMs', t);
    sizes.tarball = statSync(p.tarball).size;
    const sha256 = createHash('sha256').update(readFileSync(p.tarball)).digest('hex');
    const manifest = { ...buildInfo, tarball: path.basename(p.tarball), sha256, sizes, files: unpacked.files,
      buildMs: Date.now() - t0, timings, builtAt: new Date().toISOString() };
    writeFileSync(`${p.manifest}.tmp-${process.pid}`, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(`${p.manifest}.tmp-${process.pid}`, p.manifest);
    return { ...p, manifest };
  } finally {
    if (!keepStaging) rmSync(staging, { recursive: true, force: true });
  }
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/**
 * The current artifact, built only when its inputs changed. Concurrent callers
 * (test files running in parallel) wait for one builder instead of racing.
 */
export async function ensureArtifact({ root = projectRoot, outDir, waitMs = 600_000 } = {}) {
  const fresh = freshArtifact(root, outDir);
  if (fresh) return { ...fresh, reused: true };
  const p = artifactPaths(root, outDir);
  mkdirSync(p.outDir, { recursive: true });
  const lock = path.join(p.outDir, '.package.lock');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      let holder = NaN;
      try {
        holder = Number(readFileSync(path.join(lock, 'pid'), 'utf8'));
      } catch {
        // being created: give it a moment
      }
      if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for another build of the artifact (lock ${lock}, pid ${holder})`);
      await sleep(250);
    }
  }
  try {
    const again = freshArtifact(root, outDir);
    if (again) return { ...again, reused: true };
    return { ...(await buildArtifact({ root, outDir })), reused: false };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;

async function main(argv) {
  const opts = { strip: !argv.includes('--no-strip'), keepStaging: argv.includes('--keep-staging') };
  const outAt = argv.indexOf('--out');
  if (outAt >= 0) opts.outDir = path.resolve(argv[outAt + 1] ?? '');
  const unknown = argv.filter((a, i) => !['--no-strip', '--keep-staging', '--if-stale', '--out'].includes(a) && argv[i - 1] !== '--out');
  if (unknown.length) {
    console.error(`usage: node scripts/package.mjs [--if-stale] [--no-strip] [--out DIR] [--keep-staging] (unknown: ${unknown.join(' ')})`);
    return 2;
  }
  const result = argv.includes('--if-stale') ? await ensureArtifact({ outDir: opts.outDir }) : await buildArtifact(opts);
  const m = result.manifest;
  log(`${result.reused ? 'reused (inputs unchanged)' : `built in ${(m.buildMs / 1000).toFixed(1)} s`}: ${path.relative(process.cwd(), result.tarball) || result.tarball}`);
  log(`  tar.gz ${mib(m.sizes.tarball)}; unpacked ${mib(m.sizes.unpacked)} in ${m.files} files: node ${m.node} ${mib(m.sizes.runtime)}` +
    `${m.strippedRuntime ? ' (stripped)' : ''}, app JS ${mib(m.sizes.appJs)}, node_modules ${mib(m.sizes.nodeModules)} (${m.dependencies} packages), addon ${(m.sizes.addon / 1024).toFixed(0)} KiB`);
  log(`  sha256 ${m.sha256}`);
  log(`  install: tar -xzf ${path.basename(result.tarball)} && ${m.tarball.replace(/\.tar\.gz$/, '')}/install.sh --root DIR [--enable]`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
    log(`failed: ${err.message}`);
    process.exitCode = 1;
  });
}
