/**
 * The fleet rotator's pieces without a real BMC or Ironic: bad input stops
 * before anything changes (exit 2 naming the flag; an in-memory Ironic over
 * HTTP records every call, and none but reads arrive), the session-user guard,
 * the login classification, the per-BMC gate, and the progress line.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main } from '../../conductor/cli.js';
import { progressLine } from '../../conductor/fleet-cli.js';
import { BmcGate, classifyLogin, SessionUserGuard, userWritten } from '../../conductor/fleet-bmc.js';
import type { IpmiRequest, Transport } from '../../ipmi-kcs/transport.js';
import { IpmiTimeoutError } from '../../ipmi-kcs/errors.js';
import { createSimulatedTransport, type SimulatedBmc } from '../../ipmi-kcs/simulated/index.js';
import { CredentialService } from '../../service/credential-service.js';
import { Secret } from '../../service/secret.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import { runFleet } from '../../conductor/fleet.js';
import type { BmcAccess } from '../../conductor/fleet-bmc.js';
import type { IronicNodeView } from '../../conductor/ironic-api.js';
import type { RotationRecord } from '../../conductor/rotate.js';

const NODES = [{ uuid: '11111111-2222-3333-4444-555555555555', name: 'n1', provision_state: 'active', driver: 'ipmi', driver_info: { ipmi_address: '127.0.0.1', ipmi_username: 'admin' } }];

describe('conductor rotate (fleet): bad input stops before anything changes', () => {
  let server: http.Server;
  let url = '';
  const seen: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'fleet-cli-'));
  const blocker = join(dir, 'not-a-directory');
  writeFileSync(blocker, '');
  const storeDir = join(dir, 'a-directory');
  mkdirSync(storeDir);
  before(async () => {
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const u = new URL(req.url ?? '/', 'http://x');
      res.setHeader('Content-Type', 'application/json');
      if (req.method === 'GET' && u.pathname === '/v1/nodes/detail') {
        const match = NODES.filter((n) => (!u.searchParams.get('driver') || n.driver === u.searchParams.get('driver')) && (!u.searchParams.get('provision_state') || n.provision_state === u.searchParams.get('provision_state')));
        res.end(JSON.stringify({ nodes: match }));
        return;
      }
      const m = /^\/v1\/nodes\/([^/]+)$/.exec(u.pathname);
      const n = m && NODES.find((x) => x.uuid === m[1] || x.name === m[1]);
      if (req.method === 'GET' && n) {
        res.end(JSON.stringify(n));
        return;
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ error_message: JSON.stringify({ faultstring: `Node ${m?.[1]} could not be found.` }) }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(['conductor', 'rotate', '--ironic-url', url, '--store-path', join(dir, 'secrets.json'), ...argv], {
      stdout: (s) => (out += s), stderr: (s) => (err += s), env: {}, readStdin: async () => 'initial-pw-x\n', stderrIsTTY: false,
    });
    return { code, out, err };
  }

  it('names the flag and exits 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--all', '--concurrency', '0'], /--concurrency must be a whole number/],
      [['--all', '--concurrency', 'many'], /--concurrency/],
      [['--all', '--bmc-interval', '-1'], /--bmc-interval/],
      [['n1', '--driver', 'ipmi'], /narrow --all/],
      [['n1', '--all'], /not both/],
      [['n1', 'ghost-1', 'ghost-2'], /NODE: unknown nodes in Ironic: ghost-1, ghost-2/],
      [['--all', '--driver', 'redfish'], /no node in Ironic matches --driver redfish/],
      [['--all', '--provision-state', 'manageable'], /--provision-state manageable/],
      // A regular file where a directory must be: not writable even for root.
      [['--all', '--store-path', join(blocker, 'secrets.json')], /--store-path .*cannot be written \((ENOTDIR|EEXIST)\).*nothing was changed/],
      [['--all', '--state-dir', join(blocker, 'journals')], /--state-dir .*cannot be written/],
      [['--all', '--records-dir', join(blocker, 'records')], /--records-dir .*cannot be written/],
      // A directory where the store file must be: it cannot be read as a store.
      [['--all', '--store-path', storeDir], /--store.*cannot be read.*nothing was changed/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(...argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, re, argv.join(' '));
      assert.equal(r.out, '');
    }
    assert.ok(seen.every((s) => s.startsWith('GET ')), `only reads reached Ironic: ${seen.filter((s) => !s.startsWith('GET ')).join(', ')}`);
    // Nothing written either: no store, no records, no run file, no journals.
    assert.equal(existsSync(join(dir, 'secrets.json')), false, 'no store file was created');
    assert.deepEqual(readdirSync(storeDir), []);
    assert.deepEqual(readdirSync(dir).sort(), ['a-directory', 'not-a-directory']);
  });

  it('keeps the single-node form: one NODE without fleet options is the in-band rotation', async () => {
    const r = await main(['conductor', 'rotate'], { stdout: () => undefined, stderr: (s) => assert.match(s, /exactly one NODE/), env: {} });
    assert.equal(r, 2);
  });
});

describe('fleet BMC access', () => {
  it('refuses any write to the session user, and Set Channel Access, before it is sent', async () => {
    const sent: IpmiRequest[] = [];
    const inner: Transport = {
      kind: 'ipmitool', description: 'fake', limits: { maxRequestData: 38, maxResponseData: 271 },
      send: async (r) => (sent.push(r), { completionCode: 0, data: new Uint8Array(0) }),
      stats: () => ({ requests: 0, responses: 0, timeouts: 0, transportErrors: 0, bytesOut: 0, bytesIn: 0 }),
      close: async () => undefined,
    };
    const g = new SessionUserGuard(inner, 2);
    await assert.rejects(g.send({ netFn: 6, cmd: 0x47, data: [0x02, 0x00] }), /user 2 is the user this session/);
    await assert.rejects(g.send({ netFn: 6, cmd: 0x45, data: [0x42, ...new Array(16).fill(0x41)] }), /user 2/); // 0x42 & 0x3f = 2
    await assert.rejects(g.send({ netFn: 6, cmd: 0x43, data: [0x91, 0x02, 0x04, 0x00] }), /user 2/);
    await assert.rejects(g.send({ netFn: 6, cmd: 0x40, data: [0x01, 0x42, 0x44] }), /Set Channel Access/);
    await g.send({ netFn: 6, cmd: 0x47, data: [0x03, 0x02] });
    await g.send({ netFn: 6, cmd: 0x46, data: [0x02] }); // Get User Name of the session user: a read
    assert.equal(sent.length, 2);
    assert.equal(g.refused, 4);
    assert.equal(userWritten({ netFn: 6, cmd: 0x44, data: [1, 2] }), null);
  });

  it('tells a refused password from a silent or busy BMC', () => {
    assert.equal(classifyLogin(1, '', 'Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session\n').verdict, 'rejected');
    assert.equal(classifyLogin(1, '', 'RAKP 2 message indicates an error : unauthorized name\n').verdict, 'rejected');
    assert.equal(classifyLogin(1, '', 'Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request\n').verdict, 'unreachable');
    assert.equal(classifyLogin(1, '', 'RAKP 2 message indicates an error : insufficient resources for session\n').verdict, 'busy');
    assert.equal(classifyLogin(0, 'IPMI Version : 2.0\n', '').verdict, 'ok');
  });

  it('runs one session per BMC at a time, with the gap between them', async () => {
    const gaps: number[] = [];
    const g = new BmcGate(30);
    const bmc = { host: '127.0.0.1', port: 623, cipherSuite: '3' };
    const other = { host: '127.0.0.1', port: 624, cipherSuite: '3' };
    let inFlight = 0;
    let maxInFlight = 0;
    let lastEnd = 0;
    const job = (b: typeof bmc): Promise<void> => g.run(b, async () => {
      if (b === bmc) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        if (lastEnd) gaps.push(performance.now() - lastEnd);
      }
      await new Promise((r) => setTimeout(r, 5));
      if (b === bmc) {
        inFlight--;
        lastEnd = performance.now();
      }
    });
    await Promise.all([job(bmc), job(bmc), job(other), job(bmc)]);
    assert.equal(maxInFlight, 1);
    assert.equal(gaps.length, 2);
    assert.ok(gaps.every((x) => x >= 25), `gaps ${gaps.join(', ')}`);
  });

  it('prints done / failed / remaining, rate and ETA', () => {
    const line = progressLine({ total: 100, rotated: 30, failed: 2, attention: 1, skipped: 0, remaining: 67, startedAt: 0, finishedHere: 33 }, 60_000);
    assert.match(line, /rotated 30 {2}failed 2 {2}attention 1 {2}remaining 67\/100 {2}33\.0 nodes\/min {2}ETA 2\.0 min/);
  });
});

describe('runFleet: a node is reported rotated only when its previous user reads back disabled', () => {
  const UUID = '99999999-8888-7777-6666-555555555555';
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-retire-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * A manageable node whose enrolment password does not log in (so the in-band
   * path rotates it, here the engine on a simulated BMC), and whose in-band
   * rotation reports its retirement failed, as rotate.ts does when `ipmitool
   * user disable` times out. The out-of-band reach is the same simulated BMC;
   * Get Session Info (which it does not simulate) names user 3, the new user.
   */
  async function fleet(sub: string, retire: 'works' | 'silent'): Promise<{ result: Awaited<ReturnType<typeof runFleet>>; bmc: SimulatedBmc }> {
    mkdirSync(join(dir, sub), { recursive: true });
    const t = createSimulatedTransport({ profile: 'ipmi20' });
    const node: IronicNodeView = {
      uuid: UUID, name: 'n-retire', provision_state: 'manageable', target_provision_state: null, power_state: 'power on', target_power_state: null,
      last_error: null, maintenance: false, driver: 'ipmi', driver_info: { ipmi_address: '127.0.0.1', ipmi_port: 623, ipmi_username: 'admin' },
    };
    const ironic = {
      node: async () => structuredClone(node),
      patchDriverInfo: async () => assert.fail('the out-of-band path does not run here'),
      call: async () => assert.fail('no listing here'),
    };
    const store = new FileSecretStore({ path: join(dir, sub, 'secrets.json') });
    const lanplus = (): Transport => ({
      kind: t.kind, description: 'lanplus (simulated BMC)', limits: t.limits,
      send: (req, o) => {
        if (retire === 'silent') return Promise.reject(new IpmiTimeoutError(req.netFn, req.cmd, 50, 'ipmitool'));
        if (req.netFn === 0x06 && req.cmd === 0x3d) return Promise.resolve({ completionCode: 0, data: Uint8Array.from([0x01, 0x04, 0x01, 0x03, 0x00, 0x00]) });
        return t.send(req, o);
      },
      stats: () => t.stats(),
      close: async () => undefined,
    });
    const access: BmcAccess = {
      login: async (_b, cred) => ({ verdict: cred.username === 'admin' ? 'rejected' : 'ok', detail: cred.username === 'admin' ? 'the BMC refused the user name or password (RAKP 2)' : 'ok', elapsedMs: 1 }),
      openTransport: () => lanplus(),
    };
    const inBand = async (): Promise<RotationRecord> => {
      const secret = Secret.fromString('Nw-pass-4242');
      const e = await store.putPending(UUID, 'ironic', secret);
      const r = await new CredentialService({ transport: t, stateDir: join(dir, sub, 'agent') }).setCredentials({ username: 'ironic', password: secret, privilege: 'administrator' });
      assert.equal(r.userId, 3);
      node.driver_info.ipmi_username = 'ironic';
      await store.markCurrent(UUID, e.id);
      return {
        node: 'n-retire', nodeUuid: UUID, startedAt: '', finishedAt: '', outcome: 'rotated', failedStep: null, error: null,
        warnings: ['previous BMC user admin is still enabled (user list: Timeout)'],
        initial: { provisionState: 'manageable', powerState: 'power on', username: 'admin' },
        next: { username: 'ironic', secretId: e.id, secretState: 'current', store: 'file' }, applied: [], rolledBack: [],
        current: { username: 'ironic', note: 'proven' },
        steps: [{ step: 'retire-previous', status: 'failed', at: '', detail: 'user list: Timeout' }],
      };
    };
    const result = await runFleet({
      ironic, store, access, usernames: ['ironic', 'ironic_b'], initialPassword: Secret.fromString('enrol-pw'), concurrency: 1, bmcIntervalMs: 0,
      journalRoot: join(dir, sub, 'journals'), runFile: join(dir, sub, 'fleet-run.json'), inBand, selectionKey: 'nodes:n-retire',
      backoff: { initialMs: 10, maxMs: 20, attempts: 2 },
    }, [node]);
    return { result, bmc: t.bmc };
  }

  it('an in-band rotation whose retirement timed out is taken up again, retired as the new user (read back), then reported rotated', async () => {
    const { result, bmc } = await fleet('works', 'works');
    const r = result.nodes[0]!;
    assert.equal(r.outcome, 'rotated', r.detail);
    assert.equal(r.attempts, 2);
    assert.match(r.detail, /previous user admin retired now \(user 2 \(admin\) disabled, reads back disabled/);
    assert.equal(bmc.user(2)!.enabled, false);
    assert.equal(bmc.user(3)!.enabled, true);
  });

  it('a retirement the BMC never answers: failed and resumable, never rotated; the previous user is left as it was', async () => {
    const { result, bmc } = await fleet('silent', 'silent');
    const r = result.nodes[0]!;
    assert.equal(r.outcome, 'failed', r.detail);
    assert.equal(r.resumable, true);
    assert.match(r.detail, /retire-previous: previous BMC user admin not retired.*gave up after 2 take-ups; the next run finishes it/);
    assert.equal(r.ironicUser, 'ironic');
    assert.equal(bmc.user(2)!.enabled, true);
    assert.equal(result.totals.rotated, 0);
  });
});
