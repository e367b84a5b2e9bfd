/**
 * The transport contract suite against the simulated BMC, once per vendor
 * profile. Stalling uses the simulator's scripted late response: the answer
 * arrives after the caller's timeout and must be dropped.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createSimulatedTransport, listProfiles, lanChannels, getProfile } from '../../ipmi-kcs/simulated/index.js';
import { AppCmd, NetFn } from '../../ipmi-kcs/spec.js';
import { describeTransportContract } from './transport-contract.js';

for (const profile of listProfiles()) {
  describeTransportContract(`simulated (${profile})`, async () => {
    const transport = createSimulatedTransport({ profile });
    const p = getProfile(profile);
    const used = new Set(p.users.map((u) => u.id));
    let freeSlot = 3;
    while (used.has(freeSlot)) freeSlot++;
    return {
      transport,
      freeSlot,
      lanChannel: lanChannels(p)[0]!,
      close: () => transport.close(),
      // §22.28: user names are ASCII; the simulated BMC refuses other bytes
      // with 0xCC as strict firmware does. Framing bytes are exercised on the
      // byte-stream backends (vm-codec, ipmitool), where escaping matters.
      quirks: { nameBytesUnsupported: { bytes: [0xa0, 0xa1, 0xaa], why: 'user names are ASCII (§22.28)' } },
      stall: async () => {
        transport.bmc.inject({ match: { netFn: NetFn.APP, cmd: AppCmd.GET_CHANNEL_ACCESS }, action: { kind: 'late-response', delayMs: 600 } });
        return async () => { await sleep(700); };
      },
    };
  });
}
