/**
 * The release artifact on a real kernel driver (issue #5 item 3): the tarball
 * from scripts/package.mjs, installed with its own `install.sh --root DIR`,
 * runs inside the qemu guest (see native-kcs.test.ts for the set-up) as an
 * image builder would ship it — `DIR/usr/bin/inband-agent`, its bundled Node
 * runtime and native addon. It picks its backend by itself (auto → native,
 * because /dev/ipmi0 exists and the addon loads), shows the BMC (`bmc info`)
 * and creates a user (`set-credentials --password-stdin`); the host then logs
 * in with that user over RMCP+, and compares the guest's `user list` with
 * `ipmitool user list` over LAN. The console log keeps the backend choice.
 *
 * Under TCG most of the time here is node loading the CLI's modules (~7 s per
 * command); the IPMI traffic itself takes milliseconds. */
import { describe, it, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordSecret } from '../helpers/secrets.js';
import { IPMITOOL_PATH, startIpmiSim, type IpmiSim, type LanplusLoginResult } from '../harness/ipmi-sim.js';
import { LANPLUS_CIPHER_SUITE } from '../harness/lanplus.js';
import { bootGuest, chrootCommand, type GuestResult } from '../harness/qemu.js';
import { installArtifactForGuest, type InstalledArtifact } from './artifact-root.js';
import { qemuGate } from './prerequisites.js';

const { skip, image } = await qemuGate(['dist/agent/cli.js'], { artifact: true });
const TITLE = 'release artifact\'s inband-agent CLI through a real Linux IPMI driver (qemu guest, KCS → ipmi_sim)';

interface Step {
  step: string;
  exit: number;
  start: number;
  end: number;
}

if (skip) {
  test(TITLE, { skip }, () => undefined);
} else describe(TITLE, () => {
  const userName = 'cliagent';
  const password = recordSecret(`Ca-${randomBytes(6).toString('base64url')}`);
  let sim: IpmiSim;
  let installed: InstalledArtifact;
  let guest: GuestResult;
  let shareDir: string;
  let loginBefore: LanplusLoginResult;
  let login: LanplusLoginResult;
  let referenceUsers = '';
  const steps = new Map<string, Step>();
  const json = async (name: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(join(shareDir, name), 'utf8')) as Record<string, unknown>;

  before(async () => {
    installed = await installArtifactForGuest();
    sim = await startIpmiSim();
    shareDir = await mkdtemp(join(tmpdir(), 'inband-qemu-share-'));
    loginBefore = await sim.lanplusLogin(userName, password);
    // set-credentials journals under --state-dir: the installed tree is the host's root, read-only
    // over 9p, where a real ramdisk's /var/lib is its own tmpfs; here the guest's tmpfs is /run.
    const agent = (...args: string[]): string => chrootCommand([installed.launcher, ...args, '--log-level', 'info']);
    // stdout (JSON) to the share, stderr (the agent's log) to the console log.
    const run = (step: string, out: string, line: string): string[] => [
      't0=$(up)',
      `${line} > /share/${out}`,
      `echo "@@inband:result {\\"step\\":\\"${step}\\",\\"exit\\":$?,\\"start\\":$t0,\\"end\\":$(up)}"`,
    ];
    const script = [
      'cd /',
      "up() { cut -d' ' -f1 /proc/uptime; }",
      ...run('bmc-info', 'info.json', agent('bmc', 'info', '--json')),
      // The agent reads the first line of its stdin, the console, where the host answers (never echoed).
      'echo "@@inband:ask secret:password"',
      // The console is a terminal, where --password-stdin prompts and asks again to confirm; the host
      // answers once, so the line reaches the agent through a pipe (head reads it; no variable, no argv).
      ...run('set-credentials', 'set.json', `head -n 1 | ${agent('set-credentials', '--username', userName, '--password-stdin', '--json', '--state-dir', '/run/inband-agent')}`),
      // ipmitool's habit on the kernel driver; the host compares it with ipmitool over LAN.
      ...run('user-list', 'users.txt', agent('user', 'list')),
      '',
    ].join('\n');
    guest = await bootGuest({
      vmPort: sim.vmPort,
      image,
      name: 'agent-cli',
      script,
      shareDir,
      timeoutMs: 150_000,
      onAsk: (what) => {
        if (what === 'secret:password') return password;
        throw new Error(`unexpected request ${what}`);
      },
    });
    for (const r of guest.results as Step[]) steps.set(r.step, r);
    login = await sim.lanplusLogin(userName, password);
    const ref = spawnSync(IPMITOOL_PATH, ['-I', 'lanplus', '-C', LANPLUS_CIPHER_SUITE, '-H', sim.host, '-p', String(sim.lanPort), '-U', 'admin', '-E', '-N', '1', '-R', '2', 'user', 'list', '1'], {
      encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', IPMI_PASSWORD: 'initpw1' }, timeout: 20_000,
    });
    referenceUsers = ref.status === 0 ? ref.stdout : `ipmitool failed: ${ref.stderr}`;
  });

  after(async () => {
    await sim?.stop();
    await installed?.remove();
    if (shareDir) await rm(shareDir, { recursive: true, force: true });
  });

  const stepOf = (name: string): Step => {
    const s = steps.get(name);
    assert.ok(s, `the guest reported no "${name}" step (exit ${guest.exitCode}); console in ${guest.logFile}`);
    return s;
  };
  const secs = (s: Step): string => `${Math.round((s.end - s.start) * 1000)} ms`;

  it('chooses the native backend by itself because the guest has /dev/ipmi0, and says so in its log', (t) => {
    assert.equal(guest.timedOut, false, `guest timed out; console in ${guest.logFile}`);
    assert.ok(guest.ipmiReady, `/dev/ipmi0 never appeared; console in ${guest.logFile}`);
    assert.match(guest.log, /IPMI backend: native \(\/dev\/ipmi0\); auto: IPMI device \/dev\/ipmi0 found and the native addon loaded/);
    const { sizes } = installed.artifact.manifest;
    t.diagnostic(`artifact ${installed.artifact.name}: tarball ${sizes.tarball} bytes, unpacked ${sizes.unpacked} bytes; ${installed.artifact.reused ? 'reused' : 'built'} in ${installed.timings.ensureMs} ms, installed in ${installed.timings.installMs} ms`);
  });

  it('shows the BMC behind the kernel driver (bmc info)', async (t) => {
    const step = stepOf('bmc-info');
    assert.equal(step.exit, 0, `bmc info failed; console in ${guest.logFile}`);
    const info = await json('info.json');
    const device = info.device as Record<string, unknown>;
    // ipmi_sim's bmc.emu: manufacturer 0x001291, product 0x0f02, IPMI 2.0.
    assert.equal(device.manufacturer_id, 0x1291);
    assert.equal(device.product_id, 0x0f02);
    assert.equal(info.ipmi_version, '2.0');
    assert.equal(info.backend, 'native', 'a real BMC is named as such');
    assert.equal(info.warnings, undefined, 'and carries no simulated-BMC note');
    assert.ok((info.lan_channels as Array<{ channel: number }>).some((c) => c.channel === 1), 'LAN channel 1');
    t.diagnostic(`bmc info in the guest: ${secs(step)} (node start and module loading under TCG included)`);
  });

  it('creates a user with set-credentials that the host then logs in with over RMCP+ (lanplus)', async (t) => {
    assert.equal(loginBefore.ok, false, 'the user must not work before the agent created it');
    const step = stepOf('set-credentials');
    assert.equal(step.exit, 0, `set-credentials failed; console in ${guest.logFile}`);
    const result = await json('set.json');
    assert.equal(result.username, userName);
    assert.equal(result.changed, true);
    assert.equal(result.backend, 'native');
    assert.equal((result.verified as Record<string, unknown>).password_test, 'passed');
    assert.equal(login.ok, true, `lanplus login with the credentials the agent set failed: ${login.stderr}`);
    t.diagnostic(`set-credentials in the guest: ${secs(step)}, ${String(result.requests)} IPMI requests; user ${String(result.user_id)} on channel(s) ${JSON.stringify(result.channels)}`);
  });

  it('user list on /dev/ipmi0 prints exactly what ipmitool user list prints over LAN on the same BMC', async () => {
    const step = stepOf('user-list');
    assert.equal(step.exit, 0, `user list failed; console in ${guest.logFile}`);
    const ours = await readFile(join(shareDir, 'users.txt'), 'utf8');
    assert.match(ours, new RegExp(`^\\d+ +${userName} +true `, 'm'), 'the user set-credentials created is listed');
    assert.equal(ours, referenceUsers);
  });

  it('keeps the password out of the console and the agent\'s output', async () => {
    assert.ok(!guest.log.includes(password), 'the password appeared on the serial console');
    assert.ok(!(await readFile(join(shareDir, 'set.json'), 'utf8')).includes(password), 'the password appeared in the result');
  });
});
