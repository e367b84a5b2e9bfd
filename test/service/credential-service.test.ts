/**
 * The credential engine against the simulated BMC, every vendor profile:
 * fresh change, repeat, generated passwords, slot rules, channels, busy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedTransport, listProfiles, type SimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { AppCmd, PasswordOp } from '../../ipmi-kcs/spec.js';
import { CredentialService, minimumFreshChangeRequests, Secret, ServiceError, type CredentialServiceOptions } from '../../service/index.js';
import { assertApplied, assertNoLeak, CaptureLogger, recordGenerated, table, testSecret } from './service-helpers.js';

const PASSWORD = 'Sv7c-agent_pw42';

function setup(profile: string, opts: Partial<CredentialServiceOptions> = {}): { t: SimulatedTransport; svc: CredentialService; log: CaptureLogger; dir: string; done: () => Promise<void> } {
  const t = createSimulatedTransport({ profile });
  const log = new CaptureLogger(`service-${profile}`);
  const dir = mkdtempSync(join(tmpdir(), 'svc-test-'));
  const svc = new CredentialService({ transport: t, logger: log, stateDir: dir, retry: { attempts: 4, initialDelayMs: 1, maxDelayMs: 4 }, ...opts });
  return { t, svc, log, dir, done: async () => { await t.close(); rmSync(dir, { recursive: true, force: true }); } };
}

const writes = (t: SimulatedTransport): Array<{ cmd: number; op?: number }> => t.bmc.record
  .filter((e) => e.netFn === 0x06 && ([AppCmd.SET_USER_NAME, AppCmd.SET_USER_ACCESS, AppCmd.SET_CHANNEL_ACCESS].includes(e.cmd as 0x45) || (e.cmd === AppCmd.SET_USER_PASSWORD && ((e.data[1] ?? 0) & 3) !== PasswordOp.TEST_PASSWORD)))
  .map((e) => (e.cmd === AppCmd.SET_USER_PASSWORD ? { cmd: e.cmd, op: (e.data[1] ?? 0) & 3 } : { cmd: e.cmd }));

for (const profile of listProfiles()) {
  test(`${profile}: a fresh change is applied, verified in-band and leaves other users alone; a repeat changes nothing`, async () => {
    const { t, svc, log, done } = setup(profile);
    try {
      const before = table(t.bmc);
      const r = await svc.setCredentials({ username: 'svc_agent', password: testSecret(PASSWORD) });
      assertApplied(t.bmc, r.userId, 'svc_agent', PASSWORD);
      assert.equal(r.slot, 'empty');
      assert.ok(r.userId > t.bmc.profile.fixedNames);
      assert.deepEqual(r.channels, t.bmc.lanChannels());
      assert.equal(r.changed, true);
      assert.equal(r.passwordSize, 16);
      assert.equal(r.verified.passwordTest, 'passed');
      assert.equal(r.verified.name, true);
      assert.equal(r.verified.enabled, true);
      assert.equal(r.verified.enabledSource, t.bmc.profile.quirks.enableStatusBits ? 'status' : 'ipmi-messaging');
      assert.deepEqual(r.verified.access, Object.fromEntries(t.bmc.lanChannels().map((c) => [c, true])));
      assert.equal(r.bmc.address, t.bmc.profile.channels.find((c) => c.lan)?.lan?.ipAddress);
      assert.equal(r.bmc.ipmiVersion, t.bmc.profile.device.ipmiVersion === 0x02 ? '2.0' : '1.5');
      assert.ok(r.bmc.mac);
      const after = table(t.bmc);
      for (const id of Object.keys(before.slots).map(Number).filter((id) => id !== r.userId)) {
        assert.deepEqual(after.slots[id], before.slots[id], `user ${id} untouched`);
        assert.equal(after.hashes[id], before.hashes[id], `user ${id} password untouched`);
      }
      // The request count approaches the spec minimum (request-budget.ts): + L channel-access + 2..3 LAN reads.
      const L = r.channels.length;
      const min = minimumFreshChangeRequests({ maxUsers: t.bmc.profile.maxUsers, lanChannels: L });
      const quirkExtra = t.bmc.profile.quirks.privilegeBeforeMessaging ? 2 * L : 0;
      assert.ok(r.requests >= min && r.requests <= min + L + 3 + quirkExtra, `${r.requests} requests, minimum ${min}`);
      console.log(`# ${profile}: fresh set-credentials issued ${r.requests} IPMI requests (spec minimum ${min}: 17 + N(${t.bmc.profile.maxUsers}) + 3×L(${L}))`);

      t.bmc.clearRecord();
      const again = await svc.setCredentials({ username: 'svc_agent', password: testSecret(PASSWORD) });
      assert.equal(again.userId, r.userId);
      assert.equal(again.slot, 'existing-name');
      assert.equal(again.changed, false, again.actions.join('\n'));
      assert.equal(again.passwordBefore, 'matched');
      assert.equal(r.passwordBefore, 'empty-slot');
      assert.ok(again.actions.every((a) => a.startsWith('in place:')), again.actions.join('\n'));
      // Only idempotent re-writes: the password (write-only) and, without enable-status bits, enable.
      const expected: Array<{ cmd: number; op?: number }> = [{ cmd: AppCmd.SET_USER_PASSWORD, op: PasswordOp.SET_PASSWORD }];
      if (!t.bmc.profile.quirks.enableStatusBits) expected.push({ cmd: AppCmd.SET_USER_PASSWORD, op: PasswordOp.ENABLE_USER });
      assert.deepEqual(writes(t), expected);
      assertApplied(t.bmc, r.userId, 'svc_agent', PASSWORD);
      assertNoLeak(PASSWORD, log.lines, r, again);
    } finally {
      await done();
    }
  });

  test(`${profile}: a generated password is set, verified and returned as a Secret`, async () => {
    const { t, svc, log, done } = setup(profile);
    try {
      const r = await svc.setCredentials({ username: 'gen_user', generate: true, privilege: 'operator' });
      const pw = recordGenerated(r.generatedPassword);
      assertApplied(t.bmc, r.userId, 'gen_user', pw, 3);
      assert.equal(r.privilege, 'operator');
      assert.equal(r.passwordPolicy, 'mixed-16');
      assert.equal(JSON.stringify(r).includes(pw), false);
      assert.match(JSON.stringify(r), /"generatedPassword":"\*\*\*"/);
      assertNoLeak(pw, log.lines, r);
    } finally {
      await done();
    }
  });
}

test('an existing user is reused by name: new password, old one gone, repeat reports the slot as in place', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    const r = await svc.setCredentials({ username: 'admin', password: testSecret('N3w-admin-pass') });
    assert.equal(r.userId, 2);
    assert.equal(r.slot, 'existing-name');
    assert.equal(r.changed, true, 'Test Password saw a different password before');
    assert.equal(r.passwordBefore, 'differed');
    assert.ok(t.bmc.passwordMatches(2, 'N3w-admin-pass'));
    assert.ok(!t.bmc.passwordMatches(2, 'admin'));
    assert.ok(r.actions.includes('in place: user 2 name "admin"'));
  } finally {
    await done();
  }
});

test('a password over 16 bytes uses the 20-byte form on IPMI 2.0 and is refused on 1.5 before any write', async () => {
  const long = 'Twenty-byte_pass_123';
  let s = setup('ipmi20');
  try {
    const r = await s.svc.setCredentials({ username: 'long_pw', password: testSecret(long) });
    assert.equal(r.passwordSize, 20);
    assertApplied(s.t.bmc, r.userId, 'long_pw', long);
  } finally {
    await s.done();
  }
  s = setup('ipmi15');
  try {
    await assert.rejects(s.svc.setCredentials({ username: 'long_pw', password: testSecret(long) }),
      (e: unknown) => e instanceof ServiceError && e.code === 'UNSUPPORTED' && e.field === 'password' && !e.message.includes(long));
    assert.deepEqual(writes(s.t), []);
  } finally {
    await s.done();
  }
});

test('explicit slot; a name held by another slot is refused; slot beyond the BMC is refused', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    const r = await svc.setCredentials({ username: 'pinned', password: testSecret(PASSWORD), slot: 9 });
    assert.equal(r.userId, 9);
    assert.equal(r.slot, 'explicit');
    assertApplied(t.bmc, 9, 'pinned', PASSWORD);
    t.bmc.clearRecord();
    await assert.rejects(svc.setCredentials({ username: 'pinned', password: testSecret(PASSWORD), slot: 10 }),
      (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_REQUEST' && e.field === 'username');
    await assert.rejects(svc.setCredentials({ username: 'x', password: testSecret(PASSWORD), slot: 40 }),
      (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_REQUEST' && e.field === 'slot');
    await assert.rejects(svc.setCredentials({ username: 'x', password: testSecret(PASSWORD), slot: 1 }),
      (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_REQUEST' && e.field === 'slot');
    assert.deepEqual(writes(t), []);
  } finally {
    await done();
  }
});

test('overwriting the last enabled administrator is refused; overwriting another account is allowed', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    const before = table(t.bmc);
    await assert.rejects(svc.setCredentials({ username: 'intruder', password: testSecret(PASSWORD), slot: 2 }),
      (e: unknown) => e instanceof ServiceError && e.code === 'LOCKOUT_REFUSED');
    assert.deepEqual(writes(t), []);
    assert.deepEqual(table(t.bmc), before);
    // With a second administrator present, slot 2 may be overwritten.
    await svc.setCredentials({ username: 'second_admin', password: testSecret(PASSWORD) });
    const r = await svc.setCredentials({ username: 'renamed', password: testSecret(PASSWORD), slot: 2 });
    assertApplied(t.bmc, 2, 'renamed', PASSWORD);
    assert.ok(r.changed);
  } finally {
    await done();
  }
});

test('vendor fixed-name slots are skipped, and touched only when asked', async () => {
  const { t, svc, done } = setup('fixed-admin');
  try {
    const r = await svc.setCredentials({ username: 'maas', password: testSecret(PASSWORD) });
    assert.equal(r.userId, 3, 'first slot above the fixed ones');
    await assert.rejects(svc.setCredentials({ username: 'ADMIN', password: testSecret(PASSWORD) }),
      (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_REQUEST' && e.field === 'allowFixedSlot');
    await assert.rejects(svc.setCredentials({ username: 'other', password: testSecret(PASSWORD), slot: 2, allowFixedSlot: true }),
      (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_REQUEST' && e.field === 'slot');
    const fixed = await svc.setCredentials({ username: 'ADMIN', password: testSecret(PASSWORD), allowFixedSlot: true });
    assert.equal(fixed.userId, 2);
    assertApplied(t.bmc, 2, 'ADMIN', PASSWORD);
  } finally {
    await done();
  }
});

test('no free slot is a clear error and nothing is written', async () => {
  const { t, svc, done } = setup('ipmi15');
  try {
    for (let id = 3; id <= t.bmc.profile.maxUsers; id++) {
      const name = Buffer.alloc(16);
      name.write(`filler${id}`);
      const rsp = await t.send({ netFn: 0x06, cmd: AppCmd.SET_USER_NAME, data: [id, ...name] });
      assert.equal(rsp.completionCode, 0);
    }
    t.bmc.clearRecord();
    const before = table(t.bmc);
    await assert.rejects(svc.setCredentials({ username: 'newbie', password: testSecret(PASSWORD) }),
      (e: unknown) => e instanceof ServiceError && e.code === 'NO_FREE_SLOT');
    assert.deepEqual(writes(t), []);
    assert.deepEqual(table(t.bmc), before);
  } finally {
    await done();
  }
});

test('dual LAN: every LAN channel by default; a subset leaves the others untouched; a non-LAN channel is refused', async () => {
  const { t, svc, done } = setup('dual-lan');
  try {
    const r = await svc.setCredentials({ username: 'only8', password: testSecret(PASSWORD), channels: [8] });
    assert.deepEqual(r.channels, [8]);
    const u = t.bmc.user(r.userId)!;
    assert.equal(u.access[8]?.privilege, 4);
    assert.equal(u.access[1]?.privilege, 0xf, 'channel 1 untouched');
    await assert.rejects(svc.setCredentials({ username: 'x', password: testSecret(PASSWORD), channels: [3] }),
      (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_REQUEST' && e.field === 'channels');
  } finally {
    await done();
  }
});

test('a channel that blocks LAN logins: warned about by default, fixed with enableChannelAccess', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    // §22.22: channel 1 disabled (access mode 0) in both stores, privilege limit user.
    for (const sel of [0x40, 0x80]) {
      const rsp = await t.send({ netFn: 0x06, cmd: AppCmd.SET_CHANNEL_ACCESS, data: [1, sel | 0, sel | 2] });
      assert.equal(rsp.completionCode, 0);
    }
    const warned = await svc.setCredentials({ username: 'a_user', password: testSecret(PASSWORD) });
    assert.equal(warned.warnings.length, 1);
    assert.match(warned.warnings[0]!, /channel 1 volatile access .* blocks administrator LAN logins/);
    assert.equal(t.bmc.channelAccess(1)?.volatile.accessMode, 0, 'not changed without the opt-in');
    const fixed = await svc.setCredentials({ username: 'a_user', password: testSecret(PASSWORD), enableChannelAccess: true });
    assert.deepEqual(fixed.verified.channelAccess, { 1: true });
    assert.equal(fixed.changed, true);
    for (const store of ['volatile', 'nonVolatile'] as const) {
      assert.equal(t.bmc.channelAccess(1)?.[store].accessMode, 2);
      assert.equal(t.bmc.channelAccess(1)?.[store].privilegeLimit, 4);
    }
  } finally {
    await done();
  }
});

test('one change at a time: a concurrent change is refused with BUSY at once; reads proceed', async () => {
  const t = createSimulatedTransport({ profile: 'ipmi20', latencyMs: 2 });
  const svc = new CredentialService({ transport: t });
  try {
    const first = svc.setCredentials({ username: 'first', password: testSecret(PASSWORD) });
    assert.equal(svc.busy, true);
    await assert.rejects(svc.setCredentials({ username: 'second', password: testSecret(PASSWORD) }),
      (e: unknown) => e instanceof ServiceError && e.code === 'BUSY');
    await assert.rejects(svc.recover(), (e: unknown) => e instanceof ServiceError && e.code === 'BUSY');
    const info = await svc.getInfo();
    assert.equal(info.users.find((u) => u.id === 2)?.name, 'admin');
    await first;
    assert.equal(svc.busy, false);
    assert.equal(t.bmc.users().some((u) => u.name === 'second'), false);
  } finally {
    await t.close();
  }
});

test('invalid requests are refused before any I/O', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    const bad: Array<[object, string]> = [
      [{ username: '9starts_with_digit', password: testSecret(PASSWORD) }, 'username'],
      [{ username: 'seventeen_chars_x', password: testSecret(PASSWORD) }, 'username'],
      [{ username: 'ok' }, 'password'],
      [{ username: 'ok', password: testSecret(PASSWORD), generate: true }, 'password'],
      [{ username: 'ok', password: testSecret('twenty-one-bytes-long') }, 'password'],
      [{ username: 'ok', password: testSecret('nonascii-é-pass') }, 'password'],
      [{ username: 'ok', password: 'plain-string-pw' }, 'password'],
      [{ username: 'ok', generate: true, privilege: 'oem' }, 'privilege'],
      [{ username: 'ok', generate: true, channels: [0] }, 'channels'],
    ];
    for (const [req, field] of bad) {
      await assert.rejects(svc.setCredentials(req as never), (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_REQUEST' && e.field === field, JSON.stringify(req));
    }
    assert.equal(t.bmc.record.length, 0);
  } finally {
    await done();
  }
});

test('getInfo reports device, LAN channels with access, the user table and the LAN address, without secrets', async () => {
  const { svc, done } = setup('dual-lan');
  try {
    const info = await svc.getInfo();
    assert.equal(info.ipmiVersion, '2.0');
    assert.deepEqual(info.lanChannels.map((c) => c.channel), [1, 8]);
    assert.equal(info.lanChannels[0]?.access.volatile?.accessMode, 'always');
    assert.equal(info.maxUsers, 16);
    assert.equal(info.users.length, 16);
    const admin = info.users.find((u) => u.id === 2)!;
    assert.equal(admin.name, 'admin');
    assert.equal(admin.enabled, true);
    assert.equal(admin.access[8]?.privilege, 'administrator');
    assert.equal(admin.access[8]?.callin, true);
    assert.equal(info.lan.address, '192.0.2.31');
    assert.equal(info.lan.v6address, '2001:db8:0:1::1f');
    assert.ok(!JSON.stringify(info).toLowerCase().includes('password'));
  } finally {
    await done();
  }
});

test('a state directory removed after start is made again (0700) by the next change', async () => {
  const { t, svc, dir, done } = setup('ipmi20');
  try {
    await svc.setCredentials({ username: 'j_first', password: testSecret(PASSWORD) });
    rmSync(dir, { recursive: true, force: true });
    const r = await svc.setCredentials({ username: 'j_again', password: testSecret(PASSWORD) });
    assertApplied(t.bmc, r.userId, 'j_again', PASSWORD);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.throws(() => statSync(join(dir, 'credential-change.journal.json')), /ENOENT/);
  } finally {
    await done();
  }
});

test('the journal is gone after a change; the state directory is private', async () => {
  const { svc, dir, done } = setup('ipmi20');
  try {
    await svc.setCredentials({ username: 'j_user', password: testSecret(PASSWORD) });
    assert.throws(() => statSync(join(dir, 'credential-change.journal.json')), /ENOENT/);
    assert.equal(await svc.recover(), null);
  } finally {
    await done();
  }
});

test('policy rejection of a generated password: the next policy is tried, as MAAS learned to', async () => {
  const { t, svc, log, done } = setup('password-policy');
  try {
    // Two candidates rejected by scripted codes (0xCC, 0xD5); the third, alphanumeric, by
    // this profile's own policy (a special character is required): the fourth passes.
    t.bmc.failNth(1, 0xcc, { cmd: AppCmd.SET_USER_PASSWORD, passwordOp: PasswordOp.SET_PASSWORD });
    t.bmc.failNth(2, 0xd5, { cmd: AppCmd.SET_USER_PASSWORD, passwordOp: PasswordOp.SET_PASSWORD });
    const r = await svc.setCredentials({ username: 'policy_gen', generate: true });
    const pw = recordGenerated(r.generatedPassword);
    assert.equal(r.passwordPolicy, 'mixed-20');
    assert.equal(r.passwordSize, 20);
    assert.equal(r.actions.filter((a) => a.startsWith('rejected:')).length, 3);
    assertApplied(t.bmc, r.userId, 'policy_gen', pw);
    assertNoLeak(pw, log.lines, r);
  } finally {
    await done();
  }
});

test('policy rejection of a supplied password is not retried: rolled back, with the reason', async () => {
  const { t, svc, log, done } = setup('password-policy');
  try {
    const before = table(t.bmc);
    const weak = 'weakpassword1';
    await assert.rejects(svc.setCredentials({ username: 'weak_user', password: testSecret(weak) }), (e: unknown) => {
      assert.ok(e instanceof ServiceError);
      assert.equal(e.code, 'ROLLED_BACK');
      assert.match(e.message, /completion code 0xcc/);
      assert.match(String((e.details?.failure as { hint?: string }).hint), /password policy/);
      assertNoLeak(weak, e, log.lines);
      return true;
    });
    assert.deepEqual(table(t.bmc).slots, before.slots);
    assert.equal(t.bmc.record.filter((e) => e.cmd === AppCmd.SET_USER_PASSWORD && e.data[1] === PasswordOp.SET_PASSWORD).length, 1);
  } finally {
    await done();
  }
});

test('every policy rejected: rolled back, nothing left behind', async () => {
  const { t, svc, done } = setup('ipmi15');
  try {
    const before = table(t.bmc);
    t.bmc.inject({ match: { cmd: AppCmd.SET_USER_PASSWORD, passwordOp: PasswordOp.SET_PASSWORD }, times: 10, action: { kind: 'completion-code', code: 0xcc } });
    await assert.rejects(svc.setCredentials({ username: 'never', generate: true }), (e: unknown) => e instanceof ServiceError && e.code === 'ROLLED_BACK' && /every password policy/.test(String((e.details?.failure as { hint?: string }).hint)));
    assert.equal(t.bmc.record.filter((e) => e.cmd === AppCmd.SET_USER_PASSWORD && e.data[1] === PasswordOp.SET_PASSWORD).length, 2, 'IPMI 1.5: the two 16-byte policies only');
    assert.deepEqual(table(t.bmc).slots, before.slots);
  } finally {
    await done();
  }
});

test('Supermicro-like 0xCC on Set User Access: privilege alone first, then the whole set', async () => {
  const { t, svc, done } = setup('fixed-admin');
  try {
    t.bmc.failNth(1, 0xcc, { cmd: AppCmd.SET_USER_ACCESS });
    const r = await svc.setCredentials({ username: 'smc_user', password: testSecret(PASSWORD) });
    assertApplied(t.bmc, r.userId, 'smc_user', PASSWORD);
    const sua = t.bmc.record.filter((e) => e.cmd === AppCmd.SET_USER_ACCESS).map((e) => e.data);
    assert.deepEqual(sua, [[0xb1, r.userId, 4, 0], [0x01, r.userId, 4, 0], [0xb1, r.userId, 4, 0]]);
  } finally {
    await done();
  }
});

test('enable answered 0xC7 with 16 password bytes is retried in the 2-byte form', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    t.bmc.failNth(1, 0xc7, { cmd: AppCmd.SET_USER_PASSWORD, passwordOp: PasswordOp.ENABLE_USER });
    const r = await svc.setCredentials({ username: 'short_en', password: testSecret(PASSWORD) });
    assertApplied(t.bmc, r.userId, 'short_en', PASSWORD);
    const en = t.bmc.record.filter((e) => e.cmd === AppCmd.SET_USER_PASSWORD && e.data[1] === PasswordOp.ENABLE_USER).map((e) => e.length);
    assert.deepEqual(en, [18, 2]);
  } finally {
    await done();
  }
});

test('getLanAddress reads the LAN identity alone, without the user table', async () => {
  const { t, svc, done } = setup('dual-lan');
  try {
    assert.deepEqual(await svc.getLanAddress(), { channel: 1, address: '192.0.2.31', v6address: '2001:db8:0:1::1f', mac: '02:00:5e:10:00:1f' });
    assert.equal(t.bmc.record.filter((e) => e.cmd === AppCmd.GET_USER_NAME).length, 0);
  } finally {
    await done();
  }
});

test('an unwritable state directory stops the change before any BMC write', async () => {
  const { t, svc, dir, done } = setup('ipmi20');
  try {
    const { writeFileSync } = await import('node:fs');
    const blocked = new CredentialService({ transport: t, stateDir: join(dir, 'file-not-dir', 'state') });
    writeFileSync(join(dir, 'file-not-dir'), '');
    await assert.rejects(blocked.setCredentials({ username: 'nojournal', password: testSecret(PASSWORD) }), /change journal/);
    assert.deepEqual(writes(t), []);
    void svc;
  } finally {
    await done();
  }
});

test('a BMC refusing Get User Access for user 1 gives the slot count through user 2', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    t.bmc.failNth(1, 0xcc, { cmd: AppCmd.GET_USER_ACCESS, userId: 1 });
    const r = await svc.setCredentials({ username: 'via_user2', password: testSecret(PASSWORD) });
    assertApplied(t.bmc, r.userId, 'via_user2', PASSWORD);
  } finally {
    await done();
  }
});

test('the last enabled administrator is never demoted, renamed or its slot reused; nothing is written', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    const before = table(t.bmc);
    const lockout = (field: string) => (e: unknown) => e instanceof ServiceError && e.code === 'LOCKOUT_REFUSED' && e.field === field
      && /last enabled administrator on LAN channel/.test(e.message) && !e.message.includes(PASSWORD);
    // Demote by name (the request), by §6.8 number, and via its slot.
    await assert.rejects(svc.setCredentials({ username: 'admin', password: testSecret(PASSWORD), privilege: 'user' }), lockout('privilege'));
    await assert.rejects(svc.setCredentials({ username: 'admin', password: testSecret(PASSWORD), privilege: 3 }), lockout('privilege'));
    await assert.rejects(svc.setCredentials({ username: 'admin', password: testSecret(PASSWORD), privilege: 'operator', slot: 2 }), lockout('privilege'));
    // Rename / reuse of its slot, whatever the new privilege.
    await assert.rejects(svc.setCredentials({ username: 'intruder', password: testSecret(PASSWORD), slot: 2 }), lockout('slot'));
    await assert.rejects(svc.setCredentials({ username: 'intruder', generate: true, slot: 2, privilege: 'user' }), lockout('slot'));
    assert.deepEqual(writes(t), [], 'no IPMI write request was sent');
    assert.deepEqual(table(t.bmc), before, 'the user table is unchanged');
    assert.ok(t.bmc.passwordMatches(2, 'admin'), 'the administrator still logs in with its password');
    // A password change of the administrator itself is what the agent is for.
    const same = await svc.setCredentials({ username: 'admin', password: testSecret(PASSWORD) });
    assert.equal(same.userId, 2);
    assert.deepEqual(same.warnings, []);
  } finally {
    await done();
  }
});

test('demoting an administrator is allowed while another enabled one remains, and the last one only with allowLockout', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    const second = await svc.setCredentials({ username: 'second_admin', password: testSecret(PASSWORD) });
    const r = await svc.setCredentials({ username: 'admin', password: testSecret(PASSWORD), privilege: 'user' });
    assert.equal(r.userId, 2);
    assert.deepEqual(r.warnings, []);
    // second_admin is now the last one: refused, then done when asked explicitly.
    t.bmc.clearRecord();
    await assert.rejects(svc.setCredentials({ username: 'second_admin', password: testSecret(PASSWORD), privilege: 'operator' }),
      (e: unknown) => e instanceof ServiceError && e.code === 'LOCKOUT_REFUSED' && e.field === 'privilege');
    assert.deepEqual(writes(t), []);
    const forced = await svc.setCredentials({ username: 'second_admin', password: testSecret(PASSWORD), privilege: 'operator', allowLockout: true });
    assert.equal(forced.userId, second.userId);
    assert.ok(forced.warnings.some((w) => /last enabled administrator.*as asked \(allowLockout\)/.test(w)), forced.warnings.join('\n'));
    assertApplied(t.bmc, second.userId, 'second_admin', PASSWORD, 3);
  } finally {
    await done();
  }
});

test('lock-out is decided per LAN channel: demoting on one channel needs an administrator left on that channel', async () => {
  const { t, svc, done } = setup('dual-lan');
  try {
    // other_admin is an administrator on channel 8 only, so channel 1 would be left without one.
    const other = await svc.setCredentials({ username: 'other_admin', password: testSecret(PASSWORD), channels: [8] });
    const before = table(t.bmc);
    t.bmc.clearRecord();
    await assert.rejects(svc.setCredentials({ username: 'admin', password: testSecret(PASSWORD), privilege: 'user', channels: [1] }),
      (e: unknown) => e instanceof ServiceError && e.code === 'LOCKOUT_REFUSED' && (e.details as { channels: number[] }).channels.join() === '1');
    // Renaming its slot while asking only for channel 8 still loses it on channel 1.
    await assert.rejects(svc.setCredentials({ username: 'taken', password: testSecret(PASSWORD), slot: 2, channels: [8] }),
      (e: unknown) => e instanceof ServiceError && e.code === 'LOCKOUT_REFUSED' && (e.details as { channels: number[] }).channels.join() === '1');
    assert.deepEqual(writes(t), []);
    assert.deepEqual(table(t.bmc), before);
    // On channel 8 other_admin remains: demoting admin there is fine.
    const r = await svc.setCredentials({ username: 'admin', password: testSecret(PASSWORD), privilege: 'user', channels: [8] });
    assert.equal(r.userId, 2);
    assert.notEqual(other.userId, 2);
  } finally {
    await done();
  }
});

test('the contract is the engine\'s door: each refused input names its field and sends no IPMI request at all', async () => {
  const { t, svc, done } = setup('ipmi20');
  try {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['slot', { username: 'x', slot: 1 }],
      ['slot', { username: 'x', slot: 64 }],
      ['channels', { username: 'x', channels: [0] }],
      ['channels', { username: 'x', channels: [15] }],
      ['channels', { username: 'x', channels: [] }],
      ['username', { username: 'été' }],
      ['username', { username: '-admin' }],
      ['username', { username: 'a'.repeat(17) }],
      ['password', { username: 'x', password: Secret.fromString('nul\u0000byte') }],
      ['password', { username: 'x', password: Secret.fromString('é'.repeat(20)) }],
      ['password', { username: 'x', password: Secret.fromString('x'.repeat(21)) }],
      ['privilege', { username: 'x', privilege: 'callback' }],
      ['privilege', { username: 'x', privilege: 15 }],
      ['allowLockout', { username: 'x', allowLockout: 'yes' }],
    ];
    const requests = svc.requests;
    for (const [field, req] of cases) {
      const full = { ...(req.password ? {} : { generate: true }), ...req } as unknown as Parameters<CredentialService['setCredentials']>[0];
      await assert.rejects(svc.setCredentials(full), (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_REQUEST' && e.field === field, `${field}: ${JSON.stringify(req)}`);
    }
    assert.equal(svc.requests, requests, 'not one IPMI request');
    assert.equal(t.bmc.record.length, 0);
    // Dots and dashes are user names BMCs and ipmitool accept.
    const r = await svc.setCredentials({ username: 'bmc-admin.2', password: testSecret(PASSWORD) });
    assertApplied(t.bmc, r.userId, 'bmc-admin.2', PASSWORD);
  } finally {
    await done();
  }
});
