/**
 * The transport contract suite against the vm-codec backend talking to a real
 * ipmi_sim. Stalls by stopping the sim (SIGSTOP), so the late answer after a
 * timeout really arrives.
 */
import { describe } from 'node:test';
import { describeTransportContract, ipmiSimTarget } from '../contract/transport-contract.js';
import { openVmCodecTransport } from '../../ipmi-kcs/vm-codec.js';
import { ipmiSimAvailability, startIpmiSim } from '../harness/ipmi-sim.js';

const avail = ipmiSimAvailability();

if (avail.available) {
  describeTransportContract('vm-codec (ipmi_sim)', async () => {
    const sim = await startIpmiSim();
    const transport = await openVmCodecTransport({ host: sim.host, port: sim.vmPort });
    return ipmiSimTarget(transport, sim);
  });
} else {
  describe('transport contract: vm-codec (ipmi_sim)', { skip: avail.reason }, () => undefined);
}
