/**
 * The native backend on a real kernel driver: a qemu guest whose /dev/ipmi0 is
 * the Linux ipmi_si/ipmi_devintf stack on a KCS interface wired to a real
 * ipmi_sim. Inside the guest, node (from the host root over 9p) opens the
 * native transport, reads the Device ID and creates a user in-band; the host
 * proves the credentials over RMCP+; then the host stops the BMC mid-run and
 * the transport must time out, not hang, and work again once the BMC is back.
 * Before that, the same guest runs the suites that need a real device (the
 * transport contract suite and test/native/real-device) against /dev/ipmi0.
 * One boot serves every check (a TCG boot costs ~6 s).
 *
 * Needs qemu-system-x86 and busybox-static (Debian), ipmi_sim and ipmitool,
 * the built addon, and apt access for the kernel on first run. Missing
 * prerequisites skip the suite visibly; INBAND_REQUIRE_QEMU=1 (CI) fails instead.
 */
import { describe, it, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordSecret } from '../helpers/secrets.js';
import { startIpmiSim, type IpmiSim, type LanplusLoginResult } from '../harness/ipmi-sim.js';
import { bootGuest, chrootCommand, CHROOT_SHARE, PROJECT_ROOT, type GuestResult } from '../harness/qemu.js';
import { guestNode, qemuGate } from './prerequisites.js';

// Run from source (tsx) the guest runs the .ts files through tsx too; compiled, the .js next to this file.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const inTree = (rel: string): string => fileURLToPath(new URL(`${rel}${ext}`, import.meta.url));
const guestProgram = inTree('./guest/native-kcs-guest');
/** The suites that need a real IPMI device, run inside the guest against its /dev/ipmi0. */
const deviceSuites = [inTree('../contract/native.contract.test'), inTree('../native/real-device.test')];
const nodeArgs = guestNode(import.meta.url);
/** Slot the contract suite names and clears again; the guest program takes the first free one (3). */
const CONTRACT_SLOT = 9;

const { skip, image } = await qemuGate();

interface Step {
  step: string;
  [k: string]: unknown;
}

const TITLE = 'native transport through a real Linux IPMI driver (qemu guest, KCS → ipmi_sim)';

if (skip) {
  // A skipped test (not a skipped suite) so the run's summary counts it.
  test(TITLE, { skip }, () => undefined);
} else describe(TITLE, () => {
  const userName = 'kcsnative';
  const password = recordSecret(`Kn-${randomBytes(6).toString('base64url')}`);
  let sim: IpmiSim;
  let guest: GuestResult;
  let login: LanplusLoginResult | undefined;
  let wrongLogin: LanplusLoginResult | undefined;
  let loginBefore: LanplusLoginResult | undefined;
  const steps = new Map<string, Step>();

  let shareDir: string;
  let tap = '';

  before(async () => {
    sim = await startIpmiSim();
    shareDir = await mkdtemp(join(tmpdir(), 'inband-qemu-share-'));
    loginBefore = await sim.lanplusLogin(userName, password);
    // One boot: first the device-gated suites on a clean BMC, then the program that ends with the fault.
    const script = [
      'cd /',
      chrootCommand([...nodeArgs, '--test', '--test-reporter=spec', '--test-reporter-destination=stdout',
        '--test-reporter=tap', `--test-reporter-destination=${CHROOT_SHARE}/device-suites.tap`, ...deviceSuites], {
        env: { INBAND_TEST_NATIVE_DEVICE: '1', INBAND_TEST_NATIVE_FREE_SLOT: String(CONTRACT_SLOT), INBAND_TEST_NATIVE_LAN_CHANNEL: '1' },
      }),
      'echo "@@inband:result {\\"step\\":\\"device-suites\\",\\"exit\\":$?}"',
      `exec ${chrootCommand([...nodeArgs, guestProgram, '--user', userName])}`,
      '',
    ].join('\n');
    guest = await bootGuest({
      vmPort: sim.vmPort,
      image,
      name: 'native-kcs',
      script,
      shareDir,
      timeoutMs: 150_000,
      onAsk: async (what) => {
        switch (what) {
          case 'secret:password': return password;
          case 'pause-bmc':
            // Prove the new user while the BMC still answers, then stop it under the guest's feet.
            login = await sim.lanplusLogin(userName, password);
            wrongLogin = await sim.lanplusLogin(userName, `${password}x`);
            sim.pause();
            return 'paused';
          case 'resume-bmc':
            sim.resume();
            return 'resumed';
          default: throw new Error(`unexpected request ${what}`);
        }
      },
    });
    for (const r of guest.results as Step[]) steps.set(r.step, r);
    tap = await readFile(join(shareDir, 'device-suites.tap'), 'utf8').catch(() => '');
  });

  after(async () => {
    await sim?.stop();
    if (shareDir) await rm(shareDir, { recursive: true, force: true });
  });

  const stepOf = (name: string): Step => {
    const s = steps.get(name);
    assert.ok(s, `the guest reported no "${name}" step; exit ${guest.exitCode}, fatal: ${JSON.stringify(steps.get('fatal'))}; console in ${guest.logFile}`);
    return s;
  };

  it('boots, and the guest kernel binds ipmi_si to the KCS interface behind /dev/ipmi0', (t) => {
    assert.equal(guest.timedOut, false, `guest timed out; console in ${guest.logFile}`);
    assert.ok(guest.ipmiReady, `/dev/ipmi0 never appeared; console in ${guest.logFile}`);
    assert.ok(guest.dmesgIpmi.some((l) => /ipmi_si .*IPMI kcs interface initialized/.test(l)), guest.dmesgIpmi.join('\n'));
    assert.ok(guest.dmesgIpmi.some((l) => /Found new BMC \(man_id: 0x001291/.test(l)), 'ipmi_si did not find ipmi_sim (manufacturer 0x001291)');
    assert.equal(guest.exitCode, 0, `guest program failed: ${JSON.stringify(steps.get('fatal'))}; console in ${guest.logFile}`);
    const { timings, image: img } = guest;
    t.diagnostic(`kernel ${img.kernel.package} ${img.kernel.version}; fetch ${img.timings.fetchKernelMs} ms${img.timings.downloaded ? ' (downloaded)' : ' (cached)'}, initramfs ${img.timings.buildInitrdMs} ms (${img.timings.initrdBytes} bytes)`);
    t.diagnostic(`qemu start → /dev/ipmi0: ${timings.ipmiReadyMs} ms (guest uptime ${timings.guestUptimeAtIpmiReady} s); host root ${timings.hostRootMs} ms; guest done ${timings.exitMs} ms; qemu total ${timings.totalMs} ms`);
  });

  it('opens the native backend on the guest\'s /dev/ipmi0 and reads the Device ID (§20.1)', (t) => {
    const open = stepOf('open');
    assert.equal(open.kind, 'native');
    assert.equal(open.device, '/dev/ipmi0');
    const devid = stepOf('get-device-id');
    assert.equal(devid.completionCode, 0);
    const data = Buffer.from(String(devid.data), 'hex');
    // ipmi_sim's bmc.emu: device 0x00, IPMI 2.0 (0x02), manufacturer 0x001291 (little-endian), product 0x0f02.
    assert.equal(data[4], 0x02, 'IPMI version byte');
    assert.equal(data.readUIntLE(6, 3), 0x001291, 'manufacturer ID');
    assert.equal(data.readUInt16LE(9), 0x0f02, 'product ID');
    t.diagnostic(`Get Device ID through the kernel driver: ${devid.ms} ms`);
  });

  it('creates a user in-band that the host then logs in with over RMCP+ (lanplus)', (t) => {
    assert.equal(loginBefore?.ok, false, 'the user must not work before the guest created it');
    const created = stepOf('create-user');
    assert.deepEqual(created.readBack, { name: userName, privilege: 4 });
    assert.ok(login, 'the guest never asked the host to check the credentials');
    assert.equal(login.ok, true, `lanplus login with the new credentials failed: ${login.stderr}`);
    assert.equal(wrongLogin?.ok, false, 'a wrong password must be refused');
    t.diagnostic(`slot ${created.slot} on LAN channel ${created.channel}; per command ms ${JSON.stringify(created.timings)}; whole creation ${created.totalMs} ms (includes the host's answer)`);
  });

  it('reports a timeout, not a hang, when the BMC stops answering mid-run', (t) => {
    const stopped = stepOf('bmc-stopped');
    assert.equal(stopped.host, 'paused');
    // The transport's own timeout, or the completion code the kernel/qemu path gives a lost response.
    const ok = stopped.timeout === true || [0xc3, 0xff].includes(stopped.completionCode as number);
    assert.ok(ok, `expected IpmiTimeoutError or completion code 0xC3/0xFF, got ${JSON.stringify(stopped)}`);
    t.diagnostic(`with the BMC stopped: ${stopped.error ?? `completion code 0x${Number(stopped.completionCode).toString(16)}`} after ${stopped.elapsedMs} ms (timeout ${stopped.timeoutMs} ms)`);
  });

  it('answers the next request correctly once the BMC is back (a late response is not taken for it)', (t) => {
    const resumed = stepOf('bmc-resumed');
    assert.equal(resumed.host, 'resumed');
    assert.equal(resumed.completionCode, 0, JSON.stringify(resumed));
    const data = Buffer.from(String(resumed.data), 'hex');
    assert.equal(data.readUIntLE(6, 3), 0x001291);
    assert.equal(data[4], 0x02, 'IPMI version byte: this must be a Get Device ID response, not the late Get User Name one');
    t.diagnostic(`after resume: Get Device ID in ${resumed.elapsedMs} ms; stats ${JSON.stringify(resumed.stats)}; transport debug: ${JSON.stringify(resumed.debug)}`);
  });

  it('passes the transport contract suite and the real-device suite against the guest\'s /dev/ipmi0', (t) => {
    const suites = stepOf('device-suites');
    const count = (k: string): number => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(tap)?.[1] ?? NaN);
    const failed = tap.split('\n').filter((l) => /^\s*not ok /.test(l));
    assert.ok(tap, `no TAP from the guest (exit ${suites.exit}); console in ${guest.logFile}`);
    assert.deepEqual(failed, [], `failures in the guest; console in ${guest.logFile}`);
    assert.equal(suites.exit, 0);
    assert.ok(count('pass') > 0, 'nothing passed');
    // Only the stall case may skip: ipmi_sim is stopped from the host by the fault test below instead.
    assert.ok(count('skipped') <= 1, `${count('skipped')} skipped: the suites did not see the device?`);
    t.diagnostic(`in the guest: ${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped (${deviceSuites.map((f) => f.replace(`${PROJECT_ROOT}/`, '')).join(', ')})`);
  });

  it('keeps the password out of the guest console', () => {
    assert.ok(!guest.log.includes(password), 'the password appeared on the serial console');
  });
});
