/**
 * The host side of OpenIPMI's "VM" serial codec over TCP: what qemu's
 * `ipmi-bmc-extern` speaks to `ipmi_sim` (upstream lanserv/serial_ipmi.c,
 * lanserv/README.vm; qemu hw/ipmi/ipmi_bmc_extern.c). Requests arrive at the
 * BMC on the system interface (channel 15), as from a KCS driver.
 *
 * Wire format:
 *   message  seq, netFn<<2|lun, cmd, [cc,] data…, checksum, 0xA0
 *   control  code, [arg], 0xA1
 *   escape   0xA0, 0xA1 and 0xAA travel as 0xAA, byte|0x10
 * The checksum is the IPMB two's-complement checksum over everything before it
 * (§13.8), computed before escaping. `seq` is echoed in the response.
 */
import { connect, type Socket } from 'node:net';
import { BaseTransport } from './base-transport.js';
import { IpmiTimeoutError, IpmiTransportError } from './errors.js';
import { KCS_LIMITS, type IpmiResponse, type NormalizedRequest, type TransportLimits } from './transport.js';

export const VM_MSG_END = 0xa0;
export const VM_CMD_END = 0xa1;
export const VM_ESCAPE = 0xaa;

/** Control codes (serial_ipmi.c VM_CMD_*). */
export const VmControl = {
  NO_ATTN: 0x00,
  ATTN: 0x01,
  ATTN_IRQ: 0x02,
  POWER_OFF: 0x03,
  RESET: 0x04,
  ENABLE_IRQ: 0x05,
  DISABLE_IRQ: 0x06,
  SEND_NMI: 0x07,
  CAPABILITIES: 0x08,
  GRACEFUL_SHUTDOWN: 0x09,
  VERSION: 0xff,
} as const;

/** Capability bits of the CAPABILITIES control message (VM_CAPABILITIES_*). */
export const VmCapability = {
  POWER: 0x01,
  RESET: 0x02,
  IRQ: 0x04,
  NMI: 0x08,
  ATTN: 0x10,
  GRACEFUL_SHUTDOWN: 0x20,
} as const;

export const VM_PROTOCOL_VERSION = 1;

/** ipmi_sim drops frames longer than its buffer; nothing legitimate comes close to this. */
const MAX_FRAME_BYTES = 1024;

/** Two's-complement checksum, §13.8: the sum of the bytes plus the checksum is 0 mod 256. */
export function vmChecksum(bytes: Uint8Array | readonly number[]): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

/** Escapes the three special bytes as 0xAA, byte|0x10. */
export function vmEscape(bytes: Uint8Array | readonly number[]): Uint8Array {
  const out: number[] = [];
  for (const b of bytes) {
    if (b === VM_MSG_END || b === VM_CMD_END || b === VM_ESCAPE) out.push(VM_ESCAPE, b | 0x10);
    else out.push(b);
  }
  return Uint8Array.from(out);
}

/** A complete request frame: seq, netFn/LUN, cmd, data, checksum — escaped — and 0xA0. */
export function encodeVmRequest(seq: number, req: Pick<NormalizedRequest, 'netFn' | 'lun' | 'cmd' | 'data'>): Uint8Array {
  const body = new Uint8Array(3 + req.data.length + 1);
  body[0] = seq & 0xff;
  body[1] = ((req.netFn << 2) | req.lun) & 0xff;
  body[2] = req.cmd;
  body.set(req.data, 3);
  body[body.length - 1] = vmChecksum(body.subarray(0, body.length - 1));
  const esc = vmEscape(body);
  const out = new Uint8Array(esc.length + 1);
  out.set(esc);
  out[esc.length] = VM_MSG_END;
  body.fill(0); // the data may hold a password
  return out;
}

/** A control frame: code, args — escaped — and 0xA1. */
export function encodeVmControl(bytes: readonly number[]): Uint8Array {
  const esc = vmEscape(bytes);
  const out = new Uint8Array(esc.length + 1);
  out.set(esc);
  out[esc.length] = VM_CMD_END;
  return out;
}

export type VmFrame = { type: 'message' | 'control'; bytes: Uint8Array } | { type: 'overflow'; length: number };

/**
 * Splits a byte stream into frames, undoing the escape. Mirrors ipmi_sim's
 * receiver: an end byte always ends a frame (even right after an escape), an
 * escaped byte has bit 4 cleared, empty frames are ignored, and a frame longer
 * than the buffer is reported as `overflow` and dropped.
 */
export class VmFrameDecoder {
  #buf = new Uint8Array(MAX_FRAME_BYTES);
  #len = 0;
  #escape = false;
  #overflow = 0;

  push(chunk: Uint8Array): VmFrame[] {
    const frames: VmFrame[] = [];
    for (const byte of chunk) {
      if (byte === VM_MSG_END || byte === VM_CMD_END) {
        if (this.#overflow) frames.push({ type: 'overflow', length: this.#len + this.#overflow });
        else if (this.#len > 0) frames.push({ type: byte === VM_MSG_END ? 'message' : 'control', bytes: this.#buf.slice(0, this.#len) });
        this.#len = 0;
        this.#overflow = 0;
        this.#escape = false;
      } else if (byte === VM_ESCAPE) {
        this.#escape = true;
      } else {
        const b = this.#escape ? byte & ~0x10 : byte;
        this.#escape = false;
        if (this.#len < this.#buf.length) this.#buf[this.#len++] = b;
        else this.#overflow++;
      }
    }
    return frames;
  }
}

export interface VmResponse {
  seq: number;
  netFn: number;
  lun: number;
  cmd: number;
  completionCode: number;
  data: Uint8Array;
}

/** Parses an unescaped message frame; undefined when it is too short or its checksum is wrong. */
export function decodeVmResponse(frame: Uint8Array): VmResponse | undefined {
  // seq, netFn/LUN, cmd, cc, checksum: a response has at least 5 bytes.
  if (frame.length < 5) return undefined;
  if (vmChecksum(frame.subarray(0, frame.length - 1)) !== frame[frame.length - 1]) return undefined;
  return {
    seq: frame[0]!,
    netFn: frame[1]! >> 2,
    lun: frame[1]! & 3,
    cmd: frame[2]!,
    completionCode: frame[3]!,
    data: frame.slice(4, frame.length - 1),
  };
}

export interface VmCodecOptions {
  host: string;
  port: number;
  /** Bound on TCP connect plus the BMC's version greeting. Default 3000 ms. */
  connectTimeoutMs?: number;
  /** Capability bits announced to the BMC. Default 0: this host cannot power off, reset or take interrupts. */
  capabilities?: number;
  /** Default: the KCS limits, so this backend refuses exactly what /dev/ipmi0 would. */
  limits?: TransportLimits;
}

/** Counters of what the transport discarded or was told, for tests and status. */
export interface VmCodecEvents {
  /** Protocol version the BMC announced (FF nn), if any. */
  version: number | undefined;
  /** Control messages received (code → count), e.g. attention (01/02). */
  controls: Record<number, number>;
  badChecksum: number;
  /** Responses whose seq/netFn/cmd did not match the request outstanding (e.g. late answers after a timeout). */
  unmatched: number;
  overflow: number;
  connects: number;
}

interface Pending {
  seq: number;
  req: NormalizedRequest;
  resolve: (rsp: IpmiResponse) => void;
  reject: (err: Error) => void;
}

const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

export class VmCodecTransport extends BaseTransport {
  readonly kind = 'vm-codec' as const;
  readonly description: string;
  readonly #host: string;
  readonly #port: number;
  readonly #connectTimeoutMs: number;
  readonly #capabilities: number;
  #socket: Socket | undefined;
  #decoder = new VmFrameDecoder();
  #seq = 0;
  #pending: Pending | undefined;
  #events: VmCodecEvents = { version: undefined, controls: {}, badChecksum: 0, unmatched: 0, overflow: 0, connects: 0 };
  #greeted: (() => void) | undefined;

  constructor(opts: VmCodecOptions) {
    super(opts.limits ?? KCS_LIMITS);
    this.#host = opts.host;
    this.#port = opts.port;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
    this.#capabilities = opts.capabilities ?? 0;
    this.description = `ipmi_sim VM codec at ${hostPort(opts.host, opts.port)}`;
  }

  /** What the transport received besides answers, and what it dropped. */
  events(): VmCodecEvents {
    return { ...this.#events, controls: { ...this.#events.controls } };
  }

  get connected(): boolean {
    return this.#socket !== undefined;
  }

  /**
   * Connects and waits for the BMC's version greeting (FF 01). ipmi_sim serves
   * one client at a time and closes any further connection straight after
   * accepting it, so "closed before the greeting" means another client (qemu,
   * another agent) holds the interface.
   */
  async connect(timeoutMs = this.#connectTimeoutMs): Promise<void> {
    if (this.#socket) return;
    const target = hostPort(this.#host, this.#port);
    const sock = connect({ host: this.#host, port: this.#port });
    sock.setNoDelay(true);
    this.#decoder = new VmFrameDecoder();
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      let tcpUp = false;
      const fail = (err: IpmiTransportError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#greeted = undefined;
        sock.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new IpmiTransportError(this.kind, 'ETIMEDOUT',
        tcpUp ? `ipmi_sim at ${target} accepted the connection but sent no version greeting within ${timeoutMs} ms`
          : `connecting to ipmi_sim at ${target} timed out after ${timeoutMs} ms`, { syscall: 'connect' })), timeoutMs);
      sock.once('connect', () => {
        tcpUp = true;
      });
      sock.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return;
        const code = err.code ?? 'EIO';
        const what = code === 'ECONNREFUSED' ? 'connection refused (is ipmi_sim running with a "serial … codec VM" line on this port?)' : err.message;
        fail(new IpmiTransportError(this.kind, code, `cannot connect to ipmi_sim at ${target}: ${what}`, { errno: err.errno, syscall: err.syscall ?? 'connect', cause: err }));
      });
      sock.once('close', () => fail(new IpmiTransportError(this.kind, 'EBUSY',
        `ipmi_sim at ${target} closed the connection before its version greeting: it serves one VM-codec client at a time and another client (qemu or another agent) is connected`)));
      this.#greeted = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#greeted = undefined;
        sock.removeAllListeners('close');
        sock.removeAllListeners('error');
        this.#attach(sock);
        resolve();
      };
      sock.on('data', (chunk: Buffer) => this.#onData(chunk));
    });
    this.#events.connects++;
    // Answer the version and say what this host can do (qemu sends the same pair on connect).
    sock.write(encodeVmControl([VmControl.VERSION, VM_PROTOCOL_VERSION]));
    sock.write(encodeVmControl([VmControl.CAPABILITIES, this.#capabilities]));
  }

  #attach(sock: Socket): void {
    this.#socket = sock;
    sock.on('error', (err: NodeJS.ErrnoException) => this.#lost(err.code ?? 'EIO', err.message, err));
    sock.on('close', () => this.#lost('ECONNRESET', 'ipmi_sim closed the connection'));
  }

  #lost(code: string, message: string, cause?: NodeJS.ErrnoException): void {
    if (!this.#socket) return;
    this.#socket.destroy();
    this.#socket = undefined;
    const p = this.#pending;
    if (p) {
      this.#pending = undefined;
      p.reject(new IpmiTransportError(this.kind, code,
        `${message} while request netFn 0x${p.req.netFn.toString(16).padStart(2, '0')} cmd 0x${p.req.cmd.toString(16).padStart(2, '0')} was outstanding (it may or may not have been executed)`,
        { errno: cause?.errno, syscall: cause?.syscall, cause }));
    }
  }

  #onData(chunk: Buffer): void {
    for (const frame of this.#decoder.push(chunk)) {
      if (frame.type === 'overflow') {
        this.#events.overflow++;
      } else if (frame.type === 'control') {
        const code = frame.bytes[0]!;
        this.#events.controls[code] = (this.#events.controls[code] ?? 0) + 1;
        if (code === VmControl.VERSION) {
          this.#events.version = frame.bytes[1];
          this.#greeted?.();
        }
      } else {
        this.#onMessage(frame.bytes);
      }
    }
  }

  #onMessage(bytes: Uint8Array): void {
    const rsp = decodeVmResponse(bytes);
    if (!rsp) {
      this.#events.badChecksum++;
      return;
    }
    const p = this.#pending;
    if (!p || rsp.seq !== p.seq || rsp.netFn !== (p.req.netFn | 1) || rsp.cmd !== p.req.cmd || rsp.lun !== p.req.lun) {
      this.#events.unmatched++;
      return;
    }
    this.#pending = undefined;
    const max = this.limits.maxResponseData;
    if (rsp.data.length > max) p.resolve({ completionCode: rsp.completionCode, data: rsp.data.slice(0, max), truncated: true });
    else p.resolve({ completionCode: rsp.completionCode, data: rsp.data });
  }

  protected async exchange(req: NormalizedRequest, timeoutMs: number): Promise<IpmiResponse> {
    const started = performance.now();
    if (!this.#socket) {
      // Reconnect after a lost connection; the request itself is never resent.
      try {
        await this.connect(Math.min(this.#connectTimeoutMs, timeoutMs));
      } catch (err) {
        req.data.fill(0);
        throw err;
      }
    }
    const sock = this.#socket!;
    const remaining = Math.max(1, timeoutMs - (performance.now() - started));
    this.#seq = (this.#seq + 1) & 0xff;
    const seq = this.#seq;
    const frame = encodeVmRequest(seq, req);
    req.data.fill(0);
    return new Promise<IpmiResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending?.seq !== seq) return;
        // Forget the request: its late answer (same seq) is then dropped as unmatched.
        this.#pending = undefined;
        reject(new IpmiTimeoutError(req.netFn, req.cmd, timeoutMs, this.kind));
      }, remaining);
      this.#pending = {
        seq,
        req,
        resolve: (rsp) => {
          clearTimeout(timer);
          resolve(rsp);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      sock.write(frame, () => frame.fill(0));
    });
  }

  protected async shutdown(): Promise<void> {
    const sock = this.#socket;
    this.#socket = undefined;
    if (!sock) return;
    await new Promise<void>((resolve) => {
      sock.once('close', () => resolve());
      sock.end();
      setTimeout(() => sock.destroy(), 500).unref();
    });
  }
}

/** Opens the VM-codec transport and waits for the BMC's greeting, so a wrong port or a busy interface fails here. */
export async function openVmCodecTransport(opts: VmCodecOptions): Promise<VmCodecTransport> {
  const t = new VmCodecTransport(opts);
  await t.connect();
  return t;
}
