/**
 * The transport contract suite against the ipmitool backend, driving the real
 * ipmitool shell over lanplus to a real ipmi_sim. Stalls by stopping the sim
 * (SIGSTOP); the backend then kills the shell, so no late answer can reach
 * the next request.
 */
import { describe } from 'node:test';
import { describeTransportContract, ipmiSimTarget } from '../contract/transport-contract.js';
import { openIpmitoolTransport } from '../../ipmi-kcs/ipmitool-pty.js';
import { ipmiSimAvailability, startIpmiSim } from '../harness/ipmi-sim.js';
import { recordSecret } from '../helpers/secrets.js';

const avail = ipmiSimAvailability();

if (avail.available) {
  describeTransportContract('ipmitool (lanplus to ipmi_sim)', async () => {
    const password = recordSecret('contract-admin-pw');
    const sim = await startIpmiSim({ users: [{ id: 2, name: 'admin', password, privilege: 'admin' }] });
    const transport = await openIpmitoolTransport({
      args: ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.lanPort), '-U', 'admin', '-E'],
      env: { IPMI_PASSWORD: password },
    });
    return ipmiSimTarget(transport, sim);
  });
} else {
  describe('transport contract: ipmitool (lanplus to ipmi_sim)', { skip: avail.reason }, () => undefined);
}
