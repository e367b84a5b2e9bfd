/**
 * Typed errors of the transport layer. Every backend raises exactly these, so
 * callers (service/) can decide on retries without knowing the backend.
 *
 * None of them ever carries request data: a Set User Password request holds a
 * secret, so messages name netFn/cmd and lengths only.
 */
import { completionCodeName } from './completion-codes.js';

const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** Base class: `instanceof IpmiError` catches everything this layer throws. */
export class IpmiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The BMC answered with a non-zero completion code (IPMI v2.0 §5.2). This is not
 * an OS error: the request reached the BMC and the BMC refused or failed it.
 */
export class IpmiCompletionCodeError extends IpmiError {
  readonly completionCode: number;
  readonly netFn: number;
  readonly cmd: number;
  readonly codeName: string;
  /** Response bytes after the completion code, if any (never request bytes). */
  readonly data: Uint8Array;
  constructor(netFn: number, cmd: number, completionCode: number, data: Uint8Array = new Uint8Array(0), what?: string) {
    const codeName = completionCodeName(completionCode, netFn, cmd);
    super(`${what ?? `IPMI request netFn ${hex(netFn)} cmd ${hex(cmd)}`} failed: completion code ${hex(completionCode)} (${codeName})`);
    this.completionCode = completionCode;
    this.netFn = netFn;
    this.cmd = cmd;
    this.codeName = codeName;
    this.data = data;
  }
}

/** No response within the caller's timeout. The request may or may not have been executed. */
export class IpmiTimeoutError extends IpmiError {
  readonly netFn: number;
  readonly cmd: number;
  readonly timeoutMs: number;
  constructor(netFn: number, cmd: number, timeoutMs: number, backend: string) {
    super(`IPMI request netFn ${hex(netFn)} cmd ${hex(cmd)} timed out after ${timeoutMs} ms (${backend} backend)`);
    this.netFn = netFn;
    this.cmd = cmd;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The path to the BMC failed: an OS error (with its errno name, e.g. ENOENT,
 * EACCES, EBUSY, EMSGSIZE), a closed socket, a missing program, a garbled frame.
 */
export class IpmiTransportError extends IpmiError {
  /** errno name (`ENOENT`, `EACCES`, `EBUSY`, …) or a transport-specific code (`ECONNRESET`, `EPROTO`, `ENOEXEC`). */
  readonly code: string;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  readonly backend: string;
  constructor(backend: string, code: string, message: string, opts: { errno?: number; syscall?: string; cause?: unknown } = {}) {
    super(`${backend} backend: ${message} (${code})`);
    this.code = code;
    this.errno = opts.errno;
    this.syscall = opts.syscall;
    this.backend = backend;
    if (opts.cause !== undefined) (this as { cause?: unknown }).cause = opts.cause;
  }
}

/** The request was refused before anything was sent: a field is out of range. */
export class IpmiRequestError extends IpmiError {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`invalid IPMI request: ${field}: ${message}`);
    this.field = field;
  }
}

/**
 * There is no BMC this agent may use: no IPMI device node, and the caller
 * asked for no simulated stand-in (`fallback: 'none'`), or a device exists
 * but the native addon is missing. The message says what to do about it.
 * Here, beside the other transport errors, so a caller can test for it with
 * `instanceof` without loading the backend selection.
 */
export class NoBmcError extends IpmiError {
  readonly code = 'NO_BMC';
}

/** The transport was closed; no further requests are accepted. */
export class IpmiClosedError extends IpmiTransportError {
  constructor(backend: string) {
    super(backend, 'ECLOSED', 'transport is closed');
  }
}
