/**
 * Transport overhead: per-request latency and requests per second of each
 * backend, side by side with ipmitool doing the same request against the
 * same BMC.
 *
 * - simulated BMC (in-process): the cost of our transport stack alone;
 * - vm-codec → a real ipmi_sim (its in-band system interface), against
 *   ipmitool's interactive shell (one process, requests typed in, lanplus to the
 *   same sim) and against one ipmitool process per request (how an operator
 *   or the old inspector feature drives a BMC).
 */
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { createSimulatedTransport } from '../ipmi-kcs/simulated/index.js';
import { openVmCodecTransport } from '../ipmi-kcs/vm-codec.js';
import { openIpmitoolTransport } from '../ipmi-kcs/ipmitool-pty.js';
import { AppCmd, NetFn } from '../ipmi-kcs/spec.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import { startIpmiSim, ipmiSimAvailability } from '../test/harness/ipmi-sim.js';
import { summarize, type Row, type Summary } from './lib.js';

const GET_DEVICE_ID = { netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID };

async function timeRequests(t: Transport, n: number): Promise<{ lat: Summary; rps: number; samples: number[] }> {
  for (let i = 0; i < Math.min(20, n); i++) await t.send(GET_DEVICE_ID); // warm-up
  const samples: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const rsp = await t.send(GET_DEVICE_ID);
    samples.push(performance.now() - s);
    if (rsp.completionCode !== 0) throw new Error(`Get Device ID failed: cc ${rsp.completionCode}`);
  }
  const secs = (performance.now() - t0) / 1000;
  return { lat: summarize(samples), rps: n / secs, samples };
}

function runIpmitoolOnce(lanPort: number, password: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = performance.now();
    const child = spawn('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(lanPort), '-U', 'admin', '-E', 'raw', '0x06', '0x01'], {
      env: { ...process.env, IPMI_PASSWORD: password }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(performance.now() - s) : reject(new Error(`ipmitool exited ${code}: ${err.trim()}`))));
  });
}

export async function benchTransport(opts: { quick?: boolean } = {}): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const n = opts.quick ? 200 : 2000;
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};

  const sim = createSimulatedTransport({ profile: 'ipmi20' });
  const simRes = await timeRequests(sim, n * 5);
  await sim.close();
  raw.simulated = simRes;

  const avail = ipmiSimAvailability();
  if (!avail.available) {
    console.log(`transport bench: ipmi_sim not available (${avail.reason}); only the simulated backend measured`);
    rows.push({ section: 'transport', what: 'Get Device ID latency, median', ours: 'simulated (in-process)', oursValue: simRes.lat.median * 1000, peer: 'n/a', peerValue: NaN, unit: 'µs', better: 'lower' });
    return { rows, raw };
  }
  const password = 'Bench-pw-0001';
  const bmc = await startIpmiSim({ users: [{ id: 2, name: 'admin', password, privilege: 'admin' }] });
  try {
    const vm = await openVmCodecTransport({ host: bmc.host, port: bmc.vmPort });
    const vmRes = await timeRequests(vm, n);
    await vm.close();
    raw.vmCodec = vmRes;

    const shell = await openIpmitoolTransport({ args: ['-I', 'lanplus', '-C', '3', '-H', bmc.host, '-p', String(bmc.lanPort), '-U', 'admin', '-E'], env: { IPMI_PASSWORD: password } });
    const shellRes = await timeRequests(shell, Math.max(50, n / 10));
    await shell.close();
    raw.ipmitoolShell = shellRes;

    const procSamples: number[] = [];
    for (let i = 0; i < (opts.quick ? 10 : 30); i++) procSamples.push(await runIpmitoolOnce(bmc.lanPort, password));
    const procLat = summarize(procSamples);
    raw.ipmitoolProcess = { lat: procLat, samples: procSamples };

    rows.push(
      { section: 'transport', what: 'Get Device ID latency, median', ours: 'vm-codec → ipmi_sim', oursValue: vmRes.lat.median, peer: 'ipmitool process per request (lanplus → same ipmi_sim)', peerValue: procLat.median, unit: 'ms', better: 'lower' },
      { section: 'transport', what: 'Get Device ID latency, median', ours: 'vm-codec → ipmi_sim', oursValue: vmRes.lat.median, peer: 'ipmitool shell (lanplus → same ipmi_sim)', peerValue: shellRes.lat.median, unit: 'ms', better: 'lower' },
      { section: 'transport', what: 'Get Device ID requests/s, one in flight', ours: 'vm-codec → ipmi_sim', oursValue: vmRes.rps, peer: 'ipmitool shell (lanplus → same ipmi_sim)', peerValue: shellRes.rps, unit: 'req/s', better: 'higher' },
      { section: 'transport', what: 'Get Device ID latency, p99', ours: 'vm-codec → ipmi_sim', oursValue: vmRes.lat.p99, peer: 'ipmitool shell (lanplus → same ipmi_sim)', peerValue: shellRes.lat.p99, unit: 'ms', better: 'lower' },
      { section: 'transport', what: 'stack cost per request (no BMC latency), median', ours: 'simulated (in-process)', oursValue: simRes.lat.median * 1000, peer: 'vm-codec → ipmi_sim (BMC + socket)', peerValue: vmRes.lat.median * 1000, unit: 'µs', better: 'lower', note: 'share of a real exchange our stack costs' },
    );
  } finally {
    await bmc.stop();
  }
  return { rows, raw };
}
