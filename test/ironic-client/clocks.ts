/**
 * Injected clocks for the conductor client. AutoClock: every sleep returns at once
 * (time jumps forward) and is recorded. ManualClock: sleeps wait until the test
 * advances time, so the test sees exactly what the client is waiting for.
 */
import type { Clock } from '../../agent/ironic/types.js';

export class AutoClock implements Clock {
  t = 0;
  readonly sleeps: number[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.sleeps.push(ms);
    this.t += ms;
    return new Promise((r) => setImmediate(r));
  }
}

interface Sleeper {
  until: number;
  ms: number;
  resolve(): void;
}

export class ManualClock implements Clock {
  t = 0;
  private sleepers: Sleeper[] = [];
  private parked: Array<() => void> = [];
  /** Every sleep requested, in ms, including ones cut short. */
  readonly requested: number[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.requested.push(ms);
    return new Promise((resolve, reject) => {
      const s: Sleeper = { until: this.t + ms, ms, resolve: () => resolve() };
      this.sleepers.push(s);
      signal?.addEventListener('abort', () => {
        this.sleepers = this.sleepers.filter((x) => x !== s);
        reject(signal.reason);
      }, { once: true });
      for (const p of this.parked.splice(0)) p();
    });
  }

  /** Ms the earliest pending sleep still has to go, or undefined when nothing sleeps. */
  get pending(): number | undefined {
    if (this.sleepers.length === 0) return undefined;
    return Math.min(...this.sleepers.map((s) => s.until)) - this.t;
  }

  /** Resolves once something is sleeping (the client has parked). */
  async whenParked(): Promise<void> {
    if (this.sleepers.length > 0) return;
    await new Promise<void>((r) => this.parked.push(r));
  }

  /** Moves time forward and wakes due sleepers. */
  advance(ms: number): void {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.until <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.until > this.t);
    for (const s of due) s.resolve();
  }
}
