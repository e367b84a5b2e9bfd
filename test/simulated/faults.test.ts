/**
 * Scripted faults of the simulated BMC: busy, fail-the-nth, no response,
 * short/cut/garbled responses, BMC resets mid-sequence, the redacted record
 * and reset().
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSimulatedTransport, type SimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { IpmiTimeoutError } from '../../ipmi-kcs/errors.js';
import { APP, call, padded, STRONG } from './sim-helpers.js';

const T = 20; // ms: short timeout for requests a fault leaves unanswered

const setName = (t: SimulatedTransport, id: number, name: string) => call(t, 0x45, [id, ...padded(name)]);
const setPw = (t: SimulatedTransport, id: number, pw: string) => call(t, 0x47, [id, 0x02, ...padded(pw)]);

describe('simulated BMC faults', () => {
  it('node busy for the next N requests, which are not executed', async () => {
    const t = createSimulatedTransport();
    t.bmc.busy(2);
    assert.equal((await setName(t, 3, 'one')).cc, 0xc0);
    assert.equal((await setName(t, 3, 'two')).cc, 0xc0);
    assert.equal(t.bmc.user(3)?.name, '');
    assert.equal((await setName(t, 3, 'three')).cc, 0);
    assert.equal(t.bmc.user(3)?.name, 'three');
    assert.equal(t.bmc.pendingFaults, 0);
    await t.close();
  });

  it('node busy for one command only', async () => {
    const t = createSimulatedTransport();
    t.bmc.busy(3, { cmd: 0x47 });
    assert.equal((await call(t, 0x01)).cc, 0);
    assert.equal((await setName(t, 3, 'agent')).cc, 0);
    assert.equal((await setPw(t, 3, STRONG)).cc, 0xc0);
    assert.equal((await call(t, 0x47, [3, 0x01])).cc, 0xc0);
    assert.equal((await setPw(t, 3, STRONG)).cc, 0xc0);
    assert.equal((await setPw(t, 3, STRONG)).cc, 0);
    await t.close();
  });

  it('fails the Nth matching request with a given code', async () => {
    const t = createSimulatedTransport();
    t.bmc.failNth(2, 0xff, { cmd: 0x47, passwordOp: 2 });
    assert.equal((await call(t, 0x47, [3, 0x01])).cc, 0, 'enable does not match');
    assert.equal((await setPw(t, 3, STRONG)).cc, 0, 'first set');
    assert.equal((await setPw(t, 4, STRONG)).cc, 0xff, 'second set fails');
    assert.ok(t.bmc.user(4)?.password.isNull, 'and was not applied');
    assert.equal((await setPw(t, 4, STRONG)).cc, 0);
    await t.close();
  });

  it('matches by user id and repeats for `times`', async () => {
    const t = createSimulatedTransport();
    t.bmc.inject({ match: { userId: 5 }, times: 2, action: { kind: 'completion-code', code: 0xd5 } });
    assert.equal((await call(t, 0x46, [4])).cc, 0);
    assert.equal((await call(t, 0x46, [5])).cc, 0xd5);
    assert.equal((await call(t, 0x44, [1, 5])).cc, 0xd5);
    assert.equal((await call(t, 0x46, [5])).cc, 0);
    await t.close();
  });

  it('no response: the exchange times out; the command may be lost or applied', async () => {
    const t = createSimulatedTransport();
    t.bmc.noResponse({ cmd: 0x45 });
    await assert.rejects(t.send({ netFn: APP, cmd: 0x45, data: [3, ...padded('lost')] }, { timeoutMs: T }), IpmiTimeoutError);
    assert.equal(t.bmc.user(3)?.name, '');
    t.bmc.noResponse({ cmd: 0x45 }, true);
    await assert.rejects(t.send({ netFn: APP, cmd: 0x45, data: [3, ...padded('applied')] }, { timeoutMs: T }), IpmiTimeoutError);
    assert.equal(t.bmc.user(3)?.name, 'applied');
    assert.equal(t.bmc.record.at(-1)?.completionCode, undefined);
    await t.close();
  });

  it('a response shorter than the command\'s fixed length', async () => {
    const t = createSimulatedTransport();
    t.bmc.inject({ match: { cmd: 0x01 }, action: { kind: 'short-response' } });
    const r = await call(t, 0x01);
    assert.equal(r.cc, 0);
    assert.equal(r.data.length, 5);
    assert.equal(r.truncated, undefined);
    t.bmc.inject({ action: { kind: 'short-response', length: 2 } });
    assert.equal((await call(t, 0x44, [1, 2])).data.length, 2);
    await t.close();
  });

  it('a response cut off by the path is flagged truncated', async () => {
    const t = createSimulatedTransport();
    t.bmc.inject({ action: { kind: 'cut-response', length: 3 } });
    const r = await call(t, 0x46, [2]);
    assert.deepEqual(r, { cc: 0, data: [0x61, 0x64, 0x6d], truncated: true });
    await t.close();
  });

  it('a garbled reply arrives as 0xFF without data', async () => {
    const t = createSimulatedTransport();
    t.bmc.inject({ action: { kind: 'garbled' } });
    assert.deepEqual(await call(t, 0x01), { cc: 0xff, data: [] });
    await t.close();
  });

  describe('BMC reset in the middle of a sequence', () => {
    it('loses the in-flight command, answers 0xD2 while starting, keeps committed user changes', async () => {
      const t = createSimulatedTransport();
      await call(t, 0x40, [1, 0x80 | 0x02, 0x80 | 0x03]); // volatile privilege limit → operator
      assert.equal((await setName(t, 3, 'agent')).cc, 0);
      t.bmc.inject({ match: { cmd: 0x47 }, action: { kind: 'reset' } });
      await assert.rejects(t.send({ netFn: APP, cmd: 0x47, data: [3, 0x02, ...padded(STRONG)] }, { timeoutMs: T }), IpmiTimeoutError);
      assert.equal((await call(t, 0x01)).cc, 0xd2);
      assert.equal((await setPw(t, 3, STRONG)).cc, 0xd2);
      assert.equal((await call(t, 0x01)).cc, 0);
      assert.equal(t.bmc.resets, 1);
      assert.equal(t.bmc.user(3)?.name, 'agent');
      assert.ok(t.bmc.user(3)?.password.isNull);
      assert.deepEqual(await call(t, 0x41, [1, 0x80]), { cc: 0, data: [0x02, 0x04] }, 'volatile access back from non-volatile');
      assert.deepEqual(t.bmc.record.filter((e) => e.fault === 'reset-window').map((e) => e.completionCode), [0xd2, 0xd2]);
      await t.close();
    });

    it('with deferred commits, reverts to the last non-volatile state', async () => {
      const t = createSimulatedTransport({ commit: 'deferred' });
      const before = t.bmc.snapshot();
      await setName(t, 3, 'agent');
      await setPw(t, 3, STRONG);
      t.bmc.inject({ match: { cmd: 0x43 }, action: { kind: 'reset', windowResponse: 'busy', window: 1 } });
      await assert.rejects(t.send({ netFn: APP, cmd: 0x43, data: [0xb1, 3, 4, 0] }, { timeoutMs: T }), IpmiTimeoutError);
      assert.equal((await call(t, 0x01)).cc, 0xc0);
      assert.deepEqual(t.bmc.snapshot(), before, 'exactly as before');
      await setName(t, 3, 'kept');
      t.bmc.commit();
      t.bmc.simulateReset({ window: 0 });
      assert.equal(t.bmc.user(3)?.name, 'kept');
      await t.close();
    });

    it('an executed command survives the reset; the window can also be silent', async () => {
      const t = createSimulatedTransport({ commit: 'deferred' });
      t.bmc.inject({ match: { cmd: 0x45 }, action: { kind: 'reset', executed: true, windowResponse: 'no-response', window: 1 } });
      await assert.rejects(t.send({ netFn: APP, cmd: 0x45, data: [3, ...padded('agent')] }, { timeoutMs: T }), IpmiTimeoutError);
      await assert.rejects(t.send({ netFn: APP, cmd: 0x01 }, { timeoutMs: T }), IpmiTimeoutError);
      assert.equal((await call(t, 0x01)).cc, 0);
      assert.equal(t.bmc.user(3)?.name, 'agent');
      await t.close();
    });

    it('a factory reset returns to the profile defaults', async () => {
      const t = createSimulatedTransport();
      const before = t.bmc.snapshot();
      await setName(t, 3, 'agent');
      await call(t, 0x40, [1, 0x42, 0x43]);
      t.bmc.simulateReset({ revertTo: 'factory', window: 0 });
      const after = t.bmc.snapshot();
      assert.deepEqual(after.channelAccess, before.channelAccess);
      assert.deepEqual(after.users.map((u) => [u.name, u.enabled, u.access, u.password.isNull]), before.users.map((u) => [u.name, u.enabled, u.access, u.password.isNull]));
      await t.close();
    });

    it('Cold Reset (§20.2) is acknowledged, then the BMC restarts', async () => {
      const t = createSimulatedTransport();
      assert.equal((await call(t, 0x02)).cc, 0);
      assert.equal((await call(t, 0x01)).cc, 0xd2);
      assert.equal((await call(t, 0x03, [1])).cc, 0xd2);
      assert.equal((await call(t, 0x03, [1])).cc, 0xc7, 'Warm Reset takes no data');
      assert.equal(t.bmc.resets, 1);
      await t.close();
    });
  });

  describe('record and test reset', () => {
    it('records netFn/cmd/lengths and never password bytes', async () => {
      const t = createSimulatedTransport();
      await setName(t, 3, 'agent');
      await setPw(t, 3, STRONG);
      await call(t, 0x47, [0x80 | 3, 0x03, ...padded(STRONG, 20)]);
      const rec = t.bmc.record;
      assert.deepEqual(rec.map((e) => [e.netFn, e.cmd, e.length, e.completionCode]), [[6, 0x45, 17, 0], [6, 0x47, 18, 0], [6, 0x47, 22, 0x81]]);
      assert.deepEqual(rec[1]!.data, [3, 0x02]);
      assert.equal(rec[1]!.redacted, true);
      assert.ok(rec.filter((e) => e.cmd === 0x47).every((e) => e.data.length === 2 && e.redacted));
      const dump = JSON.stringify(rec);
      assert.ok(!dump.includes(String([...Buffer.from(STRONG)].slice(0, 3))), 'no password byte sequence');
      assert.ok(!dump.includes(STRONG));
      await t.close();
    });

    it('reset() restores the factory BMC, drops faults and the record', async () => {
      const t = createSimulatedTransport();
      const before = t.bmc.snapshot();
      await setName(t, 3, 'agent');
      t.bmc.busy(5);
      t.bmc.simulateReset();
      t.bmc.reset();
      assert.equal(t.bmc.record.length, 0);
      assert.equal(t.bmc.pendingFaults, 0);
      assert.equal(t.bmc.inResetWindow, false);
      assert.equal((await call(t, 0x01)).cc, 0);
      assert.deepEqual(t.bmc.users().map((u) => u.name), before.users.map((u) => u.name));
      await t.close();
    });

    it('the user-table view tells "unchanged" from "rewritten with the same password"', async () => {
      const t = createSimulatedTransport();
      await setPw(t, 3, STRONG);
      const a = t.bmc.snapshot();
      assert.deepEqual(t.bmc.snapshot(), a);
      await setPw(t, 3, STRONG);
      assert.notEqual(t.bmc.user(3)?.password.hash, a.users[2]?.password.hash);
      assert.deepEqual(t.bmc.user(3)?.password.bytes, a.users[2]?.password.bytes);
      await t.close();
    });
  });
});
