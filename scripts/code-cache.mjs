#!/usr/bin/env node
// Makes the V8 code cache of the agent's commands file (bin/code-cache.js
// says what it is for): runs the commands an operator runs, in this one
// process, on the simulated BMC, then asks V8 for the bytecode of everything
// they compiled. scripts/bundle.mjs runs it after bundling (npm run build, the
// release); a fresh process, so V8's flags are the ones a command starts with
// (V8 rejects a cache made under other flags).
//
//   node scripts/code-cache.mjs FILE      writes FILE.v8cache
//
// Every training command must succeed: a failure here is a broken bundle.
// The training password is random, and the cache is checked not to hold it
// (a cache holds bytecode and the source's literals, never run-time data).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';

const require = createRequire(import.meta.url);
const { cacheFileOf, runWithCodeCache } = require('../bin/code-cache.js');

export async function makeCodeCache(file) {
  const { exports, script } = runWithCodeCache(file, { useCache: false });
  const stateDir = mkdtempSync(path.join(tmpdir(), 'inband-code-cache-'));
  const password = `Tr-${randomBytes(8).toString('hex')}`;
  const sim = ['--backend', 'simulated'];
  const runs = [
    ['--help'],
    ['set-credentials', '--help'],
    ['user', 'list', ...sim],
    ['user', 'list', ...sim, '-v'],
    ['channel', 'info', ...sim],
    ['mc', 'info', ...sim],
    ['bmc', 'info', ...sim, '--json'],
    ['set-credentials', ...sim, '--username', 'trainer', '--password-stdin', '--state-dir', stateDir],
    ['set-credentials', ...sim, '--username', 'trainer', '--password-stdin', '--state-dir', stateDir, '--json'],
  ];
  try {
    for (const argv of runs) {
      let out = '';
      const sink = new Writable({ write(chunk, _enc, cb) { out += chunk; cb(); } });
      const code = await exports.main(argv, {
        stdout: sink, stderr: sink, stdin: Readable.from([`${password}\n`]), env: {}, cmdlinePath: null, signals: false,
      });
      if (code !== 0) throw new Error(`training run \`${argv.join(' ')}\` exited ${code}: ${out.trim().split('\n').slice(-3).join(' | ')}`);
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
  const cache = script.createCachedData();
  if (cache.includes(password)) throw new Error('the code cache holds the training password');
  writeFileSync(cacheFileOf(file), cache);
  return { file: cacheFileOf(file), bytes: cache.length, runs: runs.length };
}

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  const file = process.argv[2];
  if (!file || process.argv.length > 3) {
    console.error('usage: node scripts/code-cache.mjs FILE');
    process.exit(2);
  }
  makeCodeCache(path.resolve(file)).then(({ file: out, bytes, runs }) => {
    process.stderr.write(`code cache: ${path.relative(process.cwd(), out)}, ${(bytes / 1024).toFixed(0)} KiB from ${runs} training runs\n`);
  }, (err) => {
    process.stderr.write(`code cache: failed: ${err.message}\n`);
    process.exitCode = 1;
  });
}
