/**
 * Parsing ipmitool's shell output, sealed from any process: the formats below
 * are what ipmitool 1.8.19's `raw` printed against ipmi_sim (success: data in
 * hex without the completion code; failure: one "Unable to send RAW command"
 * line carrying rsp=0xNN).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IpmiTransportError } from '../../ipmi-kcs/errors.js';
import { IpmitoolTransport, parseRawOutput, rawLine, resolveProgram, startupError } from '../../ipmi-kcs/ipmitool-pty.js';

describe('ipmitool raw output parsing', () => {
  it('reads data bytes after the echoed line, completion code 0', () => {
    const out = 'raw 0x06 0x01\r\n 00 03 09 08 02 9f 91 12 00 02 0f 00 00 00 00\r\n';
    const r = parseRawOutput(out);
    assert.deepEqual(r.kind === 'response' && { cc: r.completionCode, data: [...r.data] },
      { cc: 0, data: [0x00, 0x03, 0x09, 0x08, 0x02, 0x9f, 0x91, 0x12, 0x00, 0x02, 0x0f, 0, 0, 0, 0] });
  });

  it('joins data printed over several 16-byte lines', () => {
    const line = (n: number): string => ' ' + Array.from({ length: n }, (_, i) => i.toString(16).padStart(2, '0')).join(' ');
    const r = parseRawOutput(`raw 0x06 0x46 0x02\r\n${line(16)}\r\n${line(4)}\r\n`);
    assert.ok(r.kind === 'response');
    assert.equal(r.data.length, 20);
  });

  it('treats an empty answer as success with no data (e.g. Set User Name)', () => {
    const r = parseRawOutput('raw 0x06 0x45 0x03 0x41\r\n\r\n');
    assert.deepEqual(r.kind === 'response' && { cc: r.completionCode, n: r.data.length }, { cc: 0, n: 0 });
  });

  it('takes the completion code from "Unable to send RAW command … rsp=0xNN"', () => {
    const r = parseRawOutput('raw 0x06 0x99\r\nUnable to send RAW command (channel=0x0 netfn=0x6 lun=0x0 cmd=0x99 rsp=0xc1): Invalid command\r\n');
    assert.deepEqual(r.kind === 'response' && { cc: r.completionCode, n: r.data.length }, { cc: 0xc1, n: 0 });
  });

  it('reports "Unable to send RAW command" without rsp as no response', () => {
    assert.deepEqual(parseRawOutput('raw 0x06 0x01\r\nUnable to send RAW command (channel=0x0 netfn=0x6 lun=0x0 cmd=0x1)\r\n'), { kind: 'no-response' });
  });

  it('never returns the echoed raw line in unparsed text', () => {
    const r = parseRawOutput('raw 0x06 0x47 0x05 0x02 0x53 0x33\r\nsomething unexpected\r\n');
    assert.equal(r.kind, 'unparsed');
    assert.ok(r.kind === 'unparsed' && !r.text.includes('0x53'));
  });

  it('ignores terminal escape sequences readline may emit', () => {
    const r = parseRawOutput('\x1b[?2004lraw 0x06 0x01\r\n 01 02\r\n\x1b[?2004h');
    assert.ok(r.kind === 'response');
    assert.deepEqual([...r.data], [1, 2]);
  });
});

describe('ipmitool raw line', () => {
  it('writes netFn, cmd and data as 0xNN tokens', () => {
    assert.equal(rawLine({ netFn: 6, cmd: 0x45, data: Uint8Array.from([3, 0xa0, 0xaa, 0]) }), 'raw 0x06 0x45 0x03 0xa0 0xaa 0x00');
    assert.equal(rawLine({ netFn: 0x0c, cmd: 2, data: new Uint8Array(0) }), 'raw 0x0c 0x02');
  });
});

describe('ipmitool start-up errors', () => {
  it('maps "Could not open device" to the errno of its reason, naming the device', () => {
    const e = startupError('Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0: No such file or directory\r\n', ['-I', 'open']);
    assert.equal(e.code, 'ENOENT');
    assert.match(e.message, /\/dev\/ipmi0/);
    assert.equal(startupError('Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0: Permission denied', []).code, 'EACCES');
    assert.equal(startupError('Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0: Device or resource busy', []).code, 'EBUSY');
  });

  it('maps a failed lanplus login to EACCES', () => {
    assert.equal(startupError('Error: Unable to establish IPMI v2 / RMCP+ session\r\n', ['-I', 'lanplus']).code, 'EACCES');
  });

  it('reports anything else as EIO with the interface name', () => {
    const e = startupError('ipmitool: unknown interface\r\n', ['-I', 'bogus']);
    assert.equal(e.code, 'EIO');
    assert.match(e.message, /bogus/);
  });
});

describe('ipmitool program lookup', () => {
  it('finds a program in PATH and refuses a missing one with ENOENT', () => {
    assert.equal(resolveProgram('sh', '/nonexistent-dir:/bin'), '/bin/sh');
    assert.throws(() => resolveProgram('ipmitool', '/nonexistent-dir'), (err: unknown) => err instanceof IpmiTransportError && err.code === 'ENOENT');
    assert.throws(() => resolveProgram('/nonexistent-dir/ipmitool'), (err: unknown) => err instanceof IpmiTransportError && err.code === 'ENOENT' && /install the ipmitool package/.test(err.message));
  });

  it('refuses -P in the arguments: a password there would be visible in /proc/<pid>/cmdline', () => {
    assert.throws(() => new IpmitoolTransport({ args: ['-I', 'lanplus', '-U', 'u', '-P', 'x'] }), (err: unknown) => err instanceof IpmiTransportError && err.code === 'EINVAL');
  });
});
