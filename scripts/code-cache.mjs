#!/usr/bin/env node
// Makes a V8 code cache of the agent file (bin/code-cache.js says what it is
// for), in this one process, on the simulated BMC, then asks V8 for the
// bytecode of everything the training compiled. scripts/bundle.mjs runs it
// after bundling (npm run build, the release), once per cache; a fresh
// process, so V8's flags are the ones a command starts with (V8 rejects a
// cache made under other flags).
//
//   node scripts/code-cache.mjs --for commands FILE
//       writes FILE.v8cache: runs the commands an operator runs;
//   node scripts/code-cache.mjs --for serve FILE
//       writes FILE.serve.v8cache: starts the daemon (standalone, loopback,
//       a port the kernel picks) and stops at its first status answer, so
//       the cache holds the start and not the app loaded after it.
//
// Every training command must succeed: a failure here is a broken bundle.
// The training password is random, and the cache is checked not to hold it
// (a cache holds bytecode and the source's literals, never run-time data).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';

const require = createRequire(import.meta.url);
const { cacheFileOf, runWithCodeCache } = require('../bin/code-cache.js');

/** The training: the commands, or the daemon's start. Every run must succeed: a failure here is a broken bundle. */
export async function makeCodeCache(file, kind = 'commands') {
  const { exports, script } = runWithCodeCache(file, { useCache: false });
  const stateDir = mkdtempSync(path.join(tmpdir(), 'inband-code-cache-'));
  const password = `Tr-${randomBytes(8).toString('hex')}`;
  let runs;
  try {
    runs = kind === 'serve' ? await trainServe(exports, stateDir) : await trainCommands(exports, stateDir, password);
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
  const cache = script.createCachedData();
  if (cache.includes(password)) throw new Error('the code cache holds the training password');
  writeFileSync(cacheFileOf(file, kind), cache);
  return { file: cacheFileOf(file, kind), bytes: cache.length, runs };
}

async function trainCommands(exports, stateDir, password) {
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
  for (const argv of runs) {
    let out = '';
    const sink = new Writable({ write(chunk, _enc, cb) { out += chunk; cb(); } });
    const code = await exports.main(argv, {
      stdout: sink, stderr: sink, stdin: Readable.from([`${password}\n`]), env: {}, cmdlinePath: null, signals: false,
    });
    if (code !== 0) throw new Error(`training run \`${argv.join(' ')}\` exited ${code}: ${out.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return runs.length;
}

/** Starts the daemon and returns once it answered `GET /v1/status` 200. The process exits after writing the cache. */
async function trainServe(exports, stateDir) {
  // The daemon sets V8 flags as it starts (agent/startup.ts), and V8 stamps a
  // cache with the flags in force when it is made: the daemon's file is
  // compiled before those flags are set, so the cache must carry the
  // defaults. startupV8 leaves alone what the operator's NODE_OPTIONS names.
  process.env.NODE_OPTIONS = '--opt --semi-space-growth-factor=2';
  let out = '';
  let listening;
  const heard = new Promise((resolve) => { listening = resolve; });
  const sink = new Writable({
    write(chunk, _enc, cb) {
      out += chunk;
      const m = /API listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) listening(m[1]);
      cb();
    },
  });
  const exited = exports.main(['serve', '--standalone', '--backend', 'simulated', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', stateDir], {
    stdout: sink, stderr: sink, stdin: Readable.from([]), env: {}, cmdlinePath: null, signals: false,
  }).then((code) => { throw new Error(`the daemon exited ${code} before answering: ${out.trim().split('\n').slice(-3).join(' | ')}`); });
  const url = await Promise.race([heard, exited]);
  const status = await new Promise((resolve, reject) => {
    get(`${url}/v1/status`, { agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); }).on('error', reject);
  });
  if (status !== 200) throw new Error(`the daemon answered status ${status}`);
  return 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  const [flag, kind, file] = process.argv.slice(2);
  if (flag !== '--for' || !['commands', 'serve'].includes(kind) || !file || process.argv.length > 5) {
    console.error('usage: node scripts/code-cache.mjs --for commands|serve FILE');
    process.exit(2);
  }
  makeCodeCache(path.resolve(file), kind).then(({ file: out, bytes, runs }) => {
    process.stderr.write(`code cache: ${path.relative(process.cwd(), out)}, ${(bytes / 1024).toFixed(0)} KiB from ${runs} training run${runs === 1 ? '' : 's'}\n`);
    // The trained daemon is still listening: the cache is written, so stop here.
    if (kind === 'serve') process.exit(0);
  }, (err) => {
    process.stderr.write(`code cache: failed: ${err.message}\n`);
    // A daemon that started but did not answer keeps the process alive: the build would wait out its timeout.
    process.exit(1);
  });
}
