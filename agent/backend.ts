/**
 * How the agent tells its users which BMC answered. A result produced on the
 * simulated BMC must never read as a real one: every engine result leaving
 * the agent (CLI output, `--json`, command records, step results, discovery)
 * names its `backend`, and a simulated one carries {@link SIMULATED_NOTE} in
 * its warnings. The status document names the backend from its first answer
 * (agent/serve.ts), and the inventory never reports a simulated BMC's made-up
 * LAN address.
 *
 * It also turns the backend flags into ipmi-kcs/select.ts's options, for the
 * daemon and the BMC commands alike (ipmi-kcs/ itself loads only when a
 * backend is chosen or opened).
 *
 * Types only from ipmi-kcs/: this module is on the daemon's start path.
 */
import type { BackendInfo, StampedResult } from './api/ports.js';
import type { Config } from './config.js';
import type { Log } from './logger.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import type { BackendPlan, Selection, TransportOptions } from '../ipmi-kcs/select.js';

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

/** What the daemon adds to the backend flags: whether `auto` may simulate, where devices are looked for, what was already chosen. */
export interface BackendExtras {
  fallback?: TransportOptions['fallback'];
  deviceCandidates?: readonly string[];
  plan?: BackendPlan;
  warningShown?: boolean;
}

function transportOptions(config: Config, log: Log | undefined, extra: BackendExtras): TransportOptions {
  return {
    backend: config.backend,
    ...(config.device ? { devicePath: config.device } : {}),
    ...(config.vm_codec ? { vmCodec: config.vm_codec } : {}),
    ...(config.sim_profile ? { simProfile: config.sim_profile } : {}),
    ...(config.sim_state_file ? { simStateFile: config.sim_state_file } : {}),
    ...(extra.fallback ? { fallback: extra.fallback } : {}),
    ...(extra.deviceCandidates ? { deviceCandidates: extra.deviceCandidates } : {}),
    ...(extra.warningShown ? { warningShown: true } : {}),
    ...(log ? { logger: log } : {}),
  };
}

/** Decides the backend the flags ask for, without opening it (ipmi-kcs/select.ts chooseBackend). */
export async function chooseBackendFromConfig(config: Config, extra: BackendExtras = {}): Promise<BackendPlan> {
  const { chooseBackend } = await import('../ipmi-kcs/select.js');
  return chooseBackend(transportOptions(config, undefined, extra));
}

export async function openBackendFromConfig(config: Config, log: Log, extra: BackendExtras = {}): Promise<{ transport: Transport; selection: Selection }> {
  const { openTransport } = await import('../ipmi-kcs/select.js');
  return openTransport(transportOptions(config, log, extra), extra.plan);
}
