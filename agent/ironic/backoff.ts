/**
 * Waits between lookups, as IPA does with tenacity's wait_random_exponential(min=
 * lookup_interval, max=60): attempt n waits U(min, clamp(2^(n-1), min, max)) seconds.
 */
import type { RandomSource } from './types.js';

export const LOOKUP_BACKOFF_MAX_S = 60;

/** Seconds to wait after failed lookup attempt `attempt` (1-based). */
export function lookupBackoffSeconds(attempt: number, minS: number, random: RandomSource, maxS = LOOKUP_BACKOFF_MAX_S): number {
  const exp = 2 ** Math.max(0, attempt - 1);
  const high = Math.min(maxS, Math.max(minS, exp));
  return minS + random() * (high - minS);
}

/**
 * Extra pause after a 409 from lookup (the node is locked while the conductor
 * generates the token): 5 s, 10 s, then 30 s for every further conflict (IPA agent.py).
 */
export function conflictPauseSeconds(conflicts: number): number {
  return conflicts <= 1 ? 5 : conflicts === 2 ? 10 : 30;
}

/** Next heartbeat after a success: heartbeat_timeout × U(0.3, 0.6) (IPA IronicPythonAgentHeartbeater). */
export function heartbeatIntervalSeconds(heartbeatTimeoutS: number, random: RandomSource): number {
  return heartbeatTimeoutS * (0.3 + 0.3 * random());
}

/** Next heartbeat after an error: 5 × U(1, 2) s, so a 300 s timeout leaves room for 12+ retries. */
export function heartbeatErrorIntervalSeconds(random: RandomSource): number {
  return 5 * (1 + random());
}

/** A forced heartbeat (async command finished) waits at least this long after the previous one. */
export const FORCED_HEARTBEAT_MIN_GAP_S = 5;
