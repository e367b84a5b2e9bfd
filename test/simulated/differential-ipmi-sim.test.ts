/**
 * The simulated BMC (profile ipmi20) against a real, independent BMC
 * implementation, OpenIPMI's ipmi_sim (Debian `openipmi`), reached in-band
 * through the vm-codec backend. The same request sequence goes to both; where
 * both follow the spec the answers must agree byte for byte (or in shape,
 * where the values are the device's own), and every place they differ is
 * listed with the reason and both answers pinned, so a change on either side
 * shows up here. Skips visibly when ipmi_sim is not installed.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSimulatedTransport, type SimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { openVmCodecTransport, type VmCodecTransport } from '../../ipmi-kcs/vm-codec.js';
import { ipmiSimAvailability, startIpmiSim, type IpmiSim } from '../harness/ipmi-sim.js';
import { padded } from './sim-helpers.js';
import { recordSecret } from '../helpers/secrets.js';

const avail = ipmiSimAvailability();

type Compare =
  /** Same completion code and the same data bytes. */
  | 'bytes'
  /** Same completion code and data length (values are the device's own: ids, addresses). */
  | 'shape'
  /** A documented difference: both answers pinned. */
  | { sim: number; ours: number; why: string };

interface Step {
  what: string;
  netFn: number;
  cmd: number;
  data: number[];
  compare: Compare;
}

const PW = recordSecret('differential1');

// Ordered: later steps read what earlier ones wrote. ipmi_sim's user 2 is `admin`, as in ipmi20.
const STEPS: Step[] = [
  { what: 'Get Device ID', netFn: 6, cmd: 0x01, data: [], compare: { sim: 0x00, ours: 0x00, why: 'ipmi_sim appends the optional aux firmware revision (15 bytes); ipmi20 sends the 11 required' } },
  { what: 'Get Device ID with data', netFn: 6, cmd: 0x01, data: [0], compare: { sim: 0x00, ours: 0xc7, why: 'ipmi_sim ignores the stray byte; §5.2 0xC7 is the strict answer' } },
  { what: 'Get Channel Info, LAN 1', netFn: 6, cmd: 0x42, data: [1], compare: 'bytes' },
  { what: 'Get Channel Info, IPMB 0', netFn: 6, cmd: 0x42, data: [0], compare: 'bytes' },
  { what: 'Get Channel Info, this channel', netFn: 6, cmd: 0x42, data: [0x0e], compare: 'shape' /* ipmi_sim 2.0.33 reports medium 0x05 for KCS */ },
  { what: 'Get Channel Info, no data', netFn: 6, cmd: 0x42, data: [], compare: 'bytes' },
  { what: 'Get Channel Info, missing channel', netFn: 6, cmd: 0x42, data: [5], compare: { sim: 0xcb, ours: 0xcc, why: 'profile choice: ipmi20 says invalid field; dual-lan answers 0xCB as ipmi_sim does' } },
  { what: 'Get Channel Access, non-volatile', netFn: 6, cmd: 0x41, data: [1, 0x40], compare: 'bytes' },
  { what: 'Get Channel Access, volatile', netFn: 6, cmd: 0x41, data: [1, 0x80], compare: 'bytes' },
  { what: 'Get Channel Access, reserved selector', netFn: 6, cmd: 0x41, data: [1, 0x00], compare: 'bytes' },
  { what: 'Get Channel Access, short', netFn: 6, cmd: 0x41, data: [1], compare: 'bytes' },
  { what: 'Get Channel Access, system interface', netFn: 6, cmd: 0x41, data: [0x0f, 0x80], compare: { sim: 0x00, ours: 0x82, why: 'session-less channel: Table 22-22 code 0x82' } },
  { what: 'Set Channel Access, volatile', netFn: 6, cmd: 0x40, data: [1, 0x82, 0x84], compare: 'bytes' },
  { what: 'Set Channel Access, non-volatile', netFn: 6, cmd: 0x40, data: [1, 0x42, 0x44], compare: 'bytes' },
  { what: 'Set Channel Access, short', netFn: 6, cmd: 0x40, data: [1, 0x82], compare: 'bytes' },
  { what: 'Get User Access, admin', netFn: 6, cmd: 0x44, data: [1, 2], compare: 'shape' /* max users 63 vs 16; link auth from the profile */ },
  { what: 'Get User Access, user 0', netFn: 6, cmd: 0x44, data: [1, 0], compare: 'bytes' },
  { what: 'Get User Access, short', netFn: 6, cmd: 0x44, data: [1], compare: 'bytes' },
  { what: 'Set User Access, 4 bytes', netFn: 6, cmd: 0x43, data: [0xb1, 3, 4, 0], compare: 'bytes' },
  { what: 'Set User Access, 3 bytes', netFn: 6, cmd: 0x43, data: [0xb1, 3, 4], compare: 'bytes' },
  { what: 'Set User Access, 2 bytes', netFn: 6, cmd: 0x43, data: [0xb1, 3], compare: 'bytes' },
  { what: 'Set User Access, privilege 0', netFn: 6, cmd: 0x43, data: [0xb1, 3, 0], compare: 'bytes' },
  { what: 'Set User Access, privilege OEM', netFn: 6, cmd: 0x43, data: [0xb1, 3, 5, 0], compare: 'bytes' },
  { what: 'Set User Access, user 0', netFn: 6, cmd: 0x43, data: [0xb1, 0, 4, 0], compare: 'bytes' },
  { what: 'Get User Name, admin', netFn: 6, cmd: 0x46, data: [2], compare: 'bytes' },
  { what: 'Get User Name, empty slot', netFn: 6, cmd: 0x46, data: [3], compare: 'bytes' },
  { what: 'Get User Name, user 0', netFn: 6, cmd: 0x46, data: [0], compare: 'bytes' },
  { what: 'Get User Name, no data', netFn: 6, cmd: 0x46, data: [], compare: 'bytes' },
  { what: 'Get User Name, anonymous', netFn: 6, cmd: 0x46, data: [1], compare: { sim: 0xcc, ours: 0x00, why: 'most BMCs return the null name of user 1; ipmi_sim refuses it' } },
  { what: 'Set User Name', netFn: 6, cmd: 0x45, data: [3, ...padded('agent')], compare: 'bytes' },
  { what: 'Get User Name, after set', netFn: 6, cmd: 0x46, data: [3], compare: 'bytes' },
  { what: 'Set User Name, 15 name bytes', netFn: 6, cmd: 0x45, data: [3, ...padded('agent', 15)], compare: 'bytes' },
  { what: 'Set User Name, user 0', netFn: 6, cmd: 0x45, data: [0, ...padded('x')], compare: 'bytes' },
  { what: 'Set User Name, anonymous', netFn: 6, cmd: 0x45, data: [1, ...padded('x')], compare: 'bytes' },
  { what: 'Set User Password, set 16', netFn: 6, cmd: 0x47, data: [3, 2, ...padded(PW)], compare: 'bytes' },
  { what: 'Set User Password, test match', netFn: 6, cmd: 0x47, data: [3, 3, ...padded(PW)], compare: 'bytes' },
  { what: 'Set User Password, test mismatch', netFn: 6, cmd: 0x47, data: [3, 3, ...padded('wrong')], compare: { sim: 0x00, ours: 0x80, why: 'ipmi_sim accepts any password in a test (research/ipmi.md §6.3)' } },
  { what: 'Set User Password, test other size', netFn: 6, cmd: 0x47, data: [0x83, 3, ...padded(PW, 20)], compare: { sim: 0x00, ours: 0x81, why: 'ipmi_sim accepts any password in a test' } },
  { what: 'Set User Password, enable, 2 bytes', netFn: 6, cmd: 0x47, data: [3, 1], compare: 'bytes' },
  { what: 'Set User Password, enable, 18 bytes', netFn: 6, cmd: 0x47, data: [3, 1, ...padded('')], compare: 'bytes' },
  { what: 'Set User Password, disable', netFn: 6, cmd: 0x47, data: [3, 0], compare: 'bytes' },
  { what: 'Set User Password, set without password', netFn: 6, cmd: 0x47, data: [3, 2], compare: 'bytes' },
  { what: 'Set User Password, set with 3 bytes', netFn: 6, cmd: 0x47, data: [3, 2, 1, 2, 3], compare: 'bytes' },
  { what: 'Set User Password, 1 byte', netFn: 6, cmd: 0x47, data: [3], compare: 'bytes' },
  { what: 'Set User Password, set 20', netFn: 6, cmd: 0x47, data: [0x83, 2, ...padded(`${PW}-twenty`, 20)], compare: 'bytes' },
  { what: 'Get LAN Config, IP address', netFn: 0x0c, cmd: 0x02, data: [1, 3, 0, 0], compare: 'shape' },
  { what: 'Get LAN Config, MAC address', netFn: 0x0c, cmd: 0x02, data: [1, 5, 0, 0], compare: 'shape' },
  { what: 'Get LAN Config, unknown parameter', netFn: 0x0c, cmd: 0x02, data: [1, 99, 0, 0], compare: 'bytes' },
  { what: 'Get LAN Config, short', netFn: 0x0c, cmd: 0x02, data: [1, 3, 0], compare: 'bytes' },
  { what: 'Get LAN Config, revision only', netFn: 0x0c, cmd: 0x02, data: [0x81, 3, 0, 0], compare: { sim: 0xcc, ours: 0x00, why: '§23.2 byte 1 bit 7 asks for the revision only; ipmi_sim refuses the bit' } },
  { what: 'unknown App command', netFn: 6, cmd: 0x99, data: [], compare: 'bytes' },
];

describe('simulated BMC vs ipmi_sim, request by request', { skip: avail.available ? false : avail.reason }, () => {
  let sim: IpmiSim;
  let real: VmCodecTransport;
  let ours: SimulatedTransport;
  before(async () => {
    sim = await startIpmiSim();
    real = await openVmCodecTransport({ host: sim.host, port: sim.vmPort });
    ours = createSimulatedTransport({ profile: 'ipmi20' });
  });
  after(async () => {
    await ours?.close();
    await real?.close();
    await sim?.stop();
  });

  it('agrees wherever both follow the spec, and differs only where listed', async () => {
    const problems: string[] = [];
    for (const s of STEPS) {
      const a = await real.send({ netFn: s.netFn, cmd: s.cmd, data: s.data }, { timeoutMs: 5000 });
      const b = await ours.send({ netFn: s.netFn, cmd: s.cmd, data: s.data });
      const show = (r: { completionCode: number; data: Uint8Array }): string => `${r.completionCode.toString(16)} ${Buffer.from(r.data).toString('hex')}`;
      if (s.compare === 'bytes') {
        if (show(a) !== show(b)) problems.push(`${s.what}: ipmi_sim ${show(a)}, simulated ${show(b)}`);
      } else if (s.compare === 'shape') {
        if (a.completionCode !== b.completionCode || a.data.length !== b.data.length) problems.push(`${s.what}: ipmi_sim ${show(a)}, simulated ${show(b)} (shape)`);
      } else if (a.completionCode !== s.compare.sim || b.completionCode !== s.compare.ours) {
        problems.push(`${s.what}: expected ipmi_sim 0x${s.compare.sim.toString(16)} / simulated 0x${s.compare.ours.toString(16)} (${s.compare.why}), got ${show(a)} / ${show(b)}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
