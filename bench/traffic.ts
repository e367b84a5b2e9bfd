/**
 * IPMI traffic per credential change: requests sent and bytes each way for one
 * fresh change (new user in an empty slot), beside the spec minimum for the
 * same change on the same BMC (service/request-budget.ts: 17 + N + 3L with
 * C = 11 channels scanned, N = maximum user ids, L = LAN channels written).
 *
 * One row per vendor profile of the simulated BMC, and one for a real
 * ipmi_sim reached through its VM-codec system interface.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedTransport, listProfiles } from '../ipmi-kcs/simulated/index.js';
import { openVmCodecTransport } from '../ipmi-kcs/vm-codec.js';
import { AppCmd, NetFn } from '../ipmi-kcs/spec.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import { CredentialService, Secret, minimumFreshChangeRequests } from '../service/index.js';
import { startIpmiSim, ipmiSimAvailability } from '../test/harness/ipmi-sim.js';
import type { Row } from './lib.js';

export interface TrafficSample {
  bmc: string;
  requests: number;
  minimum: number;
  maxUsers: number;
  lanChannels: number;
  bytesOut: number;
  bytesIn: number;
  passwordSize: number;
}

/** §22.27 Get User Access on user 1: byte 1 [5:0] is the maximum number of user ids. */
async function maxUserIds(t: Transport, channel: number): Promise<number> {
  const rsp = await t.send({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_ACCESS, data: [channel & 0x0f, 1] });
  if (rsp.completionCode !== 0 || rsp.data.length < 1) throw new Error(`Get User Access failed: cc ${rsp.completionCode}`);
  return rsp.data[0]! & 0x3f;
}

async function oneChange(bmc: string, t: Transport, password: string): Promise<TrafficSample> {
  const stateDir = mkdtempSync(join(tmpdir(), 'inband-bench-traffic-'));
  try {
    const svc = new CredentialService({ transport: t, stateDir });
    const before = t.stats();
    // The shortest name/password every profile accepts (the password-policy profile wants a mixed one).
    const res = await svc.setCredentials({ username: 'benchuser', password: Secret.fromString(password) });
    const after = t.stats();
    const maxUsers = await maxUserIds(t, res.channels[0] ?? 1);
    return {
      bmc,
      requests: res.requests,
      minimum: minimumFreshChangeRequests({ maxUsers, lanChannels: res.channels.length }),
      maxUsers,
      lanChannels: res.channels.length,
      bytesOut: after.bytesOut - before.bytesOut,
      bytesIn: after.bytesIn - before.bytesIn,
      passwordSize: res.passwordSize,
    };
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

export async function benchTraffic(): Promise<{ rows: Row[]; raw: TrafficSample[] }> {
  const samples: TrafficSample[] = [];
  const password = 'Bench-Pw-2026x';
  for (const profile of listProfiles()) {
    const t = createSimulatedTransport({ profile });
    try {
      samples.push(await oneChange(`simulated ${profile}`, t, password));
    } finally {
      await t.close();
    }
  }
  if (ipmiSimAvailability().available) {
    const sim = await startIpmiSim({ users: [{ id: 2, name: 'admin', password: 'initpw1', privilege: 'admin' }] });
    try {
      const t = await openVmCodecTransport({ host: sim.host, port: sim.vmPort });
      try {
        samples.push(await oneChange('ipmi_sim (vm-codec)', t, password));
      } finally {
        await t.close();
      }
    } finally {
      await sim.stop();
    }
  } else {
    console.log('traffic bench: ipmi_sim not available; simulated profiles only');
  }
  const rows: Row[] = samples.map((s) => ({
    section: 'IPMI traffic',
    what: `requests per fresh change, ${s.bmc}`,
    ours: 'inband-agent set-credentials',
    oursValue: s.requests,
    peer: `spec minimum 17+N+3L (N=${s.maxUsers}, L=${s.lanChannels})`,
    peerValue: s.minimum,
    unit: 'requests',
    better: 'lower',
    note: `${s.bytesOut} B out, ${s.bytesIn} B in; +${s.requests - s.minimum} over the minimum: Get Channel Access per LAN channel and the LAN address for the conductor`,
  }));
  return { rows, raw: samples };
}
