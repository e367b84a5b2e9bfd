/**
 * Shared machinery for every backend: validation, the one-in-flight queue,
 * timeout bookkeeping and counters. A backend implements only `exchange()`.
 */
import { IpmiClosedError, IpmiError, IpmiTimeoutError, IpmiTransportError } from './errors.js';
import {
  normalizeRequest, normalizeTimeout,
  type BackendKind, type IpmiRequest, type IpmiResponse, type NormalizedRequest,
  type SendOptions, type Transport, type TransportLimits, type TransportStats,
} from './transport.js';

export abstract class BaseTransport implements Transport {
  abstract readonly kind: BackendKind;
  abstract readonly description: string;
  readonly limits: TransportLimits;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  #stats: TransportStats = { requests: 0, responses: 0, timeouts: 0, transportErrors: 0, bytesOut: 0, bytesIn: 0 };

  protected constructor(limits: TransportLimits) {
    this.limits = limits;
  }

  /**
   * Performs one exchange with the BMC. Called strictly one at a time. Must
   * settle within `timeoutMs` (rejecting with IpmiTimeoutError) and must make
   * sure a late response to this request is never taken for a later one.
   */
  protected abstract exchange(req: NormalizedRequest, timeoutMs: number): Promise<IpmiResponse>;

  /** Releases backend resources. Called once, after the queue has drained or been rejected. */
  protected abstract shutdown(): Promise<void>;

  get closed(): boolean {
    return this.#closed;
  }

  send(request: IpmiRequest, options: SendOptions = {}): Promise<IpmiResponse> {
    let req: NormalizedRequest;
    let timeoutMs: number;
    try {
      req = normalizeRequest(request, this.limits);
      timeoutMs = normalizeTimeout(options.timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#closed) return Promise.reject(new IpmiClosedError(this.kind));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);

    const run = this.#tail.then(async () => {
      if (this.#closed) throw new IpmiClosedError(this.kind);
      if (signal?.aborted) throw signal.reason;
      this.#stats.requests++;
      this.#stats.bytesOut += 2 + req.data.length;
      try {
        const rsp = await this.exchange(req, timeoutMs);
        this.#stats.responses++;
        this.#stats.bytesIn += 3 + rsp.data.length;
        return rsp;
      } catch (err) {
        if (err instanceof IpmiTimeoutError) this.#stats.timeouts++;
        else this.#stats.transportErrors++;
        if (err instanceof IpmiError) throw err;
        throw new IpmiTransportError(this.kind, 'EIO', err instanceof Error ? err.message : String(err), { cause: err });
      }
    });
    // The queue continues whatever this request's outcome.
    this.#tail = run.catch(() => undefined);
    return run;
  }

  stats(): TransportStats {
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    await this.shutdown();
  }

  protected timeoutError(req: NormalizedRequest, timeoutMs: number): IpmiTimeoutError {
    return new IpmiTimeoutError(req.netFn, req.cmd, timeoutMs, this.kind);
  }
}
