/**
 * Against a real kernel IPMI device, when there is one: Get Device ID through
 * /dev/ipmi0 (or $INBAND_NATIVE_DEVICE). Skipped visibly elsewhere; the qemu
 * test (a guest kernel with ipmi_si wired to ipmi_sim) provides such a device.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { DEFAULT_DEVICE_PATHS, openNativeTransport, type NativeTransport } from '../../ipmi-kcs/kcs-native.js';
import { AppCmd, NetFn } from '../../ipmi-kcs/spec.js';
import { addonMissing, builtAddon } from './project.js';

const configured = process.env.INBAND_NATIVE_DEVICE || undefined;
const device = configured ?? DEFAULT_DEVICE_PATHS.find((p) => existsSync(p));
const skip = addonMissing() ?? (device ? undefined
  : `no IPMI device (${DEFAULT_DEVICE_PATHS.join(', ')} absent): enabled by real hardware with ipmi_si/ipmi_ssif + ipmi_devintf loaded, `
    + 'by the qemu guest test (a kernel with ipmi_si wired to ipmi_sim), or by INBAND_NATIVE_DEVICE=/path');

// Skips are per test (not per suite) so that run summaries count them.
describe(`native backend on a real device (${device ?? 'none'})`, () => {
  let transport: NativeTransport;
  before(async () => {
    if (!skip) transport = await openNativeTransport({ devicePath: device, addonPath: builtAddon() });
  });
  after(async () => { await transport?.close(); });

  it('answers Get Device ID (§20.1) with completion code 0 and an IPMI 1.5 or 2.0 version byte', { skip }, async () => {
    const rsp = await transport.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID }, { timeoutMs: 10_000 });
    assert.equal(rsp.completionCode, 0);
    assert.ok(rsp.data.length >= 11, `${rsp.data.length} bytes`);
    assert.ok([0x02, 0x51].includes(rsp.data[4]!), `IPMI version byte 0x${rsp.data[4]!.toString(16)}`);
    assert.equal(rsp.truncated, false);
  });

  it('resolves an unsupported command with its completion code (0xC1), not an error', { skip }, async () => {
    const rsp = await transport.send({ netFn: NetFn.APP, cmd: 0x99 }, { timeoutMs: 10_000 });
    assert.equal(rsp.completionCode, 0xc1);
  });

  it('answers queued requests in order, each with its own response', { skip }, async () => {
    const rsps = await Promise.all(Array.from({ length: 6 }, () => transport.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID })));
    for (const r of rsps) assert.equal(r.completionCode, 0);
    assert.equal(transport.stats().timeouts, 0);
  });
});
