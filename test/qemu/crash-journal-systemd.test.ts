/**
 * The crash journal survives what it exists for (issue #11 item 6), under the
 * real unit and a real systemd: the qemu guest boots systemd 252 (the host's
 * /lib/systemd/systemd) as PID 1 on an overlay root over the host's, with the
 * release artifact installed the way an image builder installs it (the
 * shipped inband-agent.service byte for byte, agent.json, the launcher and the
 * bundled runtime), and a driver unit (guest/crash-journal-driver.ts) that
 * kills the agent with `systemctl kill -s SIGKILL` in the middle of
 * bmc.set_credentials.
 *
 * Mid-way is exact: a proxy on the VM-codec link (../harness/vm-codec-proxy.ts)
 * swallows the first Set User Password (§22.30 op 2), so the BMC holds the new
 * user's name and nothing after it; ipmi_sim's own user table shows that
 * state before the kill. After Restart=on-failure brought the agent back, the
 * same table and an out-of-band RMCP+ login show the slot as it was before.
 *
 * The only drop-in is RestartSec=1s (the shipped 5 s only makes the test
 * wait). The unit's modules-load.d file is not installed: /init has loaded the
 * IPMI drivers from the guest kernel's own modules, which the host root lacks.
 */
import { describe, it, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { recordSecret } from '../helpers/secrets.js';
import { sh } from '../harness/e2e.js';
import { LANPLUS_CIPHER_SUITE } from '../harness/lanplus.js';
import { IPMITOOL_PATH, startIpmiSim, type IpmiSim, type LanplusLoginResult, type StoredUser } from '../harness/ipmi-sim.js';
import { bootGuest, PROJECT_ROOT, type GuestResult } from '../harness/qemu.js';
import { VmCodecProxy, type TracedRequest } from '../harness/vm-codec-proxy.js';
import { installArtifactForGuest, type InstalledArtifact } from './artifact-root.js';
import { guestNode, qemuGate } from './prerequisites.js';

const DRIVER = `dist/test/qemu/guest/crash-journal-driver.js`;
const { skip, image } = await qemuGate([DRIVER], { artifact: true, systemd: true });
const TITLE = 'crash journal under the shipped unit: systemd as PID 1 in the qemu guest, the agent SIGKILLed mid-change (real ipmi_si → ipmi_sim)';
const TARGET = 'inband-crash.target';
/**
 * What the test does not need to boot: under TCG, systemd-tmpfiles-setup alone
 * walks the host root over 9p for about a minute; udev is not needed (devtmpfs
 * made /dev/ipmi0), nor timers, D-Bus (systemctl talks to PID 1's private
 * socket), clock, random seed or utmp.
 */
const MASK = [
  'systemd-tmpfiles-setup.service', 'systemd-tmpfiles-setup-dev.service', 'systemd-tmpfiles-clean.timer',
  'systemd-udevd.service', 'systemd-udev-trigger.service', 'systemd-update-utmp.service', 'systemd-random-seed.service',
  'systemd-journal-flush.service', 'systemd-pstore.service', 'systemd-timesyncd.service', 'systemd-binfmt.service',
  'proc-sys-fs-binfmt_misc.automount', 'systemd-firstboot.service', 'systemd-sysusers.service', 'systemd-repart.service',
  'systemd-remount-fs.service', 'dbus.socket', 'timers.target', 'systemd-sysctl.service', 'kmod-static-nodes.service',
  'sys-kernel-config.mount', 'sys-kernel-debug.mount', 'sys-kernel-tracing.mount', 'sys-fs-fuse-connections.mount',
  'dev-hugepages.mount', 'dev-mqueue.mount', 'systemd-machine-id-commit.service', 'systemd-pcrphase-sysinit.service',
  'systemd-pcrphase.service',
];

type Step = Record<string, unknown> & { step: string };
interface UnitState { MainPID: number; NRestarts: number; ActiveState: string; Result: string; InvocationID: string }

/** One row of `ipmitool user list`: the name, and the whole row with its access columns. */
interface ListedUser { name: string; row: string }

/**
 * `ipmitool -I lanplus user list 1` as the administrator: the BMC's live user
 * table, out of band. The password goes through the environment (-E).
 */
function lanplusUserList(sim: IpmiSim, user: string, password: string): Promise<Map<number, ListedUser>> {
  const args = ['-I', 'lanplus', '-C', LANPLUS_CIPHER_SUITE, '-H', sim.host, '-p', String(sim.lanPort), '-U', user, '-E', '-N', '1', '-R', '2', 'user', 'list', '1'];
  return new Promise((resolve, reject) => {
    execFile(IPMITOOL_PATH, args, { timeout: 20_000, env: { PATH: '/usr/bin:/bin', LANG: 'C', IPMI_PASSWORD: password } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`ipmitool user list: ${String(stderr).trim().slice(0, 300)}`));
      // "ID  Name  Callin  Link Auth  IPMI Msg  Channel Priv Limit"; an empty name leaves the column blank.
      const users = new Map<number, ListedUser>();
      for (const line of String(stdout).split('\n').slice(1)) {
        // ipmitool prints "%-4d%-17s": the name column is fixed-width (and blank for an empty slot).
        const id = /^(\d+)\s/.exec(line);
        if (id) users.set(Number(id[1]), { name: line.slice(4, 20).trim(), row: line.trim().replace(/\s+/g, ' ') });
      }
      resolve(users);
    });
  });
}

if (skip) {
  test(TITLE, { skip }, () => undefined);
} else describe(TITLE, () => {
  const userName = 'crashuser';
  const password = recordSecret(`Cj-${randomBytes(6).toString('base64url')}`);
  let sim: IpmiSim;
  let proxy: VmCodecProxy;
  let installed: InstalledArtifact;
  let guest: GuestResult;
  let adminBefore: LanplusLoginResult;
  let newBefore: LanplusLoginResult;
  /** ipmi_sim's user table while the change was held half-way. */
  let usersMidway: Map<number, StoredUser> | undefined;
  let usersAfter: Map<number, StoredUser> | undefined;
  let listBefore: Map<number, ListedUser>;
  let listMidway: Map<number, ListedUser> | undefined;
  let listAfter: Map<number, ListedUser> | undefined;
  let adminAfter: LanplusLoginResult | undefined;
  let newAfter: LanplusLoginResult | undefined;
  let newAgain: LanplusLoginResult | undefined;
  let hostError: string | undefined;
  let testMs = 0;

  const step = (name: string): Step | undefined => (guest.results as Step[]).find((r) => r.step === name);
  const mustStep = (name: string): Step => {
    const s = step(name);
    assert.ok(s, `the driver reported no "${name}" step (${JSON.stringify(step('error') ?? null)}); console in ${guest.logFile}`);
    return s;
  };
  /** The slot the change went to: the one Set User Password was held for. */
  const slot = (): number => {
    assert.ok(proxy.held?.userId, `no Set User Password was held; console in ${guest.logFile}`);
    return proxy.held.userId;
  };

  before(async () => {
    const t0 = performance.now();
    installed = await installArtifactForGuest();
    sim = await startIpmiSim({ persist: true });
    proxy = await VmCodecProxy.start({
      upstreamPort: sim.vmPort,
      holdWhen: (r: Readonly<TracedRequest>) => r.netFn === 0x06 && r.cmd === 0x47 && r.passwordOp === 2,
    });
    adminBefore = await sim.lanplusLogin('admin', 'initpw1');
    newBefore = await sim.lanplusLogin(userName, password);
    listBefore = await lanplusUserList(sim, 'admin', 'initpw1');

    // Resolved on the host: an absolute symlink on the way (.cache may be one) would point outside $SYSROOT in the initramfs.
    const root = realpathSync(installed.root);
    const sys = '/etc/systemd/system';
    const driverUnit = [
      '[Unit]',
      'Description=inband-agent crash-journal test driver',
      '[Service]',
      'Type=oneshot',
      // The console is the protocol with the host (test/harness/qemu.ts); systemd reset its echo.
      'StandardInput=tty', 'StandardOutput=tty', 'StandardError=tty', 'TTYPath=/dev/ttyS0',
      'ExecStartPre=/bin/stty -echo',
      'Environment=NO_COLOR=1 LANG=C.UTF-8',
      `ExecStart=${[...guestNode(import.meta.url), join(PROJECT_ROOT, DRIVER)].join(' ')}`,
      // A driver that cannot even start must not leave the guest running until the host's timeout.
      'FailureAction=poweroff-force',
      '',
    ].join('\n');
    const targetUnit = ['[Unit]', 'Description=inband-agent crash-journal test', `Wants=inband-crash-driver.service`, ''].join('\n');
    const dropIn = ['# Test only: the restart comes after 1 s instead of the shipped 5 s.', '[Service]', 'RestartSec=1s', ''].join('\n');
    const put = (path: string, text: string): string => `cat > "$SYSROOT${path}" <<'INBAND_EOF'\n${text}INBAND_EOF`;
    // Runs in the initramfs, with the overlay root at $SYSROOT: installs what install.sh laid out in `root`.
    const script = [
      'set -e',
      `R="$SYSROOT"${sh(root)}`,
      'cp "$R/usr/lib/systemd/system/inband-agent.service" "$SYSROOT/usr/lib/systemd/system/inband-agent.service"',
      'cp "$R/usr/bin/inband-agent" "$SYSROOT/usr/bin/inband-agent"',
      // The bundled runtime stays on the host (a bind mount, not a copy into the guest's RAM).
      'mkdir -p "$SYSROOT/usr/lib/inband-agent" && mount -o bind "$R/usr/lib/inband-agent" "$SYSROOT/usr/lib/inband-agent"',
      'mkdir -p "$SYSROOT/etc/inband-agent" "$SYSROOT/etc/default"',
      'cp -p "$R/etc/inband-agent/agent.json" "$SYSROOT/etc/inband-agent/agent.json"',
      'cp -p "$R/etc/default/inband-agent" "$SYSROOT/etc/default/inband-agent"',
      `mkdir -p "$SYSROOT${sys}/inband-agent.service.d"`,
      put(`${sys}/inband-agent.service.d/restart-sec.conf`, dropIn),
      put(`${sys}/inband-crash-driver.service`, driverUnit),
      put(`${sys}/${TARGET}`, targetUnit),
      '',
    ].join('\n');

    guest = await bootGuest({
      vmPort: proxy.port,
      image,
      name: 'crash-journal-systemd',
      script,
      systemd: { unit: TARGET, mask: MASK },
      memoryMb: 1024,
      timeoutMs: 300_000,
      onAsk: async (what) => {
        try {
          switch (what) {
            case 'secret:password': return password;
            case 'wait-held': {
              const held = await proxy.waitHeld(120_000);
              if (!held) return 'not-held';
              // ipmi_sim writes its table on a ~1 s tick: the name must be there before the kill.
              usersMidway = await sim.waitForStoredUsers((u) => u.get(held.userId ?? -1)?.name === userName, 10_000).catch(() => sim.storedUsers());
              // Out of band too. Not during the hold: ipmi_sim answers the LAN while the system interface waits.
              listMidway = await lanplusUserList(sim, 'admin', 'initpw1');
              return 'held';
            }
            case 'release': proxy.release(); return 'released';
            case 'verify-rollback':
              listAfter = await lanplusUserList(sim, 'admin', 'initpw1');
              usersAfter = await sim.waitForStoredUsers((u) => (u.get(proxy.held?.userId ?? -1)?.name ?? '') === '', 10_000).catch(() => sim.storedUsers());
              adminAfter = await sim.lanplusLogin('admin', 'initpw1');
              newAfter = await sim.lanplusLogin(userName, password);
              return 'done';
            case 'verify-again':
              newAgain = await sim.lanplusLogin(userName, password);
              return 'done';
            default: throw new Error(`unexpected request ${what}`);
          }
        } catch (err) {
          hostError = err instanceof Error ? err.message : String(err);
          return 'error';
        }
      },
    });
    testMs = Math.round(performance.now() - t0);
  });

  after(async () => {
    await proxy?.close();
    await sim?.stop();
    await installed?.remove();
  });

  const ready = (): void => {
    assert.equal(guest.timedOut, false, `guest timed out; console in ${guest.logFile}`);
    assert.equal(hostError, undefined, `${hostError}; console in ${guest.logFile}`);
    assert.equal(step('error'), undefined, `the driver failed: ${JSON.stringify(step('error'))}; console in ${guest.logFile}`);
    assert.equal(guest.exitCode, 0, `the driver exited ${guest.exitCode}; console in ${guest.logFile}`);
  };

  it('boots systemd as PID 1 and runs the agent from the shipped unit, installed unchanged', (t) => {
    ready();
    assert.equal(readFileSync(join(installed.root, 'usr/lib/systemd/system/inband-agent.service'), 'utf8'),
      readFileSync(join(PROJECT_ROOT, 'systemd/inband-agent.service'), 'utf8'), 'the installed unit differs from systemd/inband-agent.service');
    const up = mustStep('agent-up');
    assert.equal((up.unit as UnitState).ActiveState, 'active');
    assert.match(guest.log, /IPMI backend: native \(\/dev\/ipmi0\)/, 'the agent did not use the guest\'s /dev/ipmi0');
    const driver = mustStep('driver-start');
    assert.equal(driver.virtualization, 'qemu', 'systemd knows it runs in a VM (not a container)');
    const systemdUptime = Number(/@@inband:systemd (\S+)/.exec(guest.log)?.[1]);
    const execStart = Number(driver.execStartUptime);
    t.diagnostic(`guest uptime: systemd exec'd at ${systemdUptime} s, started the test's driver unit at ${execStart.toFixed(2)} s ` +
      `(systemd boot to the test target under TCG: ${(execStart - systemdUptime).toFixed(2)} s); the agent's API answered at ${String(up.uptime)} s`);
    t.diagnostic(`whole test ${testMs} ms (qemu ${guest.timings.totalMs} ms; artifact ${installed.timings.ensureMs + installed.timings.installMs} ms)`);
  });

  it('kills the agent half-way: the BMC holds the new name, not yet the password; the journal is on disk', () => {
    ready();
    const uid = slot();
    const nameWrite = proxy.trace.find((r) => r.cmd === 0x45 && r.userId === uid);
    assert.ok(nameWrite?.forwarded && nameWrite.completionCode === 0, 'Set User Name reached the BMC before the hold');
    assert.ok(nameWrite.t < proxy.held!.t);
    assert.equal(usersMidway?.get(uid)?.name, userName, 'ipmi_sim held the new name while the change was stopped');
    assert.equal(listMidway?.get(uid)?.name, userName, 'out of band, the BMC listed the new name while the change was stopped');
    assert.equal(listBefore.get(uid)?.name, '', 'the slot was empty before');
    const held = mustStep('held');
    const journal = held.journal as { username?: string; pid?: number; prior?: { userId?: number; name?: string } };
    assert.equal(journal.username, userName);
    assert.equal(journal.prior?.userId, uid);
    assert.equal(journal.pid, ((mustStep('agent-up').unit) as UnitState).MainPID);
    const killed = mustStep('killed');
    assert.equal(killed.exit, 0);
    assert.equal(killed.journalSurvives, true, 'the journal is still in the StateDirectory after the kill');
  });

  it('systemd restarts the killed agent (Restart=on-failure): NRestarts, a new MainPID and invocation', () => {
    ready();
    const first = mustStep('agent-up').unit as UnitState;
    const restarted = mustStep('restarted').unit as UnitState;
    assert.equal(first.NRestarts, 0);
    assert.equal(restarted.NRestarts, 1);
    assert.notEqual(restarted.MainPID, first.MainPID);
    assert.notEqual(restarted.InvocationID, first.InvocationID);
    assert.equal(restarted.ActiveState, 'active');
  });

  it('the restarted agent finds the journal and rolls back; the StateDirectory survived, the RuntimeDirectory was recreated', () => {
    ready();
    const first = mustStep('agent-up').unit as UnitState;
    const rec = mustStep('recovered');
    assert.match(String(rec.recoveryLine), new RegExp(`an interrupted credential change from pid ${first.MainPID} on user ${slot()} was found: rolled-back`));
    assert.equal(rec.journalLeft, false, 'the journal is removed after the roll-back');
    const markers = rec.markers as { state: boolean; runtime: boolean };
    assert.equal(markers.state, true, 'a file in /var/lib/inband-agent (StateDirectory=) survives the restart');
    assert.equal(markers.runtime, false, '/run/inband-agent (RuntimeDirectory=) is removed on stop and recreated');
    const [before, after] = [rec.dirsBefore, rec.dirsAfter] as Array<{ state: number; runtime: number }>;
    assert.equal(after!.state, before!.state, 'the same /var/lib/inband-agent, not a new one');
    // tmpfs numbers inodes from a counter: a directory made again gets a new number.
    assert.notEqual(after!.runtime, before!.runtime, 'a new /run/inband-agent');
  });

  it('the BMC slot is back as it was: ipmi_sim\'s table, and out of band the old administrator logs in and the new user does not', (t) => {
    ready();
    const uid = slot();
    const name = (r: TracedRequest): string => ({ 0x43: 'Set User Access', 0x45: 'Set User Name', 0x47: `Set User Password op ${r.passwordOp}` } as Record<number, string>)[r.cmd] ?? `cmd 0x${r.cmd.toString(16)}`;
    /** The writes to the slot in trace[from, to), in order (Test Password, a read, left out). */
    const writes = (from: number, to: number): string => proxy.trace.slice(from, to)
      .filter((r) => r.netFn === 0x06 && [0x43, 0x45, 0x47].includes(r.cmd) && r.userId === uid && r.passwordOp !== 3)
      .map((r) => `${name(r)}${r.forwarded ? ` (cc 0x${(r.completionCode ?? 0xff).toString(16)})` : ' (swallowed)'}`).join(', ');
    const first = proxy.trace.findIndex((r) => r.cmd === 0x45 && r.userId === uid);
    const resumed = proxy.trace.findIndex((r, i) => i > proxy.trace.indexOf(proxy.held!) && r.forwarded);
    // The roll-back's last write to the slot is its name (undoFor); the next change starts after it.
    const cleared = proxy.trace.findIndex((r, i) => i >= resumed && r.cmd === 0x45 && r.userId === uid);
    t.diagnostic(`user ${uid} before the kill: ${writes(first, resumed)}`);
    t.diagnostic(`user ${uid} written by the restarted agent's roll-back: ${writes(resumed, cleared + 1)}`);
    assert.ok(usersAfter && listAfter, 'the host read the BMC after the roll-back');
    // Every row (name, callin, link auth, IPMI messaging, privilege limit) as before the change.
    // One documented exception (service/plan.ts undoFor): a privilege limit of 0 read before is
    // reserved and cannot be written (§22.26), so the slot gets no-access (0xF) back.
    const expected = new Map([...listBefore].map(([id, u]) => [id, id === uid ? { ...u, row: u.row.replace(/Unknown \(0x00\)$/, 'NO ACCESS') } : u]));
    assert.deepEqual([...listAfter], [...expected], 'out of band, `user list` shows the table as before the change');
    assert.equal(listAfter.get(uid)?.name, '', `user ${uid} is listed without a name again`);
    // ipmi_sim writes its table file only after a first change, so there is no "before" file: the
    // slot is empty again and the administrator untouched in what the BMC itself stored.
    assert.equal(usersAfter.get(uid)?.name ?? '', '', `ipmi_sim stores user ${uid} without a name again`);
    assert.equal(usersAfter.get(2)?.name, 'admin');
    assert.equal(adminBefore.ok, true);
    assert.equal(adminAfter?.ok, true, `the administrator's old credential still logs in: ${adminAfter?.stderr}`);
    assert.equal(newBefore.ok, false);
    assert.equal(newAfter?.ok, false, 'the half-made user does not log in');
  });

  it('the restarted agent takes the next change, which then works out of band', () => {
    ready();
    const again = mustStep('again');
    assert.equal(again.command_status, 'SUCCEEDED', JSON.stringify(again.command_error));
    assert.equal(newAgain?.ok, true, `lanplus login with the user set after the restart failed: ${newAgain?.stderr}`);
  });

  it('keeps the password out of the console and the agent\'s journal', () => {
    assert.ok(!guest.log.includes(password), 'the password appeared on the console (or in the agent log printed there)');
  });
});
