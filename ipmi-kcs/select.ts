/**
 * Backend selection. `auto` picks the native /dev/ipmi0 backend when the addon
 * loaded and a device exists; otherwise it falls back to the simulated BMC and
 * says why, loudly: a silently simulated BMC on real hardware would fake success.
 * Backends are imported lazily so that start-up pays only for the one in use.
 */
import { IpmiTransportError } from './errors.js';
import type { BackendKind, Transport } from './transport.js';

export type BackendChoice = BackendKind | 'auto';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'simulated', 'vm-codec', 'ipmitool'];

export interface SelectLogger {
  info(msg: string, meta?: object): void;
  warn(msg: string, meta?: object): void;
}

export interface TransportOptions {
  backend?: BackendChoice;
  /** native: device path (default: first of /dev/ipmi0, /dev/ipmi/0, /dev/ipmidev/0). */
  devicePath?: string;
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
}

export interface Selection {
  kind: BackendKind;
  /** Why this backend was chosen (shown at start and in status). */
  reason: string;
  /** Set when `auto` fell back to the simulated BMC: what prevented the native backend. */
  warning?: string;
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

export async function openTransport(opts: TransportOptions = {}): Promise<{ transport: Transport; selection: Selection }> {
  const backend = opts.backend ?? 'auto';
  if (!BACKEND_CHOICES.includes(backend)) {
    throw new IpmiTransportError('select', 'EINVAL', `unknown backend "${String(backend)}" (choose one of ${BACKEND_CHOICES.join(', ')})`);
  }
  const log = opts.logger;
  let transport: Transport;
  let reason: string;
  let warning: string | undefined;

  switch (backend) {
    case 'native': {
      const { openNativeTransport } = await import('./kcs-native.js');
      transport = await openNativeTransport({ devicePath: opts.devicePath });
      reason = 'forced by configuration';
      break;
    }
    case 'simulated': {
      transport = await openSimulated(opts);
      reason = 'forced by configuration';
      break;
    }
    case 'vm-codec': {
      if (!opts.vmCodec) throw new IpmiTransportError('vm-codec', 'EINVAL', 'the vm-codec backend needs --vm-codec HOST:PORT');
      const { host, port } = parseHostPort(opts.vmCodec);
      const { openVmCodecTransport } = await import('./vm-codec.js');
      transport = await openVmCodecTransport({ host, port });
      reason = 'forced by configuration';
      break;
    }
    case 'ipmitool': {
      const { openIpmitoolTransport } = await import('./ipmitool-pty.js');
      transport = await openIpmitoolTransport({ ipmitoolPath: opts.ipmitoolPath, args: opts.ipmitoolArgs ?? (opts.devicePath ? ['-I', 'open', '-d', deviceIndex(opts.devicePath)] : ['-I', 'open']) });
      reason = 'forced by configuration';
      break;
    }
    case 'auto': {
      const { nativeAvailability, openNativeTransport } = await import('./kcs-native.js');
      const avail = await nativeAvailability({ devicePath: opts.devicePath });
      if (avail.addonLoaded && avail.device) {
        transport = await openNativeTransport({ devicePath: avail.device });
        reason = `auto: IPMI device ${avail.device} found and the native addon loaded`;
      } else {
        const why = !avail.addonLoaded
          ? `the native addon is not available (${avail.addonError ?? 'unknown reason'})`
          : `no IPMI device (${avail.deviceError ?? 'none of /dev/ipmi0, /dev/ipmi/0, /dev/ipmidev/0 exists'})`;
        warning = `NO REAL BMC: ${why}; using the SIMULATED BMC. Credentials set now exist only in this process's simulation.`;
        transport = await openSimulated(opts);
        reason = `auto: fell back to the simulated BMC because ${why}`;
      }
      break;
    }
  }
  const selection: Selection = { kind: transport.kind, reason, description: transport.description, ...(warning ? { warning } : {}) };
  if (warning) log?.warn(warning, { backend: selection.kind });
  log?.info(`IPMI backend: ${selection.kind} (${selection.description}); ${reason}`, { backend: selection.kind });
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
