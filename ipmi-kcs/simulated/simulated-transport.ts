/**
 * The simulated backend: a {@link SimulatedBmc} behind the transport contract.
 * Always asynchronous (the BMC sees a request on a later tick and answers
 * after `latencyMs`), KCS size limits, one request in flight (BaseTransport),
 * and a late answer to a timed-out request is dropped by sequence number.
 */
import { BaseTransport } from '../base-transport.js';
import { KCS_LIMITS, type IpmiResponse, type NormalizedRequest } from '../transport.js';
import type { BmcOutcome, SimulatedBmc } from './simulated-bmc.js';
import { listProfiles } from './profiles.js';

export interface SimulatedTransportOptions {
  /** Added before every answer, in ms (default 0: next tick). */
  latencyMs?: number;
}

export class SimulatedTransport extends BaseTransport {
  readonly kind = 'simulated' as const;
  readonly description: string;
  readonly bmc: SimulatedBmc;
  readonly latencyMs: number;
  #seq = 0;
  #current = 0;
  #timers = new Set<NodeJS.Timeout | NodeJS.Immediate>();
  #inFlight = 0;
  #maxInFlight = 0;
  #lateDropped = 0;
  #down = false;

  constructor(bmc: SimulatedBmc, opts: SimulatedTransportOptions = {}) {
    super(KCS_LIMITS);
    const latency = opts.latencyMs ?? 0;
    if (!Number.isFinite(latency) || latency < 0) throw new RangeError('latencyMs must be a non-negative number');
    this.bmc = bmc;
    this.latencyMs = latency;
    this.description = `simulated (${bmc.profile.name})`;
  }

  /** Names of the vendor profiles a simulated BMC can take. */
  static listProfiles(): string[] {
    return listProfiles();
  }

  /** Most exchanges ever open at once with the BMC (1 if the queue holds). */
  get maxInFlight(): number {
    return this.#maxInFlight;
  }

  /** Answers that arrived after their request had timed out, and were dropped. */
  get lateResponsesDropped(): number {
    return this.#lateDropped;
  }

  #later(fn: () => void, ms: number): void {
    if (this.#down) return; // nothing outlives close()
    if (ms <= 0) {
      const t = setImmediate(() => { this.#timers.delete(t); fn(); });
      this.#timers.add(t);
    } else {
      const t = setTimeout(() => { this.#timers.delete(t); fn(); }, ms);
      this.#timers.add(t);
    }
  }

  protected exchange(req: NormalizedRequest, timeoutMs: number): Promise<IpmiResponse> {
    const seq = ++this.#seq;
    this.#current = seq;
    this.#inFlight++;
    this.#maxInFlight = Math.max(this.#maxInFlight, this.#inFlight);
    return new Promise<IpmiResponse>((resolve, reject) => {
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        this.#inFlight--;
        clearTimeout(timer);
        this.#timers.delete(timer);
        return true;
      };
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        if (settle()) reject(this.timeoutError(req, timeoutMs));
      }, timeoutMs);
      this.#timers.add(timer);

      const deliver = (rsp: IpmiResponse): void => {
        // A late answer belongs to a request the caller has given up on: never hand it to another.
        if (settled || seq !== this.#current) {
          this.#lateDropped++;
          return;
        }
        if (settle()) resolve(rsp);
      };

      // The request is with the BMC now: it is handled even if the caller times
      // out first (a sent request cannot be recalled), and its answer dropped.
      this.#later(() => {
        let outcome: BmcOutcome;
        try {
          outcome = this.bmc.handle(req);
        } catch (err) {
          // A fault in the simulator itself: fail this request, never the process.
          if (settle()) reject(err);
          return;
        }
        this.bmc.flush().then(() => {
          if (outcome.response === null) return; // the caller's timeout will fire
          const rsp = outcome.response;
          this.#later(() => deliver(rsp), this.latencyMs + outcome.delayMs);
        }, (err: unknown) => {
          if (settle()) reject(err);
        });
      }, 0);
    });
  }

  protected async shutdown(): Promise<void> {
    this.#down = true;
    for (const t of this.#timers) {
      clearTimeout(t as NodeJS.Timeout);
      clearImmediate(t as NodeJS.Immediate);
    }
    this.#timers.clear();
    await this.bmc.flush().catch(() => undefined);
  }
}
