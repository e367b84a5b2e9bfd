/**
 * A service's later changes take the channel table from its first one
 * (BmcFacts, service/bmc-reader.ts) only while Get Device ID reads back the
 * same: a changed answer, or a change that failed, means every channel is
 * read again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedTransport, type SimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { AppCmd } from '../../ipmi-kcs/spec.js';
import type { IpmiRequest, SendOptions, Transport } from '../../ipmi-kcs/transport.js';
import { CredentialService, ServiceError } from '../../service/index.js';
import { assertApplied, testSecret } from './service-helpers.js';

/** The simulated BMC, with Get Device ID's last byte (auxiliary firmware revision, §20.1) flipped while `firmware.updated`. */
function withFirmware(t: SimulatedTransport): { transport: Transport; firmware: { updated: boolean } } {
  const firmware = { updated: false };
  const transport = new Proxy(t, {
    get(target, prop) {
      if (prop === 'send') {
        return async (req: IpmiRequest, opts?: SendOptions) => {
          const rsp = await target.send(req, opts);
          if (!firmware.updated || req.netFn !== 0x06 || req.cmd !== AppCmd.GET_DEVICE_ID) return rsp;
          const data = Uint8Array.from(rsp.data);
          data[data.length - 1]! ^= 0x01;
          return { ...rsp, data };
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { transport, firmware };
}

function setup(): { t: SimulatedTransport; svc: CredentialService; firmware: { updated: boolean }; done: () => Promise<void> } {
  const t = createSimulatedTransport({ profile: 'ipmi20' });
  const dir = mkdtempSync(join(tmpdir(), 'svc-facts-'));
  const { transport, firmware } = withFirmware(t);
  const svc = new CredentialService({ transport, stateDir: dir, retry: { attempts: 2, initialDelayMs: 1, maxDelayMs: 2 } });
  return { t, svc, firmware, done: async () => { await t.close(); rmSync(dir, { recursive: true, force: true }); } };
}

const sent = (t: SimulatedTransport, cmd: number): number => t.bmc.record.filter((e) => e.netFn === 0x06 && e.cmd === cmd).length;

test('a second change sends Get Device ID again and no Get Channel Info, and is applied as the first', async () => {
  const { t, svc, done } = setup();
  try {
    const first = await svc.setCredentials({ username: 'facts_a', password: testSecret('Facts-pass-01') });
    assert.equal(sent(t, AppCmd.GET_CHANNEL_INFO), 11, 'the first change scans channels 1–11');
    t.bmc.clearRecord();
    const second = await svc.setCredentials({ username: 'facts_b', password: testSecret('Facts-pass-02') });
    assert.equal(sent(t, AppCmd.GET_DEVICE_ID), 1);
    assert.equal(sent(t, AppCmd.GET_CHANNEL_INFO), 0);
    assert.equal(second.requests, first.requests - 11);
    assert.deepEqual(second.channels, first.channels);
    assertApplied(t.bmc, second.userId, 'facts_b', 'Facts-pass-02');
    assert.equal(second.verified.passwordTest, 'passed');
  } finally {
    await done();
  }
});

test('a changed Get Device ID answer (a firmware update) reads every channel again', async () => {
  const { t, svc, firmware, done } = setup();
  try {
    await svc.setCredentials({ username: 'facts_a', password: testSecret('Facts-pass-01') });
    firmware.updated = true;
    t.bmc.clearRecord();
    await svc.setCredentials({ username: 'facts_b', password: testSecret('Facts-pass-02') });
    assert.equal(sent(t, AppCmd.GET_CHANNEL_INFO), 11);
    // The new answer is the one later changes are checked against.
    t.bmc.clearRecord();
    await svc.setCredentials({ username: 'facts_c', password: testSecret('Facts-pass-03') });
    assert.equal(sent(t, AppCmd.GET_CHANNEL_INFO), 0);
  } finally {
    await done();
  }
});

test('after a failed change the next one reads every channel again', async () => {
  const { t, svc, done } = setup();
  try {
    await svc.setCredentials({ username: 'facts_a', password: testSecret('Facts-pass-01') });
    t.bmc.inject({ match: { cmd: AppCmd.SET_USER_NAME }, times: 10, action: { kind: 'completion-code', code: 0xd4 } });
    await assert.rejects(svc.setCredentials({ username: 'facts_b', password: testSecret('Facts-pass-02') }), ServiceError);
    t.bmc.clearFaults();
    t.bmc.clearRecord();
    const r = await svc.setCredentials({ username: 'facts_b', password: testSecret('Facts-pass-02') });
    assert.equal(sent(t, AppCmd.GET_CHANNEL_INFO), 11);
    assertApplied(t.bmc, r.userId, 'facts_b', 'Facts-pass-02');
  } finally {
    await done();
  }
});

test('bmc.get_info reads the channels itself, whatever the changes kept', async () => {
  const { t, svc, done } = setup();
  try {
    await svc.setCredentials({ username: 'facts_a', password: testSecret('Facts-pass-01') });
    t.bmc.clearRecord();
    await svc.getInfo();
    assert.equal(sent(t, AppCmd.GET_CHANNEL_INFO), 11);
  } finally {
    await done();
  }
});
