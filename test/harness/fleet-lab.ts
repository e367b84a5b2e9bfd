/**
 * A fleet on loopback for `conductor rotate --all`: N ipmi_sim BMCs (each its
 * own LAN port), one real Ironic 21.4 with N `ipmi` nodes (power interface
 * ipmitool to those BMCs) deployed to `active` with the fake deploy interface,
 * a file store, and an HTTP relay in front of Ironic that counts API calls
 * per node and injects the faults a fleet meets (Ironic refusing a PATCH, a
 * node locked by another conductor). Optionally one more node for the
 * in-band path (`inBandNode`): `manageable`, its BMC an ipmi_sim whose power-on
 * starts this repo's agent (`inband-agent serve`, vm-codec backend to that
 * ipmi_sim) against the real Ironic, as a ramdisk's ironic-python-agent does;
 * Ironic and the BMC hold a password the rotator is not given, so only a
 * manual clean can rotate it. The rotator runs as its own process
 * (`bin/inband-agent.js conductor rotate`), so it can be killed and started
 * again like an operator's run.
 *
 * Shared by test/conductor-side/fleet.test.ts (N = 10, outcomes) and
 * bench/fleet.ts (N = 100, figures).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSecretStore } from '../../conductor/file-store.js';
import { freeLoopbackPort, Ironic, startNodeBmc, type IronicNode } from './ironic.js';
import { LOOPBACK, startIpmiSim, type IpmiSim } from './ipmi-sim.js';
import { lanplusLogin } from './lanplus.js';
import { recordSecret, testLogDir } from '../helpers/secrets.js';
import { agentRamdiskCommand, projectRoot } from './e2e.js';

// The project's root, as every end-to-end file finds it.
export { projectRoot };

export const INITIAL_USER = 'admin';
export const INITIAL_PASSWORD = 'fleet-init-pw1';
/** What a "wrong current password" node really has (the rotator is given INITIAL_PASSWORD). */
export const OTHER_PASSWORD = 'fleet-other-pw2';
/** What the in-band node's BMC and Ironic hold: a password lost to the rotator (neither in the store nor given). */
export const LOST_PASSWORD = 'fleet-lost-pw3';
export const IN_BAND_NODE = 'fleet-inband';

/** What the lab and the scenario do with a node's BMC (an ipmi_sim, or the in-band node's, which starts the agent on power-on). */
export type LabBmc = Pick<IpmiSim, 'lanPort' | 'pause' | 'resume' | 'stop'>;

export interface LabNode {
  index: number;
  name: string;
  uuid: string;
  sim: LabBmc;
  /** The password the BMC and Ironic were enrolled with. */
  enrolledPassword: string;
  /** The in-band node: `manageable`, its power-on boots the agent; its agent's log. */
  inBand?: { agentLog: string };
}

export interface RelayFaults {
  /** Node uuids whose PATCH the relay refuses (400, Ironic-shaped) instead of forwarding. */
  refusePatch: Set<string>;
  /** Node uuid → how many more GETs answer with `reservation` set (a conductor holds the node). */
  lockedReads: Map<string, number>;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak RSS of the rotator process (VmHWM), KiB, sampled from /proc while it ran. */
  peakRssKiB: number;
  wallMs: number;
}

export class FleetLab {
  readonly calls = new Map<string, number>();
  readonly faults: RelayFaults = { refusePatch: new Set(), lockedReads: new Map() };
  refusedPatches = 0;
  lockedAnswers = 0;
  private relay: http.Server | undefined;
  relayUrl = '';

  private constructor(readonly ironic: Ironic, readonly nodes: LabNode[], readonly dir: string) {}

  get storePath(): string {
    return join(this.dir, 'state', 'secrets.json');
  }

  get recordsDir(): string {
    return join(this.dir, 'state', 'records');
  }

  get journalRoot(): string {
    return join(this.dir, 'state', 'journals');
  }

  static async start(opts: { n: number; wrongPassword?: readonly number[]; inBandNode?: boolean; log?: (l: string) => void }): Promise<FleetLab> {
    const log = opts.log ?? (() => undefined);
    recordSecret(INITIAL_PASSWORD);
    recordSecret(OTHER_PASSWORD);
    recordSecret(LOST_PASSWORD);
    const dir = await mkdtemp(join(tmpdir(), 'fleet-lab-'));
    // Enough API and conductor threads for a rotator's concurrency; sqlite as Ironic ships it.
    const ironic = await Ironic.start({ extraConf: '\n[conductor]\nworkers_pool_size = 100\nperiodic_max_workers = 4\n' });
    const nodes: LabNode[] = [];
    try {
      const t0 = Date.now();
      const sims: IpmiSim[] = [];
      for (let i = 0; i < opts.n; i++) {
        const pw = opts.wrongPassword?.includes(i) ? OTHER_PASSWORD : INITIAL_PASSWORD;
        sims.push(await startIpmiSim({ users: [{ id: 2, name: INITIAL_USER, password: pw, privilege: 'admin' }], readyTimeoutMs: 15_000 }));
      }
      log(`fleet lab: ${opts.n} ipmi_sim BMCs up in ${Date.now() - t0} ms`);
      const t1 = Date.now();
      const batch = 8;
      for (let i = 0; i < opts.n; i += batch) {
        const made = await Promise.all(sims.slice(i, i + batch).map(async (sim, k) => {
          const index = i + k;
          const pw = opts.wrongPassword?.includes(index) ? OTHER_PASSWORD : INITIAL_PASSWORD;
          const name = `fleet-${String(index).padStart(3, '0')}`;
          // Deployed with fake-hardware, then moved to the ipmi hardware type under
          // maintenance (how an active node changes driver in Ironic): an active
          // fleet without deploying 100 images.
          const node = await ironic.api<IronicNode>('POST', '/v1/nodes', { name, driver: 'fake-hardware', resource_class: 'fleet', network_interface: 'noop' });
          if (node.status !== 201) throw new Error(`enroll ${name}: ${node.status} ${JSON.stringify(node.body).slice(0, 300)}`);
          const uuid = node.body.uuid;
          await ironic.provision(uuid, 'manage');
          await ironic.waitForState(uuid, 'manageable', 120_000);
          await ironic.provision(uuid, 'provide');
          await ironic.waitForState(uuid, 'available', 120_000);
          await ironic.provision(uuid, 'active');
          await ironic.waitForState(uuid, 'active', 120_000);
          const call = async (method: string, path: string, body: unknown, expect: number): Promise<void> => {
            for (let attempt = 1; ; attempt++) {
              const r = await ironic.api(method, path, body);
              if (r.status === expect) return;
              if (r.status !== 409 || attempt > 40) throw new Error(`${method} ${path} (${name}): ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
              await new Promise((res) => setTimeout(res, 250));
            }
          };
          await call('PUT', `/v1/nodes/${uuid}/maintenance`, { reason: 'moving to the ipmi hardware type' }, 202);
          await call('PATCH', `/v1/nodes/${uuid}`, [
            { op: 'replace', path: '/driver', value: 'ipmi' },
            { op: 'replace', path: '/power_interface', value: 'ipmitool' },
            { op: 'replace', path: '/management_interface', value: 'noop' },
            { op: 'replace', path: '/boot_interface', value: 'ipxe' },
            { op: 'replace', path: '/deploy_interface', value: 'direct' },
            { op: 'replace', path: '/console_interface', value: 'no-console' },
            { op: 'replace', path: '/inspect_interface', value: 'no-inspect' },
            { op: 'replace', path: '/raid_interface', value: 'no-raid' },
            { op: 'replace', path: '/rescue_interface', value: 'no-rescue' },
            { op: 'replace', path: '/vendor_interface', value: 'no-vendor' },
            { op: 'replace', path: '/bios_interface', value: 'no-bios' },
            { op: 'replace', path: '/storage_interface', value: 'noop' },
            { op: 'add', path: '/driver_info', value: { ipmi_address: LOOPBACK, ipmi_port: sim.lanPort, ipmi_username: INITIAL_USER, ipmi_password: pw, ipmi_cipher_suite: 3 } },
          ], 200);
          await call('DELETE', `/v1/nodes/${uuid}/maintenance`, undefined, 202);
          return { index, name, uuid, sim, enrolledPassword: pw };
        }));
        nodes.push(...made);
      }
      log(`fleet lab: ${opts.n} nodes enrolled and active in Ironic in ${Date.now() - t1} ms`);
      if (opts.inBandNode) {
        const t2 = Date.now();
        nodes.push(await enrollInBandNode(ironic, dir, opts.n));
        log(`fleet lab: ${IN_BAND_NODE} enrolled and manageable in ${Date.now() - t2} ms`);
      }
      const lab = new FleetLab(ironic, nodes, dir);
      await lab.startRelay();
      return lab;
    } catch (err) {
      for (const n of nodes) await n.sim.stop();
      await ironic.stop();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private async startRelay(): Promise<void> {
    const target = new URL(this.ironic.url);
    this.relay = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = req.url ?? '/';
        const m = /^\/v1\/nodes\/([^/?]+)/.exec(url);
        const ident = m && m[1] !== 'detail' ? decodeURIComponent(m[1]!) : '*';
        const uuid = this.nodes.find((n) => n.uuid === ident || n.name === ident)?.uuid ?? ident;
        this.calls.set(uuid, (this.calls.get(uuid) ?? 0) + 1);
        const isNode = m && url.split('?')[0] === `/v1/nodes/${m[1]}`;
        if (isNode && req.method === 'PATCH' && this.faults.refusePatch.has(uuid)) {
          this.refusedPatches++;
          const fault = JSON.stringify({ faultstring: 'Refused by the fleet lab relay (fault injection): driver_info update rejected', faultcode: 'Client' });
          res.writeHead(400, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error_message: fault }));
          return;
        }
        const locked = isNode && req.method === 'GET' ? this.faults.lockedReads.get(uuid) ?? 0 : 0;
        const fwd = http.request({ host: target.hostname, port: target.port, method: req.method, path: url, headers: { ...req.headers, host: target.host } }, (up) => {
          const body: Buffer[] = [];
          up.on('data', (c: Buffer) => body.push(c));
          up.on('end', () => {
            let out = Buffer.concat(body);
            if (locked > 0 && up.statusCode === 200) {
              this.faults.lockedReads.set(uuid, locked - 1);
              this.lockedAnswers++;
              const j = JSON.parse(out.toString('utf8')) as Record<string, unknown>;
              j.reservation = 'another-conductor';
              out = Buffer.from(JSON.stringify(j));
            }
            const headers = { ...up.headers, 'content-length': String(out.length) };
            res.writeHead(up.statusCode ?? 502, headers);
            res.end(out);
          });
        });
        fwd.on('error', (e) => {
          res.writeHead(502);
          res.end(e.message);
        });
        fwd.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((r) => this.relay!.listen(0, '127.0.0.1', r));
    this.relayUrl = `http://127.0.0.1:${(this.relay.address() as AddressInfo).port}`;
  }

  /**
   * Starts `conductor rotate --all` as its own process (the operator's run);
   * `onStart` gets the child (to kill it), `watch` runs every 20 ms while it runs.
   */
  async rotate(args: string[], opts: { onStart?: (c: ChildProcess) => void; watch?: () => void | Promise<void>; onStderr?: (all: string) => void } = {}): Promise<RunResult> {
    const started = Date.now();
    const child = spawn(process.execPath, [join(projectRoot(), 'bin', 'inband-agent.js'), 'conductor', 'rotate', '--all', '--ironic-url', this.relayUrl,
      '--store-path', this.storePath, '--records-dir', this.recordsDir, '--state-dir', this.journalRoot, '--initial-password-stdin', '--json', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.dir },
    });
    child.stdin.end(INITIAL_PASSWORD + '\n');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4_000_000);
      opts.onStderr?.(stderr);
    });
    let peak = 0;
    let running = true;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => {
      running = false;
      r({ code, signal });
    }));
    opts.onStart?.(child);
    const poll = (async () => {
      while (running) {
        try {
          const m = /VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'));
          if (m) peak = Math.max(peak, Number(m[1]));
        } catch {
          // exited
        }
        await opts.watch?.();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const { code, signal } = await exited;
    await poll;
    return { code, signal, stdout, stderr, peakRssKiB: peak, wallMs: Date.now() - started };
  }

  /** The password of the user Ironic logs in as, from what the lab enrolled or the store holds (pending or current). */
  async ironicCredential(n: LabNode): Promise<{ username: string; password: string; source: string }> {
    const node = await this.ironic.node(n.uuid);
    const username = String(node.driver_info.ipmi_username);
    if (username === INITIAL_USER) return { username, password: n.enrolledPassword, source: 'enrolment' };
    const store = new FileSecretStore({ path: this.storePath });
    const hist = (await store.history(n.uuid)).filter((e) => e.username === username && (e.state === 'current' || e.state === 'pending'));
    const e = hist[hist.length - 1];
    if (!e) throw new Error(`${n.name}: Ironic logs in as ${username} and the store has no current or pending entry for it`);
    const s = await store.getSecret(n.uuid, e.id);
    const password = s.reveal();
    s.dispose();
    recordSecret(password);
    return { username, password, source: `store ${e.state}` };
  }

  /** Sets (reason given) or lifts Ironic's maintenance flag on a node: an operator's hold. */
  async hold(n: LabNode, reason: string | null): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const r = reason === null
        ? await this.ironic.api('DELETE', `/v1/nodes/${n.uuid}/maintenance`)
        : await this.ironic.api('PUT', `/v1/nodes/${n.uuid}/maintenance`, { reason });
      if (r.status === 202) return;
      if (r.status !== 409 || attempt > 40) throw new Error(`maintenance ${reason === null ? 'off' : 'on'} (${n.name}): ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  }

  async login(n: LabNode, username: string, password: string): Promise<boolean> {
    return (await lanplusLogin({ host: LOOPBACK, port: n.sim.lanPort, user: username, password, timeoutMs: 15_000 })).ok;
  }

  /**
   * Ironic's own ipmitool power status with its driver_info: a power request
   * for the state the BMC reports right now (read by the lab over lanplus
   * first), which Ironic's conductor answers after `ipmitool power status`
   * without acting. Returns null when it worked, else the reason.
   */
  async ironicPowerWorks(n: LabNode): Promise<string | null> {
    const cred = await this.ironicCredential(n);
    const bmcState = await chassisPower(n.sim.lanPort, cred.username, cred.password);
    if (!bmcState) return `the lab could not read the BMC's power state as ${cred.username}`;
    const r = await this.ironic.api('PUT', `/v1/nodes/${n.uuid}/states/power`, { target: bmcState });
    if (r.status !== 202) return `PUT power ${bmcState}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;
    for (let i = 0; i < 240; i++) {
      const node = await this.ironic.node(n.uuid);
      if (!node.target_power_state) return node.last_error ? `Ironic: ${node.last_error}` : node.power_state === bmcState ? null : `Ironic reports ${node.power_state}, the BMC ${bmcState}`;
      await new Promise((res) => setTimeout(res, 250));
    }
    return 'power request did not finish';
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.relay ? this.relay.close(() => r()) : r()));
    for (const n of this.nodes) await n.sim.stop();
    await this.ironic.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The in-band node, as test/conductor-side/rotate-ironic.test.ts runs one: an
 * ipmi_sim whose chassis power-on starts `inband-agent serve` (Ironic's reboot
 * at the start of a clean boots the "ramdisk", its power-off at the end stops
 * it); the agent looks itself up in Ironic by this machine's MACs (the node's
 * ports, so the lab holds one such node at most) and sets BMC users in-band
 * through the vm-codec backend to this ipmi_sim. Enrolled with the `ipmi`
 * hardware type (ipxe boot, direct deploy) and taken to `manageable`.
 */
async function enrollInBandNode(ironic: Ironic, dir: string, index: number): Promise<LabNode> {
  const port = await freeLoopbackPort();
  const agentLog = join(testLogDir() ?? dir, `fleet-inband-agent-${process.pid}.log`);
  const startCmd = agentRamdiskCommand({ apiUrl: ironic.url, port, stateDir: join(dir, 'agent'), logFile: agentLog });
  const bmc = await startNodeBmc({ startCmd, users: [{ id: 2, name: INITIAL_USER, password: LOST_PASSWORD, privilege: 'admin' }] });
  try {
    const node = await ironic.enrollIpmiNode(IN_BAND_NODE, bmc.lanPort, INITIAL_USER, LOST_PASSWORD, { resource_class: 'fleet' });
    await ironic.provision(node.uuid, 'manage');
    await ironic.waitForState(node.uuid, 'manageable', 120_000);
    return { index, name: IN_BAND_NODE, uuid: node.uuid, sim: bmc, enrolledPassword: LOST_PASSWORD, inBand: { agentLog } };
  } catch (err) {
    await bmc.stop();
    throw err;
  }
}

function chassisPower(port: number, user: string, password: string): Promise<'power on' | 'power off' | null> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/ipmitool', ['-I', 'lanplus', '-C', '3', '-H', LOOPBACK, '-p', String(port), '-U', user, '-E', '-N', '1', '-R', '3', 'chassis', 'power', 'status'], {
      stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: '/usr/bin:/bin', LANG: 'C', IPMI_PASSWORD: password },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('close', () => {
      clearTimeout(timer);
      resolve(/Chassis Power is on/.test(out) ? 'power on' : /Chassis Power is off/.test(out) ? 'power off' : null);
    });
  });
}
