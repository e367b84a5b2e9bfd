/**
 * The transport contract: how one IPMI request reaches a BMC and how its
 * response comes back. Everything above this layer (service/, agent/) talks
 * to a BMC only through {@link Transport}; every backend (native /dev/ipmi0,
 * simulated BMC, ipmi_sim's VM codec, ipmitool over a pty) implements it and is
 * exercised by the one contract suite in test/contract/.
 *
 * Semantics every backend guarantees:
 *
 * - **Addressing.** Requests go to the BMC over the system interface (KCS),
 *   IPMI v2.0 §9: no session, no authentication, LUN 0 unless given.
 * - **Completion codes are data, not exceptions.** `send()` resolves with the
 *   BMC's completion code, zero or not. Use {@link invoke} to turn a non-zero
 *   code into an {@link IpmiCompletionCodeError}.
 * - **Rejections** are typed: {@link IpmiRequestError} (refused before anything
 *   was sent, naming the field), {@link IpmiTimeoutError} (no response in time; the
 *   BMC may or may not have executed it), {@link IpmiTransportError} (the path
 *   failed; `code` is the errno name such as `ENOENT`, `EACCES`, `EBUSY`).
 * - **One request in flight.** Calls are queued in order and never interleaved:
 *   a KCS interface holds one transaction at a time (§9.15), and a BMC under
 *   user-table changes is fragile. A late response to a timed-out request is
 *   matched by sequence/msgid and dropped, never delivered to the next request.
 * - **Timeouts.** `timeoutMs` bounds the exchange with the BMC once the request
 *   is at the head of the queue (default {@link DEFAULT_TIMEOUT_MS}). Time spent
 *   waiting in the queue is bounded by the caller's `signal`, if any.
 * - **Cancellation.** Aborting `signal` removes a queued request (rejecting with
 *   the signal's reason); a request already sent cannot be recalled, so it is
 *   left to complete or time out and its result is discarded.
 * - **No retries.** The transport never retries: whether a retry is safe depends
 *   on the command (IPMI v2.0 §5.2), which only the caller knows.
 * - **Secrets.** Request bytes are never logged, never put in an error message,
 *   and never passed as a process argument by any backend.
 */
import { IpmiRequestError } from './errors.js';

/**
 * KCS message size limits. Requests: IPMI v2.0 §6.12 Table 6-9 guarantees a
 * system interface takes 40-byte requests (netFn/LUN + cmd + 38 data bytes), so
 * nothing larger is sent. Responses: BMCs may answer with more than the 38
 * bytes the table guarantees, so up to the Linux driver's 272-byte message
 * buffer (IPMI_MAX_MSG_LENGTH, less the completion code) is carried; longer is
 * truncated and flagged.
 */
export const KCS_LIMITS: TransportLimits = Object.freeze({ maxRequestData: 38, maxResponseData: 271 });

/**
 * Per-request timeout when the caller gives none: 15 s, as ipmitool waits on
 * /dev/ipmi0 (IPMI_OPENIPMI_READ_TIMEOUT); the kernel's KCS state machine gives
 * up after ~10×5 s. The credential engine does not rely on it: service/'s
 * BmcClient passes its own 10 s (DEFAULT_CALL_TIMEOUT_MS, `--ipmi-timeout`) on
 * every request, because it retries, and 15 s per try is too long a hold.
 */
export const DEFAULT_TIMEOUT_MS = 15_000;
/** Upper bound accepted for `timeoutMs`. */
export const MAX_TIMEOUT_MS = 120_000;

export type BackendKind = 'native' | 'simulated' | 'vm-codec' | 'ipmitool';

/** Where Linux's ipmi_devintf puts the first interface's device node (udev's name, devfs', and an old distribution's). */
export const DEFAULT_DEVICE_PATHS: readonly string[] = Object.freeze(['/dev/ipmi0', '/dev/ipmi/0', '/dev/ipmidev/0']);

export interface IpmiRequest {
  /** Request network function, 0x00–0x3E, even (odd values are responses; IPMI v2.0 §5.1). */
  netFn: number;
  /** Command, 0x00–0xFF. */
  cmd: number;
  /** Request data bytes (after netFn/LUN and cmd). */
  data?: Uint8Array | readonly number[];
  /** Logical unit number, 0–3 (default 0). */
  lun?: number;
}

export interface IpmiResponse {
  /** The BMC's completion code (IPMI v2.0 §5.2); 0x00 is success. */
  completionCode: number;
  /** Response data after the completion code. */
  data: Uint8Array;
  /** True when the response was longer than the transport could carry and was cut. */
  truncated?: boolean;
}

export interface SendOptions {
  /** Bound on the exchange with the BMC, in ms (1..MAX_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Aborts a request still waiting in the queue. */
  signal?: AbortSignal;
}

export interface TransportLimits {
  /** Most request data bytes accepted (excluding netFn and cmd). */
  maxRequestData: number;
  /** Most response data bytes carried (excluding completion code); longer responses are truncated. */
  maxResponseData: number;
}

/** Counters a backend keeps, for status and benchmarks. */
export interface TransportStats {
  requests: number;
  responses: number;
  timeouts: number;
  transportErrors: number;
  /** netFn/LUN + cmd + data bytes sent. */
  bytesOut: number;
  /** netFn/LUN + cmd + completion code + data bytes received. */
  bytesIn: number;
}

export interface Transport {
  readonly kind: BackendKind;
  /** Human-readable target, e.g. `/dev/ipmi0`, `ipmi_sim at 127.0.0.1:9002`, `simulated (ipmi20)`. */
  readonly description: string;
  readonly limits: TransportLimits;
  /** Sends one request; resolves with the response (any completion code). See the module doc for semantics. */
  send(request: IpmiRequest, options?: SendOptions): Promise<IpmiResponse>;
  /** Counters since the transport was opened. */
  stats(): TransportStats;
  /** Closes the transport; queued requests reject with IpmiClosedError. Idempotent. */
  close(): Promise<void>;
}

/** A request after validation: plain numbers and a private copy of the data. */
export interface NormalizedRequest {
  netFn: number;
  cmd: number;
  lun: number;
  data: Uint8Array;
}

function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new IpmiRequestError(field, `must be an integer in ${min}..${max} (0x${min.toString(16)}..0x${max.toString(16)}), got ${typeof v === 'number' ? v : typeof v}`);
  }
  return v;
}

/**
 * Validates a request against IPMI framing rules and the transport's limits.
 * Throws {@link IpmiRequestError} naming the field; never echoes data values.
 */
export function normalizeRequest(req: IpmiRequest, limits: TransportLimits): NormalizedRequest {
  if (req === null || typeof req !== 'object') throw new IpmiRequestError('request', 'must be an object');
  const netFn = checkInt('netFn', req.netFn, 0, 0x3f);
  if (netFn & 1) throw new IpmiRequestError('netFn', `0x${netFn.toString(16)} is odd, which is a response netFn (IPMI v2.0 §5.1)`);
  const cmd = checkInt('cmd', req.cmd, 0, 0xff);
  const lun = checkInt('lun', req.lun ?? 0, 0, 3);
  const raw = req.data ?? [];
  if (!(raw instanceof Uint8Array) && !Array.isArray(raw)) throw new IpmiRequestError('data', 'must be a Uint8Array or an array of bytes');
  if (raw.length > limits.maxRequestData) {
    throw new IpmiRequestError('data', `${raw.length} bytes exceed the transport's limit of ${limits.maxRequestData}`);
  }
  let data: Uint8Array;
  if (raw instanceof Uint8Array) {
    data = Uint8Array.from(raw);
  } else {
    data = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const b = raw[i];
      if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 0xff) throw new IpmiRequestError(`data[${i}]`, 'must be a byte (0..255)');
      data[i] = b;
    }
  }
  return { netFn, cmd, lun, data };
}

export function normalizeTimeout(timeoutMs: number | undefined): number {
  if (timeoutMs === undefined) return DEFAULT_TIMEOUT_MS;
  return checkInt('timeoutMs', timeoutMs, 1, MAX_TIMEOUT_MS);
}
