/**
 * What the Python Ironic driver (ironic-driver/inband_ironic) and the
 * TypeScript side must agree on, run from the shared floor's generated files
 * in service/ that the Python package reads (docs/credential-contract.md,
 * "The shared floor"):
 *
 * - the failure table (service/rotation-failures.json, from
 *   service/rotation-failures.ts): every row run against `conductor rotate`'s
 *   rotate() with in-process doubles of Ironic and the BMC prover (the Python
 *   rotation runs the same rows in inband_ironic/tests/test_failure_table.py);
 * - the credential contract's examples (service/credential-contract.json
 *   `examples`): the TypeScript engine's validator answers each as the
 *   contract says (the Python contract runs them in test_contract.py);
 * - the sealed-value format: a password the Python driver seals to an agent
 *   certificate opens with the agent's SealingKey (agent/tls/sealing-key.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateSelfSigned } from '../../service/tls/self-signed.js';
import { SealingKey, type SealedValue } from '../../agent/tls/sealing-key.js';
import type { BmcCredential, BmcEndpoint, BmcProver } from '../../conductor/bmc-proof.js';
import type { CONTRACT_EXAMPLES } from '../../service/credential-contract.js';
import type { FailurePoint, ROTATE_STEPS } from '../../service/rotation-failures.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import type { IronicNodeView } from '../../conductor/ironic-api.js';
import { rotate, type IronicPort, type RotationStepName } from '../../conductor/rotate.js';
import type { SecretEntry, SecretStore } from '../../conductor/secret-store.js';
import { Secret } from '../../service/secret.js';
import { SEALED_PURPOSE } from '../../service/sealed-value.js';
import { validateRequest } from '../../service/validate.js';
import { ironicAvailability, SYSTEM_PYTHON } from '../harness/ironic.js';
import { recordSecret } from '../helpers/secrets.js';
import { projectRoot } from '../harness/e2e.js';

/** The shared floor's files, as the Python package reads them from the checkout. */
const load = <T>(name: string): T => JSON.parse(readFileSync(join(projectRoot(), 'service', `${name}.json`), 'utf8')) as T;

const UUID = '6f0c1f84-3b1e-4a57-9d1e-2c3a0b7e1f00';
const AGENT = generateSelfSigned({ address: '192.0.2.20', commonName: 'n1' });
const PIN = `/var/lib/ironic/certificates/${UUID}.crt`;
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Ironic double: the clean writes the BMC unless told to fail; driver_info holds revealed strings. */
class TableIronic implements IronicPort {
  n: IronicNodeView = {
    uuid: UUID, name: 'n1', provision_state: 'manageable', target_provision_state: null, power_state: 'power on', target_power_state: null,
    last_error: null, maintenance: false, driver: 'ipmi',
    driver_info: { ipmi_address: '192.0.2.10', ipmi_username: 'ironic', ipmi_password: '******' },
    driver_internal_info: { agent_verify_ca: PIN },
  };

  bmcWritten = false;
  constructor(private readonly fail: RotationStepName | null) {}
  async node(): Promise<IronicNodeView> {
    return structuredClone(this.n);
  }

  async provision(_id: string, target: string): Promise<void> {
    if (target === 'clean') {
      this.n.provision_state = this.fail === 'clean' ? 'clean failed' : 'manageable';
      this.n.last_error = this.fail === 'clean' ? 'the agent refused the step' : null;
      this.bmcWritten = this.fail !== 'clean';
    } else if (target === 'manage') this.n.provision_state = 'manageable';
  }

  async power(): Promise<void> {
    this.n.last_error = this.fail === 'ironic-power-check' ? 'IPMI call failed: power status' : null;
  }

  async patchDriverInfo(_id: string, values: Record<string, string | Secret>): Promise<void> {
    if (this.fail === 'update-ironic') throw new Error('Ironic refused to update driver_info: 400');
    for (const [k, v] of Object.entries(values)) this.n.driver_info[k] = typeof v === 'string' ? v : v.reveal();
  }

  async waitForProvision(): Promise<IronicNodeView> {
    return this.node();
  }

  async waitForPower(): Promise<IronicNodeView> {
    return this.node();
  }
}

class TableProver implements BmcProver {
  previousEnabled = true;
  constructor(private readonly fail: RotationStepName | null) {}
  async prove(_b: BmcEndpoint, _c: BmcCredential) {
    return this.fail === 'prove' ? { ok: false, detail: 'Unable to establish IPMI v2 / RMCP+ session', attempts: 1 } : { ok: true, detail: 'ok', attempts: 1 };
  }

  async retire(_b: BmcEndpoint, _as: BmcCredential, username: string) {
    if (this.fail === 'retire-previous') return { ok: false, transient: false, detail: 'user disable 2: Insufficient privilege level' };
    this.previousEnabled = false;
    return { ok: true, detail: `user 2 (${username}) disabled`, userId: 2 };
  }

  async powerStatus() {
    return { ok: true, state: 'power on' as const, detail: 'chassis power is on' };
  }
}

/** The real file store, failing on demand at one call. */
function tableStore(fail: RotationStepName | null): SecretStore {
  const d = mkdtempSync(join(tmpdir(), 'failure-table-'));
  dirs.push(d);
  const real = new FileSecretStore({ path: join(d, 'secrets.json') });
  return new Proxy(real, {
    get(target, prop, recv) {
      if (fail === 'store-pending' && prop === 'putPending') return async () => { throw new Error('store down'); };
      if (fail === 'store-current' && prop === 'markCurrent') return async () => { throw new Error('store down'); };
      const v = Reflect.get(target, prop, recv) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('the failure table, on the conductor rotate path', () => {
  const table = load<{ rotateSteps: typeof ROTATE_STEPS; points: FailurePoint[] }>('rotation-failures');
  for (const row of table.points) {
    it(`${row.id}: ${row.expect.outcome}, Ironic holds the ${row.expect.ironic_holds} user, store ${row.expect.store}`, async () => {
      const ironic = new TableIronic(row.rotate);
      const prover = new TableProver(row.rotate);
      const store = tableStore(row.rotate);
      const rec = await rotate({
        node: 'n1', ironic, store, prover, usernames: ['ironic', 'ironic_b'],
        readCertificate: async (p) => { if (p !== PIN) throw new Error('ENOENT'); return AGENT.certPem; },
        generate: () => Secret.fromString(recordSecret('Table-new-pw-1')),
      });
      assert.equal(rec.outcome, row.expect.outcome, `${rec.failedStep}: ${rec.error}`);
      if (row.expect.outcome === 'failed') assert.equal(rec.failedStep, row.rotate);
      const held = row.expect.ironic_holds === 'next' ? 'ironic_b' : 'ironic';
      assert.equal(ironic.n.driver_info.ipmi_username, held);
      assert.equal(rec.current.username, held);
      const entries: SecretEntry[] = await store.history(UUID);
      const next = entries.find((e) => e.username === 'ironic_b');
      assert.equal(next?.state ?? 'none', row.expect.store);
      assert.equal(prover.previousEnabled, row.expect.previous_enabled);
      assert.equal(ironic.bmcWritten, row.expect.bmc_written);
      // Every step rotate() records is one the shared declaration names.
      for (const s of rec.steps) assert.ok(table.rotateSteps.includes(s.step), s.step);
    });
  }

  it('every failing row names a step of each path, the row without a failure neither', () => {
    for (const row of table.points) assert.equal(row.rotate === null, row.passthru === null, row.id);
  });
});

describe('the credential contract\'s examples, in the TypeScript engine', () => {
  const examples = load<{ examples: typeof CONTRACT_EXAMPLES }>('credential-contract').examples;

  const tsAccepts = (req: Record<string, unknown>): boolean => {
    try {
      validateRequest(req as never);
      return true;
    } catch {
      return false;
    }
  };
  for (const [name, ok] of examples.username) {
    it(`username ${JSON.stringify(name)}: ${ok ? 'accepted' : 'refused'}`, () => {
      assert.equal(tsAccepts({ username: name, generate: true }), ok);
    });
  }
  for (const [text, ok] of examples.passwordText) {
    it(`password text ${JSON.stringify(text).slice(0, 12)}…: ${ok ? 'accepted' : 'refused'}`, () => {
      assert.equal(tsAccepts({ username: 'ironic', password: Secret.fromString(text) }), ok);
    });
  }
  for (const [n, version, ok] of examples.passwordBytes.filter(([, v]) => v === '2.0')) {
    it(`${n}-byte password on IPMI ${version}: ${ok ? 'accepted' : 'refused'}`, () => {
      const accepted = n === 0 ? false : tsAccepts({ username: 'ironic', password: Secret.fromString('a'.repeat(n)) });
      assert.equal(accepted, ok);
    });
  }
});

const py = ironicAvailability();
describe('the sealed-value format across the two languages', () => {
  it('a password the Python driver seals to the agent certificate opens with the agent\'s key', { skip: py.available ? false : py.reason }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'seal-py-'));
    dirs.push(dir);
    const cert = join(dir, 'agent.crt');
    writeFileSync(cert, AGENT.certPem);
    const password = recordSecret('Py-sealed-pw-1');
    // The password reaches Python on stdin, never in argv.
    const r = spawnSync(SYSTEM_PYTHON, ['-c', [
      'import json, sys',
      'from inband_ironic import sealing',
      'r = sealing.recipient_from_pem(open(sys.argv[1], "rb").read(), sys.argv[1])',
      'print(json.dumps(sealing.seal(r, sys.stdin.read(), sys.argv[2], sys.argv[3])))',
    ].join('\n'), cert, UUID, 'ironic_b'], { input: password, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', PYTHONPATH: join(projectRoot(), 'ironic-driver') } });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stdout.includes(password));
    const sealed = JSON.parse(r.stdout) as SealedValue;
    const key = new SealingKey(AGENT.key);
    assert.equal(sealed.kid, key.kid);
    assert.equal(sealed.purpose, SEALED_PURPOSE);
    assert.equal(key.open(sealed, { purpose: SEALED_PURPOSE, user: 'ironic_b', node: UUID }).reveal(), password);
    assert.throws(() => new SealingKey(AGENT.key).open(sealed, { purpose: SEALED_PURPOSE, user: 'ironic', node: UUID }), /sealed for BMC user/);
  });
});
