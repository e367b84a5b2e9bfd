/**
 * The raw addon (build/Release/ipmi_kcs.node), without hardware: every error
 * path keeps its errno and names its syscall. /dev/null stands in for "a
 * character device that is not IPMI": the kernel answers its ioctls ENOTTY.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { constants as os } from 'node:os';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadNativeAddon, type NativeAddon } from '../../ipmi-kcs/kcs-native.js';
import { addonMissing, builtAddon } from './project.js';

const errno = os.errno;
const skip = addonMissing();

interface AddonErr { errno: number; syscall: string; code?: string; path?: string; message: string }
const asErr = (e: unknown): AddonErr => e as AddonErr;

describe('ipmi_kcs addon', { skip }, () => {
  let addon: NativeAddon;
  let dir: string;
  let server: Server | undefined;

  before(async () => {
    const load = await loadNativeAddon({ addonPath: builtAddon() });
    assert.ok(load.ok, load.ok ? '' : load.error);
    addon = load.addon;
    dir = mkdtempSync(path.join(tmpdir(), 'ipmi-kcs-addon-'));
  });
  after(async () => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exports only async open/close/request, the prctl dumpable shim, its ABI version and the kernel message limit', () => {
    assert.deepEqual(Object.keys(addon).sort(), ['abi', 'close', 'maxMessageLength', 'open', 'request', 'setDumpable']);
    assert.throws(() => (addon.setDumpable as (x: unknown) => number)('no'), TypeError);
    assert.equal(addon.abi, 1);
    assert.equal(addon.maxMessageLength, 272);
  });

  it('rejects open of a missing path with ENOENT from stat, naming the path', async () => {
    const p = path.join(dir, 'ipmi0');
    await assert.rejects(addon.open(p), (e: unknown) => {
      assert.equal(asErr(e).errno, errno.ENOENT);
      assert.equal(asErr(e).syscall, 'stat');
      assert.equal(asErr(e).path, p);
      assert.ok(asErr(e).message.includes(p));
      return true;
    });
  });

  it('rejects a regular file, a directory, a FIFO and a socket as not a character device, without opening them', async () => {
    const file = path.join(dir, 'regular');
    writeFileSync(file, 'x', { mode: 0o444 });
    const sub = path.join(dir, 'sub');
    mkdirSync(sub);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const sock = path.join(dir, 'sock');
    server = createServer();
    await new Promise<void>((resolve) => server!.listen(sock, resolve));
    const cases: Array<[string, string]> = [[file, 'regular file'], [sub, 'directory'], [fifo, 'FIFO'], [sock, 'socket']];
    for (const [p, type] of cases) {
      await assert.rejects(addon.open(p), (e: unknown) => {
        const err = asErr(e);
        assert.equal(err.code, 'ENOTCHR', p);
        assert.equal(err.errno, errno.ENODEV);
        assert.equal(err.syscall, 'stat');
        assert.equal(err.message, `'${p}' is not a character device (it is a ${type})`);
        return true;
      });
    }
  });

  it('follows symlinks and reports a dangling one as ENOENT, a loop as ELOOP, a path through a file as ENOTDIR', async () => {
    const dangling = path.join(dir, 'dangling');
    symlinkSync(path.join(dir, 'nowhere'), dangling);
    const loop = path.join(dir, 'loop');
    symlinkSync(loop, loop);
    const file = path.join(dir, 'plain');
    writeFileSync(file, '');
    for (const [p, want] of [[dangling, errno.ENOENT], [loop, errno.ELOOP], [path.join(file, 'x'), errno.ENOTDIR]] as const) {
      await assert.rejects(addon.open(p), (e: unknown) => {
        assert.equal(asErr(e).errno, want, p);
        assert.equal(asErr(e).syscall, 'stat');
        return true;
      });
    }
  });

  it('opens /dev/null (a character device) and the first ioctl fails with ENOTTY, naming IPMICTL_SEND_COMMAND', async () => {
    const fd = await addon.open('/dev/null');
    try {
      assert.ok(Number.isInteger(fd) && fd > 2);
      await assert.rejects(addon.request(fd, 1, 0x06, 0, 0x01, new Uint8Array(0), 1000), (e: unknown) => {
        const err = asErr(e);
        assert.equal(err.errno, errno.ENOTTY);
        assert.equal(err.syscall, 'ioctl(IPMICTL_SEND_COMMAND)');
        assert.equal(err.code, undefined, 'errno is named by TypeScript, not by C');
        return true;
      });
    } finally {
      await addon.close(fd);
    }
  });

  it('reports EBADF for a request or close on an fd that is not open', async () => {
    // Far above anything this process opens, so it cannot have been reused.
    const fd = 999_999;
    await assert.rejects(addon.request(fd, 2, 0x06, 0, 0x01, new Uint8Array(0), 1000), (e: unknown) => {
      assert.equal(asErr(e).errno, errno.EBADF);
      assert.equal(asErr(e).syscall, 'ioctl(IPMICTL_SEND_COMMAND)');
      return true;
    });
    await assert.rejects(addon.close(fd), (e: unknown) => asErr(e).errno === errno.EBADF && asErr(e).syscall === 'close');
  });

  it('rejects malformed arguments with a TypeError (never a crash, never a synchronous throw)', async () => {
    const bad: Array<() => Promise<unknown>> = [
      () => (addon.open as (p: unknown) => Promise<number>)(42),
      () => addon.open(''),
      () => addon.open('/dev/null\0x'),
      () => addon.close(-1),
      () => addon.request(0, -1, 6, 0, 1, new Uint8Array(0), 1),
      () => addon.request(0, 2 ** 31, 6, 0, 1, new Uint8Array(0), 1),
      () => addon.request(0, 1, 0x40, 0, 1, new Uint8Array(0), 1),
      () => addon.request(0, 1, 6, 4, 1, new Uint8Array(0), 1),
      () => addon.request(0, 1, 6, 0, 256, new Uint8Array(0), 1),
      () => addon.request(0, 1, 6, 0, 1.5, new Uint8Array(0), 1),
      () => addon.request(0, 1, 6, 0, 1, new Uint16Array(1) as unknown as Uint8Array, 1),
      () => addon.request(0, 1, 6, 0, 1, [1, 2] as unknown as Uint8Array, 1),
      () => addon.request(0, 1, 6, 0, 1, new Uint8Array(273), 1),
      () => addon.request(0, 1, 6, 0, 1, new Uint8Array(0), -1),
      () => (addon.request as (...a: unknown[]) => Promise<unknown>)(0, 1, 6),
    ];
    for (const [i, call] of bad.entries()) {
      let p: Promise<unknown> | undefined;
      assert.doesNotThrow(() => { p = call(); }, `case ${i}`);
      await assert.rejects(p!, (e: unknown) => {
        assert.ok(e instanceof TypeError, `case ${i}: ${String(e)}`);
        assert.equal((e as { code?: string }).code, 'ERR_INVALID_ARG_VALUE');
        return true;
      });
    }
  });

  it('runs requests concurrently on worker threads without mixing up their results', async () => {
    const fds = await Promise.all(Array.from({ length: 8 }, () => addon.open('/dev/null')));
    const results = await Promise.allSettled(fds.map((fd, i) => addon.request(fd, i + 1, 6, 0, 1, new Uint8Array([i]), 500)));
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal(asErr((r as PromiseRejectedResult).reason).errno, errno.ENOTTY);
    }
    await Promise.all(fds.map((fd) => addon.close(fd)));
    assert.equal(new Set(fds).size, fds.length);
  });
});
