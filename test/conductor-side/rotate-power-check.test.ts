/**
 * conductor rotate's Ironic power check only reads: where Ironic's database
 * holds a stale power state (seen: "power off" while the BMC reported on),
 * the request is for the state the BMC reports out-of-band, which Ironic's
 * conductor reads from the BMC and skips; never for the database's state,
 * which Ironic would act on (it powered such a node off).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateSelfSigned } from '../../service/tls/self-signed.js';
import type { BmcCredential, BmcEndpoint, BmcProver } from '../../conductor/bmc-proof.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import type { IronicNodeView } from '../../conductor/ironic-api.js';
import { rotate, type IronicPort } from '../../conductor/rotate.js';
import { Secret } from '../../service/secret.js';
import { recordSecret } from '../helpers/secrets.js';

const UUID = '3c9a51d2-77b0-4f3e-8a59-5c0d2e6a9b11';
const AGENT = generateSelfSigned({ address: '192.0.2.20', commonName: 'n1' });
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

class StaleIronic implements IronicPort {
  readonly powerRequests: string[] = [];
  n: IronicNodeView = {
    uuid: UUID, name: 'n1', provision_state: 'manageable', target_provision_state: null,
    power_state: 'power off', // stale: the BMC reports on
    target_power_state: null, last_error: null, maintenance: false, driver: 'ipmi',
    driver_info: { ipmi_address: '192.0.2.10', ipmi_username: 'ironic', ipmi_password: '******' },
    driver_internal_info: { agent_verify_ca: AGENT.certPem },
  };

  async node(): Promise<IronicNodeView> {
    return structuredClone(this.n);
  }

  async provision(): Promise<void> {}
  async power(_id: string, target: string): Promise<void> {
    this.powerRequests.push(target);
  }

  async patchDriverInfo(): Promise<void> {}
  async waitForProvision(): Promise<IronicNodeView> {
    return this.node();
  }

  async waitForPower(): Promise<IronicNodeView> {
    return this.node();
  }
}

class OnBmc implements BmcProver {
  reads = 0;
  async prove(_b: BmcEndpoint, _c: BmcCredential) {
    return { ok: true, detail: 'ok', attempts: 1 };
  }

  async retire() {
    return { ok: true, detail: 'disabled', userId: 2 };
  }

  async powerStatus() {
    this.reads++;
    return { ok: true, state: 'power on' as const, detail: 'chassis power is on' };
  }
}

describe('conductor rotate: the Ironic power check', () => {
  it('asks Ironic for the state the BMC reports, not the stale one its database holds', async () => {
    const d = mkdtempSync(join(tmpdir(), 'power-check-'));
    dirs.push(d);
    const ironic = new StaleIronic();
    const prover = new OnBmc();
    const rec = await rotate({
      node: 'n1', ironic, store: new FileSecretStore({ path: join(d, 's.json') }), prover, usernames: ['ironic', 'ironic_b'],
      generate: () => Secret.fromString(recordSecret('Power-check-pw-1')),
    });
    assert.equal(rec.outcome, 'rotated', `${rec.failedStep} ${rec.error}`);
    assert.equal(prover.reads, 1);
    assert.deepEqual(ironic.powerRequests, ['power on'], 'a request Ironic skips after reading the BMC; never "power off"');
  });
});
