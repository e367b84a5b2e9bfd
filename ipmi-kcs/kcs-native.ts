/**
 * The native backend: requests go through the Linux OpenIPMI driver's character
 * device (/dev/ipmi0) via the ipmi_kcs addon (ipmi-kcs/native/ipmi_kcs.c).
 * The addon only performs syscalls; this file owns the fd, the msgid sequence,
 * response checks and error naming.
 */
import { access as accessCb, constants as fsConstants, readFile as readFileCb, stat as statCb } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName, promisify } from 'node:util';
import { BaseTransport } from './base-transport.js';
import { IpmiTransportError } from './errors.js';
import { DEFAULT_DEVICE_PATHS, KCS_LIMITS, type IpmiResponse, type NormalizedRequest } from './transport.js';

// Not node:fs/promises: the daemon opens its device before listening, and that module would load for these three.
const access = promisify(accessCb);
const readFile = promisify(readFileCb);
const stat = promisify(statCb);

/** Where ipmitool looks for the device (src/plugins/open/open.c), in its order. */
// Declared beside the transport contract, so that backend selection can look for a device without loading this module.
export { DEFAULT_DEVICE_PATHS };
/** Explicit path of the compiled addon, for packaged layouts without build/. */
export const ADDON_PATH_ENV = 'INBAND_AGENT_ADDON';
const ADDON_FILE = path.join('build', 'Release', 'ipmi_kcs.node');
const BUILD_ERROR_FILE = path.join('build', 'addon-build-error.txt');
/** Must match ADDON_ABI in ipmi_kcs.c. */
const ADDON_ABI = 1;
/** msgid is a C `long`, 32 bits on 32-bit targets; it only has to differ from recent ones. */
const MAX_MSGID = 0x7fff_ffff;
export const MODULES_HINT = 'load ipmi_msghandler, ipmi_devintf and ipmi_si (KCS/BT/SMIC) or ipmi_ssif';

interface AddonResponse {
  msgid: number;
  netfn: number;
  cmd: number;
  /** Completion code first, then the response data. */
  data: Buffer;
  truncated: boolean;
  /** Stale responses (earlier msgids, non-responses) discarded while waiting. */
  dropped: number;
}

/**
 * The exports of ipmi_kcs.node. open and close run on a worker thread; a request
 * is sent and awaited on the event loop (a poll watcher on the fd, one request
 * per fd at a time), or on a worker thread for an fd epoll refuses.
 */
export interface NativeAddon {
  readonly abi: number;
  readonly maxMessageLength: number;
  open(devicePath: string): Promise<number>;
  close(fd: number): Promise<void>;
  request(fd: number, msgid: number, netfn: number, lun: number, cmd: number, data: Uint8Array, timeoutMs: number): Promise<AddonResponse>;
  /** prctl(PR_SET_DUMPABLE); returns PR_GET_DUMPABLE's answer. Absent from addons built before it. */
  setDumpable?(dumpable: boolean): number;
}

/** What the addon rejects with: errno (positive, as in os.constants.errno) and the failing syscall. */
interface AddonError extends Error {
  errno?: number;
  syscall?: string;
  code?: string;
  path?: string;
}

export interface NativeLogger {
  info(msg: string, meta?: object): void;
  debug?(msg: string, meta?: object): void;
}

export interface NativeOptions {
  /** Device node; default: the first of {@link DEFAULT_DEVICE_PATHS} that exists. */
  devicePath?: string;
  logger?: NativeLogger;
  /** Compiled addon; default: $INBAND_AGENT_ADDON, else build/Release/ipmi_kcs.node of this project. */
  addonPath?: string;
  /** Device nodes searched when devicePath is not given (default {@link DEFAULT_DEVICE_PATHS}). */
  candidates?: readonly string[];
}

export interface NativeAvailability {
  addonLoaded: boolean;
  addonError?: string;
  addonPath?: string;
  device?: string;
  deviceError?: string;
  /** The typed error behind deviceError: ENOENT when no device node exists at all, else what is wrong with the one found. */
  deviceFailure?: IpmiTransportError;
}

export type AddonLoadResult = { ok: true; addon: NativeAddon; path: string } | { ok: false; error: string };

const here = path.dirname(fileURLToPath(import.meta.url));
const requireNative = createRequire(import.meta.url);
const loaded = new Map<string, NativeAddon>();

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

function loadFrom(file: string): AddonLoadResult {
  const cached = loaded.get(file);
  if (cached) return { ok: true, addon: cached, path: file };
  let mod: Partial<NativeAddon>;
  try {
    mod = requireNative(file) as Partial<NativeAddon>;
  } catch (err) {
    return { ok: false, error: `addon failed to load: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (mod.abi !== ADDON_ABI || typeof mod.open !== 'function' || typeof mod.close !== 'function' || typeof mod.request !== 'function') {
    return { ok: false, error: `addon failed to load: ${file} is not the ipmi_kcs addon this code expects (abi ${String(mod.abi)}, expected ${ADDON_ABI})` };
  }
  loaded.set(file, mod as NativeAddon);
  return { ok: true, addon: mod as NativeAddon, path: file };
}

export interface AddonLoadOptions {
  /** Explicit addon file; overrides the environment and the search. */
  addonPath?: string;
  /** Environment to read $INBAND_AGENT_ADDON from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Directory the project search starts from (default: this module's directory). */
  searchFrom?: string;
}

/**
 * Loads the addon: an explicit path (option, then $INBAND_AGENT_ADDON), else
 * build/Release/ipmi_kcs.node of the project this module belongs to (found from
 * ipmi-kcs/ when run from source, from dist/ipmi-kcs/ when compiled). Says why
 * when it cannot: "addon not built: …" (with the recorded build error) or
 * "addon failed to load: …" (the dlopen error).
 */
export async function loadNativeAddon(opts: AddonLoadOptions = {}): Promise<AddonLoadResult> {
  const fromEnv = (opts.env ?? process.env)[ADDON_PATH_ENV] || undefined;
  const explicit = opts.addonPath ?? fromEnv;
  if (explicit) {
    const file = path.resolve(explicit);
    if (!(await exists(file))) {
      return { ok: false, error: `addon not built: ${file} (${opts.addonPath ? 'addonPath option' : `$${ADDON_PATH_ENV}`}) does not exist` };
    }
    return loadFrom(file);
  }
  const from = opts.searchFrom ?? here;
  const roots = [path.resolve(from, '..'), path.resolve(from, '..', '..')];
  for (const root of roots) {
    const file = path.join(root, ADDON_FILE);
    if (await exists(file)) return loadFrom(file);
  }
  for (const root of roots) {
    if (!(await exists(path.join(root, 'binding.gyp')))) continue;
    const errorFile = path.join(root, BUILD_ERROR_FILE);
    try {
      const reason = (await readFile(errorFile, 'utf8')).split('\n')[0]?.trim();
      return { ok: false, error: `addon not built: ${reason || 'unknown reason'} (see ${errorFile})` };
    } catch {
      return { ok: false, error: `addon not built: no ${ADDON_FILE} under ${root}; run \`node scripts/build-addon.mjs\` there, or set $${ADDON_PATH_ENV}` };
    }
  }
  return { ok: false, error: `addon not built: no ${ADDON_FILE} above ${from}, and $${ADDON_PATH_ENV} is not set` };
}

function describeType(st: { isDirectory(): boolean; isFile(): boolean; isFIFO(): boolean; isSocket(): boolean; isBlockDevice(): boolean }): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isBlockDevice()) return 'block device';
  return 'unknown file type';
}

function errnoOf(err: unknown): { code: string; errno?: number; syscall?: string; message: string } {
  const e = err as NodeJS.ErrnoException;
  return { code: typeof e?.code === 'string' ? e.code : 'EIO', errno: typeof e?.errno === 'number' ? Math.abs(e.errno) : undefined, syscall: e?.syscall, message: e instanceof Error ? e.message : String(err) };
}

/** Checks one path: a character device we may read and write, or a typed error saying what it is. */
async function checkDevice(p: string, how: string): Promise<void> {
  let st;
  try {
    st = await stat(p);
  } catch (err) {
    const e = errnoOf(err);
    const what = e.code === 'ENOENT' ? `no IPMI device at ${p} (${how}); ${MODULES_HINT}` : `cannot inspect ${p} (${how}): ${e.message}`;
    throw new IpmiTransportError('native', e.code, what, { errno: e.errno, syscall: 'stat' });
  }
  if (!st.isCharacterDevice()) {
    throw new IpmiTransportError('native', 'ENOTCHR', `${p} (${how}) is not a character device (it is a ${describeType(st)}), so it cannot be an IPMI device`, { syscall: 'stat' });
  }
  try {
    await access(p, fsConstants.R_OK | fsConstants.W_OK);
  } catch (err) {
    const e = errnoOf(err);
    throw new IpmiTransportError('native', e.code, `no read-write access to ${p} (${how}): the agent must run as root or be granted the device`, { errno: e.errno, syscall: 'access' });
  }
}

/**
 * Resolves the device node: the configured path, else the first of the
 * candidates that exists. Throws IpmiTransportError: ENOENT naming every path
 * tried, ENOTCHR for something that is not a character device, EACCES.
 */
export async function findDevice(devicePath?: string, candidates: readonly string[] = DEFAULT_DEVICE_PATHS): Promise<string> {
  if (devicePath !== undefined) {
    if (typeof devicePath !== 'string' || devicePath === '' || devicePath.includes('\0')) {
      throw new IpmiTransportError('native', 'EINVAL', 'the configured device path must be a non-empty string');
    }
    await checkDevice(devicePath, 'configured');
    return devicePath;
  }
  for (const p of candidates) {
    try {
      await checkDevice(p, 'default');
      return p;
    } catch (err) {
      // Absent: try the next one. Present but unusable: say so, never skip it silently.
      if (err instanceof IpmiTransportError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) continue;
      throw err;
    }
  }
  throw new IpmiTransportError('native', 'ENOENT', `no IPMI device found; tried ${candidates.join(', ')} (${MODULES_HINT})`, { syscall: 'stat' });
}

/** For backend selection: is the addon loadable, and is there a device? Touches nothing but the filesystem. */
export async function nativeAvailability(opts: Pick<NativeOptions, 'devicePath' | 'addonPath' | 'candidates'> = {}): Promise<NativeAvailability> {
  const out: NativeAvailability = { addonLoaded: false };
  const load = await loadNativeAddon({ addonPath: opts.addonPath });
  if (load.ok) {
    out.addonLoaded = true;
    out.addonPath = load.path;
  } else {
    out.addonError = load.error;
  }
  try {
    out.device = await findDevice(opts.devicePath, opts.candidates);
  } catch (err) {
    out.deviceError = err instanceof Error ? err.message : String(err);
    if (err instanceof IpmiTransportError) out.deviceFailure = err;
  }
  return out;
}

/** Names an addon rejection: code from errno (getSystemErrorName), errno and syscall kept. */
function fromAddonError(err: unknown, device: string): IpmiTransportError {
  const e = (err ?? {}) as AddonError;
  const errno = typeof e.errno === 'number' ? e.errno : undefined;
  let code = typeof e.code === 'string' && e.code.startsWith('E') ? e.code : undefined;
  if (!code && errno !== undefined) {
    try {
      code = getSystemErrorName(-errno);
    } catch {
      code = `errno ${errno}`;
    }
  }
  code ??= 'EIO';
  const detail = e instanceof Error ? e.message : String(err);
  let message: string;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      message = `permission denied on ${device} (${detail}): the agent must run as root or be granted the device`;
      break;
    case 'EBUSY':
      message = `${device} is busy (${detail}): the driver refuses requests in maintenance mode after a BMC reset or firmware command; retry later`;
      break;
    case 'ENOTTY':
      message = `${device} is not an IPMI device (${detail})`;
      break;
    case 'EINVAL':
      // ipmi_msghandler.c i_ipmi_req_sysintf(): it keeps these App commands for itself.
      message = e.syscall === 'ioctl(IPMICTL_SEND_COMMAND)'
        ? `${device}: the driver refused the request (${detail}); it reserves Get Message 0x33, Send Message 0x34 and Read Event Message Buffer 0x35`
        : `${device}: ${detail}`;
      break;
    case 'ENODEV':
      message = `${device}: the IPMI interface went away (${detail})`;
      break;
    case 'ENOTCHR':
      message = detail;
      break;
    default:
      message = `${device}: ${detail}`;
  }
  return new IpmiTransportError('native', code, message, { errno, syscall: e.syscall, cause: err });
}

export class NativeTransport extends BaseTransport {
  readonly kind = 'native' as const;
  readonly description: string;
  readonly devicePath: string;
  readonly addonPath: string;
  #addon: NativeAddon;
  #fd: number;
  #msgid = 0;
  #logger: NativeLogger | undefined;

  constructor(addon: NativeAddon, fd: number, devicePath: string, addonPath: string, logger?: NativeLogger) {
    super(KCS_LIMITS);
    this.#addon = addon;
    this.#fd = fd;
    this.devicePath = devicePath;
    this.addonPath = addonPath;
    this.description = devicePath;
    this.#logger = logger;
  }

  protected async exchange(req: NormalizedRequest, timeoutMs: number): Promise<IpmiResponse> {
    this.#msgid = this.#msgid >= MAX_MSGID ? 1 : this.#msgid + 1;
    const msgid = this.#msgid;
    const pending = this.#addon.request(this.#fd, msgid, req.netFn, req.lun, req.cmd, req.data, timeoutMs);
    // The addon copied the bytes synchronously; they may hold a password (§22.30).
    req.data.fill(0);
    let rsp: AddonResponse;
    try {
      rsp = await pending;
    } catch (err) {
      const e = err as AddonError;
      if (e?.code === 'ETIMEDOUT' && e.syscall === 'poll') throw this.timeoutError(req, timeoutMs);
      throw fromAddonError(err, this.devicePath);
    }
    if (rsp.dropped > 0) this.#logger?.debug?.(`native: dropped ${rsp.dropped} stale IPMI message(s) before msgid ${msgid}`);
    // §5.1: the response netFn is the request's plus one, for the same command.
    if (rsp.msgid !== msgid || rsp.netfn !== (req.netFn | 1) || rsp.cmd !== req.cmd) {
      throw new IpmiTransportError('native', 'EPROTO', `response netFn 0x${rsp.netfn.toString(16)} cmd 0x${rsp.cmd.toString(16)} (msgid ${rsp.msgid}) does not answer netFn 0x${req.netFn.toString(16)} cmd 0x${req.cmd.toString(16)} (msgid ${msgid})`);
    }
    if (rsp.data.length < 1) {
      throw new IpmiTransportError('native', 'EPROTO', `empty response to netFn 0x${req.netFn.toString(16)} cmd 0x${req.cmd.toString(16)}: no completion code`);
    }
    const completionCode = rsp.data[0]!;
    const data = Uint8Array.prototype.slice.call(rsp.data, 1);
    rsp.data.fill(0);
    return { completionCode, data, truncated: rsp.truncated };
  }

  protected async shutdown(): Promise<void> {
    const fd = this.#fd;
    this.#fd = -1;
    try {
      await this.#addon.close(fd);
    } catch (err) {
      throw fromAddonError(err, this.devicePath);
    }
  }
}

/**
 * Opens the native backend: loads the addon, finds the device, opens it.
 * Rejects with IpmiTransportError: code 'ENOADDON' (message says whether the
 * addon was not built or failed to load), 'ENOENT' (naming the paths tried),
 * 'ENOTCHR', 'EACCES', or the errno of the failed open.
 */
export async function openNativeTransport(opts: NativeOptions = {}): Promise<NativeTransport> {
  const load = await loadNativeAddon({ addonPath: opts.addonPath });
  if (!load.ok) throw new IpmiTransportError('native', 'ENOADDON', load.error);
  const device = await findDevice(opts.devicePath, opts.candidates);
  let fd: number;
  try {
    fd = await load.addon.open(device);
  } catch (err) {
    throw fromAddonError(err, device);
  }
  opts.logger?.info(`native IPMI backend: ${device} (addon ${load.path})`, { backend: 'native', device });
  return new NativeTransport(load.addon, fd, device, load.path, opts.logger);
}
