#!/usr/bin/env node
// Builds the native /dev/ipmi0 addon (binding.gyp -> build/Release/ipmi_kcs.node),
// and beside it the daemon's optional memory give-back (agent_memory.node).
//
// Runs as the package's `install` script, so `npm ci` builds it. A failed build
// must not fail the install: the agent still runs with its other backends, and
// the native backend reports *why* it is missing. The reason is written to
// build/addon-build-error.txt, which ipmi-kcs/kcs-native.ts reads.
//
// Set INBAND_AGENT_ADDON_REQUIRED=1 (e.g. when building a ramdisk image) to turn
// a failed build into a failed install.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync, accessSync, realpathSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build');
const errorFile = path.join(buildDir, 'addon-build-error.txt');
const addonFile = path.join(buildDir, 'Release', 'ipmi_kcs.node');
const memoryFile = path.join(buildDir, 'Release', 'agent_memory.node');
const memoryErrorFile = path.join(buildDir, 'agent-memory-build-error.txt');
const required = /^(1|true|yes)$/i.test(process.env.INBAND_AGENT_ADDON_REQUIRED ?? '');

function fail(reason, output = '') {
  mkdirSync(buildDir, { recursive: true });
  const tail = output.trim().split('\n').slice(-40).join('\n');
  writeFileSync(errorFile, `${reason}\n${tail ? `\n--- last lines of the build output ---\n${tail}\n` : ''}`);
  const bar = '!'.repeat(72);
  console.warn(`\n${bar}\n!! inband-agent: the native /dev/ipmi0 addon was NOT built.\n!! ${reason}\n` +
    `!! The agent still installs; the 'native' backend will be unavailable and say why.\n` +
    `!! Details: ${path.relative(process.cwd(), errorFile) || errorFile}\n${bar}\n`);
  process.exit(required ? 1 : 0);
}

/** The first line of build output that looks like the cause, for a one-line reason. */
function firstCause(output) {
  const line = output.split('\n').find((l) => /\berror\b|Error:|not found/i.test(l) && !/^gyp ERR! stack\s+at /.test(l));
  return line ? `: ${line.trim().slice(0, 200)}` : '';
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** npm's bundled node-gyp, found from the npm that runs us or the one on PATH. */
function npmBundledNodeGyp() {
  const npmCli = process.env.npm_execpath ?? (onPath('npm') && realpathSync(onPath('npm')));
  if (!npmCli) return undefined;
  for (let dir = path.dirname(npmCli); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const js = path.join(dir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(js)) return js;
    if (path.basename(dir) === 'npm') break;
  }
  return undefined;
}

/** [command, leading args] for node-gyp: PATH, then $npm_config_node_gyp, then npm's own copy. */
function findNodeGyp() {
  const bin = onPath('node-gyp');
  if (bin) return [bin, []];
  const fromEnv = process.env.npm_config_node_gyp;
  if (fromEnv && existsSync(fromEnv)) return [process.execPath, [fromEnv]];
  const bundled = npmBundledNodeGyp();
  if (bundled) return [process.execPath, [bundled]];
  return undefined;
}

if (process.platform !== 'linux') {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(errorFile, `skipped: the native addon drives the Linux OpenIPMI driver and is not built on ${process.platform}\n`);
  console.log(`inband-agent: skipping the native /dev/ipmi0 addon on ${process.platform} (Linux only).`);
  process.exit(0);
}

const nodeGyp = findNodeGyp();
if (!nodeGyp) fail('node-gyp was not found (not on PATH, no $npm_config_node_gyp, no npm-bundled copy).');

const args = [...nodeGyp[1], 'rebuild'];
// Build against the running Node's own headers when they are installed, so no
// header download is needed (deploy ramdisk build hosts are often offline).
const ownHeaders = path.resolve(process.execPath, '..', '..');
if (!process.env.npm_config_nodedir && existsSync(path.join(ownHeaders, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${ownHeaders}`);
}

rmSync(errorFile, { force: true });
rmSync(memoryErrorFile, { force: true });
const child = spawn(nodeGyp[0], args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
let output = '';
child.stdout.on('data', (chunk) => { output += chunk; process.stdout.write(chunk); });
child.stderr.on('data', (chunk) => { output += chunk; process.stderr.write(chunk); });
child.on('error', (err) => fail(`could not run node-gyp (${[nodeGyp[0], ...nodeGyp[1]].join(' ')}): ${err.message}`, output));
child.on('close', (code, signal) => {
  if (code !== 0 && existsSync(addonFile) && !existsSync(memoryFile)) {
    // binding.gyp builds ipmi_kcs first: only the optional memory addon failed.
    writeFileSync(memoryErrorFile, `node-gyp rebuild failed on agent_memory${firstCause(output)}\n`);
    console.warn(`inband-agent: built ${path.relative(root, addonFile)}; the idle daemon's memory give-back (agent_memory.node) did not build (${path.relative(root, memoryErrorFile)}): the daemon keeps its memory`);
  } else if (code !== 0) fail(`node-gyp rebuild failed (${signal ? `signal ${signal}` : `exit code ${code}`})${firstCause(output)}`, output);
  else if (!existsSync(addonFile)) fail(`node-gyp rebuild succeeded but ${path.relative(root, addonFile)} is missing.`, output);
  else console.log(`inband-agent: built ${path.relative(root, addonFile)} and ${path.basename(memoryFile)}`);
});
