/**
 * The state directory holds the crash journal; it is checked at start. An
 * unusable one is a clear error and a non-zero exit before the API listens
 * (serve) or before the BMC is opened (set-credentials), and no code path
 * spins on it (Node's recursive mkdir loops forever on /proc/nope).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { main } from '../../agent/cli.js';
import { LineCollector } from '../../agent/log-streams.js';
import { checkStateDir, Journal, makeDir } from '../../service/journal.js';
import { projectRoot } from '../native/project.js';
import { recordSecret } from '../helpers/secrets.js';

const PASSWORD = 'St4te-Dir_pw9';
// A regression (the spin) would never settle: the test's own timeout turns it into a failure.
const BOUNDED = { timeout: 60_000 };

function unusableDirs(dir: string): Array<{ path: string; why: RegExp }> {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  return [
    { path: '/proc/nope', why: /cannot create it \(ENOENT\)/ },
    { path: '/proc/nope/deeper/still', why: /cannot create it \(ENOENT\)/ },
    { path: join(file, 'state'), why: /cannot create it \(ENOTDIR\)/ },
    { path: file, why: /cannot create it \(ENOTDIR\)/ },
    { path: '/proc/self', why: /cannot write a file there/ },
  ];
}

test('makeDir, checkStateDir and the journal end with an error on an unusable directory instead of spinning', BOUNDED, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'state-dir-'));
  try {
    for (const u of unusableDirs(dir)) {
      await assert.rejects(checkStateDir(u.path), (e: Error) => e.message.startsWith(`state directory ${u.path} is unusable: `) && u.why.test(e.message), u.path);
    }
    await assert.rejects(makeDir('/proc/nope'), { code: 'ENOENT' });
    await assert.rejects(new Journal('/proc/nope').begin({ username: 'x', prior: { userId: 3, name: '', enabled: false, enabledSource: 'status', access: {} }, channelAccess: [] }), { code: 'ENOENT' });
    // A usable one is created 0700, parents included, and left empty.
    const fresh = join(dir, 'a', 'b', 'state');
    await checkStateDir(fresh);
    assert.ok(existsSync(fresh));
    await checkStateDir(fresh);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve with an unusable --state-dir exits non-zero with the reason, before listening', BOUNDED, async () => {
  const child = spawn(process.execPath, [join(projectRoot(), 'bin', 'inband-agent.js'), 'serve', '--standalone', '--backend', 'simulated',
    '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', '/proc/nope'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 1, out);
  assert.match(out, /state directory \/proc\/nope is unusable: cannot create it \(ENOENT\)/);
  assert.doesNotMatch(out, /listening/i);
});

test('set-credentials with an unusable --state-dir exits non-zero with the reason; the BMC is untouched', BOUNDED, async () => {
  recordSecret(PASSWORD);
  const dir = mkdtempSync(join(tmpdir(), 'state-dir-cli-'));
  const stateFile = join(dir, 'bmc.json');
  try {
    // The simulated BMC keeps its users in stateFile from its first open on: it must never be opened.
    const before = null;
    for (const u of unusableDirs(dir)) {
      const stdout = new LineCollector();
      const stderr = new LineCollector();
      const code = await main(['set-credentials', '--username', 'bob', '--password-stdin', '--backend', 'simulated', '--sim-state-file', stateFile, '--state-dir', u.path],
        { stdout, stderr, stdin: Readable.from([`${PASSWORD}\n`]), env: {}, cmdlinePath: null, signals: false });
      assert.equal(code, 1, `${u.path}: ${stderr.text()}`);
      assert.match(stderr.text(), u.why, u.path);
      assert.ok(stderr.text().includes(`state directory ${u.path} is unusable`), stderr.text());
      assert.ok(!stderr.text().includes(PASSWORD) && !stdout.text().includes(PASSWORD));
      assert.equal(existsSync(stateFile) ? readFileSync(stateFile, 'utf8') : null, before, `${u.path}: the BMC was written`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
