/**
 * Scripted faults of the simulated BMC: which request they hit and what
 * happens to it. Faults are counted in requests, never in time, so tests are
 * deterministic on a loaded machine.
 */
import type { NormalizedRequest } from '../transport.js';
import { AppCmd, NetFn } from '../spec.js';

/** Which requests a fault counts. Every field given must match. */
export interface FaultMatch {
  netFn?: number;
  cmd?: number;
  /** Set User Password operation, byte 2 [1:0] (§22.30). */
  passwordOp?: number;
  /** User id in byte 1 [5:0] (Set/Get User Access: byte 2) of the user commands. */
  userId?: number;
}

export type ResetRevert = 'non-volatile' | 'factory';
export type ResetWindowResponse = 'busy' | 'initializing' | 'no-response';

export type FaultAction =
  /** Answered with this completion code; the command is not executed. */
  | { kind: 'completion-code'; code: number }
  /** Node busy (0xC0, §5.2); not executed. */
  | { kind: 'busy' }
  /** Never answered (the caller's timeout fires). `executed`: the BMC applied it anyway (a lost response). */
  | { kind: 'no-response'; executed?: boolean }
  /** Executed, answered after `delayMs` more: past a short timeout the late answer must be dropped. */
  | { kind: 'late-response'; delayMs: number }
  /** Executed; the BMC sends only the first `length` response bytes (default: half) — a firmware bug. */
  | { kind: 'short-response'; length?: number }
  /** Executed; the path cut the response after `length` bytes and flags it `truncated`. */
  | { kind: 'cut-response'; length?: number }
  /** A garbled reply: what the kernel hands back for a reply it could not match (0xFF, no data). */
  | { kind: 'garbled' }
  /**
   * The BMC resets on this request. `executed`: applied before the reset (and
   * committed), else lost. The request itself is never answered. The next
   * `window` requests (default 2) get 0xD2 / 0xC0 / no response.
   */
  | { kind: 'reset'; executed?: boolean; revertTo?: ResetRevert; window?: number; windowResponse?: ResetWindowResponse };

export interface FaultSpec {
  match?: FaultMatch;
  /** Fires from the nth matching request on (1 = the next one). */
  nth?: number;
  /** How many requests it hits before it is spent (default 1). */
  times?: number;
  action: FaultAction;
}

interface ArmedFault {
  spec: FaultSpec;
  seen: number;
  remaining: number;
}

const USER_ID_AT: Record<number, number> = {
  [AppCmd.SET_USER_ACCESS]: 1, [AppCmd.GET_USER_ACCESS]: 1,
  [AppCmd.SET_USER_NAME]: 0, [AppCmd.GET_USER_NAME]: 0, [AppCmd.SET_USER_PASSWORD]: 0,
};

export function matches(m: FaultMatch | undefined, req: NormalizedRequest): boolean {
  if (!m) return true;
  if (m.netFn !== undefined && m.netFn !== req.netFn) return false;
  if (m.cmd !== undefined && m.cmd !== req.cmd) return false;
  const app = req.netFn === NetFn.APP;
  if (m.passwordOp !== undefined) {
    if (!app || req.cmd !== AppCmd.SET_USER_PASSWORD || ((req.data[1] ?? -1) & 0x03) !== m.passwordOp) return false;
  }
  if (m.userId !== undefined) {
    const at = app ? USER_ID_AT[req.cmd] : undefined;
    if (at === undefined || ((req.data[at] ?? 0) & 0x3f) !== m.userId) return false;
  }
  return true;
}

export class FaultPlan {
  #armed: ArmedFault[] = [];

  add(spec: FaultSpec): void {
    const nth = spec.nth ?? 1;
    const times = spec.times ?? 1;
    if (!Number.isInteger(nth) || nth < 1) throw new RangeError('fault nth must be an integer ≥ 1');
    if (!Number.isInteger(times) || times < 1) throw new RangeError('fault times must be an integer ≥ 1');
    this.#armed.push({ spec: { ...spec, nth }, seen: 0, remaining: times });
  }

  /** Counts the request against every armed fault; returns the first that fires. */
  take(req: NormalizedRequest): FaultAction | undefined {
    let fired: FaultAction | undefined;
    for (const f of this.#armed) {
      if (!matches(f.spec.match, req)) continue;
      f.seen++;
      if (!fired && f.seen >= (f.spec.nth ?? 1) && f.remaining > 0) {
        f.remaining--;
        fired = f.spec.action;
      }
    }
    this.#armed = this.#armed.filter((f) => f.remaining > 0);
    return fired;
  }

  get pending(): number {
    return this.#armed.length;
  }

  clear(): void {
    this.#armed = [];
  }
}
