/**
 * The ipmi_sim harness itself: it must hand every test a clean BMC on free
 * ports, survive losing a port race, and leave nothing behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { freeTcpPort, freeUdpPort, ipmiSimAvailability, lanplusLogin, simLanConf, startIpmiSim } from './ipmi-sim.js';
import { recordSecret } from '../helpers/secrets.js';

const avail = ipmiSimAvailability();

describe('ipmi_sim harness configuration', () => {
  it('writes one lan.conf user line per initial user, with the VM codec on channel 15', () => {
    const conf = simLanConf('bmc', 5000, 5001, [{ id: 3, name: 'op', password: 'oppw', privilege: 'operator', enabled: false }]);
    assert.match(conf, /addr 127\.0\.0\.1 5000/);
    assert.match(conf, /serial kcs 127\.0\.0\.1 5001 codec VM/);
    assert.match(conf, /user 3 false "op" "oppw" operator 10/);
  });

  it('refuses a quote in a user name or password rather than writing a broken config', () => {
    assert.throws(() => simLanConf('bmc', 1, 2, [{ id: 2, name: 'a"b', password: 'x' }]), /quotes/);
  });
});

describe('ipmi_sim harness', { skip: avail.available ? false : avail.reason }, () => {
  it('starts a BMC with the given users, proves them over lanplus, and removes everything on stop()', async () => {
    const pw = recordSecret('harness-user-pw');
    const sim = await startIpmiSim({ users: [
      { id: 2, name: 'alice', password: pw, privilege: 'admin' },
      { id: 3, name: 'bob', password: recordSecret('bob-disabled-pw'), enabled: false },
    ] });
    try {
      assert.ok(sim.running);
      assert.ok(existsSync(sim.dir));
      const ok = await lanplusLogin({ host: sim.host, port: sim.lanPort, user: 'alice', password: pw });
      assert.equal(ok.ok, true, ok.stderr);
      const disabled = await sim.lanplusLogin('bob', 'bob-disabled-pw');
      assert.equal(disabled.ok, false, 'a user created disabled cannot log in');
      assert.equal(sim.recentFailedLogins(), 1, 'the failed login is counted (each leaks a session in ipmi_sim)');
    } finally {
      await sim.stop();
    }
    assert.equal(sim.running, false);
    assert.equal(existsSync(sim.dir), false);
    await sim.stop(); // idempotent
  });

  it('retries on new ports when the TCP port it picked was taken meanwhile', async () => {
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const taken = (squatter.address() as { port: number }).port;
    let calls = 0;
    const sim = await startIpmiSim({
      pickPorts: async () => (calls++ === 0 ? { lanPort: await freeUdpPort(), vmPort: taken } : { lanPort: await freeUdpPort(), vmPort: await freeTcpPort() }),
    });
    try {
      assert.equal(calls, 2);
      assert.notEqual(sim.vmPort, taken);
    } finally {
      await sim.stop();
      squatter.close();
    }
  });

  it('retries on new ports when the UDP port it picked was taken meanwhile', async () => {
    const squatter = createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(0, '127.0.0.1', r));
    const taken = squatter.address().port;
    let calls = 0;
    const sim = await startIpmiSim({
      pickPorts: async () => (calls++ === 0 ? { lanPort: taken, vmPort: await freeTcpPort() } : { lanPort: await freeUdpPort(), vmPort: await freeTcpPort() }),
    });
    try {
      assert.equal(calls, 2);
      assert.notEqual(sim.lanPort, taken);
    } finally {
      await sim.stop();
      squatter.close();
    }
  });

  it('reports a missing ipmi_sim binary clearly', async () => {
    await assert.rejects(startIpmiSim({ ipmiSimPath: '/nonexistent/ipmi_sim' }), /cannot start \/nonexistent\/ipmi_sim/);
  });

  it('stop() ends a paused sim too', async () => {
    const sim = await startIpmiSim();
    sim.pause();
    await sim.stop();
    assert.equal(sim.running, false);
  });
});
