/**
 * The vm-codec backend against a real ipmi_sim (Debian `openipmi`), proving
 * in-band changes out-of-band with `ipmitool -I lanplus`. Skips visibly when
 * ipmi_sim or ipmitool is not installed.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { IpmiTimeoutError, IpmiTransportError } from '../../ipmi-kcs/errors.js';
import { invoke } from '../../ipmi-kcs/invoke.js';
import { AppCmd, NetFn, PasswordOp, PASSWORD_SIZE_20, Privilege } from '../../ipmi-kcs/spec.js';
import { openVmCodecTransport, type VmCodecTransport } from '../../ipmi-kcs/vm-codec.js';
import { IPMI_SIM_QUIRKS, ipmiSimAvailability, startIpmiSim, type IpmiSim } from '../harness/ipmi-sim.js';
import { recordSecret } from '../helpers/secrets.js';

const avail = ipmiSimAvailability();
const te = new TextEncoder();
const padded = (s: string | number[], n: number): number[] => {
  const raw = typeof s === 'string' ? [...te.encode(s)] : s;
  return [...raw, ...new Array(n - raw.length).fill(0)];
};

/** The four writes that make a working LAN user (§22.28, §22.30, §22.26, §22.30 op 1). */
async function createUser(t: VmCodecTransport, uid: number, name: string, password: string, channel = 1): Promise<void> {
  await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [uid, ...padded(name, 16)] });
  await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data: [uid, PasswordOp.SET_PASSWORD, ...padded(password, 16)] });
  // byte 1: change bits (0x80) | link auth (0x20) | IPMI messaging (0x10) | channel
  await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_ACCESS, data: [0x80 | 0x20 | 0x10 | channel, uid, Privilege.ADMINISTRATOR] });
  await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data: [uid, PasswordOp.ENABLE_USER] });
}

describe('vm-codec backend against a real ipmi_sim', { skip: avail.available ? false : avail.reason }, () => {
  let sim: IpmiSim;
  let t: VmCodecTransport;
  before(async () => {
    sim = await startIpmiSim({ persist: true });
    t = await openVmCodecTransport({ host: sim.host, port: sim.vmPort });
  });
  after(async () => {
    await t?.close();
    await sim?.stop();
  });

  it('answers Get Device ID (§20.1) with the device the .emu file declares', async () => {
    const d = await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID });
    assert.ok(d.length >= 11);
    assert.equal(d[4], 0x02, 'IPMI version 2.0');
    assert.equal(d[6]! | (d[7]! << 8) | (d[8]! << 16), 0x001291, 'manufacturer ID');
    assert.equal(d[9]! | (d[10]! << 8), 0x0f02, 'product ID');
  });

  it('round-trips a user name, framing bytes 0xA0 0xA1 0xAA included (§22.28/§22.29)', async () => {
    const name = [0x41, 0xa0, 0x42, 0xa1, 0x43, 0xaa, 0x44];
    await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [9, ...padded(name, 16)] });
    const got = await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [9] });
    assert.deepEqual([...got], padded(name, 16));
    await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [9, ...padded('', 16)] });
  });

  it('returns completion codes as data: 0xCC, 0xC7, 0xC1', async () => {
    // §22.28: user 1 is the anonymous user with a fixed (null) name.
    const anon = await t.send({ netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [1, ...padded('x', 16)] });
    assert.equal(anon.completionCode, 0xcc);
    assert.equal(anon.completionCode, IPMI_SIM_QUIRKS.cc.setUserNameAnonymous);
    // Fewer than 16 name bytes.
    const short = await t.send({ netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [5, 0x41] });
    assert.equal(short.completionCode, 0xc7);
    assert.equal(short.completionCode, IPMI_SIM_QUIRKS.cc.setUserNameShort);
    // §22.13 is for session-based channels; on the system interface ipmi_sim says "invalid command".
    const caps = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_CHANNEL_AUTH_CAPABILITIES, data: [0x0e, 0x04] });
    assert.equal(caps.completionCode, IPMI_SIM_QUIRKS.cc.getChannelAuthCapsInBand);
    const anonName = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [1] });
    assert.equal(anonName.completionCode, IPMI_SIM_QUIRKS.cc.getUserNameAnonymous, 'ipmi_sim refuses to read user 1\'s name; many BMCs return an empty one');
    const oemNetFn = await t.send({ netFn: 0x30, cmd: 0x01 });
    assert.equal(oemNetFn.completionCode, IPMI_SIM_QUIRKS.cc.unknownNetFn);
  });

  it('sets a user in-band that then logs in over lanplus; a wrong password and the old password do not', async () => {
    const pw = recordSecret('Inb4nd-pass-1');
    const rotated = recordSecret('R0tated-pw-22');
    assert.equal((await sim.lanplusLogin('inband', pw)).ok, false, 'no such user before');
    await createUser(t, 5, 'inband', pw);
    const ok = await sim.lanplusLogin('inband', pw);
    assert.equal(ok.ok, true, ok.stderr);
    assert.equal(ok.ipmiVersion, '2.0');
    const wrong = await sim.lanplusLogin('inband', recordSecret('not-the-password'));
    assert.equal(wrong.ok, false);
    assert.match(wrong.stderr, /Unable to establish/);
    assert.ok(!wrong.stderr.includes('not-the-password'));

    await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data: [5, PasswordOp.SET_PASSWORD, ...padded(rotated, 16)] });
    assert.equal((await sim.lanplusLogin('inband', pw)).ok, false, 'the old password no longer works');
    assert.equal((await sim.lanplusLogin('inband', rotated)).ok, true);

    await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data: [5, PasswordOp.DISABLE_USER] });
    assert.equal((await sim.lanplusLogin('inband', rotated)).ok, false, 'a disabled user cannot log in');
  });

  it('writes down ipmi_sim\'s departures: 20-byte passwords stored as 16, Test Password always succeeds, user access is global', async () => {
    const pw20 = recordSecret('Twenty-byte-passw0rd');
    assert.equal(pw20.length, 20);
    await createUser(t, 6, 'pw20user', 'placeholder-pw');
    // §22.30: bit 7 of byte 1 selects the 20-byte form.
    const set = await t.send({ netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data: [6 | PASSWORD_SIZE_20, PasswordOp.SET_PASSWORD, ...padded(pw20, 20)] });
    assert.equal(set.completionCode, 0, 'accepted…');
    const stored = await sim.waitForStoredUsers((u) => u.get(6)?.name === 'pw20user' && u.get(6)!.password[0] === pw20.charCodeAt(0));
    const bytes = stored.get(6)!.password;
    assert.equal(Buffer.from(bytes.subarray(0, IPMI_SIM_QUIRKS.storedPasswordBytes)).toString('latin1'), pw20.slice(0, 16));
    assert.notEqual(Buffer.from(bytes.subarray(16, 20)).toString('latin1'), pw20.slice(16), '…but only the first 16 bytes were stored');
    assert.equal((await sim.lanplusLogin('pw20user', pw20)).ok, false, 'so the full 20-byte password does not log in');
    assert.equal((await sim.lanplusLogin('pw20user', pw20.slice(0, 16))).ok, true, 'while its 16-byte prefix does');

    const test = await t.send({ netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data: [6, PasswordOp.TEST_PASSWORD, ...padded('definitely-wrong', 16)] });
    assert.equal(test.completionCode, 0, 'Test Password with a wrong password: the spec says 0x80, ipmi_sim says 0x00');
    assert.equal(IPMI_SIM_QUIRKS.testPasswordAlwaysSucceeds, true);

    // Channel 7 does not exist; ipmi_sim ignores the channel byte of Get User Access (§22.27).
    const access = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_ACCESS, data: [7, 6] });
    assert.equal(access.completionCode, 0);
    assert.equal(access.data[3]! & 0x0f, Privilege.ADMINISTRATOR);
    assert.equal(access.data[1]! >> 6, 0, 'no user-enable status bits (§22.27 byte 2 [7:6])');
    assert.equal(IPMI_SIM_QUIRKS.userAccessIsGlobal, true);
  });

  it('rejects a second client clearly while the first holds the interface', async () => {
    await assert.rejects(openVmCodecTransport({ host: sim.host, port: sim.vmPort, connectTimeoutMs: 2000 }), (err: unknown) => {
      assert.ok(err instanceof IpmiTransportError);
      assert.equal(err.code, 'EBUSY');
      assert.match(err.message, /one VM-codec client at a time/);
      return true;
    });
    assert.equal((await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID })).completionCode, 0, 'the first client is unaffected');
  });

  it('times out while the BMC is stopped and drops the late answer when it resumes', async () => {
    const before = t.events().unmatched;
    sim.pause();
    try {
      await assert.rejects(t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [2] }, { timeoutMs: 200 }), IpmiTimeoutError);
    } finally {
      sim.resume();
    }
    const rsp = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID }, { timeoutMs: 5000 });
    assert.equal(rsp.completionCode, 0);
    assert.ok(rsp.data.length >= 11, 'Get Device ID\'s answer, not the late Get User Name one');
    assert.equal(t.events().unmatched, before + 1, 'the late answer arrived and was dropped');
  });
});

describe('vm-codec backend when ipmi_sim dies', { skip: avail.available ? false : avail.reason }, () => {
  it('rejects the outstanding request instead of hanging, then reports the refused connection', async () => {
    const sim = await startIpmiSim();
    try {
      const t = await openVmCodecTransport({ host: sim.host, port: sim.vmPort });
      sim.pause(); // the request is then certainly outstanding when the process dies
      const pending = t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID }, { timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 50));
      await sim.kill();
      await assert.rejects(pending, (err: unknown) => {
        assert.ok(err instanceof IpmiTransportError, String(err));
        assert.ok(['ECONNRESET', 'EPIPE'].includes(err.code), err.code);
        return true;
      });
      await assert.rejects(t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID }), (err: unknown) => {
        assert.ok(err instanceof IpmiTransportError);
        assert.equal(err.code, 'ECONNREFUSED');
        return true;
      });
      await t.close();
    } finally {
      await sim.stop();
    }
  });
});
