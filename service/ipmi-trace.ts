/**
 * One line per IPMI request and per response, for `-v` / `--trace` (like
 * `ipmitool -v`) and for the debug log: NetFn, command, completion code and the
 * data bytes in hex, with every secret byte masked.
 *
 * What is secret: the password field of Set User Password (§22.30, NetFn App
 * 0x06, cmd 0x47). Its data is `[user id | size bit, operation, password…]`;
 * the bytes after the first two are the password for operation 2 (set) and 3
 * (test), and padding for 0 (disable) and 1 (enable). They are masked whatever
 * the operation, so a caller that sends a password with a wrong operation byte
 * still leaks nothing. Only the byte count is shown.
 *
 * The masking is decided here, from the request alone, before any text is
 * built: the unmasked bytes never reach a string.
 */
import { completionCodeName } from '../ipmi-kcs/completion-codes.js';
import { AppCmd, NetFn, TransportCmd } from '../ipmi-kcs/spec.js';
import type { IpmiRequest, IpmiResponse, SendOptions, Transport, TransportLimits, TransportStats } from '../ipmi-kcs/transport.js';

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

const NETFN_NAMES: Record<number, string> = {
  [NetFn.CHASSIS]: 'Chassis', [NetFn.SENSOR]: 'Sensor/Event', [NetFn.APP]: 'App', [NetFn.FIRMWARE]: 'Firmware',
  [NetFn.STORAGE]: 'Storage', [NetFn.TRANSPORT]: 'Transport',
};

const APP_NAMES: Record<number, string> = {
  [AppCmd.GET_DEVICE_ID]: 'Get Device ID', [AppCmd.COLD_RESET]: 'Cold Reset', [AppCmd.WARM_RESET]: 'Warm Reset',
  [AppCmd.GET_CHANNEL_AUTH_CAPABILITIES]: 'Get Channel Authentication Capabilities',
  [AppCmd.SET_CHANNEL_ACCESS]: 'Set Channel Access', [AppCmd.GET_CHANNEL_ACCESS]: 'Get Channel Access',
  [AppCmd.GET_CHANNEL_INFO]: 'Get Channel Info', [AppCmd.SET_USER_ACCESS]: 'Set User Access',
  [AppCmd.GET_USER_ACCESS]: 'Get User Access', [AppCmd.SET_USER_NAME]: 'Set User Name',
  [AppCmd.GET_USER_NAME]: 'Get User Name', [AppCmd.SET_USER_PASSWORD]: 'Set User Password',
};

const TRANSPORT_NAMES: Record<number, string> = {
  [TransportCmd.SET_LAN_CONFIG]: 'Set LAN Configuration Parameters', [TransportCmd.GET_LAN_CONFIG]: 'Get LAN Configuration Parameters',
};

/** The command's spec name, when it is one this agent knows. */
export function commandName(netFn: number, cmd: number): string | undefined {
  const n = netFn & ~1;
  if (n === NetFn.APP) return APP_NAMES[cmd];
  if (n === NetFn.TRANSPORT) return TRANSPORT_NAMES[cmd];
  return undefined;
}

/** Data bytes that hold secrets in this request: [start, end) of `data`, or null. */
export function secretRange(req: Pick<IpmiRequest, 'netFn' | 'cmd'>, length: number): [number, number] | null {
  if (req.netFn === NetFn.APP && req.cmd === AppCmd.SET_USER_PASSWORD && length > 2) return [2, length];
  return null;
}

/** Request data as hex with the secret bytes replaced by a count, e.g. `03 02 <16 bytes masked>`. */
export function maskedRequestData(req: IpmiRequest): string {
  const data = req.data ?? [];
  const secret = secretRange(req, data.length);
  const end = secret ? secret[0] : data.length;
  const parts: string[] = [];
  for (let i = 0; i < end; i++) parts.push(hex2(data[i] ?? 0));
  if (secret) parts.push(`<${secret[1] - secret[0]} bytes masked>`);
  return parts.join(' ');
}

function head(netFn: number, cmd: number, lun: number | undefined): string {
  const name = commandName(netFn, cmd);
  const nf = NETFN_NAMES[netFn & ~1];
  return `NetFn 0x${hex2(netFn)}${nf ? ` (${nf})` : ''} cmd 0x${hex2(cmd)}${name ? ` (${name})` : ''}${lun ? ` lun ${lun}` : ''}`;
}

/** `>> NetFn 0x06 (App) cmd 0x44 (Get User Access) data: 01 02` */
export function formatRequest(req: IpmiRequest): string {
  const data = maskedRequestData(req);
  return `>> ${head(req.netFn, req.cmd, req.lun)} data: ${data || '(none)'}`;
}

/** `<< NetFn 0x07 cmd 0x44 cc 0x00 (ok) data: 3f 02 02 74`; response data never holds a password. */
export function formatResponse(req: IpmiRequest, rsp: IpmiResponse, ms?: number): string {
  const cc = rsp.completionCode;
  const ccText = cc === 0 ? 'ok' : completionCodeName(cc, req.netFn, req.cmd);
  const data = Array.from(rsp.data, hex2).join(' ');
  return `<< NetFn 0x${hex2(req.netFn | 1)} cmd 0x${hex2(req.cmd)} cc 0x${hex2(cc)} (${ccText}) data: ${data || '(none)'}${rsp.truncated ? ' [truncated]' : ''}${ms !== undefined ? ` [${ms.toFixed(1)} ms]` : ''}`;
}

/** One line for a request that got no response (timeout, transport error). */
export function formatFailure(req: IpmiRequest, err: unknown): string {
  return `<< NetFn 0x${hex2(req.netFn | 1)} cmd 0x${hex2(req.cmd)}: no response: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`;
}

/** Request and response on one line, for the debug log. */
export function summarizeExchange(req: IpmiRequest, rsp: IpmiResponse): string {
  return `${formatRequest(req).slice(3)} -> cc 0x${hex2(rsp.completionCode)} data: ${Array.from(rsp.data, hex2).join(' ') || '(none)'}`;
}

/**
 * A Transport that reports every exchange to `sink` (one line per request and
 * one per response) and otherwise passes everything through unchanged.
 */
export class TracingTransport implements Transport {
  readonly kind: Transport['kind'];
  readonly description: string;
  readonly limits: TransportLimits;

  constructor(private readonly inner: Transport, private readonly sink: (line: string) => void, private readonly now: () => number = () => performance.now()) {
    this.kind = inner.kind;
    this.description = inner.description;
    this.limits = inner.limits;
  }

  async send(request: IpmiRequest, options?: SendOptions): Promise<IpmiResponse> {
    this.sink(formatRequest(request));
    const t0 = this.now();
    try {
      const rsp = await this.inner.send(request, options);
      this.sink(formatResponse(request, rsp, this.now() - t0));
      return rsp;
    } catch (err) {
      this.sink(formatFailure(request, err));
      throw err;
    }
  }

  stats(): TransportStats {
    return this.inner.stats();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
