/**
 * rotate() at each failure point the real-stack tests cannot provoke on
 * demand (a BMC that refuses the new login, Ironic refusing the PATCH or its
 * own power call, the store failing to mark current, the previous user not
 * retirable). Ironic and the BMC prover are in-process doubles injected through
 * rotate's options; the store is the real FileSecretStore. Each case checks the
 * invariant: Ironic ends on a credential that works, and the record says which.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { BmcEndpoint, BmcCredential, BmcProver } from '../../conductor/bmc-proof.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import type { IronicNodeView } from '../../conductor/ironic-api.js';
import { nextUsername, rotate, type IronicPort } from '../../conductor/rotate.js';
import { generateSelfSigned } from '../../service/tls/self-signed.js';
import { SealingKey, type SealedValue } from '../../agent/tls/sealing-key.js';
import { Secret } from '../../service/secret.js';
import { recordSecret } from '../helpers/secrets.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const newStore = (): FileSecretStore => {
  const d = mkdtempSync(join(tmpdir(), 'rotate-steps-'));
  dirs.push(d);
  return new FileSecretStore({ path: join(d, 'secrets.json') });
};

const UUID = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';
const OLD = recordSecret('Old-ironic-pw-1');
// The running agent's auto-TLS certificate, as Ironic pins it under certificates_path.
const AGENT = generateSelfSigned({ address: '192.0.2.20', commonName: 'n1' });
const PIN = `/var/lib/ironic/certificates/${UUID}.crt`;
const readCertificate = async (p: string): Promise<string> => {
  if (p !== PIN) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  return AGENT.certPem;
};

/** An Ironic double: manual clean succeeds unless told otherwise; driver_info holds revealed strings. */
class FakeIronic implements IronicPort {
  n: IronicNodeView;
  cleanFails = false;
  patchFails = false;
  powerErrorFor: string | null = null;
  readonly calls: string[] = [];
  /** The step args of the last manual clean, as Ironic would keep them in driver_internal_info.clean_steps. */
  cleanArgs: Record<string, unknown> | null = null;

  constructor(state = 'manageable') {
    this.n = {
      uuid: UUID, name: 'n1', provision_state: state, target_provision_state: null, power_state: 'power off', target_power_state: null,
      last_error: null, maintenance: false, driver: 'ipmi',
      driver_info: { ipmi_address: '192.0.2.10', ipmi_username: 'ironic', ipmi_password: '******' },
      driver_internal_info: { agent_verify_ca: PIN },
    };
  }

  async node(): Promise<IronicNodeView> {
    return structuredClone(this.n);
  }

  async provision(_id: string, target: string, extra: Record<string, unknown> = {}): Promise<void> {
    this.calls.push(`provision ${target}${extra.clean_steps ? ' with steps' : ''}`);
    if (target === 'manage') this.n.provision_state = 'manageable';
    else if (target === 'provide') this.n.provision_state = 'available';
    else if (target === 'clean') {
      this.cleanArgs = structuredClone((extra.clean_steps as { args: Record<string, unknown> }[])[0]!.args);
      this.n.provision_state = this.cleanFails ? 'clean failed' : 'manageable';
      this.n.last_error = this.cleanFails ? 'Agent went away' : null;
    }
  }

  async power(_id: string, target: string): Promise<void> {
    this.calls.push(`power ${target}`);
    this.n.last_error = this.powerErrorFor === this.n.driver_info.ipmi_username ? 'IPMI call failed: power status' : null;
  }

  async patchDriverInfo(_id: string, values: Record<string, string | Secret>): Promise<void> {
    if (this.patchFails) throw new Error('Ironic refused to update driver_info: 400 bad');
    for (const [k, v] of Object.entries(values)) this.n.driver_info[k] = typeof v === 'string' ? v : v.reveal();
    this.calls.push(`patch ${String(values.ipmi_username)}`);
  }

  async waitForProvision(): Promise<IronicNodeView> {
    return this.node();
  }

  async waitForPower(): Promise<IronicNodeView> {
    return this.node();
  }
}

class FakeProver implements BmcProver {
  proveOk = true;
  retireOk = true;
  retireTransient = true;
  retireFailures = 0;
  retireCalls = 0;
  readonly retired: string[] = [];
  async prove(_b: BmcEndpoint, _c: BmcCredential) {
    return { ok: this.proveOk, detail: this.proveOk ? 'ok' : 'Unable to establish IPMI v2 / RMCP+ session', attempts: this.proveOk ? 1 : 3 };
  }
  async retire(_b: BmcEndpoint, _as: BmcCredential, username: string) {
    this.retireCalls++;
    if (!this.retireOk || this.retireFailures-- > 0) return { ok: false, detail: 'user disable 3: no response from the BMC', transient: this.retireTransient };
    this.retired.push(username);
    return { ok: true, detail: `user 3 (${username}) disabled`, userId: 3 };
  }
}

/** A store whose previous password for `ironic` is current, as after an earlier rotation. */
async function seeded(): Promise<FileSecretStore> {
  const store = newStore();
  const e = await store.putPending(UUID, 'ironic', Secret.fromString(OLD));
  await store.markCurrent(UUID, e.id);
  return store;
}

const base = (ironic: FakeIronic, store: FileSecretStore, prover: FakeProver) => ({
  node: 'n1', ironic, store, prover, usernames: ['ironic', 'ironic_b'] as const, readCertificate,
  generate: () => Secret.fromString(recordSecret(`Gen-${Math.random().toString(36).slice(2, 10)}x`)),
});

describe('rotate(): step order and failure points', () => {
  it('alternates the pair', () => {
    assert.equal(nextUsername(['a', 'b'], 'a'), 'b');
    assert.equal(nextUsername(['a', 'b'], 'b'), 'a');
    assert.equal(nextUsername(['a', 'b'], 'admin'), 'a');
    assert.equal(nextUsername(['a', 'b'], null), 'a');
  });

  it('success from available: manage, clean, prove, patch, power check, current, retire, delete, provide', async () => {
    const ironic = new FakeIronic('available');
    const store = await seeded();
    const prover = new FakeProver();
    const rec = await rotate(base(ironic, store, prover));
    assert.equal(rec.outcome, 'rotated');
    assert.deepEqual(rec.steps.map((s) => `${s.step}:${s.status}`), [
      'read-node:ok', 'seal:ok', 'store-pending:ok', 'manage:ok', 'clean:ok', 'prove:ok', 'update-ironic:ok',
      'ironic-power-check:ok', 'store-current:ok', 'retire-previous:ok', 'delete-superseded:ok', 'return-node:ok',
    ]);
    assert.deepEqual(ironic.calls, ['provision manage', 'provision clean with steps', 'patch ironic_b', 'power power off', 'provision provide']);
    assert.equal(ironic.n.provision_state, 'available');
    assert.deepEqual(prover.retired, ['ironic']);
    assert.deepEqual((await store.history(UUID)).map((e) => [e.username, e.state]), [['ironic_b', 'current']]);
    assert.equal((await store.getCurrent(UUID))?.secret.reveal(), ironic.n.driver_info.ipmi_password);
  });

  it('refuses step args the credential contract refuses before contacting Ironic, so no node reboots for them', async () => {
    for (const [usernames, privilege, field] of [
      [['été', 'ironic_b'], undefined, 'username'], [['ironic', 'x'.repeat(17)], undefined, 'username'], [['-ironic', 'b'], undefined, 'username'],
      [['ironic', 'ironic_b'], 'callback', 'privilege'],
    ] as const) {
      const touched: string[] = [];
      const fake = new FakeIronic();
      const ironic = new Proxy(fake, { get: (o, k) => (typeof (o as unknown as Record<string | symbol, unknown>)[k] === 'function' ? (touched.push(String(k)), Reflect.get(o, k)) : Reflect.get(o, k)) });
      const store = newStore();
      const prover = new FakeProver();
      const rec = await rotate({ ...base(fake, store, prover), ironic, usernames, ...(privilege ? { privilege: privilege as 'operator' } : {}) });
      assert.equal(rec.outcome, 'failed');
      assert.equal(rec.failedStep, 'check-request');
      assert.match(rec.error ?? '', new RegExp(`step arg ${field}`));
      assert.deepEqual(touched, [], 'Ironic was not called at all');
      assert.deepEqual(rec.steps.map((s) => `${s.step}:${s.status}`), ['check-request:failed']);
      assert.deepEqual(await store.history(UUID), [], 'nothing stored');
      assert.deepEqual(prover.retired, []);
    }
    // Dots and dashes are fine: the rotation runs.
    const ok = await rotate({ ...base(new FakeIronic('available'), await seeded(), new FakeProver()), usernames: ['bmc-ironic.a', 'bmc-ironic.b'] });
    assert.equal(ok.outcome, 'rotated', ok.error ?? '');
  });

  it('refuses a node in maintenance or in the wrong state without applying anything', async () => {
    const ironic = new FakeIronic('active');
    const store = newStore();
    const rec = await rotate(base(ironic, store, new FakeProver()));
    assert.equal(rec.failedStep, 'read-node');
    assert.match(rec.error ?? '', /"active"/);
    assert.deepEqual(rec.applied, []);
    assert.deepEqual(await store.history(UUID), []);
    const m = new FakeIronic();
    m.n.maintenance = true;
    assert.match((await rotate(base(m, newStore(), new FakeProver()))).error ?? '', /maintenance/);
  });

  it('the new login fails: Ironic is not touched, the entry is failed, the previous user is kept', async () => {
    const ironic = new FakeIronic();
    const store = await seeded();
    const prover = new FakeProver();
    prover.proveOk = false;
    const rec = await rotate(base(ironic, store, prover));
    assert.equal(rec.outcome, 'failed');
    assert.equal(rec.failedStep, 'prove');
    assert.equal(rec.current.username, 'ironic');
    assert.equal(ironic.n.driver_info.ipmi_username, 'ironic');
    assert.equal(rec.next.secretState, 'failed');
    assert.deepEqual(prover.retired, []);
    assert.equal((await store.getCurrent(UUID))?.secret.reveal(), OLD, 'the previous password is still current in the store');
  });

  it('the clean fails: the node goes back to manageable (and to available when it came from there)', async () => {
    const ironic = new FakeIronic('available');
    ironic.cleanFails = true;
    const rec = await rotate(base(ironic, await seeded(), new FakeProver()));
    assert.equal(rec.failedStep, 'clean');
    assert.match(rec.error ?? '', /Agent went away/);
    assert.deepEqual(rec.rolledBack.filter((r) => r.startsWith('node')), ['node moved clean failed → manageable', 'node moved manageable → available']);
    assert.equal(ironic.n.provision_state, 'available');
    assert.equal(rec.current.username, 'ironic');
  });

  it('Ironic refuses the PATCH: it keeps the previous credential', async () => {
    const ironic = new FakeIronic();
    ironic.patchFails = true;
    const rec = await rotate(base(ironic, await seeded(), new FakeProver()));
    assert.equal(rec.failedStep, 'update-ironic');
    assert.equal(rec.current.username, 'ironic');
    assert.equal(rec.next.secretState, 'failed');
  });

  it("Ironic's power call fails with the new credential: driver_info goes back to the previous one", async () => {
    const ironic = new FakeIronic();
    ironic.powerErrorFor = 'ironic_b';
    const store = await seeded();
    const prover = new FakeProver();
    const rec = await rotate(base(ironic, store, prover));
    assert.equal(rec.failedStep, 'ironic-power-check');
    assert.deepEqual(rec.rolledBack, ['Ironic driver_info back to ironic', `store entry ${rec.next.secretId} marked failed`, ]);
    assert.equal(ironic.n.driver_info.ipmi_username, 'ironic');
    assert.equal(ironic.n.driver_info.ipmi_password, OLD);
    assert.equal(rec.current.username, 'ironic');
    assert.deepEqual(prover.retired, [], 'the previous user stays enabled');
  });

  it('the store cannot mark current: Ironic keeps the new, proven credential; the entry stays pending; nothing is retired', async () => {
    const ironic = new FakeIronic();
    const store = await seeded();
    store.markCurrent = async () => {
      throw new Error('Barbican at http://127.0.0.1:9 did not answer');
    };
    const prover = new FakeProver();
    const rec = await rotate(base(ironic, store, prover));
    assert.equal(rec.failedStep, 'store-current');
    assert.equal(rec.current.username, 'ironic_b');
    assert.equal(ironic.n.driver_info.ipmi_username, 'ironic_b');
    assert.equal(rec.next.secretState, 'pending');
    assert.ok(rec.warnings.some((w) => /stays pending/.test(w)));
    assert.deepEqual(prover.retired, []);
    const pending = (await store.history(UUID)).find((e) => e.state === 'pending');
    assert.equal((await store.getSecret(UUID, pending?.id as string)).reveal(), ironic.n.driver_info.ipmi_password, 'the password Ironic uses is in the store');
  });

  it('the previous user cannot be retired: the rotation fails at retire-previous, nothing rolled back, its value kept', async () => {
    // A rotation after a leak exists to make the previous password useless: not
    // "rotated" while the previous user may still log in.
    const ironic = new FakeIronic();
    const store = await seeded();
    const prover = new FakeProver();
    prover.retireOk = false;
    const rec = await rotate({ ...base(ironic, store, prover), retireDelayMs: 1 });
    assert.equal(rec.outcome, 'failed');
    assert.equal(rec.failedStep, 'retire-previous');
    assert.match(rec.error ?? '', /previous BMC user ironic is still enabled after 3 tries/);
    assert.equal(prover.retireCalls, 3, 'a busy or silent BMC is tried again');
    assert.deepEqual(rec.rolledBack, [], 'Ironic keeps the new, proven credential');
    assert.equal(ironic.n.driver_info.ipmi_username, 'ironic_b');
    assert.deepEqual((await store.history(UUID)).map((e) => e.state), ['superseded', 'current'], 'the previous value is kept: it still logs in');
  });

  it('a retirement refused for good (no such user, last administrator) is not tried again', async () => {
    const ironic = new FakeIronic();
    const prover = new FakeProver();
    prover.retireOk = false;
    prover.retireTransient = false;
    const rec = await rotate({ ...base(ironic, await seeded(), prover), retireDelayMs: 1 });
    assert.equal(rec.failedStep, 'retire-previous');
    assert.equal(prover.retireCalls, 1);
  });

  it('a retirement that succeeds on its second try is a rotation', async () => {
    const ironic = new FakeIronic();
    const prover = new FakeProver();
    prover.retireFailures = 1;
    const rec = await rotate({ ...base(ironic, await seeded(), prover), retireDelayMs: 1 });
    assert.equal(rec.outcome, 'rotated');
    assert.match(rec.steps.find((st) => st.step === 'retire-previous')?.detail ?? '', /try 2/);
    assert.deepEqual(prover.retired, ['ironic']);
  });

  it('no record or log line holds a password', async () => {
    const lines: string[] = [];
    const ironic = new FakeIronic();
    const opts = { ...base(ironic, await seeded(), new FakeProver()), log: (l: string) => lines.push(l) };
    const rec = await rotate(opts);
    const pw = String(ironic.n.driver_info.ipmi_password);
    assert.ok(pw.length >= 8);
    assert.ok(!JSON.stringify(rec).includes(pw) && !lines.join('\n').includes(pw) && !JSON.stringify(rec).includes(OLD));
  });

  it('the step args carry the password sealed to the pinned agent certificate, which only that agent opens', async () => {
    const ironic = new FakeIronic();
    const rec = await rotate(base(ironic, await seeded(), new FakeProver()));
    assert.equal(rec.outcome, 'rotated');
    const pw = String(ironic.n.driver_info.ipmi_password);
    const args = ironic.cleanArgs as { username: string; password?: string; password_sealed: SealedValue };
    assert.equal(args.password, undefined);
    assert.ok(!JSON.stringify(args).includes(pw), 'no plain password in what Ironic persists');
    assert.equal(args.password_sealed.node, UUID);
    assert.equal(args.password_sealed.user, 'ironic_b');
    const key = new SealingKey(AGENT.key);
    assert.deepEqual(rec.stepArgs, { password: 'sealed', agentKeyId: key.kid, certificate: PIN });
    assert.equal(key.open(args.password_sealed, { purpose: 'set_bmc_credentials', user: 'ironic_b', node: UUID }).reveal(), pw);
  });

  it('no pinned certificate: refused before anything is stored or sent, unless plain args are allowed (then a loud warning)', async () => {
    const ironic = new FakeIronic('available');
    ironic.n.driver_internal_info = {};
    const store = await seeded();
    const rec = await rotate(base(ironic, store, new FakeProver()));
    assert.equal(rec.outcome, 'failed');
    assert.equal(rec.failedStep, 'seal');
    assert.match(rec.error ?? '', /no agent certificate to seal the password to.*--allow-plain-args/);
    assert.deepEqual(ironic.calls, [], 'nothing sent to Ironic');
    assert.deepEqual((await store.history(UUID)).map((e) => e.state), ['current'], 'nothing stored');
    assert.equal(rec.current.username, 'ironic');

    const unreadable = new FakeIronic();
    unreadable.n.driver_internal_info = { agent_verify_ca: '/elsewhere/x.crt' };
    const r2 = await rotate(base(unreadable, await seeded(), new FakeProver()));
    assert.equal(r2.failedStep, 'seal');
    assert.match(r2.error ?? '', /cannot be read here \(ENOENT\)/);

    const plain = new FakeIronic();
    plain.n.driver_internal_info = {};
    const r3 = await rotate({ ...base(plain, await seeded(), new FakeProver()), allowPlainArgs: true });
    assert.equal(r3.outcome, 'rotated');
    assert.equal(r3.steps.find((s) => s.step === 'seal')?.status, 'skipped');
    assert.equal(r3.stepArgs?.password, 'plain');
    assert.ok(r3.warnings.some((w) => /^PLAIN PASSWORD IN STEP ARGS/.test(w)));
    assert.equal(typeof (plain.cleanArgs as { password?: unknown }).password, 'string');

    const given = new FakeIronic();
    given.n.driver_internal_info = {};
    const r4 = await rotate({ ...base(given, await seeded(), new FakeProver()), agentCertificate: AGENT.certPem });
    assert.equal(r4.outcome, 'rotated');
    assert.equal(r4.stepArgs?.certificate, 'the given agent certificate');
  });
});
