/**
 * The credential service through a real Linux IPMI driver: a qemu guest whose
 * /dev/ipmi0 is ipmi_si on a KCS interface wired to a real ipmi_sim. Inside the
 * guest, node (from the host root over 9p) runs CredentialService on the native
 * backend; the host proves the credentials with `ipmitool -I lanplus`.
 * Skips visibly (naming what enables it) without qemu, ipmi_sim or the addon.
 */
import { describe, it, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordSecret } from '../helpers/secrets.js';
import { startIpmiSim, type IpmiSim, type LanplusLoginResult } from '../harness/ipmi-sim.js';
import { bootGuest, chrootCommand, CHROOT_SHARE, type GuestResult } from '../harness/qemu.js';
import { guestNode, qemuGate } from '../qemu/prerequisites.js';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const guestProgram = fileURLToPath(new URL(`./guest/set-credentials-guest${ext}`, import.meta.url));
const { skip, image } = await qemuGate();
const TITLE = 'credential service on a real /dev/ipmi0 (qemu guest, kernel KCS driver → ipmi_sim)';

interface Step { step: string; [k: string]: unknown }

if (skip) {
  test(TITLE, { skip }, () => undefined);
} else describe(TITLE, () => {
  const userName = 'svc_kcs';
  const password = recordSecret(`Kc5-${randomBytes(6).toString('base64url')}`);
  let sim: IpmiSim;
  let guest: GuestResult;
  let shareDir: string;
  let login: LanplusLoginResult | undefined;
  let adminLogin: LanplusLoginResult | undefined;
  const steps = new Map<string, Step>();

  before(async () => {
    sim = await startIpmiSim();
    shareDir = await mkdtemp(join(tmpdir(), 'inband-svc-qemu-'));
    guest = await bootGuest({
      vmPort: sim.vmPort,
      image,
      name: 'service-native',
      script: `cd /\nexec ${chrootCommand([...guestNode(import.meta.url), guestProgram, '--user', userName, '--state', `${CHROOT_SHARE}/state`])}\n`,
      shareDir,
      timeoutMs: 150_000,
      onAsk: async (what) => {
        if (what === 'secret:password') return password;
        if (what === 'check-login') {
          login = await sim.lanplusLogin(userName, password);
          adminLogin = await sim.lanplusLogin('admin', 'initpw1');
          return login.ok ? 'ok' : 'failed';
        }
        throw new Error(`unexpected request ${what}`);
      },
    });
    for (const r of guest.results as Step[]) steps.set(r.step, r);
  });
  after(async () => {
    await sim?.stop();
    if (shareDir) await rm(shareDir, { recursive: true, force: true });
  });

  const stepOf = (name: string): Step => {
    const s = steps.get(name);
    assert.ok(s, `no "${name}" step; exit ${guest.exitCode}, fatal: ${JSON.stringify(steps.get('fatal'))}; console in ${guest.logFile}`);
    return s;
  };

  it('sets a user through the kernel driver, verified in-band, that logs in over lanplus', (t) => {
    assert.equal(guest.exitCode, 0, `guest failed: ${JSON.stringify(steps.get('fatal'))}; console in ${guest.logFile}`);
    assert.equal(stepOf('recover').report, null);
    const set = stepOf('set');
    assert.equal(set.changed, true);
    assert.equal(set.slot, 'empty');
    assert.deepEqual(set.channels, [1]);
    const v = set.verified as { name: boolean; enabled: boolean; access: Record<string, boolean> };
    assert.ok(v.name && v.enabled && v.access['1'], JSON.stringify(v));
    assert.equal(login?.ok, true, `lanplus login failed: ${login?.stderr}`);
    assert.equal(adminLogin?.ok, true, 'the existing administrator still logs in');
    t.diagnostic(`fresh set-credentials through /dev/ipmi0 (qemu TCG KCS): ${set.requests} IPMI requests in ${set.ms} ms`);
  });

  it('a second identical run changes nothing; overwriting the only administrator is refused', (t) => {
    const again = stepOf('repeat');
    assert.equal(again.changed, false, JSON.stringify(again.actions));
    assert.equal(again.userId, stepOf('set').userId);
    assert.equal(stepOf('lockout').refused, true, JSON.stringify(stepOf('lockout')));
    t.diagnostic(`repeat: ${again.requests} requests in ${again.ms} ms; transport ${JSON.stringify(stepOf('stats').stats)}`);
  });

  it('keeps the password out of the guest console and the reports', () => {
    assert.ok(!guest.log.includes(password));
    assert.ok(!JSON.stringify(guest.results).includes(password));
  });
});
