/**
 * Keeps the agent's secrets (BMC passwords, the agent token) out of core files.
 * The shipped unit sets LimitCORE=0; the process also marks itself
 * non-dumpable (prctl PR_SET_DUMPABLE 0, through the native addon: Node has
 * no prctl), which holds however the daemon is started, and also stops other
 * users' ptrace and /proc/PID/mem reads. Without the addon it says so and
 * relies on the core limit.
 */
import type { AddonLoadResult } from '../ipmi-kcs/kcs-native.js';

export interface HardenLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export type DumpableOutcome = 'non-dumpable' | 'addon-missing' | 'failed';

export async function makeNonDumpable(log: HardenLog, load: () => Promise<AddonLoadResult> = async () => (await import('../ipmi-kcs/kcs-native.js')).loadNativeAddon()): Promise<DumpableOutcome> {
  let loaded: AddonLoadResult;
  try {
    loaded = await load();
  } catch (e) {
    loaded = { ok: false, error: (e as Error).message };
  }
  if (!loaded.ok || typeof loaded.addon.setDumpable !== 'function') {
    log.warn(`cannot make the process non-dumpable: ${loaded.ok ? 'the native addon predates setDumpable (rebuild it)' : loaded.error}; ` +
      'a crash could write a core file holding secrets unless the core limit is 0 (the shipped unit sets LimitCORE=0)');
    return loaded.ok ? 'failed' : 'addon-missing';
  }
  try {
    const now = loaded.addon.setDumpable(false);
    if (now !== 0) throw new Error(`PR_GET_DUMPABLE still answers ${now}`);
  } catch (e) {
    log.warn(`cannot make the process non-dumpable: ${(e as Error).message}`);
    return 'failed';
  }
  log.info('core dumps off: the process is non-dumpable (no core file, no ptrace by other users)');
  return 'non-dumpable';
}
