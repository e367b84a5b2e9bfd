/**
 * Discovery (scenario 1) end to end with the real Ironic from Debian (21.4,
 * standalone, noauth, sqlite), a real BMC (ipmi_sim, whose power-on starts the
 * real agent, `bin/inband-agent.js serve --backend vm-codec`) and
 * `inband-agent conductor serve` as its own process with a self-signed
 * certificate that the agent verifies (NODE_EXTRA_CA_CERTS, no `insecure`).
 * The node is unknown to Ironic: lookup answers 404, the agent posts its
 * inventory to the service's callback, gets a fresh password, sets it in-band,
 * reports; the service proves it over lanplus, enrolls the node (ipmi) and
 * moves it to manageable. Then Ironic's own power call works with it, the new
 * user logs in, and the password is nowhere but the store (encrypted) and
 * Ironic: not in the service's output, its records, the agent's log, or any
 * process argument list (the suite's leak check).
 *
 * Then the node boots the agent again (power off/on): the service matches the
 * known node by MAC, sends the password for the BMC user Ironic does not hold
 * (ironic_b), and switches Ironic only after the proof; the previous user
 * still logs in throughout.
 *
 * A second run puts a real ironic-inspector in front (--inspector-url): it
 * enrolls the node (fake-hardware) and the service turns it into an ipmi node.
 * A third keeps the password in a real Barbican (--store barbican): the plain
 * password then exists only there, in transit, and in Ironic's driver_info.
 *
 * Needs scripts/install-ironic.sh and a build (dist/). Gated by INBAND_TEST_IRONIC=1.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DiscoveryRecord } from '../../conductor/discovery-service.js';
import { randomUUID } from 'node:crypto';
import { BarbicanSecretStore } from '../../conductor/barbican-store.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import type { SecretStore } from '../../conductor/secret-store.js';
import { Barbican, barbicanAvailability } from '../harness/barbican.js';
import { IRONIC_E2E, projectRoot, sh, skipUnlessIronic } from '../harness/e2e.js';
import { freeLoopbackPort, Inspector, Ironic, startNodeBmc, type NodeBmc } from '../harness/ironic.js';
import { IPMITOOL_PATH } from '../harness/ipmi-sim.js';
import { captureLines, recordSecret, testLogDir } from '../helpers/secrets.js';

const skip = skipUnlessIronic('real-Ironic discovery test');

const INITIAL = recordSecret('initpw-discover1');
/** Every password a discovery generated in this file: each node's must be its own. */
const generated = new Set<string>();

/** The service as an operator runs it: its own process, JSON status line on stdout. */
class ConductorService {
  readonly out: string[] = [];
  readonly err: string[] = [];
  private readonly exited: Promise<void>;
  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => this.out.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => this.err.push(d.toString()));
    this.exited = new Promise((r) => child.once('exit', () => r()));
  }

  static async start(args: string[]): Promise<ConductorService> {
    const child = spawn(process.execPath, [join(projectRoot(), 'bin', 'inband-agent.js'), 'conductor', 'serve', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir() },
    });
    const s = new ConductorService(child);
    const deadline = Date.now() + 30_000;
    while (!s.out.join('').includes('\n')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`conductor serve did not start: ${s.err.join('')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return s;
  }

  get status(): { listening: string; certificate: string } {
    return JSON.parse(this.out.join('').split('\n')[0] as string);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

/** One ipmitool command over lanplus as the operator's admin; the password through its environment (-E), never its arguments. */
function adminCommand(bmc: NodeBmc, ...cmd: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(IPMITOOL_PATH, ['-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(bmc.lanPort), '-U', 'admin', '-E', ...cmd], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: INITIAL },
    });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`ipmitool ${cmd.join(' ')}: ${err}`))));
  });
}

/**
 * The BMC gets its LAN address (§23.2 Set LAN Configuration Parameters, #4 source, #3 address) as a
 * site's DHCP or a technician would give it; the agent reads it in-band into the inventory's
 * bmc_address. Then the node is powered on, which boots the agent.
 */
async function prepareAndPowerOn(bmc: NodeBmc): Promise<void> {
  await adminCommand(bmc, 'lan', 'set', '1', 'ipsrc', 'static');
  await adminCommand(bmc, 'lan', 'set', '1', 'ipaddr', '127.0.0.1');
  await adminCommand(bmc, 'chassis', 'power', 'on');
}

async function waitUntil<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const barbicanAvail = IRONIC_E2E ? barbicanAvailability() : { available: false, reason: '' };

for (const mode of ['alone', 'inspector', 'barbican'] as const) {
  const withInspector = mode === 'inspector';
  const skipMode = skip || (mode === 'barbican' && !barbicanAvail.available ? `discovery with the Barbican store: ${barbicanAvail.reason}` : false);
  describe(`discovery against the real Ironic${withInspector ? ' behind a real ironic-inspector' : mode === 'barbican' ? ', passwords kept in a real Barbican' : ', the service alone'}`, () => {
    let ironic: Ironic;
    let inspector: Inspector | undefined;
    let bmc: NodeBmc;
    let service: ConductorService;
    let work: string;
    let agentLog: string;
    let first: { uuid: string; password: string } | undefined;
    let barbican: Barbican | undefined;
    const project = randomUUID();
    const openStore = (): SecretStore => (barbican
      ? new BarbicanSecretStore({ url: barbican.url, auth: { projectId: project } })
      : new FileSecretStore({ path: join(work, 'store', 'secrets.json') }));

    before(async () => {
      if (skipMode) return;
      const root = projectRoot();
      if (!existsSync(join(root, 'dist', 'conductor', 'serve.js'))) throw new Error('dist/conductor/serve.js is missing: run npm run build first');
      ironic = await Ironic.start();
      if (withInspector) inspector = await Inspector.start(ironic);
      if (mode === 'barbican') barbican = await Barbican.start();
      work = mkdtempSync(join(tmpdir(), 'discovery-e2e-'));
      agentLog = join(testLogDir() ?? work, `discovery-e2e-agent-${mode}-${process.pid}.log`);
      const servicePort = await freeLoopbackPort();
      const agentPort = await freeLoopbackPort();
      const certFile = join(work, 'store', 'discovery-cert.pem');
      const startCmd = [
        'exec', sh(process.execPath), sh(join(root, 'bin', 'inband-agent.js')), 'serve',
        '--api-url', sh(ironic.url), '--inspection-callback-url', sh(`https://127.0.0.1:${servicePort}/v1/continue`),
        '--listen-host', '127.0.0.1', '--listen-port', String(agentPort),
        '--advertise-host', '127.0.0.1', '--advertise-port', String(agentPort),
        '--lookup-timeout', '300', '--state-dir', sh(join(work, 'agent')), '--log-level', 'debug',
        '--backend', 'vm-codec', '--vm-codec', '"127.0.0.1:$NODE_VM_PORT"',
        '>>', sh(agentLog), '2>&1',
      ].join(' ');
      // The agent trusts the service's self-signed certificate as a ramdisk would be given it.
      bmc = await startNodeBmc({ startCmd, env: { NODE_EXTRA_CA_CERTS: certFile }, users: [{ id: 2, name: 'admin', password: INITIAL, privilege: 'admin' }] });
      service = await ConductorService.start([
        '--ironic-url', ironic.url, '--listen', `127.0.0.1:${servicePort}`,
        ...(barbican ? ['--store', 'barbican', '--barbican-url', barbican.url, '--barbican-project-id', project] : ['--store-path', join(work, 'store', 'secrets.json')]),
        '--records-dir', join(work, 'store', 'records'), '--tls-cert-out', certFile,
        '--bmc-port', String(bmc.lanPort), '--ipmi-cipher-suite', '3', '--result-timeout', '300',
        ...(inspector ? ['--inspector-url', inspector.url] : []),
      ]);
    });

    after(async () => {
      if (service) {
        await service.stop();
        captureLines(`conductor-discovery-e2e-${mode}`, [...service.out, ...service.err].join(''));
      }
      if (bmc) await bmc.stop();
      await inspector?.stop();
      await barbican?.stop();
      if (ironic) await ironic.stop();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('an unknown node ends enrolled (ipmi, manageable) with a working credential of its own; Ironic\'s power call works', { skip: skipMode }, async () => {
      const t0 = Date.now();
      try {
        assert.match(service.status.listening, /^https:\/\/127\.0\.0\.1:\d+$/);
        await prepareAndPowerOn(bmc);
        const recordsDir = join(work, 'store', 'records');
        const record = await waitUntil(() => {
          const files = existsSync(recordsDir) ? readdirSync(recordsDir) : [];
          const recs = files.map((f) => JSON.parse(readFileSync(join(recordsDir, f), 'utf8')) as DiscoveryRecord);
          return recs.find((r) => r.status === 'enrolled' || r.status === 'failed');
        }, 180_000, 'the discovery record');
        assert.equal(record.status, 'enrolled', `${record.failedStep}: ${record.error}`);
        const uuid = record.node as string;
        assert.equal(record.newNode, !withInspector, withInspector ? 'inspector enrolled it first; the service updated it' : 'enrolled by the service');
        if (withInspector) assert.equal(record.inspector?.forwarded, true);

        const cur = await openStore().getCurrent(uuid);
        assert.ok(cur, 'the store holds the node\'s current password');
        assert.equal(cur.entry.username, 'ironic');
        const pw = recordSecret(cur.secret.reveal());
        assert.notEqual(pw, INITIAL);
        assert.ok(!generated.has(pw), 'a fresh password per discovery');
        generated.add(pw);
        first = { uuid, password: pw };

        const n = await ironic.node(uuid);
        assert.equal(n.driver, 'ipmi');
        assert.equal(n.provision_state, 'manageable', 'Ironic verified the credential when it managed the node');
        assert.equal(n.driver_info.ipmi_username, 'ironic');
        assert.equal(n.driver_info.ipmi_address, '127.0.0.1');
        assert.equal(Number(n.driver_info.ipmi_port), bmc.lanPort);
        const ports = await ironic.api<{ ports: Array<{ address: string }> }>('GET', `/v1/ports?node=${uuid}`);
        assert.ok(ports.body.ports.length > 0, 'ports for the inventory\'s MACs');

        // Ironic's own power status call, with the credential it holds.
        const r = await ironic.api('PUT', `/v1/nodes/${uuid}/states/power`, { target: n.power_state });
        assert.equal(r.status, 202);
        const afterPower = await waitUntil(async () => {
          const x = await ironic.node(uuid);
          return x.target_power_state ? undefined : x;
        }, 60_000, 'Ironic\'s power call');
        assert.equal(afterPower.last_error, null, 'Ironic reaches the BMC as ironic');
        assert.ok((await bmc.lanplusLogin('ironic', pw)).ok, 'the new user logs in over lanplus');
        assert.ok((await bmc.lanplusLogin('admin', INITIAL)).ok, 'the operator\'s initial user is untouched');

        const texts = [service.out.join(''), service.err.join(''), ...readdirSync(recordsDir).map((f) => readFileSync(join(recordsDir, f), 'utf8')),
          readFileSync(agentLog, 'utf8'), ...(barbican ? [] : [readFileSync(join(work, 'store', 'secrets.json'), 'utf8')])];
        for (const t of texts) assert.ok(!t.includes(pw), 'the password is in no output, record, log or plain file');
        console.log(`# discovery (${mode}): power on to enrolled and checked in ${Date.now() - t0} ms`);
      } catch (e) {
        let log = '(no agent log)';
        try {
          log = readFileSync(agentLog, 'utf8').slice(-4000);
        } catch {
          // none
        }
        const scrub = (x: string): string => x.replace(/ipmi_password[^,}]*/g, 'ipmi_password ***').replace(/"password": ?"[^"]*"/g, '"password": "***"');
        throw new Error(scrub(`${(e as Error).message}\n--- service:\n${service.err.join('').slice(-4000)}\n--- agent log tail:\n${log}\n--- ironic log tail:\n${ironic.log().slice(-3000)}`));
      }
    });

    if (mode === 'alone') it('the same node boots again: it is matched, the new password goes to the other user, Ironic switches after the proof', { skip }, async () => {
      assert.ok(first, 'the first discovery ran');
      const recordsDir = join(work, 'store', 'records');
      const seen = new Set(readdirSync(recordsDir));
      try {
        // A reboot into the ramdisk: the agent starts again, lookup still 404 (manageable), inventory again.
        await adminCommand(bmc, 'chassis', 'power', 'off');
        await new Promise((r) => setTimeout(r, 3000)); // ipmi_sim's poweroff_wait + kill
        await adminCommand(bmc, 'chassis', 'power', 'on');
        const record = await waitUntil(() => {
          const fresh = readdirSync(recordsDir).filter((f) => !seen.has(f));
          const recs = fresh.map((f) => JSON.parse(readFileSync(join(recordsDir, f), 'utf8')) as DiscoveryRecord);
          return recs.find((r) => r.status === 'enrolled' || r.status === 'failed');
        }, 180_000, 'the second discovery record');
        assert.equal(record.status, 'enrolled', `${record.failedStep}: ${record.error}`);
        assert.equal(record.node, first!.uuid, 'matched the known node');
        assert.equal(record.newNode, false);
        assert.equal(record.username, 'ironic_b', 'the user Ironic did not hold');
        assert.ok(record.steps.some((st) => st.step === 'power-check' && st.ok), 'Ironic\'s own power call checked it');

        const store = openStore();
        const cur = await store.getCurrent(first!.uuid);
        assert.equal(cur?.entry.username, 'ironic_b');
        const pw = recordSecret(cur!.secret.reveal());
        assert.notEqual(pw, first!.password, 'a fresh password');
        assert.deepEqual((await store.history(first!.uuid)).map((e) => e.state), ['superseded', 'current']);
        const n = await ironic.node(first!.uuid);
        assert.equal(n.driver_info.ipmi_username, 'ironic_b');
        assert.equal(n.provision_state, 'manageable');
        assert.ok((await bmc.lanplusLogin('ironic_b', pw)).ok);
        assert.ok((await bmc.lanplusLogin('ironic', first!.password)).ok, 'the previous user was never touched (no lock-out window)');
        for (const t of [service.err.join(''), readFileSync(agentLog, 'utf8')]) assert.ok(!t.includes(pw));
      } catch (e) {
        const scrub = (x: string): string => x.replace(/ipmi_password[^,}]*/g, 'ipmi_password ***').replace(/"password": ?"[^"]*"/g, '"password": "***"');
        throw new Error(scrub(`${(e as Error).message}\n--- service:\n${service.err.join('').slice(-4000)}\n--- agent log tail:\n${readFileSync(agentLog, 'utf8').slice(-3000)}`));
      }
    });

    if (mode === 'alone') it('a caller that posts the known node\'s MAC with its own BMC address is refused (403): Ironic and the store untouched', { skip }, async () => {
      assert.ok(first, 'the first discovery ran');
      const before = await ironic.node(first!.uuid);
      const ports = await ironic.api<{ ports: Array<{ address: string }> }>('GET', `/v1/ports?node=${first!.uuid}`);
      const mac = ports.body.ports[0]!.address;
      const store = openStore();
      const history = await store.history(first!.uuid);
      const ca = readFileSync(service.status.certificate, 'utf8');
      const { request } = await import('node:https');
      const postAs = (bmcAddress: string): Promise<{ status: number; text: string }> => new Promise((resolve, reject) => {
        const u = new URL(`${service.status.listening}/v1/continue`);
        const body = JSON.stringify({ inventory: { interfaces: [{ name: 'eth0', mac_address: mac }], bmc_address: bmcAddress, cpu: { count: 1, architecture: 'x86_64' }, memory: { physical_mb: 1024 }, disks: [] } });
        const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', ca, headers: { 'Content-Type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
      const r = await postAs('127.0.0.66');
      assert.equal(r.status, 403, r.text);
      assert.ok(!r.text.includes('password'), 'no credentials in the answer');
      const afterNode = await ironic.node(first!.uuid);
      assert.deepEqual(afterNode.driver_info, before.driver_info, 'driver_info (ipmi_address) untouched');
      assert.equal(afterNode.driver_info.ipmi_address, '127.0.0.1');
      assert.deepEqual(await store.history(first!.uuid), history, 'the store untouched');
      assert.match(service.err.join(''), /REFUSED inventory from 127\.0\.0\.1/);
    });
  });
}
