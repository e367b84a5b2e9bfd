/**
 * The discovery service (scenario 1) against a fake agent over real HTTPS
 * (the service's self-signed certificate, verified by the client), a real
 * file store, an in-memory Ironic and a prover double: each failure point
 * leaves the record, the store and Ironic as the service's header says.
 * The real-Ironic run is discovery-ironic.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import type { BmcCredential, BmcEndpoint, BmcProver, ProofResult } from '../../conductor/bmc-proof.js';
import { startDiscoveryServer, writeDiscoveryRecord, type DiscoveryServer } from '../../conductor/discovery-server.js';
import { DiscoveryService, type DiscoveryRecord, type DiscoveryServiceOptions } from '../../conductor/discovery-service.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import type { IronicNodeView } from '../../conductor/ironic-api.js';
import type { DiscoveryIronic, NewNode, NodeSummary, PatchOp } from '../../conductor/ironic-enroll.js';
import { SecretStoreError, type SecretStore } from '../../conductor/secret-store.js';
import type { Secret } from '../../service/secret.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';

class FakeIronic implements DiscoveryIronic {
  readonly nodesById = new Map<string, IronicNodeView>();
  readonly ports = new Map<string, string>();
  /** Plain driver_info passwords as Ironic would hold them (the API masks them). */
  readonly passwords = new Map<string, string>();
  readonly calls: string[] = [];
  failCreate = false;
  manageFails = false;

  add(uuid: string, driverInfo: Record<string, unknown>, macs: string[], state = 'manageable'): void {
    this.nodesById.set(uuid, {
      uuid, name: null, provision_state: state, target_provision_state: null, power_state: 'power on', target_power_state: null,
      last_error: null, maintenance: false, driver: 'ipmi', driver_info: { ...driverInfo, ipmi_password: '******' },
    });
    for (const m of macs) this.ports.set(m, uuid);
  }

  async node(ident: string): Promise<IronicNodeView> {
    const n = this.nodesById.get(ident);
    if (!n) throw new Error(`Ironic refused to read node ${ident}: 404 not found`);
    return structuredClone(n);
  }

  async nodesByMac(macs: readonly string[]): Promise<string[]> {
    return [...new Set(macs.map((m) => this.ports.get(m)).filter((u): u is string => !!u))];
  }

  async nodes(): Promise<NodeSummary[]> {
    return [...this.nodesById.values()].map((n) => ({ uuid: n.uuid, driver: n.driver, provision_state: n.provision_state, driver_info: n.driver_info }));
  }

  async createNode(node: NewNode, macs: readonly string[]): Promise<void> {
    this.calls.push(`create ${node.uuid}`);
    if (this.failCreate) throw new Error('Ironic refused to create node: 400 boom');
    const info: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node.driver_info)) info[k] = typeof v === 'object' ? '******' : v;
    this.passwords.set(node.uuid, (node.driver_info.ipmi_password as Secret).reveal());
    this.add(node.uuid, info, [...macs], 'enroll');
    (this.nodesById.get(node.uuid) as IronicNodeView).driver = node.driver;
  }

  async patchNode(ident: string, ops: readonly PatchOp[]): Promise<void> {
    this.calls.push(`patch ${ident} ${ops.map((o) => o.path).join(',')}`);
    const n = this.nodesById.get(ident) as IronicNodeView;
    for (const o of ops) {
      if (o.path === '/driver') n.driver = String(o.value);
      else if (o.path === '/driver_info/ipmi_password') this.passwords.set(ident, (o.value as Secret).reveal());
      else n.driver_info[o.path.slice('/driver_info/'.length)] = o.value;
    }
  }

  async provision(ident: string, target: string): Promise<void> {
    this.calls.push(`provision ${ident} ${target}`);
    const n = this.nodesById.get(ident) as IronicNodeView;
    if (target === 'manage') {
      n.provision_state = this.manageFails ? 'enroll' : 'manageable';
      n.last_error = this.manageFails ? 'Failed to get power state: IPMI login refused' : null;
    }
  }

  async waitForProvision(ident: string): Promise<IronicNodeView> {
    return this.node(ident);
  }

  async power(ident: string, target: string): Promise<void> {
    this.calls.push(`power ${ident} ${target}`);
  }

  async waitForPower(ident: string): Promise<IronicNodeView> {
    return this.node(ident);
  }
}

/** The BMC as far as the prover sees it: which user has which password. */
class FakeBmcProver implements BmcProver {
  powerStatus?: BmcProver['powerStatus'];
  readonly users = new Map<string, string>();
  readonly proofs: Array<{ bmc: BmcEndpoint; username: string }> = [];
  async prove(bmc: BmcEndpoint, cred: BmcCredential): Promise<ProofResult> {
    this.proofs.push({ bmc, username: cred.username });
    const ok = this.users.get(cred.username) === cred.password.reveal();
    return { ok, detail: ok ? 'mc info over lanplus' : 'Error: Unable to establish IPMI v2 / RMCP+ session', attempts: ok ? 1 : 3 };
  }
  async retire(): Promise<{ ok: boolean; detail: string }> {
    return { ok: false, detail: 'not used' };
  }
}

function inventory(macs: string[], bmc: string | null = '10.0.0.5'): Record<string, unknown> {
  return {
    inventory: {
      interfaces: macs.map((m, i) => ({ name: `eth${i}`, mac_address: m })),
      cpu: { count: 4, architecture: 'x86_64' }, memory: { physical_mb: 8192 },
      bmc_address: bmc, disks: [],
    },
    root_disk: null, boot_interface: null, error: null,
  };
}

function post(server: DiscoveryServer, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown>; retryAfter?: string }> {
  const u = new URL(server.url + path);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', ca: server.certPem as string, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({
        status: res.statusCode as number, body: text ? JSON.parse(text) : {},
        ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}),
      }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** The agent's side of discovery: post the inventory, "apply" the credentials to the BMC, report. */
async function fakeAgent(server: DiscoveryServer, bmc: FakeBmcProver, inv: unknown, outcome: 'succeeded' | 'failed' = 'succeeded'): Promise<{ answer: Record<string, unknown>; result?: Record<string, unknown>; password?: string }> {
  const a = await post(server, '/v1/continue', inv);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  const creds = a.body.bmc_credentials as { username: string; password: string } | undefined;
  if (!creds) return { answer: a.body };
  recordSecret(creds.password);
  if (outcome === 'succeeded') bmc.users.set(creds.username, creds.password);
  const r = await post(server, '/v1/continue', {
    uuid: a.body.uuid,
    bmc_credentials_result: outcome === 'succeeded' ? { status: 'succeeded', result: { user_id: 3 } } : { status: 'failed', error: 'BMC refused Set User Password (0xcc)' },
  });
  return { answer: a.body, result: r.body, password: creds.password };
}

describe('discovery service (fake agent over HTTPS, in-memory Ironic)', () => {
  let work: string;
  let ironic: FakeIronic;
  let bmc: FakeBmcProver;
  let store: FileSecretStore;
  let service: DiscoveryService;
  let server: DiscoveryServer;
  const lines: string[] = [];
  const records: DiscoveryRecord[] = [];

  async function start(extra: Partial<DiscoveryServiceOptions> = {}, storeOverride?: SecretStore): Promise<void> {
    service = new DiscoveryService({
      ironic, store: storeOverride ?? store, prover: bmc, bmcPort: 6230, log: (l) => lines.push(l),
      onRecord: async (r) => {
        records.push(r);
        await writeDiscoveryRecord(join(work, 'records'), r);
      },
      ...extra,
    });
    server = await startDiscoveryServer({ host: '127.0.0.1', port: 0, discovery: service, tls: { auto: true, certOut: join(work, 'cert.pem') } });
  }

  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'discovery-svc-'));
    ironic = new FakeIronic();
    bmc = new FakeBmcProver();
    store = new FileSecretStore({ path: join(work, 'secrets.json') });
    records.length = 0;
  });

  afterEach(async () => {
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  after(() => captureLines('conductor-discovery-service', lines));

  it('enrolls an unknown node with a fresh, proven, unique credential and makes it manageable', async () => {
    await start();
    assert.match(readFileSync(join(work, 'cert.pem'), 'utf8'), /BEGIN CERTIFICATE/);
    const one = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01', '52:54:00:00:00:02']));
    assert.equal(one.result?.status, 'verifying');
    await service.idle();
    const uuid = one.answer.uuid as string;
    const node = await ironic.node(uuid);
    assert.equal(node.driver, 'ipmi');
    assert.equal(node.provision_state, 'manageable');
    assert.deepEqual({ ...node.driver_info }, { ipmi_address: '10.0.0.5', ipmi_port: 6230, ipmi_username: 'ironic', ipmi_password: '******', ipmi_cipher_suite: 3 });
    assert.equal(ironic.passwords.get(uuid), one.password, 'Ironic holds the password the agent set');
    assert.deepEqual(bmc.proofs.map((p) => [p.bmc.host, p.bmc.port, p.username]), [['10.0.0.5', 6230, 'ironic']]);
    const cur = await store.getCurrent(uuid);
    assert.equal(cur?.secret.reveal(), one.password);
    assert.equal(ironic.ports.get('52:54:00:00:00:02'), uuid);

    const two = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:03'], '10.0.0.6'));
    await service.idle();
    assert.notEqual(two.answer.uuid, uuid);
    assert.notEqual(two.password, one.password, 'a fresh secret per discovery');

    assert.deepEqual(records.map((r) => [r.status, r.failedStep]), [['enrolled', null], ['enrolled', null]]);
    assert.match(records[0]!.current.note, /current/);
    const disk = readdirSync(join(work, 'records')).map((f) => readFileSync(join(work, 'records', f), 'utf8')).join('\n');
    for (const pw of [one.password!, two.password!]) {
      assert.ok(!disk.includes(pw) && !lines.join('\n').includes(pw) && !JSON.stringify(records).includes(pw), 'no password in records or logs');
      assert.ok(!readFileSync(join(work, 'secrets.json'), 'utf8').includes(pw), 'nor in plain text at rest');
    }
  });

  it('a known node (matched by MAC) gets the other BMC user; Ironic\'s own power call checks it', async () => {
    await start();
    ironic.add('1b2d7c3e-0000-4000-8000-000000000001', { ipmi_address: '10.0.0.5', ipmi_port: 6230, ipmi_username: 'ironic' }, ['52:54:00:00:00:01']);
    const r = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01']));
    await service.idle();
    assert.equal(r.answer.uuid, '1b2d7c3e-0000-4000-8000-000000000001');
    assert.equal((r.answer.bmc_credentials as { username: string }).username, 'ironic_b');
    const n = await ironic.node('1b2d7c3e-0000-4000-8000-000000000001');
    assert.equal(n.driver_info.ipmi_username, 'ironic_b');
    assert.ok(ironic.calls.includes('power 1b2d7c3e-0000-4000-8000-000000000001 power on'));
    assert.ok(!ironic.calls.some((c) => c.startsWith('create')));
    assert.equal(records[0]?.status, 'enrolled');
    assert.equal(records[0]?.newNode, false);
  });

  it('a known node\'s power check asks Ironic for the state the BMC reports, not the state Ironic recorded', async () => {
    // Ironic's database says "power on"; the BMC, read as the new user, says
    // "power off". Asking Ironic for its recorded state would switch the node.
    const statuses: string[] = [];
    bmc.powerStatus = async (_b: BmcEndpoint, cred: BmcCredential) => {
      statuses.push(cred.username);
      return { ok: true, state: 'power off' as const, detail: 'Chassis Power is off' };
    };
    await start();
    ironic.add('1b2d7c3e-0000-4000-8000-000000000003', { ipmi_address: '10.0.0.5', ipmi_port: 6230, ipmi_username: 'ironic' }, ['52:54:00:00:00:07']);
    await fakeAgent(server, bmc, inventory(['52:54:00:00:00:07']));
    await service.idle();
    assert.deepEqual(statuses, ['ironic_b'], 'read once, as the user Ironic now logs in as');
    assert.ok(ironic.calls.includes('power 1b2d7c3e-0000-4000-8000-000000000003 power off'), ironic.calls.join(', '));
    assert.ok(!ironic.calls.includes('power 1b2d7c3e-0000-4000-8000-000000000003 power on'));
    assert.equal(records[0]?.status, 'enrolled');
  });

  it('matches a known node by its BMC address and port alone; refuses when MAC and BMC name different nodes', async () => {
    await start();
    ironic.add('1b2d7c3e-0000-4000-8000-000000000002', { ipmi_address: '10.0.0.5', ipmi_port: 6230, ipmi_username: 'admin' }, []);
    const r = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:09']));
    await service.idle();
    assert.equal(r.answer.uuid, '1b2d7c3e-0000-4000-8000-000000000002');
    assert.equal((r.answer.bmc_credentials as { username: string }).username, 'ironic');

    ironic.add('1b2d7c3e-0000-4000-8000-000000000003', { ipmi_address: '10.0.0.7' }, ['52:54:00:00:00:0a']);
    const amb = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:0a'], '10.0.0.5'));
    assert.equal(amb.answer.bmc_credentials, undefined, 'no credentials when the match is ambiguous');
    assert.equal(records.at(-1)?.failedStep, 'match-node');
  });

  it('an IPv6-only BMC is proven and enrolled at its v6 address', async () => {
    await start();
    const inv = inventory(['52:54:00:00:00:01'], '0.0.0.0');
    (inv.inventory as Record<string, unknown>).bmc_v6address = 'fd00::5';
    const r = await fakeAgent(server, bmc, inv);
    await service.idle();
    assert.equal(records[0]?.status, 'enrolled');
    assert.equal(bmc.proofs[0]?.bmc.host, 'fd00::5');
    assert.equal((await ironic.node(r.answer.uuid as string)).driver_info.ipmi_address, 'fd00::5');
  });

  it('the agent reports failure: a new node\'s entry is removed, nothing in Ironic', async () => {
    await start();
    const r = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01']), 'failed');
    assert.equal(r.result?.status, 'failed');
    const uuid = r.answer.uuid as string;
    assert.equal(ironic.nodesById.size, 0);
    assert.deepEqual(await store.history(uuid), [], 'a new node\'s entry is removed: its password is on no BMC');
    assert.equal(records[0]?.failedStep, 'agent-result');
    assert.match(records[0]!.error!, /0xcc/);
    assert.match(records[0]!.current.note, /not enrolled/);
  });

  it('the proof fails (the password does not log in): entry failed, nothing in Ironic', async () => {
    await start();
    const a = await post(server, '/v1/continue', inventory(['52:54:00:00:00:01']));
    recordSecret((a.body.bmc_credentials as { password: string }).password);
    // The agent claims success but the BMC never got the password.
    await post(server, '/v1/continue', { uuid: a.body.uuid, bmc_credentials_result: { status: 'succeeded', result: {} } });
    await service.idle();
    assert.equal(records[0]?.failedStep, 'prove');
    assert.equal(ironic.nodesById.size, 0);
    assert.deepEqual((await store.history(a.body.uuid as string)).map((e) => e.state), ['failed']);
  });

  it('Ironic refuses the node: the proven password stays pending and the record says where it is', async () => {
    await start();
    ironic.failCreate = true;
    const r = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01']));
    await service.idle();
    assert.equal(records[0]?.failedStep, 'enroll');
    assert.match(records[0]!.current.note, /still pending/);
    const h = await store.history(r.answer.uuid as string);
    assert.deepEqual(h.map((e) => e.state), ['pending']);
    assert.equal((await store.getSecret(r.answer.uuid as string, h[0]!.id)).reveal(), r.password);
  });

  it('Ironic\'s manage fails: the record names the step and the credential Ironic holds', async () => {
    await start();
    ironic.manageFails = true;
    await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01']));
    await service.idle();
    assert.equal(records[0]?.failedStep, 'manage');
    assert.match(records[0]!.error!, /IPMI login refused/);
    assert.equal(records[0]?.current.username, 'ironic');
  });

  it('no BMC address or a store that is down: the agent gets no credentials', async () => {
    const down: SecretStore = Object.assign(Object.create(store) as SecretStore, {
      putPending: async () => { throw new SecretStoreError('UNAVAILABLE', 'Barbican did not answer'); },
    });
    await start({}, down);
    const a = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01'], '0.0.0.0'));
    assert.equal(a.answer.bmc_credentials, undefined);
    const v6only = inventory(['52:54:00:00:00:01'], '0.0.0.0');
    (v6only.inventory as Record<string, unknown>).bmc_v6address = '::/0';
    assert.equal((await fakeAgent(server, bmc, v6only)).answer.bmc_credentials, undefined);
    const b = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01']));
    assert.equal(b.answer.bmc_credentials, undefined);
    assert.deepEqual(records.map((r) => r.failedStep), ['receive-inventory', 'receive-inventory', 'store-pending']);
    assert.equal(ironic.nodesById.size, 0);
  });

  it('idle() and close() wait for the record of an inventory answered without credentials', async () => {
    let written = 0;
    await start({ onRecord: async () => { await new Promise((r) => setTimeout(r, 50)); written++; } });
    const a = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01'], '0.0.0.0'));
    assert.equal(a.answer.bmc_credentials, undefined);
    await service.idle();
    assert.equal(written, 1, 'the refusal\'s record is kept before idle() resolves');
  });

  it('forwards the inventory to ironic-inspector and updates the node it enrolled', async () => {
    const seen: unknown[] = [];
    const inspector = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push(JSON.parse(body));
        // inspector's enroll hook: a fake-hardware node in enroll, ports for the MACs.
        // Its driver_info holds the inventory's BMC address (discovery.py _extract_node_driver_info).
        ironic.add('1b2d7c3e-0000-4000-8000-00000000000a', { ipmi_address: '10.0.0.5' }, ['52:54:00:00:00:01'], 'enroll');
        (ironic.nodesById.get('1b2d7c3e-0000-4000-8000-00000000000a') as IronicNodeView).driver = 'fake-hardware';
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ uuid: '1b2d7c3e-0000-4000-8000-00000000000a' }));
      });
    });
    await new Promise<void>((r) => inspector.listen(0, '127.0.0.1', r));
    try {
      await start({ inspectorUrl: `http://127.0.0.1:${(inspector.address() as AddressInfo).port}` });
      const r = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01']));
      await service.idle();
      assert.equal(seen.length, 1, 'the inventory went to inspector once (not the result)');
      assert.equal(r.answer.uuid, '1b2d7c3e-0000-4000-8000-00000000000a');
      const n = await ironic.node('1b2d7c3e-0000-4000-8000-00000000000a');
      assert.equal(n.driver, 'ipmi');
      assert.equal(n.provision_state, 'manageable');
      assert.equal(records[0]?.inspector?.forwarded, true);
    } finally {
      await new Promise((r) => inspector.close(r));
    }
  });

  it('works alone when inspector is down; an unknown result uuid is 404', async () => {
    await start({ inspectorUrl: 'http://127.0.0.1:9' });
    const r = await fakeAgent(server, bmc, inventory(['52:54:00:00:00:01']));
    await service.idle();
    assert.equal(records[0]?.status, 'enrolled');
    assert.match(records[0]!.warnings.join(), /ironic-inspector/);
    assert.ok(r.answer.uuid);
    const stray = await post(server, '/v1/continue', { uuid: 'nope', bmc_credentials_result: { status: 'succeeded' } });
    assert.equal(stray.status, 404);
  });

  it('an agent that never reports: the entry is removed from the store after the timeout', async () => {
    await start({ resultTimeoutMs: 50 });
    const a = await post(server, '/v1/continue', inventory(['52:54:00:00:00:01']));
    recordSecret((a.body.bmc_credentials as { password: string }).password);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(records[0]?.failedStep, 'agent-result');
    assert.match(records[0]!.error!, /no result/);
    assert.deepEqual(await store.history(a.body.uuid as string), [], 'the expired entry is removed from the store');
    assert.ok(records[0]!.applied.some((x) => /removed/.test(x)));
    assert.deepEqual(JSON.parse(readFileSync(join(work, 'secrets.json'), 'utf8')).nodes, {}, 'nothing left in the file');
  });

  it('a known node is never repointed: a foreign BMC address, no ipmi_address, or an active node is refused (403)', async () => {
    await start();
    const mac = '52:54:00:00:01:01';
    const cases: Array<[string, Record<string, unknown>, string, string]> = [
      ['a BMC address of the caller\'s choosing', { ipmi_address: '10.0.0.5', ipmi_port: 6230, ipmi_username: 'ironic' }, 'manageable', '10.66.6.6'],
      ['the right address, an active node', { ipmi_address: '10.0.0.5', ipmi_port: 6230, ipmi_username: 'ironic' }, 'active', '10.0.0.5'],
      ['the right address, an available node', { ipmi_address: '10.0.0.5', ipmi_port: 6230, ipmi_username: 'ironic' }, 'available', '10.0.0.5'],
      ['the right address, a node being deployed', { ipmi_address: '10.0.0.5', ipmi_port: 6230, ipmi_username: 'ironic' }, 'wait call-back', '10.0.0.5'],
      ['a node with no ipmi_address yet', { ipmi_username: 'ironic' }, 'manageable', '10.0.0.5'],
    ];
    for (const [i, [what, info, state, posted]] of cases.entries()) {
      const uuid = `1b2d7c3e-0000-4000-8000-0000000001${String(i).padStart(2, '0')}`;
      ironic.nodesById.clear();
      ironic.ports.clear();
      ironic.add(uuid, info, [mac], state);
      const before = structuredClone(ironic.nodesById.get(uuid));
      const r = await post(server, '/v1/continue', inventory([mac], posted));
      assert.equal(r.status, 403, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.bmc_credentials, undefined, what);
      assert.ok(!JSON.stringify(r.body).includes(uuid), `${what}: the answer does not name the node`);
      assert.deepEqual(ironic.nodesById.get(uuid), before, `${what}: Ironic untouched`);
      assert.deepEqual(await store.history(uuid), [], `${what}: store untouched`);
      assert.match(lines.join('\n'), new RegExp(`REFUSED inventory from 127\\.0\\.0\\.1.*node ${uuid}`), `${what}: logged`);
    }
    assert.equal(service.pendingCount(), 0);
    assert.deepEqual(ironic.calls, [], 'no patch, create, provision or power call');
    assert.equal(bmc.proofs.length, 0);
    assert.deepEqual(records.map((r) => r.failedStep), cases.map(() => 'match-node'));

    // The node, booted on purpose (inspection expected, its own BMC): answered.
    ironic.nodesById.clear();
    ironic.add('1b2d7c3e-0000-4000-8000-000000000199', { ipmi_address: '10.0.0.5', ipmi_port: 6230, ipmi_username: 'ironic' }, [mac], 'inspect wait');
    const ok = await fakeAgent(server, bmc, inventory([mac], '10.0.0.5'));
    await service.idle();
    assert.ok(ok.password, 'credentials for a node whose BMC address and state fit');
  });

  it('a flood of random-MAC inventories: past the cap of pending discoveries, 429 and the store untouched', async () => {
    await start({ maxPending: 5, maxPendingPerSource: 5, rate: { burst: 1000, perMinute: 1000 } });
    const mac = (i: number): string => `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const answers: Array<{ status: number; body: Record<string, unknown>; retryAfter?: string }> = [];
    for (let batch = 0; batch < 6; batch++) {
      answers.push(...await Promise.all(Array.from({ length: 50 }, (_, j) => post(server, '/v1/continue', inventory([mac(batch * 50 + j)], `10.1.${batch}.${j}`)))));
    }
    for (const a of answers) if (a.body.bmc_credentials) recordSecret((a.body.bmc_credentials as { password: string }).password);
    const given = answers.filter((a) => a.status === 200 && a.body.bmc_credentials);
    const refused = answers.filter((a) => a.status === 429);
    assert.equal(given.length, 5, 'exactly the cap got passwords');
    assert.equal(refused.length, 295);
    assert.ok(refused.every((a) => Number(a.retryAfter) > 0), 'Retry-After on every 429');
    assert.match(JSON.parse(String(refused[0]!.body.error_message)).faultstring, /too many discoveries/);
    const file = JSON.parse(readFileSync(join(work, 'secrets.json'), 'utf8')) as { nodes: Record<string, unknown[]> };
    assert.equal(Object.values(file.nodes).flat().length, 5, 'five store entries, no more');
    assert.equal(service.pendingCount(), 5);
    assert.equal(records.length, 0, 'a refused inventory leaves no record');
    assert.equal(ironic.calls.length, 0);
    assert.ok(lines.filter((l) => /refused an inventory/.test(l)).length < 20, 'the log is not flooded either');
  });

  it('inventories are rate-limited per source address, and pending ones capped per source', async () => {
    let now = 1_000_000;
    await start({ rate: { burst: 3, perMinute: 2 }, maxPendingPerSource: 2, now: () => now });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      // No BMC address: each is answered without credentials (nothing pending), so only the rate bites.
      const r = await post(server, '/v1/continue', inventory([`02:00:00:00:02:0${i}`], '0.0.0.0'));
      statuses.push(r.status);
      if (r.status === 429) assert.equal(r.retryAfter, '30');
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
    now += 30_000; // one more inventory's worth at 2 a minute
    assert.equal((await post(server, '/v1/continue', inventory(['02:00:00:00:02:10'], '0.0.0.0'))).status, 200);
    assert.equal((await post(server, '/v1/continue', inventory(['02:00:00:00:02:11'], '0.0.0.0'))).status, 429);

    // Per source: two pending from one address, the third refused; another address still served.
    now += 600_000;
    const viaA = async (i: number) => service.handle(inventory([`02:00:00:00:03:0${i}`], `10.2.0.${i}`), '192.0.2.1');
    for (const i of [1, 2]) recordSecret(((await viaA(i)).body.bmc_credentials as { password: string }).password);
    await assert.rejects(viaA(3), (e: Error & { status?: number }) => e.status === 429 && /from 192\.0\.2\.1/.test(e.message));
    const b = await service.handle(inventory(['02:00:00:00:03:09'], '10.2.0.9'), '192.0.2.2');
    recordSecret((b.body.bmc_credentials as { password: string }).password);
    assert.equal(service.pendingCount('192.0.2.1'), 2);
    assert.equal(service.pendingCount(), 3);
  });
});

