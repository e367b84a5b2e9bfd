/**
 * VM serial codec framing, sealed from any BMC: escaping, checksum, frame
 * splitting and control messages, byte for byte as ipmi_sim's
 * lanserv/serial_ipmi.c and qemu's hw/ipmi/ipmi_bmc_extern.c use them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  VmControl, VmFrameDecoder, decodeVmResponse, encodeVmControl, encodeVmRequest, vmChecksum, vmEscape,
} from '../../ipmi-kcs/vm-codec.js';

const req = (netFn: number, cmd: number, data: number[] = [], lun = 0) => ({ netFn, cmd, lun, data: Uint8Array.from(data) });
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('vm-codec checksum', () => {
  it('is the two\'s complement of the byte sum, so a frame sums to 0 mod 256 (§13.8)', () => {
    assert.equal(vmChecksum([0x01, 0x18, 0x01]), 0xe6);
    assert.equal(vmChecksum([]), 0);
    assert.equal(vmChecksum([0x00]), 0);
    assert.equal(vmChecksum([0xff, 0x01]), 0);
    const bytes = [0x07, 0x1c, 0x01, 0x00, 0x20, 0x81, 0xaa];
    assert.equal((bytes.reduce((a, b) => a + b, 0) + vmChecksum(bytes)) & 0xff, 0);
  });
});

describe('vm-codec escaping', () => {
  it('escapes 0xA0, 0xA1 and 0xAA as 0xAA, byte|0x10 and leaves other bytes alone', () => {
    assert.equal(hex(vmEscape([0xa0, 0xa1, 0xaa])), 'aab0aab1aaba');
    assert.equal(hex(vmEscape([0x00, 0x9f, 0xa2, 0xa9, 0xab, 0xb0, 0xff])), '009fa2a9abb0ff');
    assert.equal(hex(vmEscape([])), '');
  });

  it('round-trips every byte value through escape and the decoder', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const frames = new VmFrameDecoder().push(Uint8Array.from([...vmEscape(all), 0xa0]));
    assert.equal(frames.length, 1);
    const f = frames[0]!;
    assert.ok(f.type === 'message');
    assert.deepEqual([...f.bytes], [...all]);
  });
});

describe('vm-codec request encoding', () => {
  it('encodes Get Device ID with seq 1 as 01 18 01 E6 A0', () => {
    assert.equal(hex(encodeVmRequest(1, req(0x06, 0x01))), '011801e6a0');
  });

  it('puts the LUN in the low two bits of the netFn byte', () => {
    assert.equal(hex(encodeVmRequest(2, req(0x0a, 0x10, [], 3))).slice(0, 6), '022b10');
  });

  it('computes the checksum before escaping and escapes data, seq and checksum alike', () => {
    // seq 0xA0 and data A1 AA: the checksum covers the raw bytes.
    const raw = [0xa0, 0x18, 0x45, 0x05, 0xa1, 0xaa];
    const csum = vmChecksum(raw);
    const frame = encodeVmRequest(0xa0, req(0x06, 0x45, [0x05, 0xa1, 0xaa]));
    assert.equal(frame[frame.length - 1], 0xa0, 'ends with the message end byte');
    assert.equal(frame.filter((b) => b === 0xa0).length, 1, 'no unescaped end byte inside');
    const [decoded] = new VmFrameDecoder().push(frame);
    assert.ok(decoded && decoded.type === 'message');
    assert.deepEqual([...decoded.bytes], [...raw, csum]);
  });
});

describe('vm-codec control messages', () => {
  it('encodes version and capabilities as qemu sends them on connect', () => {
    assert.equal(hex(encodeVmControl([VmControl.VERSION, 1])), 'ff01a1');
    assert.equal(hex(encodeVmControl([VmControl.CAPABILITIES, 0x14])), '0814a1');
    assert.equal(hex(encodeVmControl([VmControl.RESET])), '04a1');
  });

  it('decodes the sim\'s greeting FF 01 A1 00 A1 as two control frames', () => {
    const frames = new VmFrameDecoder().push(Uint8Array.from([0xff, 0x01, 0xa1, 0x00, 0xa1]));
    assert.deepEqual(frames.map((f) => (f.type === 'overflow' ? f : { type: f.type, bytes: hex(f.bytes) })), [
      { type: 'control', bytes: 'ff01' },
      { type: 'control', bytes: '00' },
    ]);
  });

  it('escapes a control argument that is a framing byte', () => {
    assert.equal(hex(encodeVmControl([VmControl.CAPABILITIES, 0xaa])), '08aabaa1');
  });
});

describe('vm-codec frame decoder', () => {
  it('reassembles frames split across chunks, including a split escape pair', () => {
    const d = new VmFrameDecoder();
    assert.deepEqual(d.push(Uint8Array.from([0x01, 0x1c, 0x01, 0xaa])), []);
    const frames = d.push(Uint8Array.from([0xb0, 0x42, 0xa0, 0x02]));
    assert.equal(frames.length, 1);
    assert.ok(frames[0]!.type === 'message');
    assert.equal(hex(frames[0]!.bytes), '011c01a042');
    const rest = d.push(Uint8Array.from([0x1c, 0xa0]));
    assert.ok(rest[0]!.type === 'message');
    assert.equal(hex(rest[0]!.bytes), '021c');
  });

  it('ignores empty frames (back-to-back end bytes)', () => {
    assert.deepEqual(new VmFrameDecoder().push(Uint8Array.from([0xa0, 0xa0, 0xa1])), []);
  });

  it('ends a frame at an end byte even right after an escape byte, as ipmi_sim does', () => {
    const frames = new VmFrameDecoder().push(Uint8Array.from([0x05, 0xaa, 0xa0, 0x06, 0xa0]));
    assert.equal(frames.length, 2);
    assert.ok(frames[0]!.type === 'message' && frames[1]!.type === 'message');
    assert.equal(hex(frames[0]!.bytes), '05');
    assert.equal(hex(frames[1]!.bytes), '06', 'the escape did not leak into the next frame');
  });

  it('clears bit 4 of any escaped byte, not just the three special ones', () => {
    const [f] = new VmFrameDecoder().push(Uint8Array.from([0xaa, 0x51, 0xa0]));
    assert.ok(f && f.type === 'message');
    assert.equal(hex(f.bytes), '41');
  });

  it('reports an over-long frame as overflow and recovers for the next one', () => {
    const d = new VmFrameDecoder();
    const frames = d.push(Uint8Array.from([...new Array(5000).fill(0x11), 0xa0, 0x01, 0xa0]));
    assert.equal(frames.length, 2);
    assert.deepEqual(frames[0], { type: 'overflow', length: 5000 });
    assert.ok(frames[1]!.type === 'message');
  });
});

describe('vm-codec response decoding', () => {
  const body = (bytes: number[]): Uint8Array => Uint8Array.from([...bytes, vmChecksum(bytes)]);

  it('splits seq, netFn, LUN, cmd, completion code and data', () => {
    const rsp = decodeVmResponse(body([0x07, 0x1d, 0x01, 0x00, 0x20, 0x81]));
    assert.deepEqual(rsp && { ...rsp, data: [...rsp.data] }, { seq: 7, netFn: 0x07, lun: 1, cmd: 0x01, completionCode: 0, data: [0x20, 0x81] });
  });

  it('rejects a frame with a bad checksum', () => {
    const good = body([0x07, 0x1c, 0x01, 0x00]);
    good[good.length - 1] = good[good.length - 1]! ^ 0x01;
    assert.equal(decodeVmResponse(good), undefined);
  });

  it('rejects frames too short to hold a completion code', () => {
    assert.equal(decodeVmResponse(body([0x07, 0x1c, 0x01])), undefined);
    assert.equal(decodeVmResponse(Uint8Array.from([0x00])), undefined);
  });
});
