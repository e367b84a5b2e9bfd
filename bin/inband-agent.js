#!/usr/bin/env node
'use strict';
// Entry point named by package.json "bin": one command, two programs.
// `inband-agent conductor ...` is the conductor side (beside Ironic); every
// other command is the agent (on the node). The two programs never import
// each other; this file only picks one and hands over.
//
// `npm run build` compiles the TypeScript sources to dist/ and bundles them
// into dist/bundle/ (scripts/bundle.mjs):
// - the agent (set-credentials, user, bmc, ..., serve) runs from agent.cjs
//   with a V8 code cache (code-cache.js says why), the daemon with its own;
// - the conductor side runs from conductor.js, ES module chunks, each
//   command loading only what it needs.
// A tree compiled by tsc alone runs from dist/<program>/cli.js.
//
// This file is CommonJS (bin/package.json): Node starts a CommonJS entry
// without its ES module loader, which a one-shot command then never needs
// (about 90 ms of a 1 s start in the qemu guest, a few ms on the host).
const { existsSync, readFileSync, writeSync } = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const argv = process.argv.slice(2);
const root = path.join(__dirname, '..');
const bundleDir = path.join(root, 'dist', 'bundle');
// `--version` is answered here, from package.json (the one version source,
// as service/version.ts reads it), without loading either program: scripts
// and image builders call it to check an install, and it then costs little
// more than Node's own start.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === 'version')) {
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  // write(2), not process.stdout: on a pipe that stream is a net.Socket, and
  // building it loads node:net and the stream classes (agent/stdio.ts).
  try {
    writeSync(1, `inband-agent ${version}\n`);
    process.exit(0);
  } catch (err) {
    // A reader that went away (EPIPE) is told nothing; a non-blocking pipe
    // that is full (EAGAIN) gets the line through Node's stream, which waits.
    if (err.code !== 'EAGAIN') process.exit(err.code === 'EPIPE' ? 0 : 1);
    process.stdout.write(`inband-agent ${version}\n`);
  }
  return;
}
const program = argv[0] === 'conductor' ? 'conductor' : 'agent';
const args = program === 'conductor' ? argv.slice(1) : argv;

function finished(code) {
  if (typeof code === 'number') process.exitCode = code;
}

function failed(err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(`dist/${program}/cli.js`)) {
    // The ramdisk package carries the agent only; a checkout may simply not be built yet.
    const agentThere = existsSync(path.join(root, 'dist', 'agent', 'cli.js')) || existsSync(path.join(bundleDir, 'agent.cjs'));
    console.error(program === 'conductor' && agentThere
      ? 'inband-agent: the conductor side is not part of this installation (the ramdisk package carries the agent only); run it from a checkout or an install beside Ironic.'
      : 'inband-agent: not built yet; run `npm ci` (or `npm run build`) in the project root first.');
  } else {
    console.error(`inband-agent: ${err && err.message ? err.message : err}`);
  }
  process.exitCode = 1;
}

const agentFile = path.join(bundleDir, 'agent.cjs');
if (program === 'agent' && existsSync(agentFile)) {
  const kind = argv[0] === 'serve' ? 'serve' : 'commands';
  let loaded;
  try {
    loaded = require('./code-cache.js').runWithCodeCache(agentFile, { kind });
  } catch (err) {
    failed(err);
  }
  if (loaded) {
    // Why a command started slowly: INBAND_AGENT_TRACE_STARTUP=1 says whether V8 took the cache.
    if (process.env.INBAND_AGENT_TRACE_STARTUP === '1') process.stderr.write(`inband-agent: code cache ${loaded.cache} (${agentFile}, ${kind})\n`);
    loaded.exports.main(args).then(finished, failed);
  }
} else {
  const bundle = path.join(bundleDir, `${program}.js`);
  const entry = existsSync(bundle) ? pathToFileURL(bundle).href : pathToFileURL(path.join(root, 'dist', program, 'cli.js')).href;
  import(entry).then((m) => m.main(args)).then(finished, failed);
}
