/**
 * IpmitoolTransport against a scripted stand-in for ipmitool's shell (injected
 * through `spawnPty`), for what the real ipmitool does only slowly or rarely:
 * "no response" after its own 10 s wait, dying mid-request, unexpected text.
 * The real ipmitool is exercised in live.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IpmiTransportError } from '../../ipmi-kcs/errors.js';
import { IPMITOOL_PROMPT, openIpmitoolTransport, type PtyProcess, type PtySpawn } from '../../ipmi-kcs/ipmitool-pty.js';

type Script = (line: string, shell: FakeShell) => void;

class FakeShell implements PtyProcess {
  static nextPid = 100000;
  readonly pid = FakeShell.nextPid++;
  #data: Array<(d: string) => void> = [];
  #exit: Array<(e: { exitCode: number; signal?: number }) => void> = [];
  #typed = '';
  killed = false;
  constructor(readonly script: Script, readonly args: string[], greet: string | null) {
    setImmediate(() => (greet === null ? this.exit(1) : this.emit(greet)));
  }
  emit(d: string): void {
    for (const l of this.#data) l(d);
  }
  exit(code: number): void {
    for (const l of this.#exit) l({ exitCode: code });
  }
  write(data: string): void {
    this.#typed += data;
    let i: number;
    while ((i = this.#typed.indexOf('\r')) >= 0) {
      const line = this.#typed.slice(0, i);
      this.#typed = this.#typed.slice(i + 1);
      this.emit(`${line}\r\n`); // readline's echo
      if (line === 'exit') {
        setImmediate(() => this.exit(0));
        continue;
      }
      setImmediate(() => this.script(line, this));
    }
  }
  kill(): void {
    this.killed = true;
    setImmediate(() => this.exit(137));
  }
  onData(l: (d: string) => void): { dispose(): void } {
    this.#data.push(l);
    return { dispose: () => undefined };
  }
  onExit(l: (e: { exitCode: number; signal?: number }) => void): { dispose(): void } {
    this.#exit.push(l);
    return { dispose: () => undefined };
  }
}

function spawner(script: Script, greet: string | null = IPMITOOL_PROMPT): { spawn: PtySpawn; shells: FakeShell[] } {
  const shells: FakeShell[] = [];
  return {
    shells,
    spawn: (_file, args) => {
      const s = new FakeShell(script, args, greet);
      shells.push(s);
      return s;
    },
  };
}

const ok = (data: string): Script => (_line, sh) => sh.emit(`${data}\r\n${IPMITOOL_PROMPT}`);

describe('IpmitoolTransport with a scripted shell', () => {
  it('types "raw" lines ending in CR and skips the echo', async () => {
    const typed: string[] = [];
    const { spawn } = spawner((line, sh) => {
      typed.push(line);
      sh.emit(` 01 02 03\r\n${IPMITOOL_PROMPT}`);
    });
    const t = await openIpmitoolTransport({ ipmitoolPath: '/bin/sh', spawnPty: spawn });
    const rsp = await t.send({ netFn: 6, cmd: 0x46, data: [2] });
    assert.deepEqual([...rsp.data], [1, 2, 3]);
    assert.deepEqual(typed, ['raw 0x06 0x46 0x02']);
    await t.close();
  });

  it('passes the interface arguments followed by "shell"', async () => {
    const { spawn, shells } = spawner(ok(''));
    const t = await openIpmitoolTransport({ ipmitoolPath: '/bin/sh', args: ['-I', 'open', '-d', '1'], spawnPty: spawn });
    assert.deepEqual(shells[0]!.args, ['-I', 'open', '-d', '1', 'shell']);
    await t.close();
  });

  it('kills the shell when ipmitool reports no response, and starts a new one for the next request', async () => {
    let n = 0;
    const { spawn, shells } = spawner((line, sh) => {
      if (n++ === 0) sh.emit(`Unable to send RAW command (channel=0x0 netfn=0x6 lun=0x0 cmd=0x1)\r\n${IPMITOOL_PROMPT}`);
      else sh.emit(` 00\r\n${IPMITOOL_PROMPT}`);
    });
    const t = await openIpmitoolTransport({ ipmitoolPath: '/bin/sh', spawnPty: spawn });
    await assert.rejects(t.send({ netFn: 6, cmd: 1 }), (err: unknown) => err instanceof IpmiTransportError && err.code === 'ETIMEDOUT');
    assert.equal(shells[0]!.killed, true);
    assert.equal((await t.send({ netFn: 6, cmd: 1 })).completionCode, 0);
    assert.equal(shells.length, 2);
    await t.close();
  });

  it('restarts an idle LAN shell before its session can have expired on the BMC', async () => {
    const { spawn, shells } = spawner(ok(' 00'));
    const t = await openIpmitoolTransport({ ipmitoolPath: '/bin/sh', args: ['-I', 'lanplus', '-H', '127.0.0.1'], sessionIdleRestartMs: 20, spawnPty: spawn });
    await t.send({ netFn: 6, cmd: 1 });
    await t.send({ netFn: 6, cmd: 1 });
    assert.equal(shells.length, 1, 'back-to-back requests share a shell');
    await new Promise((r) => setTimeout(r, 60));
    await t.send({ netFn: 6, cmd: 1 });
    assert.equal(shells.length, 2);
    assert.equal(shells[0]!.killed, true);
    await t.close();
  });

  it('rejects with EPIPE when the shell dies mid-request, without the typed line in the message', async () => {
    const { spawn } = spawner((_line, sh) => sh.exit(1));
    const t = await openIpmitoolTransport({ ipmitoolPath: '/bin/sh', spawnPty: spawn });
    await assert.rejects(t.send({ netFn: 6, cmd: 0x47, data: [5, 2, 0x53, 0x33, 0x63] }), (err: unknown) => {
      assert.ok(err instanceof IpmiTransportError);
      assert.equal(err.code, 'EPIPE');
      assert.ok(!err.message.includes('0x53'));
      return true;
    });
    await t.close();
  });

  it('rejects unexpected output as EPROTO without echoing the request', async () => {
    const { spawn } = spawner((_line, sh) => sh.emit(`Given data is malformed\r\n${IPMITOOL_PROMPT}`));
    const t = await openIpmitoolTransport({ ipmitoolPath: '/bin/sh', spawnPty: spawn });
    await assert.rejects(t.send({ netFn: 6, cmd: 0x47, data: [5, 2, 0x53] }), (err: unknown) => {
      assert.ok(err instanceof IpmiTransportError);
      assert.equal(err.code, 'EPROTO');
      assert.match(err.message, /malformed/);
      assert.ok(!err.message.includes('raw'));
      return true;
    });
    await t.close();
  });

  it('truncates an answer longer than the limit', async () => {
    const line = Array.from({ length: 20 }, () => ' 11').join('');
    const { spawn } = spawner(ok(line));
    const t = await openIpmitoolTransport({ ipmitoolPath: '/bin/sh', spawnPty: spawn, limits: { maxRequestData: 38, maxResponseData: 8 } });
    const rsp = await t.send({ netFn: 6, cmd: 1 });
    assert.equal(rsp.truncated, true);
    assert.equal(rsp.data.length, 8);
    await t.close();
  });

  it('fails to open with ETIMEDOUT when the shell never prompts', async () => {
    const { spawn, shells } = spawner(ok(''), '');
    await assert.rejects(openIpmitoolTransport({ ipmitoolPath: '/bin/sh', spawnPty: spawn, startTimeoutMs: 50 }), (err: unknown) => err instanceof IpmiTransportError && err.code === 'ETIMEDOUT');
    assert.equal(shells[0]!.killed, true);
  });

  it('ends the shell with "exit" on close()', async () => {
    const { spawn, shells } = spawner(ok(''));
    const t = await openIpmitoolTransport({ ipmitoolPath: '/bin/sh', spawnPty: spawn });
    await t.close();
    assert.equal(shells[0]!.killed, false, 'it left by itself');
    assert.equal(t.shellPid, undefined);
  });
});
