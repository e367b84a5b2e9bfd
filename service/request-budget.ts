/**
 * How many IPMI requests a fresh credential change needs at the least — the
 * yardstick for `SetCredentialsResult.requests` (the benchmark prints both).
 *
 * The spec has no "list channels", "find user by name" or "read user record"
 * command, so the floor for a change that is correct on any BMC is:
 *
 *   1            Get Device ID (§20.1) — IPMI 1.5 vs 2.0 decides the password form
 * + C            Get Channel Info per candidate channel (§22.24; C = 11, channels 1–11)
 * + 1            Get User Access on user 1 (§22.27) — maximum user ids, fixed-name count
 * + (N − 1)      Get User Name for slots 2..N (§22.29) — a name may already exist anywhere,
 *                and several BMCs refuse duplicates
 * + L            Get User Access for the chosen slot per LAN channel — its previous state,
 *                needed to roll back (and to skip writes already in place)
 * + 3 + L        writes: Set User Name, Set User Password (op 2), enable (op 1),
 *                Set User Access per LAN channel (§22.26–22.30)
 * + 2 + L        verification: Test Password (op 3), Get User Name, Get User Access per channel
 * = 17 + N + 3L  (C = 11)
 *
 * e.g. N = 16, L = 1: 36 requests; N = 63 (ipmi_sim), L = 1: 83.
 *
 * This service adds, per change: Get Channel Access (volatile) per LAN channel
 * (L, to warn when a channel blocks LAN logins) and 2–3 Get LAN Configuration
 * Parameters (IPv4 address, MAC, IPv6) for the conductor's out-of-band check —
 * i.e. minimum + L + 3 on a BMC with IPv6, + L + 2 without. Retries and vendor
 * fall-backs (the 2-byte enable, privilege-before-messaging) come on top only
 * where a BMC asks for them.
 *
 * A fresh change is the first one a service makes. Its later changes (the
 * daemon's) send Get Device ID again but take the channel table from the first
 * while that answer reads back unchanged (BmcFacts in bmc-reader.ts): C fewer
 * requests, 76 instead of 87 on ipmi_sim.
 */
export interface RequestBudgetInput {
  /** Channels probed with Get Channel Info (11 unless channels were given). */
  channelsScanned?: number;
  /** Get User Access byte 1: maximum user ids. */
  maxUsers: number;
  /** LAN channels written. */
  lanChannels: number;
}

export function minimumFreshChangeRequests({ channelsScanned = 11, maxUsers, lanChannels }: RequestBudgetInput): number {
  return 1 + channelsScanned + 1 + (maxUsers - 1) + lanChannels + (3 + lanChannels) + (2 + lanChannels);
}
