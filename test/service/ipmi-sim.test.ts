/**
 * The credential engine against a real OpenIPMI ipmi_sim through the VM-codec
 * backend (the in-band system interface qemu's ipmi-bmc-extern speaks), proven
 * out-of-band with `ipmitool -I lanplus -C 3 … mc info`. Skips visibly when
 * ipmi_sim or ipmitool is not installed.
 *
 * ipmi_sim differs from real BMCs (test/harness/ipmi-sim.ts IPMI_SIM_QUIRKS):
 * Test Password always answers 0x00 (the service reports it as 'unreliable' once
 * it has seen that), user access is global, IPMI messaging is the enable flag.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openVmCodecTransport, type VmCodecTransport } from '../../ipmi-kcs/vm-codec.js';
import { CredentialService, ServiceError } from '../../service/index.js';
import { ipmiSimAvailability, startIpmiSim, type IpmiSim } from '../harness/ipmi-sim.js';
import { recordSecret } from '../helpers/secrets.js';
import { assertNoLeak, CaptureLogger, recordGenerated, testSecret } from './service-helpers.js';

const avail = ipmiSimAvailability();
const ADMIN_PW = recordSecret('initpw1-admin');
const OLD_PW = recordSecret('0ld-operator_pw');
const NEW_PW = 'N3w-operator_pw';
const FRESH_PW = 'Fr3sh-agent_pw8';

describe('credential service against a real ipmi_sim (VM codec in-band, lanplus out-of-band)', { skip: avail.available ? false : avail.reason }, () => {
  let sim: IpmiSim;
  let t: VmCodecTransport;
  let dir: string;
  let svc: CredentialService;
  const log = new CaptureLogger('service-ipmi-sim');
  const sent: Array<{ netFn: number; cmd: number; op: number }> = [];
  /** Set User Name / Access / Channel Access, and Set User Password other than op 3 (test). */
  const writes = (): number => sent.filter((r) => r.netFn === 0x06 && ([0x45, 0x43, 0x40].includes(r.cmd) || (r.cmd === 0x47 && r.op !== 3))).length;

  before(async () => {
    sim = await startIpmiSim({
      persist: true,
      users: [
        { id: 2, name: 'admin', password: ADMIN_PW, privilege: 'admin' },
        { id: 3, name: 'operator1', password: OLD_PW, privilege: 'operator' },
      ],
    });
    t = await openVmCodecTransport({ host: sim.host, port: sim.vmPort });
    dir = mkdtempSync(join(tmpdir(), 'svc-sim-'));
    // Every request the engine sends to the real BMC, to prove a refused change wrote nothing.
    const recording = new Proxy(t, {
      get: (o, k) => (k === 'send' ? (req: { netFn: number; cmd: number; data?: ArrayLike<number> }, ...rest: unknown[]) => {
        sent.push({ netFn: req.netFn, cmd: req.cmd, op: (req.data?.[1] ?? 0) & 3 });
        return (o.send as (...a: unknown[]) => unknown)(req, ...rest);
      } : Reflect.get(o, k)),
    });
    svc = new CredentialService({ transport: recording, logger: log, stateDir: dir, timeoutMs: 3000 });
    assert.equal(await svc.recover(), null);
  });
  after(async () => {
    await t?.close();
    await sim?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to overwrite the only enabled administrator and writes nothing', async () => {
    await assert.rejects(svc.setCredentials({ username: 'takeover', password: testSecret(NEW_PW), slot: 2 }),
      (e: unknown) => e instanceof ServiceError && e.code === 'LOCKOUT_REFUSED');
    assert.equal((await sim.lanplusLogin('admin', ADMIN_PW)).ok, true);
  });

  it('refuses to demote, rename or reuse the slot of the only enabled administrator: zero writes, and it still logs in as administrator', async () => {
    sent.length = 0;
    const attempts = [
      { username: 'admin', password: testSecret(NEW_PW), privilege: 'user' as const },
      { username: 'admin', password: testSecret(NEW_PW), privilege: 3 as const },
      { username: 'renamed', password: testSecret(NEW_PW), slot: 2 },
      { username: 'admin', generate: true, privilege: 'operator' as const, slot: 2 },
    ];
    for (const req of attempts) {
      await assert.rejects(svc.setCredentials(req), (e: unknown) => e instanceof ServiceError && e.code === 'LOCKOUT_REFUSED' && /last enabled administrator on LAN channel 1/.test(e.message));
    }
    assert.ok(sent.length > 0, 'the engine read the BMC');
    assert.equal(writes(), 0, `no write request reached ipmi_sim (${sent.length} reads)`);
    const info = await svc.getInfo();
    const admin = info.users.find((u) => u.id === 2);
    assert.equal(admin?.name, 'admin');
    assert.equal(admin?.access[1]?.privilege, 'administrator', 'still an administrator (in-band read-back)');
    assert.equal(admin?.enabled, true);
    const login = await sim.lanplusLogin('admin', ADMIN_PW);
    assert.equal(login.ok, true, `admin still logs in over lanplus: ${login.stderr}`);
    console.log(`# ipmi_sim: ${attempts.length} lock-out requests refused after ${sent.length} reads, 0 writes; admin logs in over lanplus`);
  });

  it('creates a fresh user: lanplus login works, the other users still log in, a repeat changes nothing', async () => {
    const r = await svc.setCredentials({ username: 'svc_agent', password: testSecret(FRESH_PW) });
    assert.equal(r.userId, 4, 'first empty slot');
    assert.equal(r.slot, 'empty');
    assert.deepEqual(r.channels, [1]);
    assert.equal(r.changed, true);
    assert.equal(r.verified.name, true);
    assert.equal(r.verified.enabled, true);
    assert.equal(r.verified.enabledSource, 'ipmi-messaging', 'ipmi_sim reports no enable-status bits');
    assert.deepEqual(r.verified.access, { 1: true });
    assert.equal(r.bmc.ipmiVersion, '2.0');
    console.log(`# ipmi_sim: fresh set-credentials issued ${r.requests} IPMI requests (63 user slots, 1 LAN channel; spec minimum 83)`);

    assert.equal((await sim.lanplusLogin('svc_agent', FRESH_PW)).ok, true, 'new user logs in over lanplus');
    assert.equal((await sim.lanplusLogin('admin', ADMIN_PW)).ok, true, 'admin still logs in');
    assert.equal((await sim.lanplusLogin('operator1', OLD_PW)).ok, true, 'operator still logs in');

    const again = await svc.setCredentials({ username: 'svc_agent', password: testSecret(FRESH_PW) });
    assert.equal(again.userId, 4);
    assert.equal(again.changed, false, again.actions.join('\n'));
    assert.equal(again.passwordBefore, 'unknown', 'ipmi_sim answers 0x00 to any Test Password, detected by the control test');
    assert.equal(again.verified.passwordTest, 'unreliable');
    assert.equal((await sim.lanplusLogin('svc_agent', FRESH_PW)).ok, true);
    assertNoLeak(FRESH_PW, log.lines, r, again);
  });

  it('updates an existing user: the new password logs in, the previous one fails', async () => {
    const r = await svc.setCredentials({ username: 'operator1', password: testSecret(NEW_PW), privilege: 'operator' });
    assert.equal(r.userId, 3);
    assert.equal(r.slot, 'existing-name');
    assert.equal((await sim.lanplusLogin('operator1', NEW_PW)).ok, true, 'new password works');
    assert.equal((await sim.lanplusLogin('operator1', OLD_PW)).ok, false, 'previous password fails');
    assert.equal((await sim.lanplusLogin('admin', ADMIN_PW)).ok, true, 'admin unaffected');
    const stored = await sim.waitForStoredUsers((u) => u.get(3)?.privilege === 3);
    assert.equal(stored.get(3)?.valid, true);
    assertNoLeak(NEW_PW, log.lines, r);
  });

  it('a generated password logs in over lanplus', async () => {
    const r = await svc.setCredentials({ username: 'gen_agent', generate: true });
    const pw = recordGenerated(r.generatedPassword);
    assert.equal(r.passwordSize, 16);
    assert.equal((await sim.lanplusLogin('gen_agent', pw)).ok, true);
    assertNoLeak(pw, log.lines, r);
  });

  it('getInfo reads the real user table', async () => {
    const info = await svc.getInfo();
    assert.equal(info.maxUsers, 63);
    assert.equal(info.users.find((u) => u.id === 2)?.name, 'admin');
    assert.equal(info.users.find((u) => u.id === 4)?.name, 'svc_agent');
    assert.deepEqual(info.lanChannels.map((c) => c.channel), [1]);
    assertNoLeak(FRESH_PW, info);
  });
});
