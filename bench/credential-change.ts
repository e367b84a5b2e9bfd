/**
 * A complete credential change, ours beside the ipmitool sequence an operator
 * (or the removed inspector feature) would run, on the same BMC, alternating
 * A/B for N rounds (see change-runners.ts for both sides):
 *
 * 1. host, real ipmi_sim: `inband-agent set-credentials` as a process through
 *    the VM-codec backend (ipmi_sim's system interface) vs `ipmitool -I lanplus
 *    -C 3` (session password through -E); then the step alone in a running
 *    daemon (`bmc.set_credentials` over HTTP) vs the same ipmitool sequence —
 *    ipmi_sim takes one VM-codec client at a time, so the CLI and the daemon
 *    cannot share a phase;
 * 2. qemu guest (guest-driver.ts): the same through the guest kernel's real
 *    /dev/ipmi0 — native backend vs `ipmitool -I open` — when the qemu harness
 *    and the native addon are usable.
 *
 * Each of ours creates a new user in a free slot (a fresh change: full scan,
 * every write, verify); ipmitool rewrites one slot it was given, as it cannot
 * choose one by itself.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startIpmiSim, ipmiSimAvailability } from '../test/harness/ipmi-sim.js';
import { alternate, cliVersion, ipmitoolSequence, nodeFloor, oursCli, oursDaemon, type IpmitoolTarget } from './change-runners.js';
import { freePort, projectRoot, waitAnswering, stop } from './daemon.js';
import { summarize, type Row, type Summary } from './lib.js';

const ADMIN = { name: 'admin', password: 'Bench-admin-01' };
export const IPMITOOL_SEQUENCE = 'ipmitool, 5 processes (set name, set password, enable, channel setaccess, test)';
/** The slot ipmitool rewrites each round (ours take free slots from 3 up). */
export const IPMITOOL_SLOT = 40;

export interface PhaseFigures { ours: Summary; ipmitool: Summary; samples: { ours: number[]; ipmitool: number[] } }

export function phase(s: { a: number[]; b: number[] }): PhaseFigures {
  return { ours: summarize(s.a), ipmitool: summarize(s.b), samples: { ours: s.a, ipmitool: s.b } };
}

export function changeRow(section: string, what: string, ours: string, peer: string, f: PhaseFigures, extra = ''): Row {
  const mm = (s: Summary): string => `min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)}`;
  return { section, what: `${what}, median of ${f.ours.n} A/B rounds`, ours, oursValue: f.ours.median, peer, peerValue: f.ipmitool.median, unit: 'ms', better: 'lower',
    note: `ours ${mm(f.ours)}; ipmitool ${mm(f.ipmitool)}${extra}` };
}

export async function benchCredentialChangeHost(opts: { quick?: boolean } = {}): Promise<{ rows: Row[]; raw: unknown }> {
  if (!ipmiSimAvailability().available) {
    console.log('credential-change bench: ipmi_sim not available; skipped');
    return { rows: [], raw: { skipped: 'ipmi_sim not available' } };
  }
  const rounds = opts.quick ? 3 : 10;
  const root = projectRoot();
  const stateDir = mkdtempSync(join(tmpdir(), 'inband-bench-change-'));
  const sim = await startIpmiSim({ users: [{ id: 2, name: ADMIN.name, password: ADMIN.password, privilege: 'admin' }] });
  const tool: IpmitoolTarget = { args: ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.lanPort), '-U', ADMIN.name, '-E'], env: { ...process.env, IPMI_PASSWORD: ADMIN.password } };
  const backend = ['--backend', 'vm-codec', '--vm-codec', `${sim.host}:${sim.vmPort}`];
  let channel = 1;
  const requests: number[] = [];
  const floor: number[] = [];
  const version: number[] = [];
  try {
    const cli = phase(await alternate(rounds, async (i) => {
      const r = await oursCli(root, backend, stateDir, `cli${i}`, `Bench-pw-c${i}`);
      channel = r.channels[0] ?? channel;
      requests.push(r.requests);
      floor.push(await nodeFloor());
      version.push(await cliVersion(root));
      return r.ms;
    }, (i) => ipmitoolSequence(tool, IPMITOOL_SLOT, channel, `tool${i}`, `Bench-pw-c${i}`)));

    const port = await freePort();
    const t0 = performance.now();
    const daemon = spawn(process.execPath, [join(root, 'bin', 'inband-agent.js'), 'serve', '--standalone', ...backend,
      '--listen-host', '127.0.0.1', '--listen-port', String(port), '--state-dir', stateDir], { stdio: 'ignore' });
    let step: PhaseFigures;
    try {
      await waitAnswering(port, daemon, t0);
      step = phase(await alternate(rounds, async (i) => (await oursDaemon(port, `api${i}`, `Bench-pw-d${i}`)).ms,
        (i) => ipmitoolSequence(tool, IPMITOOL_SLOT, channel, `tool${i}`, `Bench-pw-d${i}`)));
    } finally {
      await stop(daemon);
    }
    const section = 'credential change (host, ipmi_sim)';
    const peer = `${IPMITOOL_SEQUENCE}, -I lanplus -C 3`;
    return {
      rows: [
        changeRow(section, 'complete change', 'inband-agent set-credentials process (vm-codec; scan, write, verify)', peer, cli, `; ours ${Math.round(summarize(requests).median)} IPMI requests; a bare \`node -e 0\` takes ${summarize(floor).median.toFixed(0)} ms here, \`inband-agent --version\` ${summarize(version).median.toFixed(0)} ms`),
        changeRow(section, 'the step in a running daemon', 'bmc.set_credentials over HTTP, wait=true (vm-codec)', peer, step),
      ],
      raw: { rounds, cli, step, requests, nodeFloor: floor, cliVersion: version },
    };
  } finally {
    await sim.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

interface GuestStep { step: string; a?: number[]; b?: number[]; requests?: number[]; nodeFloor?: number[]; cliVersion?: number[]; samples?: number[]; rps?: number; startMs?: number; message?: string }

/** The same comparison inside the qemu guest, native backend vs `ipmitool -I open` on the guest's /dev/ipmi0. */
export async function benchCredentialChangeGuest(opts: { quick?: boolean } = {}): Promise<{ rows: Row[]; raw: unknown }> {
  const root = projectRoot();
  const { qemuAvailability, prepareGuestImage, bootGuest, chrootCommand } = await import('../test/harness/qemu.js');
  const why = !qemuAvailability().available ? qemuAvailability().reason
    : !ipmiSimAvailability().available ? ipmiSimAvailability().reason
      : !existsSync(join(root, 'build', 'Release', 'ipmi_kcs.node')) ? 'the native addon is not built (build/Release/ipmi_kcs.node)'
        : !existsSync(join(root, 'dist', 'bench', 'guest-driver.js')) ? 'dist/bench/guest-driver.js is missing (npm run build)' : '';
  if (why) {
    console.log(`credential-change bench, guest: skipped (${why})`);
    return { rows: [], raw: { skipped: why } };
  }
  let image;
  try {
    image = await prepareGuestImage();
  } catch (e) {
    console.log(`credential-change bench, guest: skipped (${(e as Error).message})`);
    return { rows: [], raw: { skipped: (e as Error).message } };
  }
  const rounds = opts.quick ? 2 : 4;
  const sim = await startIpmiSim({ users: [{ id: 2, name: ADMIN.name, password: ADMIN.password, privilege: 'admin' }] });
  const base = `Gb-${randomBytes(5).toString('hex')}-`;
  try {
    const script = [
      'cd /',
      `exec ${chrootCommand([process.execPath, join(root, 'dist', 'bench', 'guest-driver.js'), '--rounds', String(rounds), '--ipmitool-slot', String(IPMITOOL_SLOT), '--state-dir', '/tmp/inband-bench'])}`,
      '',
    ].join('\n');
    const guest = await bootGuest({ vmPort: sim.vmPort, image, name: 'bench-credential-change', script, timeoutMs: 400_000,
      onAsk: (what) => {
        if (what === 'secret:password') return base;
        throw new Error(`unexpected request ${what}`);
      } });
    const results = guest.results as GuestStep[];
    const by = (s: string): GuestStep | undefined => results.find((r) => r.step === s);
    const failure = by('error')?.message ?? (guest.timedOut ? 'guest timed out' : undefined);
    const cli = by('cli');
    const daemon = by('daemon');
    const nat = by('native-transport');
    const machine = { accel: 'TCG (software emulation; /dev/kvm unusable here)', kernel: image.kernel.release, cpus: process.env.INBAND_QEMU_SMP ?? '1', consoleLog: guest.logFile, bootMs: guest.timings.ipmiReadyMs, totalMs: guest.timings.totalMs };
    if (failure || !cli) console.log(`credential-change bench, guest: ${failure ?? 'no results'}; console in ${guest.logFile}`);
    const section = 'credential change (qemu guest, TCG, /dev/ipmi0)';
    const peer = `${IPMITOOL_SEQUENCE}, -I open`;
    const rows: Row[] = [];
    if (cli?.a && cli.b) rows.push(changeRow(section, 'complete change', 'inband-agent set-credentials process (native backend)', peer, phase({ a: cli.a, b: cli.b }), `; ours ${Math.round(summarize(cli.requests ?? []).median)} IPMI requests; a bare \`node -e 0\` takes ${summarize(cli.nodeFloor ?? []).median.toFixed(0)} ms in this guest, \`inband-agent --version\` ${summarize(cli.cliVersion ?? []).median.toFixed(0)} ms`));
    if (daemon?.a && daemon.b) rows.push(changeRow(section, 'the step in a running daemon', 'bmc.set_credentials over HTTP, wait=true (native backend)', peer, phase({ a: daemon.a, b: daemon.b }), `; daemon exec → API answering ${daemon.startMs?.toFixed(0)} ms in the guest`));
    if (nat?.samples) {
      const s = summarize(nat.samples);
      rows.push({ section: 'transport', what: 'Get Device ID latency, median', ours: 'native /dev/ipmi0 in the guest (kernel KCS → ipmi_sim)', oursValue: s.median, peer: 'ipmitool -I open process per request (same guest)',
        peerValue: daemon?.b && cli?.b ? summarize([...cli.b, ...daemon.b]).median / 5 : NaN, unit: 'ms', better: 'lower', note: `p99 ${s.p99.toFixed(1)} ms, ${nat.rps?.toFixed(0)} req/s; peer = one fifth of the 5-process sequence` });
    }
    return { rows, raw: { rounds, results, failure, machine } };
  } finally {
    await sim.stop();
  }
}
