/**
 * Where the conductor keeps the BMC passwords it generates: one entry per node,
 * with history. A rotation writes the new password as *pending* before anything
 * reaches the BMC, so a password that may already be on the BMC is never only
 * in memory; it becomes *current* only after it has been proven out-of-band and
 * recorded in Ironic. The previous current entry becomes *superseded* then, and
 * a pending entry whose rotation failed becomes *failed*.
 *
 * Values are {@link Secret}s: they print as `***`, and nothing here puts one in
 * an error message or a log line.
 */
import type { Secret } from '../service/secret.js';

export type SecretState = 'pending' | 'current' | 'superseded' | 'failed';

/** What the store knows about one stored password, without the password. */
export interface SecretEntry {
  /** Store-specific id (file store: random hex; Barbican: the secret's UUID). */
  readonly id: string;
  readonly node: string;
  /** The BMC user name this password belongs to. */
  readonly username: string;
  readonly state: SecretState;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Why the entry failed (no secret in it). */
  readonly note?: string;
}

export interface SecretStore {
  readonly kind: 'file' | 'barbican';
  /** Stores `secret` as the node's new *pending* password for `username`. */
  putPending(node: string, username: string, secret: Secret): Promise<SecretEntry>;
  /** Marks entry `id` current; the node's previous current entry becomes superseded. */
  markCurrent(node: string, id: string): Promise<SecretEntry>;
  /** Marks a pending entry failed (its rotation did not complete); `note` must not hold a secret. */
  markFailed(node: string, id: string, note: string): Promise<SecretEntry>;
  /** The node's current entry and password, or null when it has none. */
  getCurrent(node: string): Promise<{ entry: SecretEntry; secret: Secret } | null>;
  /** One entry's password (any state). Throws SecretStoreError NOT_FOUND. */
  getSecret(node: string, id: string): Promise<Secret>;
  /** Every entry of the node, oldest first. */
  history(node: string): Promise<SecretEntry[]>;
  /**
   * Removes one entry that is not current (a pending password no one will
   * prove, e.g. an expired discovery); a node left with no entries is gone
   * from the store. Throws NOT_FOUND for an unknown entry, INVALID_STATE for
   * the current one.
   */
  removeEntry(node: string, id: string): Promise<void>;
  /**
   * Deletes the values of superseded and failed entries, keeping the newest
   * `keep` superseded ones (default 0); returns how many were deleted.
   */
  deleteSuperseded(node: string, opts?: { keep?: number }): Promise<number>;
}

export type SecretStoreErrorCode = 'NOT_FOUND' | 'INVALID_STATE' | 'CORRUPT' | 'UNAVAILABLE' | 'DENIED' | 'BAD_REQUEST';

export class SecretStoreError extends Error {
  constructor(readonly code: SecretStoreErrorCode, message: string, readonly status?: number) {
    super(message);
    this.name = 'SecretStoreError';
  }
}

/** Node idents become file keys and Barbican names: UUIDs or Ironic node names. */
export const NODE_IDENT = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,254}$/;

export function checkNode(node: string): void {
  if (typeof node !== 'string' || !NODE_IDENT.test(node)) throw new SecretStoreError('BAD_REQUEST', `invalid node ident ${JSON.stringify(String(node).slice(0, 80))}`);
}

/**
 * The state changes every store applies the same way: entries are a list
 * oldest first; `markCurrent` supersedes the old current; only a pending
 * entry can become current or failed.
 */
export function transition(entries: readonly SecretEntry[], id: string, to: 'current' | 'failed', now: string, note?: string): SecretEntry[] {
  const target = entries.find((e) => e.id === id);
  if (!target) throw new SecretStoreError('NOT_FOUND', `no secret entry ${id}`);
  if (target.state === to) return entries.slice();
  if (target.state !== 'pending') throw new SecretStoreError('INVALID_STATE', `entry ${id} is ${target.state}, not pending`);
  return entries.map((e) => {
    if (e.id === id) return { ...e, state: to, updatedAt: now, ...(note !== undefined ? { note } : {}) };
    if (to === 'current' && e.state === 'current') return { ...e, state: 'superseded', updatedAt: now };
    return e;
  });
}

/** Which entries deleteSuperseded removes: failed ones and all but the newest `keep` superseded ones. */
export function deletable(entries: readonly SecretEntry[], keep = 0): SecretEntry[] {
  const superseded = entries.filter((e) => e.state === 'superseded');
  const keepIds = new Set(superseded.slice(Math.max(0, superseded.length - keep)).map((e) => e.id));
  return entries.filter((e) => (e.state === 'superseded' && !keepIds.has(e.id)) || e.state === 'failed');
}
