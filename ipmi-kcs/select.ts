/**
 * Backend selection, in two steps: {@link chooseBackend} decides (cheap: a
 * stat and loading the addon; the daemon shows the choice in its very first
 * /v1/status), {@link openTransport} opens what was chosen.
 *
 * The simulated BMC stands in for a real one only on a machine without any
 * IPMI device (a laptop, a CI box), only under `auto`, and always loudly. It
 * never replaces something the user named or a node's real BMC: a configured
 * `--device` that cannot be opened is an error, a device node that exists but
 * cannot be used (no addon, EACCES, not a character device) is an error, and
 * with `fallback: 'none'` (the daemon serving a conductor) a machine without
 * a device gets {@link NoBmcError} instead of a simulation. Backends are
 * imported lazily so that start-up pays only for the one in use.
 */
import { stat as statCb } from 'node:fs';
import { promisify } from 'node:util';
import { IpmiTransportError, NoBmcError } from './errors.js';

export { NoBmcError };
import { DEFAULT_DEVICE_PATHS, type BackendKind, type Transport } from './transport.js';

// Not node:fs/promises: the daemon decides its backend before listening, and that module would load for one stat.
const stat = promisify(statCb);

export type BackendChoice = BackendKind | 'auto';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'simulated', 'vm-codec', 'ipmitool'];

export interface SelectLogger {
  info(msg: string, meta?: object): void;
  warn(msg: string, meta?: object): void;
}

export interface TransportOptions {
  backend?: BackendChoice;
  /** native: device path (default: first of /dev/ipmi0, /dev/ipmi/0, /dev/ipmidev/0). Under `auto`, naming one means native: it is never replaced by a simulation. */
  devicePath?: string;
  /** native and auto: the device nodes searched when devicePath is not given (tests point this at an empty directory). */
  deviceCandidates?: readonly string[];
  /**
   * What `auto` does on a machine with no IPMI device node at all: `simulated`
   * (the default: a laptop; loudly) or `none` (a node: reject with NoBmcError).
   */
  fallback?: 'simulated' | 'none';
  /** vm-codec: `HOST:PORT` of ipmi_sim's VM-codec socket. */
  vmCodec?: string;
  /** simulated: vendor profile name. */
  simProfile?: string;
  /** simulated: JSON state file so a restarted agent meets the same BMC. */
  simStateFile?: string;
  /** ipmitool: interface arguments (default `-I open`). */
  ipmitoolArgs?: string[];
  /** ipmitool: path of the binary (default `ipmitool` on PATH). */
  ipmitoolPath?: string;
  logger?: SelectLogger;
  /** The caller has already shown the plan's warning (the daemon does, once, before it listens). */
  warningShown?: boolean;
}

/** What {@link chooseBackend} decided, before anything is opened. */
export interface BackendPlan {
  kind: BackendKind;
  /** Why this backend was chosen (shown at start and in status). */
  reason: string;
  /** Set when `auto` fell back to the simulated BMC: what prevented the native backend. */
  warning?: string;
  /** native: the device found by the probe. */
  device?: string;
}

export interface Selection extends BackendPlan {
  description: string;
}


export function parseHostPort(value: string, field = 'vm-codec'): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || !(port > 0 && port < 65536)) {
    throw new IpmiTransportError(field, 'EINVAL', `expected HOST:PORT, got "${value}"`);
  }
  return { host: m[1], port };
}

const FORCED = 'forced by configuration';

/** Decides the backend without opening it. Rejects with NoBmcError or IpmiTransportError when the rules above allow none. */
export async function chooseBackend(opts: TransportOptions = {}): Promise<BackendPlan> {
  const backend = opts.backend ?? 'auto';
  if (!BACKEND_CHOICES.includes(backend)) {
    throw new IpmiTransportError('select', 'EINVAL', `unknown backend "${String(backend)}" (choose one of ${BACKEND_CHOICES.join(', ')})`);
  }
  // A device the user named is the one meant: one that cannot be used is an error naming it, never a fallback.
  if (backend === 'native' || (backend === 'auto' && opts.devicePath !== undefined)) {
    // Checked now, not at open: the daemon then fails before it listens (the unit's Restart= waits for a late device).
    const { findDevice } = await import('./kcs-native.js');
    const device = await findDevice(opts.devicePath, opts.deviceCandidates);
    return { kind: 'native', reason: backend === 'native' ? FORCED : `auto: the configured IPMI device ${device}`, device };
  }
  if (backend !== 'auto') return { kind: backend, reason: FORCED };
  const candidates = opts.deviceCandidates ?? DEFAULT_DEVICE_PATHS;
  // A laptop's common case, decided with a stat per path: the daemon answers its first
  // /v1/status after this, and loading the native module and the addon would add ~7 ms.
  if (opts.fallback !== 'none' && !(await anyPresent(candidates))) return simulatedPlan(`no IPMI device (tried ${candidates.join(', ')})`);
  const { nativeAvailability, MODULES_HINT } = await import('./kcs-native.js');
  const avail = await nativeAvailability({ candidates });
  if (avail.device && avail.addonLoaded) return { kind: 'native', reason: `auto: IPMI device ${avail.device} found and the native addon loaded`, device: avail.device };
  if (avail.device) {
    // A device node means a node with a BMC: simulating it would fake success on real hardware.
    throw new NoBmcError(`IPMI device ${avail.device} found but the native addon is not available (${avail.addonError ?? 'unknown reason'}); build it (node scripts/build-addon.mjs) or use --backend ipmitool`);
  }
  const absent = avail.deviceFailure === undefined || avail.deviceFailure.code === 'ENOENT';
  if (!absent) {
    // Present but unusable (EACCES, ENOTCHR): the reason, not a simulation. The daemon keeps
    // looking (udev may not have set the device up yet); a command-line user gets the error.
    if (opts.fallback === 'none') throw new NoBmcError(`the IPMI device cannot be used: ${avail.deviceError}`);
    throw avail.deviceFailure!;
  }
  if (opts.fallback === 'none') throw new NoBmcError(`no IPMI device: ${MODULES_HINT} (tried ${candidates.join(', ')})`);
  return simulatedPlan(`no IPMI device (tried ${candidates.join(', ')})`);
}

function simulatedPlan(why: string): BackendPlan {
  return {
    kind: 'simulated',
    reason: `auto: fell back to the simulated BMC because ${why}`,
    warning: `NO REAL BMC: ${why}; using the SIMULATED BMC. Credentials set now exist only in this process's simulation.`,
  };
}

/** Whether any of `paths` exists (anything but ENOENT/ENOTDIR counts: the full check then says what is wrong with it). */
async function anyPresent(paths: readonly string[]): Promise<boolean> {
  for (const p of paths) {
    try {
      await stat(p);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return true;
    }
  }
  return false;
}

/** Opens the backend `plan` names (default: what {@link chooseBackend} decides for `opts`). */
export async function openTransport(opts: TransportOptions = {}, plan?: BackendPlan): Promise<{ transport: Transport; selection: Selection }> {
  const chosen = plan ?? (await chooseBackend(opts));
  const log = opts.logger;
  let transport: Transport;

  switch (chosen.kind) {
    case 'native': {
      const { openNativeTransport } = await import('./kcs-native.js');
      const devicePath = chosen.device ?? opts.devicePath;
      transport = await openNativeTransport({ ...(devicePath !== undefined ? { devicePath } : {}), ...(opts.deviceCandidates ? { candidates: opts.deviceCandidates } : {}) });
      break;
    }
    case 'simulated': {
      transport = await openSimulated(opts);
      break;
    }
    case 'vm-codec': {
      if (!opts.vmCodec) throw new IpmiTransportError('vm-codec', 'EINVAL', 'the vm-codec backend needs --vm-codec HOST:PORT');
      const { host, port } = parseHostPort(opts.vmCodec);
      const { openVmCodecTransport } = await import('./vm-codec.js');
      transport = await openVmCodecTransport({ host, port });
      break;
    }
    case 'ipmitool': {
      const { openIpmitoolTransport } = await import('./ipmitool-pty.js');
      transport = await openIpmitoolTransport({ ipmitoolPath: opts.ipmitoolPath, args: opts.ipmitoolArgs ?? (opts.devicePath ? ['-I', 'open', '-d', deviceIndex(opts.devicePath)] : ['-I', 'open']) });
      break;
    }
    default:
      throw new IpmiTransportError('select', 'EINVAL', `unknown backend "${String(chosen.kind)}"`);
  }
  const { device: _device, ...rest } = chosen;
  const selection: Selection = { ...rest, kind: transport.kind, description: transport.description };
  if (selection.warning && !opts.warningShown) log?.warn(selection.warning, { backend: selection.kind });
  log?.info(`IPMI backend: ${selection.kind} (${selection.description}); ${selection.reason}`, { backend: selection.kind });
  return { transport, selection };
}

async function openSimulated(opts: TransportOptions): Promise<Transport> {
  const { createSimulatedTransport } = await import('./simulated/index.js');
  return createSimulatedTransport({ profile: opts.simProfile, stateFile: opts.simStateFile });
}

/** ipmitool's `-d N` takes the device number of /dev/ipmiN. */
function deviceIndex(path: string): string {
  const m = /(\d+)$/.exec(path);
  if (!m) throw new IpmiTransportError('ipmitool', 'EINVAL', `cannot derive an ipmitool device number from "${path}"`);
  return m[1]!;
}
