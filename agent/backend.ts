/**
 * How the agent tells its users which BMC answered. A result produced on the
 * simulated BMC must never read as a real one: every engine result leaving
 * the agent (CLI output, `--json`, command records, step results, discovery)
 * names its `backend`, and a simulated one carries {@link SIMULATED_NOTE} in
 * its warnings. The status document names the backend from its first answer
 * (agent/serve.ts), and the inventory never reports a simulated BMC's made-up
 * LAN address.
 *
 * Types only from ipmi-kcs/: this module is on the daemon's start path.
 */
import type { BackendInfo, StampedResult } from './api/ports.js';

export const SIMULATED_NOTE = 'SIMULATED BMC: this result comes from the simulated BMC inside this process; no real BMC was read or changed';

/** `result` with `backend` first and, when simulated, {@link SIMULATED_NOTE} first in `warnings`. */
export function stampBackend<T extends object & { warnings?: string[] }>(result: T, kind: string): StampedResult<T> {
  const out: StampedResult<T> = { backend: kind, ...result };
  if (kind === 'simulated') out.warnings = [SIMULATED_NOTE, ...(result.warnings ?? []).filter((w) => w !== SIMULATED_NOTE)];
  return out;
}

/** The status document's backend when the daemon has no BMC to use (a node without an IPMI device). */
export function noBmcStatus(err: Error): BackendInfo {
  return {
    kind: 'none',
    reason: err.message,
    warning: `NO BMC: ${err.message}. bmc.* commands and the set_bmc_credentials step fail until a device appears (it is looked for again at each command).`,
  };
}

