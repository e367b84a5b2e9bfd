/**
 * One place where service/ talks to the transport: per-call timeouts, the
 * retries the spec allows, and a request counter for the benchmark.
 *
 * What is retried, with bounded exponential back-off:
 * - completion codes 0xC0 (node busy) and 0xD2 (BMC initialisation in progress):
 *   the BMC did not execute the command (IPMI v2.0 §5.2 Table 5-2); Quanta S99Q
 *   and Dell FS12-TY answer 0xC0 right after user changes.
 * - 0xC3 (timeout while processing), 0xFF as the kernel driver synthesises it,
 *   a transport timeout, and a response
 *   that came back truncated or shorter than the command defines: safe for
 *   reads. For writes it is safe only because every write this service sends is
 *   idempotent — Set User Name/Password/Access and Set Channel Access store
 *   absolute values, so executing one twice equals executing it once (the Intel
 *   QSSC-S4R TPS §25.6.4.1 note: a restarted KCS transaction may run twice).
 *   A command that is not idempotent must not be sent through `call()` with
 *   `idempotent: true`.
 * - EBUSY/EAGAIN from the kernel driver (maintenance mode after a BMC reset).
 * Anything else is thrown at once; the caller decides.
 */
import { IpmiCompletionCodeError, IpmiTimeoutError, IpmiTransportError } from '../ipmi-kcs/errors.js';
import { CC } from '../ipmi-kcs/completion-codes.js';
import type { IpmiRequest, IpmiResponse, Transport } from '../ipmi-kcs/transport.js';
import { MalformedResponseError } from './ipmi-commands.js';
import { summarizeExchange } from './ipmi-trace.js';
import type { Logger } from './logger.js';

export interface RetryOptions {
  /** Total tries per call, including the first (1 = no retry). */
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

/** ≈ 10 s worst case per call: freeipmi retries 0xC0 ten times; BMC inits take seconds. */
export const DEFAULT_RETRY: Readonly<RetryOptions> = Object.freeze({ attempts: 8, initialDelayMs: 100, maxDelayMs: 2_000 });
/** Per request, passed on every call (the transport's own default is ipmitool's 15 s): retried up to `attempts` times, a wedged KCS would hold a step for minutes at 15 s a try. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

export interface CallOptions {
  /** Names the command in errors and logs, e.g. "Set User Name (user 3)". */
  what: string;
  /** Completion codes returned instead of thrown (e.g. 0xCB "not present" while scanning). */
  accept?: readonly number[];
  /** Minimum response data bytes on success; shorter is treated as a garbled response. */
  minLength?: number;
  /** The command may be executed twice without harm (see the module doc). Default true. */
  idempotent?: boolean;
}

export interface BmcClientOptions {
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
  logger: Logger;
  sleep?: (ms: number) => Promise<void>;
}

const RETRY_ALWAYS = new Set<number>([CC.NODE_BUSY, CC.INITIALIZATION_IN_PROGRESS]);
// 0xFF is also what the Linux driver synthesises for a hosed KCS or a reply it could
// not match (research/ipmi.md §1.3): the BMC may or may not have run the command.
const RETRY_IF_IDEMPOTENT = new Set<number>([CC.TIMEOUT, CC.UNSPECIFIED]);
const RETRY_ERRNO = new Set(['EBUSY', 'EAGAIN']);

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class BmcClient {
  readonly transport: Transport;
  readonly timeoutMs: number;
  readonly retry: RetryOptions;
  #logger: Logger;
  #sleep: (ms: number) => Promise<void>;
  #requests = 0;

  constructor(transport: Transport, opts: BmcClientOptions) {
    this.transport = transport;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    if (!(this.retry.attempts >= 1)) throw new RangeError('retry.attempts must be at least 1');
    this.#logger = opts.logger;
    this.#sleep = opts.sleep ?? defaultSleep;
  }

  /** IPMI requests sent through this client (every try counts). */
  get requests(): number {
    return this.#requests;
  }

  /**
   * Sends `req`, retrying what is safe to retry. Resolves with the response when
   * its completion code is 0 or in `accept`; rejects with the last error otherwise:
   * IpmiCompletionCodeError, IpmiTimeoutError, IpmiTransportError or MalformedResponseError.
   */
  async call(req: IpmiRequest, opts: CallOptions): Promise<IpmiResponse> {
    const idempotent = opts.idempotent ?? true;
    let delay = this.retry.initialDelayMs;
    for (let attempt = 1; ; attempt++) {
      let failure: Error;
      let retryable: boolean;
      try {
        this.#requests++;
        const rsp = await this.transport.send(req, { timeoutMs: this.timeoutMs });
        // Secret bytes (§22.30's password field) are masked by summarizeExchange before any text exists.
        if (this.#logger.isDebugEnabled?.() !== false) this.#logger.debug('IPMI exchange', { what: opts.what, ipmi: summarizeExchange(req, rsp) });
        const cc = rsp.completionCode;
        if (cc === CC.OK || opts.accept?.includes(cc)) {
          const min = cc === CC.OK ? (opts.minLength ?? 0) : 0;
          if (!rsp.truncated && rsp.data.length >= min) return rsp;
          failure = new MalformedResponseError(opts.what, rsp.data.length, Math.max(min, rsp.data.length + 1));
          retryable = idempotent;
        } else {
          failure = new IpmiCompletionCodeError(req.netFn, req.cmd, cc, rsp.data, opts.what);
          retryable = RETRY_ALWAYS.has(cc) || (idempotent && RETRY_IF_IDEMPOTENT.has(cc));
        }
      } catch (err) {
        if (err instanceof IpmiTimeoutError) {
          failure = err;
          retryable = idempotent;
        } else if (err instanceof IpmiTransportError) {
          failure = err;
          retryable = RETRY_ERRNO.has(err.code);
        } else {
          throw err;
        }
      }
      if (!retryable || attempt >= this.retry.attempts) throw failure;
      this.#logger.debug('retrying IPMI request', { what: opts.what, attempt, of: this.retry.attempts, reason: failure.message, delayMs: delay });
      await this.#sleep(delay);
      delay = Math.min(delay * 2, this.retry.maxDelayMs);
    }
  }

  /** `call()` returning the data of a successful response. */
  async data(req: IpmiRequest, opts: CallOptions): Promise<Uint8Array> {
    return (await this.call(req, opts)).data;
  }
}
