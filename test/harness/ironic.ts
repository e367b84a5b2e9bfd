/**
 * Test harness: a real, unmodified OpenStack Ironic from Debian (`python3-ironic`,
 * 21.4 on bookworm) started standalone on free loopback ports: API and conductor
 * in one process (`rpc_transport = none`), `auth_strategy = noauth`, sqlite, a
 * throw-away state directory. Installed by scripts/install-ironic.sh.
 *
 * Why it looks like this (research that was run on this kind of machine):
 * - Debian's library package ships no /usr/bin entry points, so a 10-line Python
 *   shim imports `ironic.cmd.*` itself.
 * - It must run with /usr/bin/python3: a `python3` earlier on PATH (pyenv) cannot
 *   see Debian's dist-packages.
 * - `[service_catalog] endpoint_override` is required or cleaning fails at
 *   "prepare" (it becomes `ipa-api-url` for the ramdisk); `[deploy] http_root`
 *   must be writable when the pxe/ipxe boot interfaces are enabled.
 * - The pxe/ipxe boot interfaces download deploy_kernel/deploy_ramdisk over HTTP,
 *   so the harness serves `<state>/httpboot` itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import type { Keystone } from './keystone.js';
import { freeTcpPort, freeUdpPort, IPMI_SIM_PATH, lanplusLogin, LOOPBACK, SIM_EMU, simLanConf, type LanplusLoginResult, type SimUser } from './ipmi-sim.js';

export const SYSTEM_PYTHON = '/usr/bin/python3';
/** Microversion the harness itself speaks to Ironic 21.4 (its maximum). */
export const HARNESS_API_VERSION = '1.82';

const ENTRY_SHIM = `import importlib, sys
cmds = {'ironic': 'ironic.cmd.singleprocess', 'ironic-dbsync': 'ironic.cmd.dbsync'}
name = sys.argv.pop(1)
sys.argv[0] = name
sys.exit(importlib.import_module(cmds[name]).main())
`;

function ironicConf(state: string, apiPort: number, httpPort: number, extra: string, authStrategy: 'noauth' | 'keystone' = 'noauth'): string {
  return `[DEFAULT]
auth_strategy = ${authStrategy}
rpc_transport = none
host = inband-test-conductor
debug = true
use_stderr = true
state_path = ${state}
tempdir = ${state}/tmp
enabled_hardware_types = fake-hardware,ipmi
enabled_boot_interfaces = fake,ipxe,pxe
enabled_deploy_interfaces = fake,direct,custom-agent
enabled_power_interfaces = fake,ipmitool
enabled_management_interfaces = fake,ipmitool,noop
enabled_network_interfaces = noop
default_network_interface = noop
enabled_inspect_interfaces = fake,no-inspect
enabled_console_interfaces = fake,no-console
enabled_raid_interfaces = fake,agent,no-raid
enabled_rescue_interfaces = fake,no-rescue
enabled_vendor_interfaces = fake,ipmitool,no-vendor
enabled_bios_interfaces = fake,no-bios
enabled_storage_interfaces = fake,noop

[api]
host_ip = 127.0.0.1
port = ${apiPort}

[database]
connection = sqlite:///${state}/ironic.sqlite

[dhcp]
dhcp_provider = none

[conductor]
automated_clean = false
# the test's BMC reports power on when the agent connects; don't wait a minute on failures
power_state_change_timeout = 30
sync_power_state_interval = -1

[oslo_concurrency]
lock_path = ${state}/lock

[service_catalog]
endpoint_override = http://127.0.0.1:${apiPort}

[deploy]
http_root = ${state}/httpboot
http_url = http://127.0.0.1:${httpPort}
fast_track = false

[pxe]
tftp_root = ${state}/tftpboot
tftp_master_path = ${state}/tftpboot/master_images
images_path = ${state}/images
instance_master_path = ${state}/master_images

[agent]
deploy_logs_local_path = ${state}/deploy-logs
# where auto-TLS agent certificates (agent_verify_ca) are pinned; default /var/lib/ironic/certificates
certificates_path = ${state}/certificates
post_deploy_get_power_state_retries = 1
post_deploy_get_power_state_retry_interval = 1

[ipmi]
min_command_interval = 1
command_retry_timeout = 20
${extra}
`;
}

/** Whether Debian's Ironic is importable by the system Python; the reason when it is not. */
export function ironicAvailability(): { available: boolean; reason: string } {
  if (!existsSync(SYSTEM_PYTHON)) return { available: false, reason: `${SYSTEM_PYTHON} is missing` };
  const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import ironic.cmd.singleprocess, ironic.cmd.dbsync'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) {
    return { available: false, reason: `python3-ironic is not installed (run scripts/install-ironic.sh): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}` };
  }
  return { available: true, reason: 'python3-ironic importable by /usr/bin/python3' };
}

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = http.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface IronicNode {
  uuid: string;
  name: string;
  provision_state: string;
  target_provision_state: string | null;
  power_state: string | null;
  last_error: string | null;
  maintenance: boolean;
  driver_info: Record<string, unknown>;
  driver_internal_info: Record<string, unknown>;
  clean_step: Record<string, unknown> | null;
  [k: string]: unknown;
}

export interface StartIronicOptions {
  /** Extra ironic.conf text appended at the end (e.g. `[agent]` overrides). */
  extraConf?: string;
  /** How long to wait for the API. Default 60 s (a cold start on 2 cores takes ~2–8 s). */
  readyTimeoutMs?: number;
  /**
   * `auth_strategy = keystone` behind this Keystone (test/harness/keystone.ts):
   * Ironic validates tokens as its admin, registers itself as the `baremetal`
   * service in the catalog, and the harness's own calls carry an admin token.
   */
  keystone?: Keystone;
  /** Prepended to Ironic's PYTHONPATH (e.g. a directory ironic-driver/install.sh --target wrote). */
  pythonPath?: string;
}

export class Ironic {
  private httpServer: http.Server | undefined;
  private readonly logChunks: string[] = [];
  private exited: Promise<void>;
  /** Sent as X-Auth-Token by api() when Ironic runs behind Keystone. */
  token: string | undefined;

  private constructor(
    readonly url: string,
    readonly stateDir: string,
    readonly httpUrl: string,
    private readonly child: ChildProcess,
    httpServer: http.Server,
  ) {
    this.httpServer = httpServer;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const keep = (d: Buffer): void => {
      this.logChunks.push(d.toString('utf8'));
      if (this.logChunks.length > 4000) this.logChunks.splice(0, 1000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  static async start(opts: StartIronicOptions = {}): Promise<Ironic> {
    const avail = ironicAvailability();
    if (!avail.available) throw new Error(avail.reason);
    const state = await mkdtemp(join(tmpdir(), 'ironic-'));
    for (const d of ['tmp', 'lock', 'httpboot', 'tftpboot/master_images', 'images', 'master_images', 'deploy-logs']) {
      await mkdir(join(state, d), { recursive: true });
    }
    const httpServer = await serveDirectory(join(state, 'httpboot'));
    const httpPort = (httpServer.address() as AddressInfo).port;
    const apiPort = await freeLoopbackPort();
    const conf = join(state, 'ironic.conf');
    const ks = opts.keystone;
    await writeFile(conf, ironicConf(state, apiPort, httpPort, `${opts.extraConf ?? ''}\n${ks ? ks.authtokenConf() : ''}`, ks ? 'keystone' : 'noauth'), { mode: 0o600 });
    await writeFile(join(state, 'run-ironic.py'), ENTRY_SHIM);
    const db = spawnSync(SYSTEM_PYTHON, [join(state, 'run-ironic.py'), 'ironic-dbsync', '--config-file', conf, 'create_schema'], { encoding: 'utf8', timeout: 120_000 });
    if (db.status !== 0) {
      httpServer.close();
      throw new Error(`ironic-dbsync failed (${db.status}): ${(db.stderr || '').slice(-2000)}`);
    }
    const child = spawn(SYSTEM_PYTHON, [join(state, 'run-ironic.py'), 'ironic', '--config-file', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: state, ...(opts.pythonPath ? { PYTHONPATH: opts.pythonPath } : {}) },
    });
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    const ironic = new Ironic(`http://127.0.0.1:${apiPort}`, state, `http://127.0.0.1:${httpPort}`, child, httpServer);
    if (ks) {
      try {
        ironic.token = await ks.token();
        await ks.addService('baremetal', 'ironic', ironic.url);
      } catch (err) {
        await ironic.stop();
        throw err;
      }
    }
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      try {
        const r = await fetch(`${ironic.url}/v1/drivers`, { headers: ironic.headers() });
        if (r.status === 200) return ironic;
      } catch {
        // not listening yet
      }
      await delay(200);
    }
    const log = ironic.log();
    await ironic.stop();
    throw new Error(`Ironic did not come up: ${log.slice(-3000)}`);
  }

  /** Ironic's own log (stderr/stdout), for diagnosing a failed test. Not part of the leak check: it is not our daemon. */
  log(): string {
    return this.logChunks.join('');
  }

  /** The headers of the harness's own calls: the microversion, and the token behind Keystone. */
  headers(): Record<string, string> {
    return { 'X-OpenStack-Ironic-API-Version': HARNESS_API_VERSION, ...(this.token ? { 'X-Auth-Token': this.token } : {}) };
  }

  /** A JSON call to the Ironic API at the harness's microversion. */
  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const r = await fetch(`${this.url}${path}`, {
      method,
      headers: { ...this.headers(), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
  }

  private async ok<T>(method: string, path: string, body: unknown, expect: number[]): Promise<T> {
    const r = await this.api<T>(method, path, body);
    if (!expect.includes(r.status)) throw new Error(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`);
    return r.body;
  }

  /** Enrolls a node and one port per MAC. */
  async enroll(node: Record<string, unknown>, macs: readonly string[]): Promise<IronicNode> {
    const created = await this.ok<IronicNode>('POST', '/v1/nodes', node, [201]);
    for (const address of macs) await this.ok('POST', '/v1/ports', { address, node_uuid: created.uuid }, [201]);
    return created;
  }

  /**
   * Enrolls an `ipmi` node whose BMC is an ipmi_sim on loopback (`lanPort`),
   * with stub deploy images (the "ramdisk" is the agent the BMC's power-on
   * starts) and one port per MAC of this machine, so the agent's lookup finds
   * it. Cipher suite 3: without -C, ipmitool first asks for cipher suites,
   * which ipmi_sim lacks (~10 s per call). Boot and network are noop/ipxe
   * because ipmi_sim refuses Set Boot Device.
   */
  async enrollIpmiNode(name: string, lanPort: number, username: string, password: string, interfaces: Record<string, string> = {}): Promise<IronicNode> {
    const { collectInventory } = await import('../../agent/inventory/index.js');
    const macs = (await collectInventory()).interfaces.map((i) => i.mac_address);
    if (!macs.length) throw new Error('this machine has no NIC with a MAC for the agent\'s lookup');
    return this.enroll({
      name, driver: 'ipmi', boot_interface: 'ipxe', deploy_interface: 'direct',
      management_interface: 'noop', network_interface: 'noop', ...interfaces,
      driver_info: {
        ipmi_address: LOOPBACK, ipmi_port: lanPort, ipmi_username: username, ipmi_password: password, ipmi_cipher_suite: 3,
        deploy_kernel: await this.publish('deploy.kernel', Buffer.alloc(4096, 1)),
        deploy_ramdisk: await this.publish('deploy.initramfs', Buffer.alloc(4096, 2)),
      },
    }, macs);
  }

  async node(ident: string): Promise<IronicNode> {
    return this.ok<IronicNode>('GET', `/v1/nodes/${ident}`, undefined, [200]);
  }

  /** PUT /states/provision; 202 expected. Retries while the conductor holds the node's lock (409), as Ironic's clients do. */
  async provision(ident: string, target: string, extra: Record<string, unknown> = {}): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.api('PUT', `/v1/nodes/${ident}/states/provision`, { target, ...extra });
      if (r.status === 202) return;
      if (r.status !== 409 || attempt >= 40) {
        throw new Error(`provision ${target} of ${ident} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`);
      }
      await delay(250);
    }
  }

  /** Polls until the node is in one of `states`; returns it. */
  async waitForAny(ident: string, states: readonly string[], timeoutMs = 60_000): Promise<IronicNode> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.node(ident);
      if (states.includes(n.provision_state)) return n;
      if (Date.now() > deadline) throw new Error(`node ${ident} still "${n.provision_state}" after ${timeoutMs} ms waiting for ${states.join('|')}; last_error ${n.last_error}`);
      await delay(250);
    }
  }

  /**
   * Polls the node until its provision state is `state` (and, for a stable state,
   * no transition is pending; `* wait` states always have a target). Throws with
   * last_error as soon as it lands in a *failed state it was not waiting for.
   */
  async waitForState(ident: string, state: string, timeoutMs = 60_000): Promise<IronicNode> {
    const deadline = Date.now() + timeoutMs;
    let n = await this.node(ident);
    for (;;) {
      if (n.provision_state === state && (/(wait|failed)$/.test(state) || !n.target_provision_state)) return n;
      if (n.provision_state.endsWith('failed') && state !== n.provision_state) {
        throw new Error(`node ${ident} went to "${n.provision_state}" waiting for "${state}": ${n.last_error}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`node ${ident} still "${n.provision_state}" (target ${n.target_provision_state}) after ${timeoutMs} ms waiting for "${state}"; last_error ${n.last_error}`);
      }
      await delay(250);
      n = await this.node(ident);
    }
  }

  /** Writes a file under http_root (deploy kernel/ramdisk for pxe/ipxe nodes); returns its URL. */
  async publish(name: string, content: Buffer | string): Promise<string> {
    await writeFile(join(this.stateDir, 'httpboot', name), content);
    return `${this.httpUrl}/${name}`;
  }

  async readStateFile(rel: string): Promise<string> {
    return readFile(join(this.stateDir, rel), 'utf8');
  }

  /** SIGTERM (SIGKILL after 10 s), stops the HTTP server, removes the state directory. Idempotent. */
  async stop(opts: { keepState?: boolean } = {}): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(t);
    }
    if (this.httpServer) {
      const s = this.httpServer;
      this.httpServer = undefined;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    if (!opts.keepState) await rm(this.stateDir, { recursive: true, force: true });
  }
}

const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A static file server for http_root (GET and HEAD; Ironic HEADs image URLs before downloading). */
async function serveDirectory(dir: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const rel = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!)).replace(/^(\.\.[/\\])+/, '');
    const path = join(dir, rel);
    let size: number;
    try {
      const st = statSync(path);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Length': size, 'Content-Type': 'application/octet-stream' });
    if (req.method === 'HEAD') res.end();
    else createReadStream(path).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

// ---------------------------------------------------------------------------
// A bare-metal node for Ironic's `ipmi` hardware type: an ipmi_sim BMC whose
// chassis power *is* the agent process. ipmi_sim's `startcmd` runs the agent
// on "power on" (the ramdisk boots), reports power on while it exists, and on
// "power off" asks it to shut down over the VM-codec link, then SIGTERMs it
// after `poweroff_wait` s (ipmi_lan(5)). So Ironic's reboot at the start of a
// clean and its power-off at the end drive the agent's life as on hardware.
// ---------------------------------------------------------------------------

export interface NodeBmcOptions {
  /** Shell command line ipmi_sim runs on power on (through /bin/sh); `$NODE_VM_PORT` and `$NODE_LAN_PORT` are set. */
  startCmd: string;
  /** Environment for ipmi_sim and so for the started agent. */
  env?: Record<string, string>;
  users?: SimUser[];
  /** Seconds between the graceful-shutdown request and SIGTERM on power off (default 2). */
  poweroffWait?: number;
}

export interface NodeBmc {
  readonly lanPort: number;
  readonly vmPort: number;
  readonly dir: string;
  log(): string;
  lanplusLogin(user: string, password: string): Promise<LanplusLoginResult>;
  /**
   * SIGSTOP to ipmi_sim alone (not the node process it started): the BMC stops
   * answering on every interface — in-band (VM codec) and lanplus. Requests sent
   * meanwhile queue in its sockets and are handled on resume().
   */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  stop(): Promise<void>;
}

export async function startNodeBmc(opts: NodeBmcOptions): Promise<NodeBmc> {
  const users = opts.users ?? [{ id: 2, name: 'admin', password: 'initpw1', privilege: 'admin' as const }];
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'node-bmc-'));
    const lanPort = await freeUdpPort();
    const vmPort = await freeTcpPort();
    await mkdir(join(dir, 'state'), { mode: 0o700 });
    // The pid file lets stop() end a node process ipmi_sim leaves behind (it does not kill its startcmd on exit).
    await writeFile(join(dir, 'start-node.sh'),
      `#!/bin/sh\nNODE_VM_PORT=${vmPort}\nNODE_LAN_PORT=${lanPort}\necho $$ > ${join(dir, 'node.pid')}\n${opts.startCmd}\n`, { mode: 0o700 });
    const conf = simLanConf('node', lanPort, vmPort, users).trimEnd() + '\n' + [
      `  startcmd "${join(dir, 'start-node.sh')}"`,
      '  startnow false',
      `  poweroff_wait ${opts.poweroffWait ?? 2}`,
      '  kill_wait 5',
      '',
    ].join('\n');
    await writeFile(join(dir, 'lan.conf'), conf, { mode: 0o600 });
    await writeFile(join(dir, 'bmc.emu'), SIM_EMU, { mode: 0o600 });
    const child = spawn(IPMI_SIM_PATH, ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'bmc.emu'), '-s', join(dir, 'state'), '-n', '-p'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(opts.env ?? {}) },
    });
    liveChildren.add(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-16384)));
    child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-16384)));
    const exited = new Promise<void>((r) => child.once('exit', () => {
      liveChildren.delete(child);
      r();
    }));
    // Ready when the LAN channel answers an unauthenticated Get Channel Auth Capabilities (ipmitool's first packet).
    const deadline = Date.now() + 5000;
    let ready = false;
    while (!ready && child.exitCode === null && Date.now() < deadline) {
      ready = await lanAnswers(lanPort);
      if (!ready) await delay(50);
    }
    const stop = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT'); // a paused sim handles SIGTERM only once continued
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      try {
        const pid = Number((await readFile(join(dir, 'node.pid'), 'utf8')).trim());
        if (pid > 0) process.kill(pid, 'SIGTERM');
      } catch {
        // never powered on, or already gone
      }
      await rm(dir, { recursive: true, force: true });
    };
    if (ready) {
      return {
        lanPort,
        vmPort,
        dir,
        log: () => out,
        lanplusLogin: (user, password) => lanplusLogin({ host: LOOPBACK, port: lanPort, user, password }),
        pause: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGSTOP');
        },
        resume: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
        },
        stop,
      };
    }
    await stop();
    if (!/Unable to bind|Address already in use/i.test(out)) throw new Error(`ipmi_sim did not come up: ${out.trim() || '(no output)'}`);
  }
  throw new Error('ipmi_sim could not bind free ports after 5 attempts');
}

/** Sends an RMCP/ASF ping to the LAN port and waits for the pong (ipmi_sim answers once its LAN channel is up). */
function lanAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 200);
    sock.on('message', () => done(true));
    sock.on('error', () => done(false));
    // RMCP header (v6, seq ff, class ASF) + ASF presence ping (IANA 4542, type 0x80).
    sock.send(Buffer.from([0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x00, 0x00, 0x00]), port, LOOPBACK);
  });
}

// ---------------------------------------------------------------------------
// ironic-inspector 11.1 (Debian `python3-ironic-inspector`), standalone next to
// an Ironic from this harness: the legacy `ipa-inspection-callback-url` peer.
// With `node_not_found_hook = enroll` an unknown machine posting its inventory
// to /v1/continue is enrolled in Ironic (discovery).
// ---------------------------------------------------------------------------

const INSPECTOR_SHIM = `import importlib, sys
cmds = {'ironic-inspector': 'ironic_inspector.cmd.all', 'ironic-inspector-dbsync': 'ironic_inspector.cmd.dbsync'}
name = sys.argv.pop(1)
sys.argv[0] = name
sys.exit(importlib.import_module(cmds[name]).main())
`;

function inspectorConf(state: string, port: number, ironicUrl: string): string {
  return `[DEFAULT]
standalone = true
auth_strategy = noauth
transport_url = fake://
listen_address = 127.0.0.1
listen_port = ${port}
host = inband-test-inspector
debug = true
use_stderr = true
introspection_delay = 0

[ironic]
auth_type = none
endpoint_override = ${ironicUrl}

[database]
connection = sqlite:///${state}/inspector.sqlite

[pxe_filter]
driver = noop

[processing]
store_data = database
add_ports = all
keep_ports = all
ramdisk_logs_dir = ${state}/ramdisk-logs
node_not_found_hook = enroll
power_off = false

[discovery]
enroll_node_driver = fake-hardware

[oslo_concurrency]
lock_path = ${state}/lock
`;
}

export class Inspector {
  private readonly chunks: string[] = [];
  private readonly exited: Promise<void>;

  private constructor(readonly url: string, readonly stateDir: string, private readonly child: ChildProcess) {
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const keep = (d: Buffer): void => {
      this.chunks.push(d.toString('utf8'));
      if (this.chunks.length > 4000) this.chunks.splice(0, 1000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  static async start(ironic: Ironic, opts: { readyTimeoutMs?: number } = {}): Promise<Inspector> {
    const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import ironic_inspector.cmd.all'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`python3-ironic-inspector is not installed (run scripts/install-ironic.sh): ${(r.stderr || '').trim().split('\n').pop()}`);
    const state = await mkdtemp(join(tmpdir(), 'inspector-'));
    await mkdir(join(state, 'lock'));
    await mkdir(join(state, 'ramdisk-logs'));
    const port = await freeLoopbackPort();
    const conf = join(state, 'inspector.conf');
    await writeFile(conf, inspectorConf(state, port, ironic.url));
    await writeFile(join(state, 'run-inspector.py'), INSPECTOR_SHIM);
    const db = spawnSync(SYSTEM_PYTHON, [join(state, 'run-inspector.py'), 'ironic-inspector-dbsync', '--config-file', conf, 'upgrade'], { encoding: 'utf8', timeout: 120_000 });
    if (db.status !== 0) throw new Error(`ironic-inspector-dbsync failed (${db.status}): ${(db.stderr || '').slice(-2000)}`);
    const child = spawn(SYSTEM_PYTHON, [join(state, 'run-inspector.py'), 'ironic-inspector', '--config-file', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: state },
    });
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    const inspector = new Inspector(`http://127.0.0.1:${port}`, state, child);
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        if ((await fetch(`${inspector.url}/v1/introspection`)).status === 200) return inspector;
      } catch {
        // not yet
      }
      await delay(200);
    }
    const log = inspector.log();
    await inspector.stop();
    throw new Error(`ironic-inspector did not come up: ${log.slice(-3000)}`);
  }

  /** The legacy inspection callback (`ipa-inspection-callback-url`). */
  get callbackUrl(): string {
    return `${this.url}/v1/continue`;
  }

  log(): string {
    return this.chunks.join('');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(t);
    }
    await rm(this.stateDir, { recursive: true, force: true });
  }
}
