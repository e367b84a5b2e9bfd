/**
 * The ipmitool-over-pty backend with the real ipmitool against a real
 * ipmi_sim over lanplus (the same shell runs with `-I open` on a host with
 * /dev/ipmi0). Skips visibly when ipmi_sim or ipmitool is not installed.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { IpmiRequestError, IpmiTimeoutError, IpmiTransportError } from '../../ipmi-kcs/errors.js';
import { invoke } from '../../ipmi-kcs/invoke.js';
import { openIpmitoolTransport, type IpmitoolTransport } from '../../ipmi-kcs/ipmitool-pty.js';
import { AppCmd, NetFn, PasswordOp, Privilege } from '../../ipmi-kcs/spec.js';
import { ipmiSimAvailability, startIpmiSim, type IpmiSim } from '../harness/ipmi-sim.js';
import { recordSecret } from '../helpers/secrets.js';

const avail = ipmiSimAvailability();
const te = new TextEncoder();
const padded = (s: string | number[], n: number): number[] => {
  const raw = typeof s === 'string' ? [...te.encode(s)] : s;
  return [...raw, ...new Array(n - raw.length).fill(0)];
};
const ADMIN_PW = 'admin-initial-pw';

function lanplusArgs(sim: IpmiSim): string[] {
  return ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.lanPort), '-U', 'admin', '-E'];
}

/** Every process's argument list, as anyone on the machine can read it. */
function allCmdlines(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`).toString('latin1').replace(/\0/g, ' '));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

describe('ipmitool backend against a real ipmi_sim over lanplus', { skip: avail.available ? false : avail.reason }, () => {
  let sim: IpmiSim;
  let t: IpmitoolTransport;
  before(async () => {
    sim = await startIpmiSim({ users: [{ id: 2, name: 'admin', password: recordSecret(ADMIN_PW), privilege: 'admin' }] });
    t = await openIpmitoolTransport({ args: lanplusArgs(sim), env: { IPMI_PASSWORD: ADMIN_PW } });
  });
  after(async () => {
    await t?.close();
    await sim?.stop();
  });

  it('answers Get Device ID (§20.1)', async () => {
    const d = await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID });
    assert.ok(d.length >= 11);
    assert.equal(d[4], 0x02);
    assert.equal(d[9]! | (d[10]! << 8), 0x0f02);
  });

  it('parses completion codes from ipmitool\'s failure line: 0xC1, 0xCC, 0xC7', async () => {
    assert.equal((await t.send({ netFn: NetFn.APP, cmd: 0x99 })).completionCode, 0xc1);
    assert.equal((await t.send({ netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [1, ...padded('x', 16)] })).completionCode, 0xcc);
    const short = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME });
    assert.equal(short.completionCode, 0xc7);
    assert.equal(short.data.length, 0);
  });

  it('carries request bytes 0xA0 and 0xAA (and 0xA1) through a user name round trip', async () => {
    const name = [0x41, 0xa0, 0x42, 0xaa, 0x43, 0xa1];
    const set = await t.send({ netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [9, ...padded(name, 16)] });
    assert.equal(set.completionCode, 0);
    assert.equal(set.data.length, 0, 'ipmitool prints an empty line for a response without data');
    const got = await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [9] });
    assert.deepEqual([...got], padded(name, 16));
  });

  it('refuses LUN 1-3 clearly (ipmitool raw has no per-request LUN) without sending anything', async () => {
    const before = t.stats().requests;
    await assert.rejects(t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID, lun: 1 }), (err: unknown) => {
      assert.ok(err instanceof IpmiRequestError);
      assert.equal(err.field, 'lun');
      return true;
    });
    assert.equal(t.stats().requests, before);
  });

  it('sets a password without it or the request bytes ever appearing in any process\'s arguments', async () => {
    const pw = recordSecret('Pty-Secret-77x');
    const pwHexTokens = [...te.encode(pw)].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ');
    const pwHex = Buffer.from(pw).toString('hex');
    const seen = new Set<string>();
    const sample = (): void => {
      for (const c of allCmdlines()) seen.add(c);
    };
    const sampler = setInterval(sample, 2);
    try {
      await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [4, ...padded('ptyuser', 16)] });
      await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data: [4, PasswordOp.SET_PASSWORD, ...padded(pw, 16)] });
      sample();
      await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_ACCESS, data: [0x80 | 0x20 | 0x10 | 1, 4, Privilege.ADMINISTRATOR] });
      await invoke(t, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data: [4, PasswordOp.ENABLE_USER] });
      sample();
    } finally {
      clearInterval(sampler);
    }
    const shell = t.shellPid;
    assert.ok(shell, 'the shell is running');
    const shellCmdline = readFileSync(`/proc/${shell}/cmdline`).toString('latin1').split('\0').filter(Boolean);
    assert.deepEqual(shellCmdline.slice(1), [...lanplusArgs(sim), 'shell'], 'ipmitool got only the interface arguments');
    assert.ok(seen.size > 0);
    for (const c of seen) {
      assert.ok(!c.includes(pw), 'password in a process argument list');
      assert.ok(!c.includes(ADMIN_PW), 'lanplus password in a process argument list');
      assert.ok(!c.includes(pwHexTokens) && !c.includes(pwHex), 'raw request bytes in a process argument list');
    }
    const login = await sim.lanplusLogin('ptyuser', pw);
    assert.equal(login.ok, true, login.stderr);
  });

  it('times out while the BMC is stopped, restarts the shell, and answers the next request correctly', async () => {
    const starts = t.shellStarts;
    const before = t.shellPid;
    sim.pause();
    try {
      await assert.rejects(t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [2] }, { timeoutMs: 300 }), IpmiTimeoutError);
    } finally {
      sim.resume();
    }
    const rsp = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID }, { timeoutMs: 10_000 });
    assert.equal(rsp.completionCode, 0);
    assert.ok(rsp.data.length >= 11, 'Get Device ID\'s answer');
    assert.equal(t.shellStarts, starts + 1);
    assert.notEqual(t.shellPid, before);
  });
});

describe('ipmitool backend start-up failures', { skip: avail.available ? false : avail.reason }, () => {
  it('reports a missing ipmitool binary as ENOENT', async () => {
    await assert.rejects(openIpmitoolTransport({ ipmitoolPath: '/nonexistent/bin/ipmitool' }), (err: unknown) => {
      assert.ok(err instanceof IpmiTransportError);
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, /\/nonexistent\/bin\/ipmitool not found/);
      return true;
    });
  });

  it('reports a missing IPMI device as ENOENT naming the device', async (ctx) => {
    // Device 9 is absent on any ordinary machine; ipmitool then tries /dev/ipmi9, /dev/ipmi/9, /dev/ipmidev/9.
    if (existsSync('/dev/ipmi9')) {
      ctx.skip('/dev/ipmi9 exists on this machine');
      return;
    }
    await assert.rejects(openIpmitoolTransport({ args: ['-I', 'open', '-d', '9'] }), (err: unknown) => {
      assert.ok(err instanceof IpmiTransportError, String(err));
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, /\/dev\/ipmi9/);
      return true;
    });
  });

  it('reports a refused lanplus login as EACCES without the password in the message', async () => {
    const sim = await startIpmiSim();
    try {
      const wrong = recordSecret('wrong-lanplus-pw');
      await assert.rejects(openIpmitoolTransport({ args: lanplusArgs(sim), env: { IPMI_PASSWORD: wrong } }), (err: unknown) => {
        assert.ok(err instanceof IpmiTransportError);
        assert.equal(err.code, 'EACCES');
        assert.ok(!err.message.includes(wrong));
        return true;
      });
    } finally {
      await sim.stop();
    }
  });
});
