/**
 * Test harness: one real OpenIPMI `ipmi_sim` (Debian package `openipmi`) per
 * test, on free loopback ports, with a throw-away config and state directory.
 *
 * The BMC it starts has two faces:
 * - an in-band system interface (channel 15) speaking the VM serial codec on
 *   TCP — what qemu's `ipmi-bmc-extern` connects to and what the `vm-codec`
 *   backend speaks;
 * - an RMCP/RMCP+ LAN channel (channel 1) on UDP, for proving credentials
 *   out-of-band with `ipmitool -I lanplus` (see ./lanplus.ts).
 *
 * ipmi_sim departs from the IPMI v2.0 specification in ways that matter for a
 * credential agent; {@link IPMI_SIM_QUIRKS} writes them down so tests can
 * assert the difference instead of silently depending on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lanplusLogin, type LanplusLoginResult } from './lanplus.js';

export { lanplusLogin, type LanplusLoginOptions, type LanplusLoginResult } from './lanplus.js';

export const IPMI_SIM_PATH = '/usr/bin/ipmi_sim';
export const IPMITOOL_PATH = '/usr/bin/ipmitool';
export const LOOPBACK = '127.0.0.1';

export type SimPrivilege = 'callback' | 'user' | 'operator' | 'admin';

export interface SimUser {
  /** User ID 2..63 (user 1 is the anonymous user, §6.9.1). */
  id: number;
  name: string;
  /** Up to 16 bytes: ipmi_sim uses only 16 (see IPMI_SIM_QUIRKS.storedPasswordBytes). */
  password: string;
  privilege?: SimPrivilege;
  /** Default true. */
  enabled?: boolean;
}

export interface IpmiSimOptions {
  /** Initial users (lan.conf `user` lines). Default: user 2 `admin` / `initpw1`, administrator. */
  users?: SimUser[];
  /**
   * Persist user changes to `<dir>/state/ipmi_sim/<name>/users.mc20` (ipmi_sim
   * without `-p`). Needed for {@link IpmiSim.storedUsers}. Default false.
   */
  persist?: boolean;
  /** How long to wait for the sim to come up. Default 5000 ms. */
  readyTimeoutMs?: number;
  ipmiSimPath?: string;
  /** Picks the LAN (UDP) and VM-codec (TCP) ports for each start attempt. Default: free loopback ports. */
  pickPorts?: () => Promise<{ lanPort: number; vmPort: number }>;
}

/** One user slot as ipmi_sim stored it (from users.mc20), for checking exactly which bytes the BMC kept. */
export interface StoredUser {
  id: number;
  valid: boolean;
  /** Name bytes up to the first NUL. */
  name: string;
  /** All stored password bytes (ipmi_sim keeps a 20-byte buffer). */
  password: Uint8Array;
  privilege: number | undefined;
}

export interface IpmiSim {
  readonly host: string;
  /** UDP port of the RMCP/RMCP+ LAN channel (channel 1). */
  readonly lanPort: number;
  /** TCP port of the VM-codec system interface (channel 15). */
  readonly vmPort: number;
  readonly pid: number;
  /** Temporary directory holding lan.conf, bmc.emu and state/. Removed by stop(). */
  readonly dir: string;
  readonly users: readonly SimUser[];
  /** Milliseconds from spawn until the VM-codec port greeted us. */
  readonly readyMs: number;
  /** Proves credentials over lanplus against this sim; counts failed logins (session leak, see IPMI_SIM_QUIRKS). */
  lanplusLogin(user: string, password: string, opts?: { timeoutMs?: number }): Promise<LanplusLoginResult>;
  /** Failed lanplus logins in the last {@link IPMI_SIM_QUIRKS.failedLoginSessionHoldMs}. */
  recentFailedLogins(): number;
  /** SIGSTOP: the sim stops answering (to provoke timeouts and late responses). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** SIGKILL without cleanup of the directory (to simulate a crash); stop() still cleans up. */
  kill(): Promise<void>;
  /** Whether the process is still running. */
  readonly running: boolean;
  /** Last ~8 KiB of the sim's stdout/stderr. */
  log(): string;
  /** Reads users.mc20 (requires `persist: true`). ipmi_sim rewrites it on its ~1 s tick after a change. */
  storedUsers(): Promise<Map<number, StoredUser>>;
  /** Polls storedUsers() until `predicate` holds or `timeoutMs` (default 3000) passes. */
  waitForStoredUsers(predicate: (users: Map<number, StoredUser>) => boolean, timeoutMs?: number): Promise<Map<number, StoredUser>>;
  /** SIGTERM (then SIGKILL), waits for exit, removes the directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Where ipmi_sim 2.0.33 differs from the IPMI v2.0 spec (or from real BMCs).
 * Verified against the installed binary; the tests in test/vm-codec/ re-check
 * the ones marked there, so a newer ipmi_sim that fixes one shows up as a failure.
 */
export const IPMI_SIM_QUIRKS = Object.freeze({
  /** §22.30 allows 20-byte passwords; ipmi_sim answers 0x00 but stores only the first 16 bytes. */
  storedPasswordBytes: 16,
  /** §22.30 op 3 (test password) always returns 0x00, even for a wrong password. */
  testPasswordAlwaysSucceeds: true,
  /** §22.26/§22.27: the channel byte of Set/Get User Access is ignored; access is global. */
  userAccessIsGlobal: true,
  /** §22.26 byte 1 bit 4 (IPMI messaging) is the same flag as "user enabled" (§22.30 op 0/1). */
  ipmiMessagingIsUserEnable: true,
  /** §22.27: Get User Access never reports the user ID enable status (byte 2 bits 7:6 always 00). */
  reportsUserEnableStatus: false,
  /** §13.17: RMCP+ with name-only lookup does not enforce the user's privilege limit. */
  lanplusEnforcesPrivilegeLimit: false,
  /** A failed RMCP+ login leaves a half-open session until the session timeout. */
  failedLoginSessionHoldMs: 30_000,
  /** Sessions the LAN channel holds at most; more leaked sessions block every new login. */
  maxSessions: 63,
  /** Completion codes where ipmi_sim differs from common BMCs. */
  cc: Object.freeze({
    /** Get User Name for user 1 (real BMCs usually return an empty name). */
    getUserNameAnonymous: 0xcc,
    /** Set User Name for user 1 (fixed name). */
    setUserNameAnonymous: 0xcc,
    /** Set User Name with fewer than 16 name bytes. */
    setUserNameShort: 0xc7,
    /** Get Channel Authentication Capabilities on the system interface (§22.13 is a LAN/serial command). */
    getChannelAuthCapsInBand: 0xc1,
    /** An unknown NetFn (e.g. 0x30) answers "request data length invalid" rather than "invalid command". */
    unknownNetFn: 0xc7,
  }),
});

const PRIV_WORD: Record<SimPrivilege, string> = { callback: 'callback', user: 'user', operator: 'operator', admin: 'admin' };
const DEFAULT_USERS: SimUser[] = [{ id: 2, name: 'admin', password: 'initpw1', privilege: 'admin' }];
const LOG_LIMIT = 8192;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Whether ipmi_sim and ipmitool are installed; tests skip visibly with `reason` when not. */
export function ipmiSimAvailability(): { available: boolean; reason: string } {
  for (const p of [IPMI_SIM_PATH, IPMITOOL_PATH]) {
    try {
      accessSync(p, fsConstants.X_OK);
    } catch {
      return { available: false, reason: `${p} not installed (Debian packages openipmi and ipmitool)` };
    }
  }
  return { available: true, reason: '' };
}

/** A TCP port on loopback that was free a moment ago. */
export function freeTcpPort(host = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** A UDP port on loopback that was free a moment ago. */
export function freeUdpPort(host = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function quote(s: string): string {
  if (/["\\\n\r]/.test(s)) throw new Error('user names and passwords for ipmi_sim must not contain quotes, backslashes or newlines');
  return `"${s}"`;
}

function validateUsers(users: SimUser[]): void {
  const seen = new Set<number>();
  for (const u of users) {
    if (!Number.isInteger(u.id) || u.id < 2 || u.id > 63) throw new Error(`user id ${u.id}: must be 2..63`);
    if (seen.has(u.id)) throw new Error(`user id ${u.id} given twice`);
    seen.add(u.id);
    if (Buffer.byteLength(u.name) > 16) throw new Error(`user ${u.id}: name longer than 16 bytes`);
    if (Buffer.byteLength(u.password) > 20) throw new Error(`user ${u.id}: password longer than 20 bytes`);
  }
}

/** lan.conf for one sim; see ipmi_lan(5) upstream (lanserv/ipmi_lan.5). */
export function simLanConf(name: string, lanPort: number, vmPort: number, users: SimUser[]): string {
  const auths = 'none md2 md5 straight';
  const lines = [
    `name "${name}"`,
    'set_working_mc 0x20',
    '  startlan 1',
    `    addr ${LOOPBACK} ${lanPort}`,
    '    priv_limit admin',
    `    allowed_auths_callback ${auths}`,
    `    allowed_auths_user ${auths}`,
    `    allowed_auths_operator ${auths}`,
    `    allowed_auths_admin ${auths}`,
    '    guid a123456789abcdefa123456789abcdef',
    '  endlan',
    // "kcs" puts this interface on channel 15 and makes Get Channel Info report a system interface.
    `  serial kcs ${LOOPBACK} ${vmPort} codec VM`,
    `  user 1 false "" "" user 10 ${auths}`,
    ...users.map((u) => `  user ${u.id} ${u.enabled === false ? 'false' : 'true'} ${quote(u.name)} ${quote(u.password)} ${PRIV_WORD[u.privilege ?? 'admin']} 10 ${auths}`),
    '',
  ];
  return lines.join('\n');
}

/** Without mc_setbmc/mc_add/mc_enable ipmi_sim exits with rc=1 and logs only to syslog. */
export const SIM_EMU = [
  'mc_setbmc 0x20',
  // Device ID 0x00, rev 3, fw 9.08, IPMI 2.0, mfg 0x001291, product 0x0f02.
  'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr',
  'sel_enable 0x20 1000 0x0a',
  'mc_enable 0x20',
  '',
].join('\n');

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test that crashes must not leave BMCs behind holding ports.
  process.once('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** Resolves once the VM-codec port sends its version control message (FF 01 A1). */
function probeVmPort(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: LOOPBACK, port });
    let got = Buffer.alloc(0);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.includes(0xa1)) done(true);
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function parseUsersMc20(text: string): Map<number, StoredUser> {
  // Lines look like `5.passwd:d:ABC\00\00…`, `5.privilege:i:4`, `5.valid:i:1`.
  const out = new Map<number, StoredUser>();
  const get = (id: number): StoredUser => {
    let u = out.get(id);
    if (!u) {
      u = { id, valid: false, name: '', password: new Uint8Array(0), privilege: undefined };
      out.set(id, u);
    }
    return u;
  };
  for (const line of text.split('\n')) {
    const m = /^(\d+)\.(\w+):([a-z]):(.*)$/.exec(line);
    if (!m) continue;
    const [, idStr, field, type, value] = m as unknown as [string, string, string, string, string];
    const u = get(Number(idStr));
    const bytes = type === 'd' ? decodeEscaped(value) : undefined;
    if (field === 'valid') u.valid = value.trim() === '1';
    else if (field === 'privilege') u.privilege = Number(value);
    else if (field === 'username' && bytes) {
      const nul = bytes.indexOf(0);
      u.name = Buffer.from(nul < 0 ? bytes : bytes.subarray(0, nul)).toString('latin1');
    } else if (field === 'passwd' && bytes) u.password = bytes;
  }
  return out;
}

function decodeEscaped(s: string): Uint8Array {
  // ipmi_sim's persist format writes non-printable bytes as \XX (hex) and a backslash as \\.
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c && i + 1 < s.length) {
      if (s[i + 1] === '\\') {
        out.push(0x5c);
        i++;
        continue;
      }
      const hex = s.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        out.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
    }
    out.push(c & 0xff);
  }
  return Uint8Array.from(out);
}

/**
 * Starts a fresh ipmi_sim on free loopback ports and waits until its VM-codec
 * port answers. Ports are probed free first; if the sim still loses a bind race
 * it exits with "Unable to bind" and is restarted on new ports.
 */
export async function startIpmiSim(opts: IpmiSimOptions = {}): Promise<IpmiSim> {
  const users = opts.users ?? DEFAULT_USERS;
  validateUsers(users);
  const ipmiSimPath = opts.ipmiSimPath ?? IPMI_SIM_PATH;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 5000;
  const pickPorts = opts.pickPorts ?? (async () => ({ lanPort: await freeUdpPort(), vmPort: await freeTcpPort() }));
  installExitHook();
  let lastLog = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'ipmi-sim-'));
    try {
      const { lanPort, vmPort } = await pickPorts();
      const name = 'bmc';
      await mkdir(join(dir, 'state'), { mode: 0o700 });
      await writeFile(join(dir, 'lan.conf'), simLanConf(name, lanPort, vmPort, users), { mode: 0o600 });
      await writeFile(join(dir, 'bmc.emu'), SIM_EMU, { mode: 0o600 });
      const args = ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'bmc.emu'), '-s', join(dir, 'state'), '-n'];
      if (!opts.persist) args.push('-p');
      const started = performance.now();
      // -n: no console on stdio (with stdin at /dev/null but without -n, ipmi_sim aborts in epoll_ctl).
      const child = spawn(ipmiSimPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
      const sim = new RunningSim(child, dir, lanPort, vmPort, users, name);
      const spawnError = await new Promise<Error | undefined>((resolve) => {
        child.once('spawn', () => resolve(undefined));
        child.once('error', (err) => resolve(err));
      });
      if (spawnError) throw new Error(`cannot start ${ipmiSimPath}: ${spawnError.message}`);
      live.add(child);
      const deadline = performance.now() + readyTimeoutMs;
      let ready = false;
      while (!ready && sim.running && performance.now() < deadline) {
        ready = await probeVmPort(vmPort, Math.max(50, Math.min(500, deadline - performance.now())));
        if (!ready) await delay(20);
      }
      if (ready) {
        sim.readyMs = Math.round(performance.now() - started);
        return sim;
      }
      lastLog = sim.log();
      await sim.stop();
      if (/Unable to bind|Address already in use/i.test(lastLog)) continue; // lost a port race: new ports
      throw new Error(`ipmi_sim did not become ready within ${readyTimeoutMs} ms: ${lastLog.trim() || '(no output)'}`);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }
  throw new Error(`ipmi_sim could not bind its ports after 5 attempts: ${lastLog.trim()}`);
}

class RunningSim implements IpmiSim {
  readonly host = LOOPBACK;
  readyMs = 0;
  #child: ChildProcess;
  #log = '';
  #exited: Promise<void>;
  #running = true;
  #stopped = false;
  #failedLogins: number[] = [];
  readonly pid: number;

  constructor(
    child: ChildProcess,
    readonly dir: string,
    readonly lanPort: number,
    readonly vmPort: number,
    readonly users: readonly SimUser[],
    readonly name: string,
  ) {
    this.#child = child;
    this.pid = child.pid ?? -1;
    const append = (d: Buffer): void => {
      this.#log = (this.#log + d.toString('utf8')).slice(-LOG_LIMIT);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.#exited = new Promise((resolve) => {
      // 'close', not 'exit': the bind error ipmi_sim prints must be in the log before we read it.
      child.once('close', () => {
        this.#running = false;
        live.delete(child);
        resolve();
      });
      child.once('error', () => {
        this.#running = false;
        resolve();
      });
    });
  }

  get running(): boolean {
    return this.#running;
  }

  log(): string {
    return this.#log;
  }

  pause(): void {
    if (this.#running) this.#child.kill('SIGSTOP');
  }

  resume(): void {
    if (this.#running) this.#child.kill('SIGCONT');
  }

  async kill(): Promise<void> {
    if (this.#running) {
      this.#child.kill('SIGKILL');
      await this.#exited;
    }
  }

  recentFailedLogins(): number {
    const since = performance.now() - IPMI_SIM_QUIRKS.failedLoginSessionHoldMs;
    this.#failedLogins = this.#failedLogins.filter((t) => t > since);
    return this.#failedLogins.length;
  }

  async lanplusLogin(user: string, password: string, opts: { timeoutMs?: number } = {}): Promise<LanplusLoginResult> {
    // Each failed RMCP+ login leaks a session for 30 s; past 63 every login fails with
    // "insufficient resources". Refuse loudly before a test hits that wall.
    if (this.recentFailedLogins() >= IPMI_SIM_QUIRKS.maxSessions - 8) {
      throw new Error(`too many failed lanplus logins against this ipmi_sim within ${IPMI_SIM_QUIRKS.failedLoginSessionHoldMs} ms: it leaks a session per failure (max ${IPMI_SIM_QUIRKS.maxSessions})`);
    }
    const res = await lanplusLogin({ host: this.host, port: this.lanPort, user, password, ...opts });
    if (!res.ok) this.#failedLogins.push(performance.now());
    return res;
  }

  async storedUsers(): Promise<Map<number, StoredUser>> {
    const file = join(this.dir, 'state', 'ipmi_sim', this.name, 'users.mc20');
    let text: string;
    try {
      text = await readFile(file, 'latin1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    return parseUsersMc20(text);
  }

  async waitForStoredUsers(predicate: (users: Map<number, StoredUser>) => boolean, timeoutMs = 3000): Promise<Map<number, StoredUser>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const users = await this.storedUsers();
      if (predicate(users)) return users;
      if (performance.now() > deadline) throw new Error(`users.mc20 did not reach the expected state within ${timeoutMs} ms`);
      await delay(100);
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#running) {
      this.#child.kill('SIGTERM');
      this.#child.kill('SIGCONT'); // a paused sim handles SIGTERM only once continued
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 2000);
      await this.#exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
