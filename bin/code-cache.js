'use strict';
// Runs the agent file (dist/bundle/agent.cjs, built by scripts/bundle.mjs)
// through node:vm with a V8 code cache beside it, made by
// scripts/code-cache.mjs at build time: agent.cjs.v8cache, trained on the
// one-shot commands, or agent.cjs.serve.v8cache, trained on the daemon's
// start up to its first status answer. One cache for both would make every
// command deserialize the daemon's start too (V8's cost grows with the cache).
//
// Why: Node 20 keeps no code cache for ES modules, and on a slow CPU a
// command's start is mostly compiling it. With the cache V8 deserializes the
// bytecode of every function the build's training run compiled instead of
// parsing and compiling them again (figures in scripts/bundle.mjs).
//
// V8 checks the cache against the source and against its own version and
// flags, and rejects one that does not fit: the command then compiles as it
// would without one, only slower. So a cache from another Node, a stale one or
// none at all never changes what a command does. It holds bytecode and the
// source's own literals, nothing a command read or computed at run time.
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const vm = require('node:vm');

/** Where the cache of `file` for `kind` ('commands' or 'serve') lives. */
function cacheFileOf(file, kind = 'commands') {
  return kind === 'serve' ? `${file}.serve.v8cache` : `${file}.v8cache`;
}

/**
 * Compiles and runs `file` as a CommonJS module. Returns its exports, the
 * vm.Script (scripts/code-cache.mjs asks it for the cache after training) and
 * what became of the cache: 'used', 'rejected' or 'none'.
 */
function runWithCodeCache(file, { useCache = true, kind = 'commands' } = {}) {
  const source = readFileSync(file, 'utf8');
  let cachedData;
  if (useCache) {
    try {
      cachedData = readFileSync(cacheFileOf(file, kind));
    } catch {
      // no cache: compile from source
    }
  }
  // The module wrapper on the source's first line keeps stack traces' line numbers.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  // The bundle reads import.meta.url from here (scripts/bundle.mjs defines it so).
  globalThis.__inbandAgentFileUrl = pathToFileURL(file).href;
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(file), mod, file, path.dirname(file));
  const cache = cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'used';
  return { exports: mod.exports, script, cache };
}

module.exports = { cacheFileOf, runWithCodeCache };
