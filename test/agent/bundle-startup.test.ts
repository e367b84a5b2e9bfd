/**
 * The built bundle (scripts/bundle.mjs, part of `npm run build`): what
 * bin/inband-agent.js runs, and what each command loads. The agent runs from
 * one CommonJS file through node:vm with a V8 code cache; the npm packages no
 * command needs (Koa, winston, ajv, systeminformation) are files of their own
 * under packages/, required when first imported. What a process loaded is
 * read from Node's require cache when it exits (a preload), mapped back to
 * sources through the bundle's metafile.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { projectRoot } from '../harness/e2e.js';

const root = projectRoot();
const bundleDir = join(root, 'dist', 'bundle');
const bin = join(root, 'bin', 'inband-agent.js');
const agentFile = join(bundleDir, 'agent.cjs');
const unavailable = existsSync(agentFile) && existsSync(join(bundleDir, 'meta.json')) ? false : 'dist/bundle is not built (npm run build)';

/** The npm packages only the daemon needs: never inside the agent file, never loaded by a command. */
const DAEMON_PACKAGES = [/node_modules\/koa\//, /node_modules\/@koa\//, /node_modules\/systeminformation\//, /node_modules\/winston\//, /node_modules\/ajv\//];

describe('the bundle', { skip: unavailable }, () => {
  let work: string;
  let preload: string;
  let meta: { outputs: Record<string, { inputs: Record<string, unknown> }> };
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'inband-bundle-'));
    preload = join(work, 'loaded.cjs');
    writeFileSync(preload, `process.on('exit', () => {
  const fs = require('node:fs');
  fs.writeFileSync(process.env.INBAND_LOADED_LOG, Object.keys(require.cache).join('\\n'));
  fs.writeFileSync(process.env.INBAND_LOADED_LOG + '.builtins', process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)).join('\\n'));
});
// INBAND_EXIT_AT_LISTEN=1: the process ends as its first server listens, so the lists above are what it loaded before.
if (process.env.INBAND_EXIT_AT_LISTEN === '1') {
  const net = require('node:net');
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (...args) {
    this.once('listening', () => process.exit(0));
    return listen.apply(this, args);
  };
}\n`);
    meta = JSON.parse(readFileSync(join(bundleDir, 'meta.json'), 'utf8')) as typeof meta;
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  /** The bundle's files a process loaded through require (the agent file itself runs through vm.Script), and their sources. */
  const loadedFrom = (logFile: string) => {
    const files = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    assert.ok(files.every((f) => !f.startsWith(join(root, 'dist') + '/') || f.startsWith(bundleDir + '/')), `ran from the bundle, not dist/: ${files.join(', ')}`);
    const bundled = files.filter((f) => f.startsWith(bundleDir + '/'));
    return { files: bundled, sources: bundled.flatMap((f) => Object.keys(meta.outputs[relative(root, f)]?.inputs ?? {})) };
  };

  /** Runs bin/inband-agent.js; returns the result and what it loaded from the bundle. */
  function runTraced(args: string[], input = '', env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string; files: string[]; sources: string[] } {
    const logFile = join(work, `loaded-${args.join('-').replace(/[^a-z0-9-]/gi, '')}.txt`);
    writeFileSync(logFile, '');
    const r = spawnSync(process.execPath, ['--require', preload, bin, ...args], { encoding: 'utf8', input, timeout: 60_000, env: { ...process.env, ...env, INBAND_LOADED_LOG: logFile } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, ...loadedFrom(logFile) };
  }

  const daemonPackagesIn = (sources: string[]) => sources.filter((s) => DAEMON_PACKAGES.some((re) => re.test(s)));

  it('--version is answered by the entry from package.json, loading neither program', () => {
    const r = runTraced(['--version']);
    assert.equal(r.status, 0, r.stderr);
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    assert.equal(r.stdout, `inband-agent ${version}\n`);
    assert.deepEqual(r.files, [], '--version loads no bundle file');
  });

  it('on pipes, --version and set-credentials build none of Node\'s stdio streams: node:net stays unloaded', () => {
    const builtinsOf = (args: string[], input = ''): { r: ReturnType<typeof runTraced>; builtins: string[] } => {
      const r = runTraced(args, input);
      const logFile = join(work, `loaded-${args.join('-').replace(/[^a-z0-9-]/gi, '')}.txt`);
      return { r, builtins: readFileSync(`${logFile}.builtins`, 'utf8').split('\n') };
    };
    const version = builtinsOf(['--version']);
    assert.equal(version.r.status, 0, version.r.stderr);
    for (const m of ['net', 'stream', 'tty']) assert.ok(!version.builtins.includes(m), `--version loads no ${m}: ${version.builtins.join(' ')}`);
    // The password arrives on a pipe with a CRLF ending; the JSON result leaves on a pipe.
    const set = builtinsOf(['set-credentials', '--username', 'piped', '--password-stdin', '--json', '--backend', 'simulated', '--state-dir', join(work, 'state-pipes')], 'Piped-pw-0123\r\nnot read\n');
    assert.equal(set.r.status, 0, set.r.stderr);
    const out = JSON.parse(set.r.stdout) as { verified?: { name?: boolean; password_test?: string } };
    assert.equal(out.verified?.name, true);
    assert.equal(out.verified?.password_test, 'passed');
    assert.ok(!set.builtins.includes('net'), `set-credentials loads no node:net: ${set.builtins.join(' ')}`);
    // Usage errors and diagnostics still reach stderr through the fd.
    const bad = runTraced(['set-credentials', '--username', 'piped', '--password-stdin', '--backend', 'simulated', '--state-dir', join(work, 'state-pipes')], '\n');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--password-stdin: stdin gave an empty password/);
  });

  /** What the agent file holds, by source (the bundle's metafile). */
  const agentSources = (): string[] => Object.keys(meta.outputs[relative(root, agentFile)]?.inputs ?? {});

  it('user list and set-credentials run from the agent file with its code cache, and load no package file', () => {
    const traced = { INBAND_AGENT_TRACE_STARTUP: '1' };
    const list = runTraced(['user', 'list', '--backend', 'simulated'], '', traced);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+Name/);
    assert.match(list.stderr, /code cache used \(.*agent\.cjs, commands\)/, 'V8 took the build\'s code cache');
    assert.deepEqual(list.files, [], 'no other bundle file is loaded');
    const state = join(work, 'state');
    const set = runTraced(['set-credentials', '--username', 'bundled', '--password-stdin', '--json', '--backend', 'simulated', '--state-dir', state], 'Bundle-pw-0123\n', traced);
    assert.equal(set.status, 0, set.stderr);
    assert.equal((JSON.parse(set.stdout) as { verified?: { name?: boolean } }).verified?.name, true);
    assert.match(set.stderr, /code cache used/);
    assert.deepEqual(set.files, []);
    const inFile = agentSources();
    assert.ok(inFile.some((src) => src.startsWith('service/credential-service')), 'the agent file runs the engine');
    assert.deepEqual(daemonPackagesIn(inFile), [], 'Koa, winston, ajv and systeminformation are not in the agent file');
  });

  it('a code cache V8 rejects, or none, changes nothing but the time: the command compiles from source', () => {
    const copy = join(work, 'copy');
    mkdirSync(join(copy, 'dist', 'bundle'), { recursive: true });
    cpSync(join(root, 'bin'), join(copy, 'bin'), { recursive: true });
    cpSync(join(root, 'package.json'), join(copy, 'package.json'));
    cpSync(agentFile, join(copy, 'dist', 'bundle', 'agent.cjs'));
    const run = () => spawnSync(process.execPath, [join(copy, 'bin', 'inband-agent.js'), 'user', 'list', '--backend', 'simulated'],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, INBAND_AGENT_TRACE_STARTUP: '1' } });
    const expected = runTraced(['user', 'list', '--backend', 'simulated']).stdout;
    const none = run();
    assert.equal(none.status, 0, none.stderr);
    assert.match(none.stderr, /code cache none/);
    assert.equal(none.stdout, expected);
    // A cache from another build of the file (here: truncated bytes) is refused by V8's checks.
    writeFileSync(join(copy, 'dist', 'bundle', 'agent.cjs.v8cache'), readFileSync(`${agentFile}.v8cache`).subarray(0, 4096));
    const rejected = run();
    assert.equal(rejected.status, 0, rejected.stderr);
    assert.match(rejected.stderr, /code cache rejected/);
    assert.equal(rejected.stdout, expected);
  });

  it('the code caches hold no password from their training runs', () => {
    for (const file of [`${agentFile}.v8cache`, `${agentFile}.serve.v8cache`]) {
      const cache = readFileSync(file);
      assert.ok(cache.length > 64 * 1024, `${file}: a cache of the trained functions`);
      assert.doesNotMatch(cache.toString('latin1'), /Tr-[0-9a-f]{16}/, 'the training password (scripts/code-cache.mjs) is not in it');
    }
  });

  it('the daemon runs from the agent file with its own cache, answers status, then loads its packages and runs commands that compile their schemas (ajv, loaded on first use)', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const loadedLog = join(work, 'loaded-daemon.txt');
    writeFileSync(loadedLog, '');
    const child = spawn(process.execPath, ['--require', preload, bin, 'serve', '--standalone', '--backend', 'simulated', '--listen-host', '127.0.0.1', '--listen-port', String(port), '--state-dir', join(work, 'daemon-state')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, INBAND_LOADED_LOG: loadedLog, INBAND_AGENT_TRACE_STARTUP: '1' } });
    let log = '';
    child.stdout.on('data', (d) => { log += d; });
    child.stderr.on('data', (d) => { log += d; });
    const call = (method: string, path: string, body?: unknown) => new Promise<{ status: number; type: string; json: Record<string, unknown> }>((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} }, (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), json: JSON.parse(text || '{}') as Record<string, unknown> }));
      });
      req.on('error', reject);
      req.end(data);
    });
    try {
      let status: { status: number; type: string; json: Record<string, unknown> } | undefined;
      for (let i = 0; i < 600 && !status; i++) {
        status = await call('GET', '/v1/status').catch(() => undefined);
        if (!status) await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(status?.status, 200, log);
      const steps = await call('POST', '/v1/commands/?wait=true', { name: 'clean.get_clean_steps', params: { node: { uuid: '1be26c0b-03f2-4d2e-ae87-c02d7f33c123', properties: {}, instance_info: {}, driver_internal_info: {}, extra: {} }, ports: [] } });
      assert.equal(steps.json.command_status, 'SUCCEEDED', JSON.stringify(steps.json) + log);
      // Koa names the type from the package file's cut-down mime table (scripts/bundle.mjs, API_MIME_TYPES).
      assert.equal(steps.type, 'application/json; charset=utf-8');
      const missing = await call('GET', '/v1/no-such-path');
      assert.equal(missing.status, 404);
      assert.equal(missing.type, 'application/json; charset=utf-8');
      const bad = await call('POST', '/v1/commands/?wait=true', { name: 'bmc.set_credentials', params: { username: 'x', password: 'Bundle-pw-0123', privilege: 'king' } });
      assert.equal(bad.status, 400, JSON.stringify(bad.json));
      assert.match(String(bad.json.faultstring), /privilege/);
      assert.match(log, /"message":"POST \/v1\/commands\/\?wait=true 200/, 'and its request log is written');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    assert.match(log, /code cache used \(.*agent\.cjs, serve\)/, 'V8 took the daemon\'s code cache');
    // The daemon's log lines go through winston once the app is loaded (logger.ts useSink).
    const { files } = loadedFrom(loadedLog);
    for (const pkg of ['koa', 'winston', 'ajv']) assert.ok(files.includes(join(bundleDir, 'packages', `${pkg}.cjs`)), `the daemon loaded packages/${pkg}.cjs: ${files.join(', ')}`);
  });

  it('before it listens the daemon loads neither node:fs/promises nor node:perf_hooks (each is loaded where it is first used)', () => {
    const loadedLog = join(work, 'loaded-at-listen.txt');
    const r = spawnSync(process.execPath, ['--require', preload, bin, 'serve', '--standalone', '--backend', 'simulated', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', join(work, 'listen-state')],
      { encoding: 'utf8', env: { ...process.env, INBAND_LOADED_LOG: loadedLog, INBAND_EXIT_AT_LISTEN: '1' }, timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const builtins = readFileSync(`${loadedLog}.builtins`, 'utf8').split('\n');
    assert.ok(builtins.includes('http'), builtins.join(' '));
    for (const m of ['fs/promises', 'perf_hooks', 'zlib']) assert.ok(!builtins.includes(m), `${m} is not loaded before listening: ${builtins.join(' ')}`);
  });

  it('an idle daemon, its app loaded, holds no zlib: Koa\'s cookies and destroy get a view that loads it on use, and so does the logs command', async () => {
    const loadedLog = join(work, 'loaded-idle.txt');
    writeFileSync(loadedLog, '');
    const child = spawn(process.execPath, ['--require', preload, bin, 'serve', '--standalone', '--backend', 'simulated', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', join(work, 'idle-state')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, INBAND_LOADED_LOG: loadedLog } });
    let log = '';
    child.stdout.on('data', (d) => { log += d; });
    try {
      // "standalone: ..." is written once the app and the backend are loaded.
      for (let i = 0; i < 400 && !/standalone: no lookup/.test(log); i++) await new Promise((r) => setTimeout(r, 25));
      assert.match(log, /standalone: no lookup/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    assert.ok(loadedFrom(loadedLog).files.includes(join(bundleDir, 'packages', 'koa.cjs')), 'Koa is loaded');
    const builtins = readFileSync(`${loadedLog}.builtins`, 'utf8').split('\n');
    assert.ok(builtins.includes('http') && !builtins.includes('zlib'), `zlib stays unloaded: ${builtins.join(' ')}`);
  });

  it('the bundled daemon compacts its heap and trims malloc once start-up settles, from agent_memory.node, and goes on answering', async (t) => {
    if (!existsSync(join(root, 'build', 'Release', 'agent_memory.node'))) {
      t.skip('build/Release/agent_memory.node is missing: run `node scripts/build-addon.mjs`');
      return;
    }
    const child = spawn(process.execPath, [bin, 'serve', '--standalone', '--backend', 'simulated', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', join(work, 'compact-state'), '--log-level', 'debug', '--log-format', 'text'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => { log += d; });
    child.stderr.on('data', (d) => { log += d; });
    try {
      for (let i = 0; i < 400 && !/start-up settled/.test(log); i++) await new Promise((r) => setTimeout(r, 25));
      const m = /start-up settled: V8's heap compacted and malloc trimmed in \d+ ms, VmRSS ([\d.]+) -> ([\d.]+) MiB/.exec(log);
      assert.ok(m, `the compaction line: ${log}`);
      assert.ok(Number(m[2]) <= Number(m[1]), `VmRSS did not grow: ${m[1]} -> ${m[2]} MiB`);
      assert.equal(log.match(/start-up settled/g)?.length, 1, 'once');
      const port = Number(/API listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log)?.[1]);
      const res = await fetch(`http://127.0.0.1:${port}/v1/commands/?wait=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'clean.get_clean_steps', params: { node: {}, ports: [] } }) });
      assert.equal(res.status, 200, 'the first command after the compaction is answered');
      assert.equal(((await res.json()) as { command_status?: string }).command_status, 'SUCCEEDED');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('the package files carry what the daemon uses: mime types the API names, Node\'s own streams for winston', () => {
    const koa = readFileSync(join(bundleDir, 'packages', 'koa.cjs'), 'utf8');
    for (const t of ['application/json', 'text/plain', 'text/html', 'application/octet-stream']) assert.ok(koa.includes(`"${t}"`), t);
    assert.ok(!koa.includes('"image/png"') && !koa.includes('"application/xml"'), 'no other mime-db entries');
    const winston = Object.keys(meta.outputs['dist/bundle/packages/winston.cjs']?.inputs ?? {});
    assert.ok(winston.some((i) => i.includes('node_modules/winston/')), 'winston is in its file');
    assert.ok(!winston.some((i) => i.includes('node_modules/readable-stream/')), 'readable-stream is node:stream');
  });

  it('a bad flag value is a usage error naming the valid values, from the validator generated at build time', () => {
    const r = runTraced(['user', 'list', '--backend', 'foo']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--backend must be one of auto, native, simulated, vm-codec, ipmitool \(got "foo"\)/);
    assert.ok(agentSources().includes('generated:config-validator'), 'the agent file carries the generated validator');
    assert.ok(!agentSources().some((s) => /node_modules\/ajv\//.test(s)), 'and not ajv');
    assert.deepEqual(r.files, [], 'ajv\'s file is not loaded');
  });
});
