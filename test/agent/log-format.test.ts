/**
 * One log format for both programs: JSON or text (--log-format, auto by
 * terminal), journald priority prefixes when the stream really is the journal
 * (JOURNAL_STREAM names its device:inode), the reason on a refused request's
 * line, and masked IPMI exchange summaries at debug.
 *
 * systemd itself is not running on the build machines (no /run/systemd/system),
 * so the journal is stood in for the way systemd.exec(5) defines it: the child's
 * stderr is a pipe and JOURNAL_STREAM holds that pipe's device and inode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { main as conductorMain } from '../../conductor/cli.js';
import { conductorLog } from '../../conductor/log.js';
import { plainLine, resolveLineStyle } from '../../service/log-line.js';
import { captureLines } from '../helpers/secrets.js';
import { startTestAgent } from './helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/inband-agent.js', import.meta.url));

/** Runs the agent's binary with stderr a pipe; `journal` makes JOURNAL_STREAM that pipe's dev:inode, as systemd does. */
function runAgent(args: string[], journal: 'pipe' | 'other' | 'none'): Promise<{ code: number; out: string; err: string }> {
  const node = process.execPath;
  const quoted = [node, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  // stat -L on /proc/self/fd/2 inside the shell is the very pipe the agent inherits as stderr.
  const env = journal === 'pipe' ? 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) ' : journal === 'other' ? 'JOURNAL_STREAM=1:1 ' : '';
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `${env}exec ${quoted}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      captureLines('agent-log-format', [out, err]);
      resolve({ code: code ?? -1, out, err });
    });
  });
}

test('a logger on the journal prefixes every line with its syslog priority; off the journal it does not', () => {
  const lines = new LineCollector();
  const logger = createLogger({ stream: lines, format: 'json', level: 'debug', journald: true });
  logger.log.error('e');
  logger.log.warn('w');
  logger.log.info('i');
  logger.log.debug('d');
  assert.deepEqual(lines.lines.map((l) => l.slice(0, 3)), ['<3>', '<4>', '<6>', '<7>']);
  assert.equal(JSON.parse(lines.lines[1]!.slice(3)).message, 'w');
  // The ring (log.collect_system_logs) keeps the line without the prefix.
  assert.match(logger.ring.text(), /^\{"level":"error"/);

  const text = new LineCollector();
  createLogger({ stream: text, format: 'text', level: 'info', journald: true }).log.child({ module: 'serve' }).warn('API listening on x');
  assert.equal(text.lines[0], '<4>WARN  [serve] API listening on x', 'journald stamps the time itself: no timestamp');

  const plain = new LineCollector();
  createLogger({ stream: plain, format: 'text', level: 'info' }).log.info('hello');
  assert.match(plain.lines[0]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO {2}hello$/);
});

test('auto is text on a terminal (coloured, unless NO_COLOR) and JSON otherwise', () => {
  assert.deepEqual(resolveLineStyle({ isTTY: true, env: {} }), { format: 'text', journald: false, colour: true });
  assert.deepEqual(resolveLineStyle({ isTTY: true, env: { NO_COLOR: '' } }), { format: 'text', journald: false, colour: false });
  assert.deepEqual(resolveLineStyle({ isTTY: false, env: {} }), { format: 'json', journald: false, colour: false });
  assert.deepEqual(resolveLineStyle({ requested: 'text', isTTY: false, env: {} }), { format: 'text', journald: false, colour: false });
  const tty = Object.assign(new LineCollector(), { isTTY: true });
  const logger = createLogger({ stream: tty, level: 'info', env: {} });
  logger.log.warn('SIMULATED BMC', { highlight: true });
  logger.log.info('plain');
  const ESC = '\x1b';
  assert.ok(tty.lines[0]!.startsWith(`${ESC}[1m${ESC}[33m`) && tty.lines[0]!.endsWith(`WARN  SIMULATED BMC${ESC}[0m`), 'a highlighted warning stands out, without its flag in the text');
  assert.ok(!tty.lines[1]!.includes(ESC), 'info lines are not coloured');
});

test('under JOURNAL_STREAM the CLI writes priority prefixes on the journal stream only, and debug adds masked IPMI summaries', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'log-format-'));
  try {
    const args = ['mc', 'info', '--backend', 'simulated', '--sim-state-file', join(dir, 'bmc.json'), '--state-dir', join(dir, 'state'), '--log-level', 'debug'];
    const j = await runAgent(args, 'pipe');
    assert.equal(j.code, 0, j.err);
    assert.match(j.out, /^Device ID {17}: /, 'stdout (not the journal) carries the result unprefixed');
    const lines = j.err.trim().split('\n');
    assert.ok(lines.length >= 3, j.err);
    for (const l of lines) assert.match(l, /^<[3467]>/, `every stderr line has a priority: ${l}`);
    assert.ok(lines.some((l) => /^<4>inband-agent: SIMULATED BMC/.test(l)), 'the simulated warning is a warning');
    const debug = lines.filter((l) => l.startsWith('<7>')).map((l) => JSON.parse(l.slice(3)) as { message: string; ipmi?: string });
    assert.ok(debug.some((d) => d.message === 'IPMI exchange' && /^NetFn 0x06 \(App\) cmd 0x01 \(Get Device ID\) data: \(none\) -> cc 0x00 data: /.test(d.ipmi ?? '')), j.err);

    const failing = await runAgent(['mc', 'info', '--backend', 'vm-codec', '--vm-codec', '127.0.0.1:1', '--state-dir', join(dir, 'state')], 'pipe');
    assert.equal(failing.code, 1);
    assert.match(failing.err, /^<3>inband-agent: mc info failed: /m, 'a failure is an error in the journal');

    for (const mode of ['other', 'none'] as const) {
      const r = await runAgent(args, mode);
      assert.equal(r.code, 0, r.err);
      assert.doesNotMatch(r.err, /^<\d>/m, `no prefixes when stderr is not the journal (${mode})`);
      assert.match(r.err, /^\{"level":"debug"/m, 'JSON off a terminal');
    }
    const text = await runAgent([...args, '--log-format', 'text'], 'none');
    assert.match(text.err, /^\d{4}-\d\d-\d\dT\S+ DEBUG \[service\] IPMI exchange \{"what":"Get Device ID"/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the conductor side writes the same line format, --log-format included', async () => {
  const lines: string[] = [];
  const write = (s: string): void => void lines.push(s);
  conductorLog(write, {}, { module: 'rotate' })('rotate n1: step ok');
  conductorLog(write, {}, { module: 'rotate', journald: true })('careful', 'warn');
  conductorLog(write, {}, { module: 'serve', format: 'text' })('listening');
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual(Object.keys(first), ['level', 'message', 'module', 'timestamp']);
  assert.equal(lines[0]!.trimEnd(), plainLine({ level: 'info', message: 'rotate n1: step ok', module: 'rotate', timestamp: first.timestamp as string }, { format: 'json', journald: false }),
    'the agent\'s formatter, byte for byte');
  assert.match(lines[1]!, /^<4>\{"level":"warn","message":"careful"/);
  assert.match(lines[2]!, /^\S+Z INFO {2}\[serve\] listening\n$/);

  const ac = new AbortController();
  let out = '';
  let err = '';
  const work = mkdtempSync(join(tmpdir(), 'log-format-conductor-'));
  const done = conductorMain(['serve', '--log-format', 'text', '--ironic-url', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--store-path', join(work, 'secrets.json')], {
    stdout: (s) => (out += s), stderr: (s) => (err += s), env: {}, signal: ac.signal,
  });
  try {
    for (let i = 0; i < 200 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(err, /^\S+Z INFO {2}\[serve\] discovery service at https:\/\/127\.0\.0\.1:\d+\/v1\/continue/m);
  } finally {
    ac.abort();
    assert.equal(await done, 0, err);
    rmSync(work, { recursive: true, force: true });
  }
  let bad = '';
  assert.equal(await conductorMain(['serve', '--log-format', 'xml'], { stdout: () => undefined, stderr: (s) => (bad += s), env: {} }), 2);
  assert.match(bad, /--log-format must be one of auto, json, text \(got "xml"\)/);
});

test('a refused request\'s log line carries the reason, at warning level', async () => {
  const agent = await startTestAgent({ name: 'log-format' });
  try {
    assert.equal((await agent.request('GET', '/v1/nowhere')).status, 404);
    assert.equal((await agent.request('POST', '/v1/commands/', { name: 'nonsense' })).status, 400);
    const http = agent.lines.lines.map((l) => JSON.parse(l) as { level: string; message: string; module?: string }).filter((l) => l.module === 'http');
    const nf = http.find((l) => l.message.startsWith('GET /v1/nowhere 404'));
    assert.ok(nf, JSON.stringify(http));
    assert.equal(nf.level, 'warn');
    assert.match(nf.message, /404 [\d.]+ms: Not Found: The requested URL was not found/);
    const bad = http.find((l) => l.message.startsWith('POST /v1/commands/ 400'));
    assert.ok(bad, JSON.stringify(http));
    assert.match(bad.message, /: Missing or invalid name or params|: Invalid command/);
  } finally {
    await agent.close();
  }
});
