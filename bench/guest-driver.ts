/**
 * Runs inside the qemu guest (through the 9p host root, `chroot /host node
 * dist/bench/guest-driver.js --rounds N --state-dir DIR`) against the guest
 * kernel's real /dev/ipmi0 (ipmi_si KCS → ipmi_sim on the host):
 *
 * 1. native transport: Get Device ID latency and rate (the per-request cost of
 *    the kernel KCS path under this guest's CPU);
 * 2. `inband-agent set-credentials` (native backend) vs the `ipmitool -I open`
 *    sequence, alternating;
 * 3. the `bmc.set_credentials` step in a daemon started here (native backend)
 *    vs the same ipmitool sequence, alternating; and the daemon's exec → API answering.
 *
 * Passwords are derived from one the host gives over the console (`ask`), so
 * none is in the guest script. Results: `@@inband:result` lines.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { openNativeTransport } from '../ipmi-kcs/kcs-native.js';
import { AppCmd, NetFn } from '../ipmi-kcs/spec.js';
import { HostChannel, report } from '../test/qemu/guest/protocol.js';
import { alternate, cliVersion, ipmitoolSequence, nodeFloor, oursCli, oursDaemon, type IpmitoolTarget } from './change-runners.js';
import { freePort, projectRoot, waitAnswering, stop } from './daemon.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

async function main(): Promise<number> {
  const rounds = Number(arg('--rounds', '3'));
  const slot = Number(arg('--ipmitool-slot', '40'));
  const stateDir = arg('--state-dir', '/tmp/inband-bench');
  const host = new HostChannel();
  const base = await host.ask('secret:password');
  host.close();
  const root = projectRoot();

  const t = await openNativeTransport();
  const n = rounds * 20;
  const lat: number[] = [];
  for (let i = 0; i < 5; i++) await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const rsp = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID });
    lat.push(performance.now() - s);
    if (rsp.completionCode !== 0) throw new Error(`Get Device ID: cc ${rsp.completionCode}`);
  }
  report({ step: 'native-transport', samples: lat, rps: n / ((performance.now() - t0) / 1000) });
  await t.close();

  const tool: IpmitoolTarget = { args: ['-I', 'open'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } };
  let channel = 1;
  const requests: number[] = [];
  const cli = await alternate(rounds, async (i) => {
    const r = await oursCli(root, ['--backend', 'native'], stateDir, `gcli${i}`, `${base}c${i}`);
    channel = r.channels[0] ?? channel;
    requests.push(r.requests);
    return r.ms;
  }, (i) => ipmitoolSequence(tool, slot, channel, `gtool${i}`, `${base}c${i}`));
  const floor: number[] = [];
  const version: number[] = [];
  for (let i = 0; i < rounds; i++) {
    floor.push(await nodeFloor());
    version.push(await cliVersion(root));
  }
  report({ step: 'cli', ...cli, requests, nodeFloor: floor, cliVersion: version });

  const port = await freePort();
  const s0 = performance.now();
  const daemon = spawn(process.execPath, [`${root}/bin/inband-agent.js`, 'serve', '--standalone', '--backend', 'native',
    '--listen-host', '127.0.0.1', '--listen-port', String(port), '--state-dir', stateDir], { stdio: 'ignore' });
  try {
    const startMs = await waitAnswering(port, daemon, s0, 120_000);
    const step = await alternate(rounds, async (i) => (await oursDaemon(port, `gapi${i}`, `${base}d${i}`)).ms,
      (i) => ipmitoolSequence(tool, slot, channel, `gtool${i}`, `${base}d${i}`));
    report({ step: 'daemon', ...step, startMs });
  } finally {
    await stop(daemon);
  }
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  report({ step: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
});
