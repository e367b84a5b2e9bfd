/**
 * NativeTransport and its loader without hardware: device discovery names what
 * it tried, addon problems say "not built" vs "failed to load", and OS errors
 * keep their errno/syscall through the queue. /dev/null is the character device
 * that is not IPMI (ioctls fail ENOTTY).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { constants as os, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { IpmiClosedError, IpmiRequestError, IpmiTransportError } from '../../ipmi-kcs/errors.js';
import {
  DEFAULT_DEVICE_PATHS, NativeTransport, findDevice, loadNativeAddon, nativeAvailability, openNativeTransport,
} from '../../ipmi-kcs/kcs-native.js';
import { KCS_LIMITS } from '../../ipmi-kcs/transport.js';
import { addonMissing, builtAddon } from './project.js';

const skip = addonMissing();
const GET_DEVICE_ID = { netFn: 0x06, cmd: 0x01 };

function isTransportError(code: string, check?: (e: IpmiTransportError) => void) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof IpmiTransportError, `expected IpmiTransportError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.backend, 'native');
    check?.(e);
    return true;
  };
}

describe('native device discovery', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(path.join(tmpdir(), 'kcs-native-dev-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('searches ipmitool\'s three device paths by default', () => {
    assert.deepEqual(DEFAULT_DEVICE_PATHS, ['/dev/ipmi0', '/dev/ipmi/0', '/dev/ipmidev/0']);
  });

  it('fails with ENOENT naming every path tried and the modules to load when no device exists', async () => {
    const tried = [path.join(dir, 'ipmi0'), path.join(dir, 'ipmi', '0'), path.join(dir, 'ipmidev', '0')];
    await assert.rejects(findDevice(undefined, tried), isTransportError('ENOENT', (e) => {
      for (const p of tried) assert.ok(e.message.includes(p), `message names ${p}: ${e.message}`);
      assert.match(e.message, /ipmi_devintf/);
    }));
  });

  it('on this machine without /dev/ipmi0, the default search names /dev/ipmi0, /dev/ipmi/0 and /dev/ipmidev/0', async (t) => {
    if (DEFAULT_DEVICE_PATHS.some((p) => existsSync(p))) {
      t.skip('this machine has an IPMI device node; see real-device.test.ts');
      return;
    }
    await assert.rejects(findDevice(), isTransportError('ENOENT', (e) => {
      assert.match(e.message, /tried \/dev\/ipmi0, \/dev\/ipmi\/0, \/dev\/ipmidev\/0/);
    }));
  });

  it('fails with ENOENT for a configured path that does not exist, saying it was configured', async () => {
    const p = path.join(dir, 'missing');
    await assert.rejects(findDevice(p), isTransportError('ENOENT', (e) => {
      assert.ok(e.message.includes(`${p} (configured)`), e.message);
      assert.equal(e.syscall, 'stat');
      assert.equal(e.errno, os.errno.ENOENT);
    }));
  });

  it('refuses a regular file, a directory and a FIFO with ENOTCHR, saying what the path is', async () => {
    const file = path.join(dir, 'file');
    writeFileSync(file, '');
    const sub = path.join(dir, 'dir');
    mkdirSync(sub);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const [p, type] of [[file, 'regular file'], [sub, 'directory'], [fifo, 'FIFO']]) {
      await assert.rejects(findDevice(p), isTransportError('ENOTCHR', (e) => {
        assert.ok(e.message.includes(`${p} (configured) is not a character device (it is a ${type})`), e.message);
      }));
    }
  });

  it('does not skip a default path that exists but is unusable: it says which one and why', async () => {
    const file = path.join(dir, 'ipmi0-but-a-file');
    writeFileSync(file, '');
    await assert.rejects(findDevice(undefined, [path.join(dir, 'absent'), file, '/dev/null']), isTransportError('ENOTCHR', (e) => {
      assert.ok(e.message.includes(file), e.message);
    }));
  });

  it('takes the first default path that exists', async () => {
    assert.equal(await findDevice(undefined, [path.join(dir, 'absent'), '/dev/null', '/dev/zero']), '/dev/null');
  });

  it('names EACCES when the agent may not read and write the device (checked as an unprivileged user)', async (t) => {
    // Root bypasses file permissions, so the check runs in a child as `nobody`.
    const locked = ['/dev/cpu_dma_latency', '/dev/fuse', '/dev/kmsg', '/dev/mem'].find((p) => {
      try {
        const st = statSync(p);
        return st.isCharacterDevice() && (st.mode & 0o006) !== 0o006;
      } catch {
        return false;
      }
    });
    const nobody = 65534;
    if (!locked) {
      t.skip('no character device closed to other users on this machine');
      return;
    }
    if (process.getuid?.() !== 0 && process.getuid?.() !== nobody) {
      t.skip('needs root (to run the check as nobody) or to run as nobody');
      return;
    }
    // `nobody` may not be able to read the checkout at all (a clone under /root or
    // in a 0700 `mktemp -d` directory), so what the child loads is copied into a
    // world-readable directory of its own: the compiled transport modules (with a
    // package.json saying they are ES modules) and the addon.
    const here = path.dirname(fileURLToPath(import.meta.url));
    const shared = mkdtempSync(path.join(tmpdir(), 'kcs-nobody-'));
    t.after(() => rmSync(shared, { recursive: true, force: true }));
    chmodSync(shared, 0o755);
    cpSync(path.join(here, '..', '..', 'ipmi-kcs'), path.join(shared, 'ipmi-kcs'), { recursive: true });
    writeFileSync(path.join(shared, 'package.json'), '{"type":"module"}\n');
    let addonPath = '';
    if (!skip) {
      addonPath = path.join(shared, 'ipmi_kcs.node');
      cpSync(builtAddon(), addonPath);
    }
    execFileSync('chmod', ['-R', 'a+rX', shared]);
    const moduleUrl = pathToFileURL(path.join(shared, 'ipmi-kcs', 'kcs-native.js')).href;
    const script = `
      const m = await import(${JSON.stringify(moduleUrl)});
      const out = {};
      try { await m.findDevice(${JSON.stringify(locked)}); } catch (e) { out.find = { code: e.code, message: e.message }; }
      const load = ${JSON.stringify(addonPath)} ? await m.loadNativeAddon({ addonPath: ${JSON.stringify(addonPath)} }) : { ok: false };
      if (load.ok) try { await load.addon.open(${JSON.stringify(locked)}); } catch (e) { out.open = { errno: e.errno, syscall: e.syscall }; }
      process.stdout.write(JSON.stringify(out));`;
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      uid: nobody, gid: nobody, cwd: shared, encoding: 'utf8', timeout: 20_000,
    });
    assert.equal(res.status, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { find?: { code: string; message: string }; open?: { errno: number; syscall: string } };
    assert.equal(out.find?.code, 'EACCES');
    assert.ok(out.find?.message.includes(`no read-write access to ${locked} (configured): the agent must run as root`), out.find?.message);
    if (!skip) assert.deepEqual(out.open, { errno: os.errno.EACCES, syscall: 'open' });
  });

  it('rejects an empty configured path or one containing NUL as EINVAL', async () => {
    await assert.rejects(findDevice(''), isTransportError('EINVAL'));
    await assert.rejects(findDevice('/dev/ipmi0\0'), isTransportError('EINVAL'));
  });
});

describe('native addon loading', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(path.join(tmpdir(), 'kcs-native-load-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports "addon not built" with the reason recorded by the install script', async () => {
    const root = path.join(dir, 'proj');
    mkdirSync(path.join(root, 'build'), { recursive: true });
    mkdirSync(path.join(root, 'ipmi-kcs'));
    writeFileSync(path.join(root, 'binding.gyp'), '{}');
    writeFileSync(path.join(root, 'build', 'addon-build-error.txt'), 'node-gyp rebuild failed (exit code 2): make: cc: No such file or directory\n\n--- output ---\n');
    const load = await loadNativeAddon({ searchFrom: path.join(root, 'ipmi-kcs'), env: {} });
    assert.equal(load.ok, false);
    assert.match(load.ok ? '' : load.error, /^addon not built: node-gyp rebuild failed \(exit code 2\): make: cc: No such file or directory \(see .*addon-build-error\.txt\)$/);
  });

  it('reports "addon not built" and how to build it when there is no recorded reason', async () => {
    const root = path.join(dir, 'fresh');
    mkdirSync(path.join(root, 'ipmi-kcs'), { recursive: true });
    writeFileSync(path.join(root, 'binding.gyp'), '{}');
    const load = await loadNativeAddon({ searchFrom: path.join(root, 'ipmi-kcs'), env: {} });
    assert.match(load.ok ? '' : load.error, /^addon not built: no build\/Release\/ipmi_kcs\.node under .*fresh; run `node scripts\/build-addon\.mjs`/);
  });

  it('finds the addon from the compiled layout (dist/ipmi-kcs) as well as from source (ipmi-kcs)', { skip }, async () => {
    const root = path.dirname(path.dirname(path.dirname(builtAddon())));
    for (const from of [path.join(root, 'ipmi-kcs'), path.join(root, 'dist', 'ipmi-kcs')]) {
      const load = await loadNativeAddon({ searchFrom: from, env: {} });
      assert.ok(load.ok, load.ok ? '' : load.error);
      assert.equal(load.path, builtAddon());
    }
  });

  it('honours $INBAND_AGENT_ADDON, and says when it points nowhere', async () => {
    const missing = path.join(dir, 'nope.node');
    const load = await loadNativeAddon({ env: { INBAND_AGENT_ADDON: missing } });
    assert.equal(load.ok ? '' : load.error, `addon not built: ${missing} ($INBAND_AGENT_ADDON) does not exist`);
    if (!skip) {
      const ok = await loadNativeAddon({ env: { INBAND_AGENT_ADDON: builtAddon() }, searchFrom: dir });
      assert.ok(ok.ok);
    }
  });

  it('reports "addon failed to load" with the dlopen error for a file that is not a shared object', async () => {
    const bogus = path.join(dir, 'bogus.node');
    writeFileSync(bogus, Buffer.alloc(4096, 0x2a)); // long enough for the loader to read an ELF header
    const load = await loadNativeAddon({ addonPath: bogus });
    assert.match(load.ok ? '' : load.error, /^addon failed to load: .*bogus\.node: invalid ELF header/);
  });

  it('refuses a loadable module that is not this addon', async () => {
    // require() loads a .cjs file as JavaScript: a module that loads but has the wrong shape.
    const cjs = path.join(dir, 'other.cjs');
    writeFileSync(cjs, 'module.exports = { abi: 7, open() {} };');
    const load = await loadNativeAddon({ addonPath: cjs });
    assert.match(load.ok ? '' : load.error, /^addon failed to load: .*other\.cjs is not the ipmi_kcs addon this code expects \(abi 7, expected 1\)$/);
  });

  it('openNativeTransport fails with ENOADDON carrying the loader\'s reason', async () => {
    const missing = path.join(dir, 'absent.node');
    await assert.rejects(openNativeTransport({ addonPath: missing, devicePath: '/dev/null' }), isTransportError('ENOADDON', (e) => {
      assert.ok(e.message.includes(`addon not built: ${missing}`), e.message);
    }));
  });
});

describe('native availability', () => {
  it('tells "addon missing" apart from "device missing"', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kcs-native-avail-'));
    try {
      const noAddon = await nativeAvailability({ addonPath: path.join(dir, 'x.node'), devicePath: '/dev/null' });
      assert.equal(noAddon.addonLoaded, false);
      assert.match(noAddon.addonError ?? '', /^addon not built/);
      assert.equal(noAddon.device, '/dev/null');
      assert.equal(noAddon.deviceError, undefined);

      const noDevice = await nativeAvailability({ addonPath: skip ? undefined : builtAddon(), candidates: [path.join(dir, 'ipmi0')] });
      assert.equal(noDevice.device, undefined);
      assert.match(noDevice.deviceError ?? '', /no IPMI device found; tried .*ipmi0/);
      if (!skip) {
        assert.equal(noDevice.addonLoaded, true);
        assert.equal(noDevice.addonPath, builtAddon());
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('NativeTransport on a character device that is not IPMI (/dev/null)', { skip }, () => {
  let transport: NativeTransport;
  const logged: string[] = [];
  before(async () => {
    transport = await openNativeTransport({ devicePath: '/dev/null', addonPath: builtAddon(), logger: { info: (m) => logged.push(m) } });
  });
  after(async () => { await transport?.close(); });

  it('opens with kind native, the device as description, the KCS limits, and logs the choice once', () => {
    assert.equal(transport.kind, 'native');
    assert.equal(transport.description, '/dev/null');
    assert.deepEqual(transport.limits, KCS_LIMITS);
    assert.deepEqual(logged, [`native IPMI backend: /dev/null (addon ${builtAddon()})`]);
  });

  it('rejects a request with ENOTTY, keeping errno and naming the ioctl', async () => {
    await assert.rejects(transport.send(GET_DEVICE_ID, { timeoutMs: 1000 }), isTransportError('ENOTTY', (e) => {
      assert.equal(e.errno, os.errno.ENOTTY);
      assert.equal(e.syscall, 'ioctl(IPMICTL_SEND_COMMAND)');
      assert.equal(e.message, 'native backend: /dev/null is not an IPMI device (ioctl(IPMICTL_SEND_COMMAND): Inappropriate ioctl for device) (ENOTTY)');
    }));
  });

  it('queues concurrent requests: each fails cleanly, in the order sent, and invalid or aborted ones never reach the device', async () => {
    const before = transport.stats();
    const order: string[] = [];
    const aborted = new AbortController();
    const secret = new Uint8Array(22).fill(0x53);
    const calls: Array<[string, Promise<unknown>]> = [
      ['a', transport.send(GET_DEVICE_ID)],
      ['b', transport.send({ netFn: 0x06, cmd: 0x47, data: secret })],
      ['invalid', transport.send({ netFn: 0x07, cmd: 0x01 })],
      ['c', transport.send({ netFn: 0x0c, cmd: 0x02, data: [1, 3, 0, 0], lun: 2 })],
      ['aborted', transport.send(GET_DEVICE_ID, { signal: aborted.signal })],
      ['d', transport.send(GET_DEVICE_ID)],
    ];
    aborted.abort(new Error('caller gave up'));
    const settled = await Promise.allSettled(calls.map(([name, p]) => p.finally(() => order.push(name))));
    assert.deepEqual(order, ['invalid', 'a', 'b', 'c', 'aborted', 'd']);
    settled.forEach((r, i) => {
      const name = calls[i]![0];
      assert.equal(r.status, 'rejected', name);
      const reason = (r as PromiseRejectedResult).reason;
      if (name === 'invalid') assert.ok(reason instanceof IpmiRequestError);
      else if (name === 'aborted') assert.equal(reason.message, 'caller gave up');
      else isTransportError('ENOTTY')(reason);
      assert.ok(!String(reason.message).includes('SSSS'), 'no request bytes in the message');
    });
    assert.deepEqual([...secret], new Array(22).fill(0x53), 'the caller\'s buffer is left alone');
    const after = transport.stats();
    assert.equal(after.requests - before.requests, 4);
    assert.equal(after.transportErrors - before.transportErrors, 4);
    assert.equal(after.responses, before.responses);
  });

  it('refuses more request data than KCS carries before calling the addon', async () => {
    await assert.rejects(transport.send({ netFn: 6, cmd: 1, data: new Uint8Array(KCS_LIMITS.maxRequestData + 1) }), IpmiRequestError);
  });

  it('closes idempotently; queued and later requests reject as closed', async () => {
    const t = await openNativeTransport({ devicePath: '/dev/null', addonPath: builtAddon() });
    const queued = t.send(GET_DEVICE_ID);
    await t.close();
    await t.close();
    await assert.rejects(queued, IpmiClosedError);
    await assert.rejects(t.send(GET_DEVICE_ID), IpmiClosedError);
  });
});
