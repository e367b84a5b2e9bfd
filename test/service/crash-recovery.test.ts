/**
 * Crash safety: a process killed mid-change leaves a journal (0600, no secret);
 * the next start finds it and rolls the slot back before anything else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { AppCmd, NetFn } from '../../ipmi-kcs/spec.js';
import { CredentialService, ServiceError } from '../../service/index.js';
import { JOURNAL_FILE } from '../../service/journal.js';
import { assertApplied, CaptureLogger, table, testSecret } from './service-helpers.js';

const PASSWORD = 'Cr4sh-Safe_pw71';
const child = fileURLToPath(new URL(`./crash-child.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

test('a change killed mid-way is rolled back by the next start, which reports it', async () => {
  testSecret(PASSWORD);
  const dir = mkdtempSync(join(tmpdir(), 'svc-crash-'));
  const stateFile = join(dir, 'bmc.json');
  const stateDir = join(dir, 'state');
  try {
    const factory = table(createSimulatedTransport({ profile: 'ipmi20' }).bmc);
    const proc = spawn(process.execPath, [...process.execArgv, child, stateFile, stateDir], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const hung = new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => { if (d.toString().includes('HUNG')) resolve(); });
      proc.once('exit', (code) => reject(new Error(`child exited early (${code}): ${err}`)));
    });
    proc.stdin.end(PASSWORD);
    await hung;

    // Mid-change: the journal exists, private, without the password.
    const journalPath = join(stateDir, JOURNAL_FILE);
    assert.equal(statSync(journalPath).mode & 0o777, 0o600);
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
    const journal = readFileSync(journalPath, 'utf8');
    assert.ok(!journal.includes(PASSWORD));
    assert.equal(JSON.parse(journal).prior.name, '');
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;

    // The BMC holds the half-applied change.
    const t = createSimulatedTransport({ profile: 'ipmi20', stateFile });
    try {
      const half = t.bmc.user(3)!;
      assert.equal(half.name, 'crash_user');
      assert.equal(half.enabled, true);
      const log = new CaptureLogger('service-crash');
      const svc = new CredentialService({ transport: t, stateDir, logger: log });
      const report = await svc.recover();
      assert.ok(report);
      assert.equal(report.outcome, 'rolled-back');
      assert.equal(report.userId, 3);
      assert.equal(report.username, 'crash_user');
      assert.ok(report.steps.some((s) => s.action === 'clear user 3 name' && s.ok));
      assert.deepEqual(table(t.bmc).slots, factory.slots);
      assert.throws(() => statSync(journalPath), /ENOENT/);
      assert.ok(log.lines.some((l) => l.includes('interrupted credential change rolled back')));
      assert.ok(log.lines.every((l) => !l.includes(PASSWORD)));
      // And the service works normally afterwards.
      const r = await svc.setCredentials({ username: 'crash_user', password: testSecret(PASSWORD) });
      assertApplied(t.bmc, r.userId, 'crash_user', PASSWORD);
      assert.equal(await svc.recover(), null);
    } finally {
      await t.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a journal held by a change still running (another instance) makes recovery and changes BUSY', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'svc-crash-'));
  const t = createSimulatedTransport({ profile: 'ipmi20' });
  try {
    t.bmc.noResponse({ netFn: NetFn.APP, cmd: AppCmd.SET_USER_ACCESS });
    const first = new CredentialService({ transport: t, stateDir: dir, timeoutMs: 1000, retry: { attempts: 1 } });
    let settled = false;
    const running = first.setCredentials({ username: 'first', password: testSecret(PASSWORD) }).catch((e: unknown) => e).finally(() => { settled = true; });
    const hung = (): boolean => t.bmc.record.some((e) => e.cmd === AppCmd.SET_USER_ACCESS);
    while (!hung() && !settled) await new Promise((r) => setTimeout(r, 2));
    if (!hung()) assert.fail(`the first change ended before reaching Set User Access: ${String(await running)}`);
    const second = new CredentialService({ transport: t, stateDir: dir });
    await assert.rejects(second.recover(), (e: unknown) => e instanceof ServiceError && e.code === 'BUSY');
    await assert.rejects(second.setCredentials({ username: 'second', password: testSecret(PASSWORD) }), (e: unknown) => e instanceof ServiceError && e.code === 'BUSY');
    const outcome = await running;
    assert.ok(outcome instanceof ServiceError && outcome.code === 'ROLLED_BACK', String(outcome));
    assert.equal(t.bmc.user(3)?.name, '');
    assert.equal(await second.recover(), null);
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a torn journal (died while writing it, before any BMC write) is discarded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'svc-crash-'));
  const t = createSimulatedTransport({ profile: 'ipmi20' });
  try {
    writeFileSync(join(dir, JOURNAL_FILE), '{"version":1,"id":"x","pi', { mode: 0o600 });
    const svc = new CredentialService({ transport: t, stateDir: dir });
    const report = await svc.recover();
    assert.equal(report?.outcome, 'discarded');
    assert.equal(t.bmc.record.length, 0, 'nothing sent to the BMC');
    assert.throws(() => statSync(join(dir, JOURNAL_FILE)), /ENOENT/);
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a change starts by recovering an interrupted one; if that roll-back fails, it refuses with INTERRUPTED_CHANGE', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'svc-crash-'));
  const t = createSimulatedTransport({ profile: 'ipmi20' });
  try {
    // A journal from a process that no longer exists (pid 2^22 + 1 is above pid_max's default).
    const prior = { userId: 5, name: '', enabled: false, enabledSource: 'status', access: { 1: { privilege: 15, ipmiMessaging: false, linkAuth: false, callbackOnly: false } } };
    const journal = { version: 1, id: 'dead', pid: 4194305, bootId: null, startedAt: new Date().toISOString(), username: 'ghost', prior, channelAccess: [] };
    writeFileSync(join(dir, JOURNAL_FILE), JSON.stringify(journal), { mode: 0o600 });
    t.bmc.inject({ match: { cmd: AppCmd.SET_USER_NAME }, times: 1000, action: { kind: 'completion-code', code: 0xff } });
    const svc = new CredentialService({ transport: t, stateDir: dir, retry: { attempts: 1 } });
    await assert.rejects(svc.setCredentials({ username: 'next', password: testSecret(PASSWORD) }),
      (e: unknown) => e instanceof ServiceError && e.code === 'INTERRUPTED_CHANGE');
    statSync(join(dir, JOURNAL_FILE));
    t.bmc.clearFaults();
    const r = await svc.setCredentials({ username: 'next', password: testSecret(PASSWORD) });
    assertApplied(t.bmc, r.userId, 'next', PASSWORD);
    assert.throws(() => statSync(join(dir, JOURNAL_FILE)), /ENOENT/);
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
