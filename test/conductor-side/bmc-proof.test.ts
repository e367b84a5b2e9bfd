/**
 * IpmitoolProver against a real BMC (ipmi_sim over lanplus): a good credential
 * proves, a wrong one does not, and retiring a user by name disables it so its
 * password no longer logs in. The password only ever travels in ipmitool's
 * environment (the suite's leak check samples every process argument list).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { endpointFromDriverInfo, IpmitoolProver, type BmcEndpoint } from '../../conductor/bmc-proof.js';
import { Secret } from '../../service/secret.js';
import { ipmiSimAvailability, startIpmiSim, type IpmiSim } from '../harness/ipmi-sim.js';
import { recordSecret } from '../helpers/secrets.js';

const avail = ipmiSimAvailability();
const skip = avail.available ? false : `ipmi_sim: ${avail.reason}`;
const OLD = recordSecret('Old-pass-4711');
const NEW = recordSecret('New-pass-0815x');

describe('IpmitoolProver on ipmi_sim', () => {
  let sim: IpmiSim | undefined;
  let bmc: BmcEndpoint;
  const prover = new IpmitoolProver({ attempts: 1, timeoutMs: 15_000 });

  before(async () => {
    if (skip) return;
    sim = await startIpmiSim({ users: [{ id: 2, name: 'oldadmin', password: OLD, privilege: 'admin' }, { id: 3, name: 'ironic', password: NEW, privilege: 'admin' }] });
    bmc = endpointFromDriverInfo({ ipmi_address: '127.0.0.1', ipmi_port: sim.lanPort, ipmi_cipher_suite: 3 });
  });
  after(async () => {
    await sim?.stop();
  });

  it('reads the endpoint as Ironic does (port 623, cipher suite 3 unless set)', () => {
    assert.deepEqual(endpointFromDriverInfo({ ipmi_address: 'bmc.example' }), { host: 'bmc.example', port: 623, cipherSuite: '3' });
    assert.throws(() => endpointFromDriverInfo({}), /ipmi_address/);
  });

  it('proves a working credential and refuses a wrong one', { skip }, async () => {
    assert.deepEqual((await prover.prove(bmc, { username: 'ironic', password: Secret.fromString(NEW) })).ok, true);
    const bad = await prover.prove(bmc, { username: 'ironic', password: Secret.fromString(recordSecret('Wrong-pass-999')) });
    assert.equal(bad.ok, false);
    assert.ok(bad.detail.length > 0);
  });

  it('retires a user by name: its password no longer logs in, the other still does', { skip }, async () => {
    const as = { username: 'ironic', password: Secret.fromString(NEW) };
    const r = await prover.retire(bmc, as, 'oldadmin');
    assert.deepEqual(r, { ok: true, detail: 'user 2 (oldadmin) disabled', userId: 2 });
    assert.equal((await prover.prove(bmc, { username: 'oldadmin', password: Secret.fromString(OLD) })).ok, false);
    assert.equal((await prover.prove(bmc, as)).ok, true);
    const none = await prover.retire(bmc, as, 'nobody');
    assert.equal(none.ok, false);
    assert.match(none.detail, /no user named nobody/);
  });
});
