/**
 * Scenario 1, discovery: a node Ironic does not know boots the agent with its
 * inspection callback pointing here. The agent posts its inventory (IPA's
 * inspection payload); the service answers with a freshly generated BMC
 * password, the agent sets it in-band and posts the outcome back, and the
 * service then proves it out-of-band and hands it to Ironic.
 *
 *   POST /v1/continue (or /v1/continue_inspection)  {inventory, ...}
 *     → 200 {"uuid": U, "bmc_credentials": {"username", "password"}}
 *   POST /v1/continue  {"uuid": U, "bmc_credentials_result": {"status": "succeeded"|"failed"|"refused", ...}}
 *     → 202 {"uuid": U, "discovery": ID, "status": "verifying"} (the rest runs in the background)
 *   GET /v1/discoveries[/ID] → the records (no secrets)
 *
 * ## Order, and what each failure leaves
 *  1. receive-inventory — needs a usable `bmc_address` (not 0.0.0.0) and MACs;
 *     otherwise the agent gets no credentials (nothing applied).
 *  2. forward-inspector — with --inspector-url the same payload goes to a real
 *     ironic-inspector first (its enroll hook may create the node); a failure
 *     there is a warning: the service also works alone.
 *  0. admit — the callback is unauthenticated (the agent has no token yet),
 *     so before any work: at most `rate` inventories per source address
 *     (a token bucket), at most `maxPending` answered discoveries waiting for
 *     their agent, `maxPendingPerSource` of them from one address. Past
 *     either: 429 with Retry-After, no record, nothing asked of Ironic or
 *     the store.
 *  3. match-node — a node whose port has one of the MACs, or whose
 *     driver_info names the same BMC address and port; two different ones →
 *     refuse. A known node is never repointed by discovery: it is answered
 *     only when the inventory's BMC address is the node's `ipmi_address` and
 *     the node is in a state where Ironic expects it to boot the ramdisk
 *     unprovisioned ({@link DISCOVERY_STATES}); otherwise 403, logged, no
 *     credentials (anyone who can read a MAC off a label could otherwise
 *     point an active node at a BMC of their own). A known node gets the BMC user Ironic does *not* log in as
 *     (`U`/`U_b`, as rotations alternate), so its working credential is never
 *     touched before the new one is proven. A new node gets a UUID now, which
 *     keys the store and becomes the node's UUID in Ironic.
 *  4. store-pending — a fresh password (one per discovery: credentials are
 *     unique per node) is stored *pending* before it leaves the service.
 *     Store down: the agent gets no credentials.
 *  5. agent-result — failed/refused: the entry becomes *failed* (a new
 *     node's is removed: its password is on no BMC, the agent rolled back,
 *     and nothing else names that UUID); the agent rolls its own writes back.
 *     No answer within the timeout, or the agent posted again: the entry is
 *     removed from the store, so unanswered discoveries leave nothing behind.
 *  6. prove — lanplus `mc info` as the new user at the inventory's BMC
 *     address. Failure: entry failed; Ironic untouched.
 *  7. enroll / update-node — create the `ipmi` node with its ports, or patch
 *     the known node's driver_info (and driver). Failure: the entry stays
 *     *pending* and holds the proven password the BMC now has.
 *  8. store-current — Failure: Ironic holds the new credential; the store
 *     still has it as pending, so it is not lost.
 *  9. manage (node in `enroll`) or power-check (otherwise) — Ironic's own
 *     power status call with the credential: the proof Ironic accepts it.
 *
 * Each discovery ends in a {@link DiscoveryRecord}: node, BMC, each step,
 * what was applied, and which credential is current. No record, log line or
 * error message holds a password.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { generatePassword } from '../service/password-generator.js';
import type { Secret } from '../service/secret.js';
import { ironicPowerCheck, type BmcEndpoint, type BmcProver } from './bmc-proof.js';
import type { DiscoveryIronic, NodeSummary, PatchOp } from './ironic-enroll.js';
import type { SecretStore } from './secret-store.js';

export type DiscoveryStep =
  | 'receive-inventory' | 'forward-inspector' | 'match-node' | 'store-pending' | 'agent-result'
  | 'prove' | 'enroll' | 'update-node' | 'store-current' | 'manage' | 'power-check';

export interface DiscoveryRecord {
  id: string;
  /** The node's UUID in Ironic (the one it gets when new). */
  node: string | null;
  /** true: enrolled by this discovery; false: a node Ironic knew; null: not decided. */
  newNode: boolean | null;
  bmc: { address: string | null; port: number };
  macs: string[];
  username: string | null;
  secretId: string | null;
  status: 'awaiting-agent' | 'verifying' | 'enrolled' | 'failed';
  startedAt: string;
  finishedAt: string | null;
  failedStep: DiscoveryStep | null;
  error: string | null;
  warnings: string[];
  /** What reached the BMC, Ironic and the store, in order. */
  applied: string[];
  /** Which credential is current, and where. */
  current: { username: string | null; note: string };
  steps: Array<{ step: DiscoveryStep; ok: boolean; at: string; detail: string }>;
  inspector?: { forwarded: boolean; uuid?: string; error?: string };
}

export interface DiscoveryServiceOptions {
  ironic: DiscoveryIronic;
  store: SecretStore;
  prover: BmcProver;
  /** The BMC user pair (default ironic / ironic_b). */
  usernames?: readonly [string, string];
  /** The BMC's RMCP+ port (623; tests point it at ipmi_sim's loopback port). */
  bmcPort?: number;
  /** ipmi_cipher_suite for the proof and driver_info (default 3). */
  cipherSuite?: string;
  /** ironic-inspector's base URL: inventories are forwarded to its /v1/continue. */
  inspectorUrl?: string;
  /** Extra fields for a new node (e.g. interfaces, resource_class). */
  nodeDefaults?: Record<string, unknown>;
  /** How long an answered discovery waits for the agent's result (default 30 min). */
  resultTimeoutMs?: number;
  /** Provision/power transitions (default 5 min). */
  stateTimeoutMs?: number;
  /** Called with each finished record (e.g. to keep it on disk). */
  onRecord?: (record: DiscoveryRecord) => Promise<void> | void;
  generate?: () => Secret;
  log?: (line: string) => void;
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Records kept in memory for GET (default 1000). */
  keep?: number;
  /** Answered discoveries waiting for their agent, in all (default 64). */
  maxPending?: number;
  /** …and from one source address (default 4). */
  maxPendingPerSource?: number;
  /** Inventories accepted per source address: a bucket of `burst`, refilled at `perMinute` (default 10, 20). */
  rate?: { burst: number; perMinute: number };
  /** Milliseconds clock of the rate limiter (tests). */
  now?: () => number;
}

/**
 * Ironic provision states in which a known node may boot the agent unprovisioned
 * and ask to be discovered: not yet managed, managed and idle, or being inspected.
 * Never `active`, `available`, deploying, cleaning, rescuing, servicing.
 */
export const DISCOVERY_STATES: readonly string[] = ['enroll', 'manageable', 'inspecting', 'inspect wait', 'inspect failed'];

interface Pending {
  record: DiscoveryRecord;
  secret: Secret;
  endpoint: BmcEndpoint;
  timer: NodeJS.Timeout;
  inventory: Record<string, unknown>;
  source: string;
}

export class DiscoveryError extends Error {
  constructor(readonly status: number, message: string, readonly retryAfterS?: number) {
    super(message);
  }
}

/** Two BMC addresses name the same host (case, IPv6 spelling and brackets aside). */
export function sameBmcAddress(a: unknown, b: unknown): boolean {
  if (typeof a !== 'string' || typeof b !== 'string' || !a || !b) return false;
  const norm = (x: string): string => {
    const h = x.trim().replace(/^\[|\]$/g, '').toLowerCase();
    if (!h.includes(':')) return h;
    try {
      return new URL(`http://[${h}]/`).hostname;
    } catch {
      return h;
    }
  };
  return norm(a) === norm(b);
}

const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

export class DiscoveryService {
  readonly records = new Map<string, DiscoveryRecord>();
  private readonly pending = new Map<string, Pending>();
  private readonly busy = new Set<string>();
  private readonly background = new Set<Promise<void>>();
  private readonly users: readonly [string, string];
  private readonly log: (line: string) => void;
  /** Inventories being handled now (admitted, not yet pending or finished), per source. */
  private readonly admitted = new Map<string, number>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private refusedLogged = 0;

  constructor(private readonly o: DiscoveryServiceOptions) {
    this.users = o.usernames ?? ['ironic', 'ironic_b'];
    this.log = o.log ?? (() => undefined);
  }

  /** How many answered discoveries wait for their agent (all, or from `source`). */
  pendingCount(source?: string): number {
    if (source === undefined) return this.pending.size;
    let n = 0;
    for (const p of this.pending.values()) if (p.source === source) n++;
    return n;
  }

  /**
   * Step 0: the rate and the caps, before any record, Ironic call or store write.
   * Returns the release of the admission slot (call it once the inventory is pending or finished).
   */
  private admit(source: string): () => void {
    const rate = this.o.rate ?? { burst: 10, perMinute: 20 };
    const now = (this.o.now ?? Date.now)();
    const b = this.buckets.get(source) ?? { tokens: rate.burst, at: now };
    b.tokens = Math.min(rate.burst, b.tokens + ((now - b.at) / 60_000) * rate.perMinute);
    b.at = now;
    this.buckets.set(source, b);
    if (this.buckets.size > 10_000) {
      for (const [k, v] of this.buckets) if (v.tokens >= rate.burst - 1 && k !== source) this.buckets.delete(k);
    }
    const refuse = (why: string, retryAfterS: number): never => {
      // One line per refusal would let a flood fill the log: the first ten, then every hundredth.
      if (this.refusedLogged++ < 10 || this.refusedLogged % 100 === 0) this.log(`discovery: refused an inventory from ${source}: ${why} (${this.refusedLogged} refused so far)`);
      throw new DiscoveryError(429, `too many discoveries: ${why}; retry later`, retryAfterS);
    };
    if (b.tokens < 1) refuse(`more than ${rate.perMinute} inventories a minute from ${source}`, Math.ceil(((1 - b.tokens) * 60) / rate.perMinute));
    const inFlight = (src?: string): number => {
      if (src !== undefined) return (this.admitted.get(src) ?? 0) + this.pendingCount(src);
      let n = this.pending.size;
      for (const v of this.admitted.values()) n += v;
      return n;
    };
    const maxAll = this.o.maxPending ?? 64;
    const maxOne = this.o.maxPendingPerSource ?? 4;
    if (inFlight() >= maxAll) refuse(`${maxAll} discoveries are already waiting for their agent`, 60);
    if (inFlight(source) >= maxOne) refuse(`${maxOne} discoveries from ${source} are already waiting for their agent`, 60);
    b.tokens -= 1;
    this.admitted.set(source, (this.admitted.get(source) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.admitted.get(source) ?? 1) - 1;
      if (n > 0) this.admitted.set(source, n);
      else this.admitted.delete(source);
    };
  }

  /** Resolves when every background verification, and every record of a refusal answered before it was written, has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.background.size) await Promise.allSettled([...this.background]);
  }

  /** Keeps `work` (a record finished beside the answer) where idle() and close() wait for it. */
  private inBackground(work: Promise<void>): void {
    const job: Promise<void> = work
      .catch((err: unknown) => this.log(`discovery: a background step failed: ${(err as Error).message}`))
      .finally(() => this.background.delete(job));
    this.background.add(job);
  }

  /** Ends the wait of every answered discovery (shutdown): each is recorded as failed. */
  async close(): Promise<void> {
    for (const p of [...this.pending.values()]) await this.expire(p, 'the service stopped before the agent reported');
    await this.idle();
  }

  /** One POST to the callback: an inventory, or an agent's credential result. `source`: the caller's address. */
  async handle(body: unknown, source = 'unknown'): Promise<{ status: number; body: Record<string, unknown> }> {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new DiscoveryError(400, 'the body must be a JSON object');
    const doc = body as Record<string, unknown>;
    if ('bmc_credentials_result' in doc) return this.onResult(doc);
    const release = this.admit(source);
    try {
      return await this.onInventory(doc, source);
    } finally {
      release();
    }
  }

  private newRecord(): DiscoveryRecord {
    return {
      id: randomUUID(), node: null, newNode: null, bmc: { address: null, port: this.o.bmcPort ?? 623 }, macs: [],
      username: null, secretId: null, status: 'awaiting-agent', startedAt: new Date().toISOString(), finishedAt: null,
      failedStep: null, error: null, warnings: [], applied: [], current: { username: null, note: 'nothing applied' }, steps: [],
    };
  }

  private step(rec: DiscoveryRecord, step: DiscoveryStep, ok: boolean, detail: string): void {
    rec.steps.push({ step, ok, at: new Date().toISOString(), detail });
    this.log(`discovery ${rec.id}${rec.node ? ` node ${rec.node}` : ''}: ${step} ${ok ? 'ok' : 'FAILED'}: ${detail}`);
  }

  private async finish(rec: DiscoveryRecord, failed?: { step: DiscoveryStep; error: string; current: string }): Promise<void> {
    if (failed) {
      rec.status = 'failed';
      rec.failedStep = failed.step;
      rec.error = failed.error;
      rec.current = { username: rec.current.username, note: failed.current };
      this.step(rec, failed.step, false, failed.error);
    }
    rec.finishedAt = new Date().toISOString();
    this.keepRecord(rec);
    try {
      await this.o.onRecord?.(rec);
    } catch (err) {
      this.log(`discovery ${rec.id}: could not keep the record: ${(err as Error).message}`);
    }
  }

  private keepRecord(rec: DiscoveryRecord): void {
    this.records.set(rec.id, rec);
    const keep = this.o.keep ?? 1000;
    for (const [id, r] of this.records) {
      if (this.records.size <= keep) break;
      if (r.finishedAt) this.records.delete(id);
    }
  }

  private async onInventory(doc: Record<string, unknown>, source: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const rec = this.newRecord();
    this.keepRecord(rec);
    const inv = doc.inventory;
    if (!inv || typeof inv !== 'object') {
      await this.finish(rec, { step: 'receive-inventory', error: 'the payload has no inventory', current: 'nothing applied' });
      throw new DiscoveryError(400, 'the payload has no inventory');
    }
    const inventory = inv as Record<string, unknown>;
    // IPA's convention: 0.0.0.0 / ::/0 when the BMC has no address; an IPv6-only BMC is reached on its v6 address.
    const usable = (a: unknown): a is string => typeof a === 'string' && a !== '' && !['0.0.0.0', '::', '::/0'].includes(a);
    const address = usable(inventory.bmc_address) ? inventory.bmc_address : usable(inventory.bmc_v6address) ? inventory.bmc_v6address.replace(/\/\d+$/, '') : null;
    const ifaces = Array.isArray(inventory.interfaces) ? (inventory.interfaces as Array<Record<string, unknown>>) : [];
    rec.macs = [...new Set(ifaces.map((i) => String(i.mac_address ?? '').toLowerCase()).filter((m) => MAC_RE.test(m) && m !== '00:00:00:00:00:00'))];
    rec.bmc.address = address;
    this.step(rec, 'receive-inventory', true, `BMC ${address ?? '(none)'}, MACs ${rec.macs.join(' ') || '(none)'}`);

    let inspectorUuid: string | undefined;
    if (this.o.inspectorUrl) {
      const f = await this.forward(doc);
      rec.inspector = f;
      inspectorUuid = f.uuid;
      if (f.forwarded) this.step(rec, 'forward-inspector', true, `ironic-inspector answered${f.uuid ? ` with node ${f.uuid}` : ''}`);
      else {
        rec.warnings.push(`ironic-inspector: ${f.error}`);
        this.step(rec, 'forward-inspector', false, `${f.error} (continuing without it)`);
      }
    }
    const noCreds = (why: string, step: DiscoveryStep = 'receive-inventory'): { status: number; body: Record<string, unknown> } => {
      this.inBackground(this.finish(rec, { step, error: why, current: 'nothing applied: the agent got no credentials' }));
      return { status: 200, body: { ...(inspectorUuid ? { uuid: inspectorUuid } : {}), discovery: rec.id } };
    };
    if (!address) return noCreds('the inventory names no BMC address (bmc_address or bmc_v6address)');
    if (!rec.macs.length) return noCreds('the inventory has no MAC address to enroll the node with');

    const port = rec.bmc.port;
    let match: NodeSummary | null;
    try {
      match = await this.match(address, port, rec.macs, inspectorUuid);
    } catch (err) {
      return noCreds((err as Error).message, 'match-node');
    }
    if (match) {
      // Never repoint a known node: its BMC address comes from the operator (or the enrolment that
      // first proved it), never from an unauthenticated inventory naming one of its MACs.
      const known = match.driver_info.ipmi_address;
      const why = !sameBmcAddress(known, address)
        ? `the inventory names BMC ${address}, but node ${match.uuid} has ${typeof known === 'string' && known ? `ipmi_address ${known}` : 'no ipmi_address'}`
        : !DISCOVERY_STATES.includes(match.provision_state)
          ? `node ${match.uuid} is ${match.provision_state}, not in a state where discovery is expected (${DISCOVERY_STATES.join(', ')})`
          : null;
      if (why) {
        rec.node = match.uuid;
        rec.newNode = false;
        this.log(`discovery ${rec.id}: REFUSED inventory from ${source} (MACs ${rec.macs.join(' ')}): ${why}; nothing sent, Ironic and the store untouched`);
        this.inBackground(this.finish(rec, { step: 'match-node', error: `refused: ${why}`, current: 'nothing applied: the agent got no credentials; Ironic untouched' }));
        throw new DiscoveryError(403, 'discovery refused: the inventory matches an enrolled node whose BMC address or state does not allow it (see the service log)');
      }
    }
    const uuid = match?.uuid ?? randomUUID();
    rec.node = uuid;
    rec.newNode = match === null;
    const held = match ? String(match.driver_info.ipmi_username ?? '') : '';
    // A known node keeps its working credential until the new one is proven: write the other user.
    const username = held === this.users[0] ? this.users[1] : this.users[0];
    rec.username = username;
    if (match) rec.current = { username: held || null, note: `Ironic's credential for node ${uuid} (user ${held || '(none)'}), untouched` };
    this.step(rec, 'match-node', true, match ? `known node ${uuid} (${match.provision_state}); Ironic logs in as ${held || '(none)'}; the new password goes to ${username}` : `no node has these MACs or BMC; enrolling as ${uuid}`);
    if (this.busy.has(uuid)) return noCreds(`node ${uuid} is being verified by an earlier discovery`, 'match-node');

    const earlier = this.pending.get(uuid);
    if (earlier) await this.expire(earlier, `superseded by discovery ${rec.id} (the agent posted its inventory again)`);

    const secret = (this.o.generate ?? (() => generatePassword()))();
    try {
      const entry = await this.o.store.putPending(uuid, username, secret);
      rec.secretId = entry.id;
      rec.applied.push(`${this.o.store.kind} store: pending entry ${entry.id} for ${username}`);
      this.step(rec, 'store-pending', true, `entry ${entry.id} (${this.o.store.kind})`);
    } catch (err) {
      secret.dispose();
      return noCreds(`the secret store refused the new password: ${(err as Error).message}`, 'store-pending');
    }
    const endpoint: BmcEndpoint = { host: address, port, cipherSuite: this.o.cipherSuite ?? '3' };
    const timer = setTimeout(() => {
      const p = this.pending.get(uuid);
      if (p && p.record === rec) this.inBackground(this.expire(p, 'no result from the agent in time'));
    }, this.o.resultTimeoutMs ?? 30 * 60_000);
    timer.unref();
    this.pending.set(uuid, { record: rec, secret, endpoint, timer, inventory, source });
    rec.applied.push(`answered the agent with a new password for ${username}`);
    return { status: 200, body: { uuid, discovery: rec.id, bmc_credentials: { username, password: secret.reveal() } } };
  }

  private async expire(p: Pending, why: string): Promise<void> {
    const rec = p.record;
    if (this.pending.get(rec.node as string) !== p) return;
    this.pending.delete(rec.node as string);
    clearTimeout(p.timer);
    p.secret.dispose();
    // An answered discovery that never completed leaves no store entry behind (each is a
    // Barbican secret with that store): whatever the BMC user got, the next discovery or
    // rotation of the node writes it again.
    await this.removeEntry(rec);
    await this.finish(rec, { step: 'agent-result', error: why, current: this.untouched(rec) });
  }

  private async removeEntry(rec: DiscoveryRecord): Promise<void> {
    if (!rec.secretId || !rec.node) return;
    try {
      await this.o.store.removeEntry(rec.node, rec.secretId);
      rec.applied.push(`store entry ${rec.secretId} removed`);
    } catch (err) {
      rec.warnings.push(`could not remove store entry ${rec.secretId}: ${(err as Error).message}`);
      await this.markFailed(rec, 'no result from the agent; removal failed');
    }
  }

  private untouched(rec: DiscoveryRecord): string {
    return rec.newNode
      ? 'not enrolled in Ironic; no credential is current'
      : `Ironic still logs in as ${rec.current.username ?? '(none)'}, untouched`;
  }

  private async markFailed(rec: DiscoveryRecord, why: string): Promise<void> {
    if (!rec.secretId || !rec.node) return;
    try {
      await this.o.store.markFailed(rec.node, rec.secretId, why.slice(0, 200));
      rec.applied.push(`store entry ${rec.secretId} marked failed`);
    } catch (err) {
      rec.warnings.push(`could not mark store entry ${rec.secretId} failed: ${(err as Error).message}`);
    }
  }

  private async onResult(doc: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const uuid = typeof doc.uuid === 'string' ? doc.uuid : '';
    const p = this.pending.get(uuid);
    if (!p) throw new DiscoveryError(404, `no discovery is waiting for a result from node ${JSON.stringify(uuid.slice(0, 64))}`);
    const result = (doc.bmc_credentials_result ?? {}) as Record<string, unknown>;
    const status = String(result.status ?? '');
    this.pending.delete(uuid);
    clearTimeout(p.timer);
    const rec = p.record;
    if (status !== 'succeeded') {
      const why = `the agent reports ${status || '(no status)'}: ${String(result.error ?? '').slice(0, 300)}`;
      p.secret.dispose();
      if (rec.newNode) await this.removeEntry(rec);
      else await this.markFailed(rec, why);
      await this.finish(rec, { step: 'agent-result', error: why, current: `${this.untouched(rec)}; the agent rolls its own BMC writes back` });
      return { status: 200, body: { uuid, discovery: rec.id, status: 'failed' } };
    }
    rec.applied.push(`BMC user ${rec.username} set in-band by the agent`);
    this.step(rec, 'agent-result', true, `the agent set ${rec.username}`);
    rec.status = 'verifying';
    this.busy.add(uuid);
    const job = this.verifyAndEnroll(p).catch((err: unknown) => this.finish(rec, { step: 'enroll', error: `crashed: ${(err as Error).message}`, current: 'unknown: read the node in Ironic' }))
      .finally(() => {
        p.secret.dispose();
        this.busy.delete(uuid);
        this.background.delete(job);
      });
    this.background.add(job);
    return { status: 202, body: { uuid, discovery: rec.id, status: 'verifying', href: `/v1/discoveries/${rec.id}` } };
  }

  private async verifyAndEnroll(p: Pending): Promise<void> {
    const rec = p.record;
    const uuid = rec.node as string;
    const username = rec.username as string;
    const stateMs = this.o.stateTimeoutMs ?? 300_000;
    const proof = await this.o.prover.prove(p.endpoint, { username, password: p.secret });
    if (!proof.ok) {
      await this.markFailed(rec, 'the new credential did not log in over lanplus');
      return this.finish(rec, { step: 'prove', error: `lanplus login as ${username} at ${p.endpoint.host}:${p.endpoint.port} failed after ${proof.attempts} attempt(s): ${proof.detail}`, current: `${this.untouched(rec)}; BMC user ${username} may hold the failed entry's password` });
    }
    this.step(rec, 'prove', true, `${proof.detail} as ${username} at ${p.endpoint.host}:${p.endpoint.port}`);

    const info: Record<string, string | number | Secret> = {
      ipmi_address: p.endpoint.host, ipmi_username: username, ipmi_password: p.secret, ipmi_cipher_suite: Number(p.endpoint.cipherSuite),
      ...(p.endpoint.port !== 623 ? { ipmi_port: p.endpoint.port } : {}),
    };
    const pendingNote = `the BMC accepts ${username}; its password is store entry ${rec.secretId} (still pending)`;
    let node;
    if (rec.newNode) {
      try {
        await this.o.ironic.createNode({ ...(this.o.nodeDefaults ?? {}), uuid, driver: 'ipmi', driver_info: info, properties: properties(p.inventory) }, rec.macs);
      } catch (err) {
        return this.finish(rec, { step: 'enroll', error: (err as Error).message, current: `${pendingNote}; Ironic has no node ${uuid} (or an incomplete one: read it)` });
      }
      rec.applied.push(`Ironic: node ${uuid} created (ipmi, ${username}) with ports ${rec.macs.join(' ')}`);
      this.step(rec, 'enroll', true, `node ${uuid} with ${rec.macs.length} port(s)`);
    } else {
      try {
        node = await this.o.ironic.node(uuid);
        const ops: PatchOp[] = Object.entries(info).map(([k, v]) => ({ op: 'add', path: `/driver_info/${k}`, value: v }));
        // A node another enroller created (ironic-inspector's enroll hook: fake-hardware) becomes an
        // ipmi node; its interfaces reset to ipmi's defaults, or Ironic refuses the fake ones.
        const retype = node.driver !== 'ipmi';
        if (retype) ops.unshift({ op: 'replace', path: '/driver', value: 'ipmi' });
        await this.o.ironic.patchNode(uuid, ops, { resetInterfaces: retype });
      } catch (err) {
        return this.finish(rec, { step: 'update-node', error: (err as Error).message, current: `${pendingNote}; Ironic still logs in as ${rec.current.username ?? '(none)'}` });
      }
      rec.applied.push(`Ironic: driver_info of node ${uuid} now logs in as ${username}${node.driver !== 'ipmi' ? ` (driver ${node.driver} → ipmi)` : ''}`);
      this.step(rec, 'update-node', true, `driver_info of ${uuid} → ${username}`);
    }
    rec.current = { username, note: `Ironic logs in as ${username}; ${pendingNote}` };

    try {
      await this.o.store.markCurrent(uuid, rec.secretId as string);
      rec.applied.push(`store entry ${rec.secretId} current`);
      rec.current = { username, note: `Ironic logs in as ${username}, store entry ${rec.secretId} current` };
      this.step(rec, 'store-current', true, `entry ${rec.secretId}`);
    } catch (err) {
      return this.finish(rec, { step: 'store-current', error: (err as Error).message, current: rec.current.note });
    }

    try {
      node = await this.o.ironic.node(uuid);
      if (node.provision_state === 'enroll') {
        // enroll → manageable validates the power interface and reads the power state with the credential.
        await this.o.ironic.provision(uuid, 'manage');
        node = await this.o.ironic.waitForProvision(uuid, ['manageable', 'enroll'], stateMs);
        if (node.provision_state !== 'manageable') throw new Error(`Ironic left the node in ${node.provision_state}: ${node.last_error ?? '(no last_error)'}`);
        rec.applied.push(`Ironic: node ${uuid} manageable`);
        this.step(rec, 'manage', true, `manageable, power ${node.power_state ?? 'unknown'}`);
      } else {
        const state = await ironicPowerCheck(this.o.ironic, this.o.prover, uuid, p.endpoint, { username, password: p.secret }, stateMs);
        this.step(rec, 'power-check', true, `Ironic's power status call as ${username} answered ${state}`);
      }
    } catch (err) {
      return this.finish(rec, { step: node?.provision_state === 'enroll' || rec.newNode ? 'manage' : 'power-check', error: (err as Error).message, current: rec.current.note });
    }
    rec.status = 'enrolled';
    await this.finish(rec);
  }

  private async match(address: string, port: number, macs: readonly string[], inspectorUuid?: string): Promise<NodeSummary | null> {
    const byMac = await this.o.ironic.nodesByMac(macs);
    const all = await this.o.ironic.nodes();
    const byBmc = all.filter((n) => n.driver_info.ipmi_address === address && Number(n.driver_info.ipmi_port ?? 623) === port).map((n) => n.uuid);
    const candidates = new Set([...(inspectorUuid ? [inspectorUuid] : []), ...byMac, ...byBmc]);
    if (candidates.size > 1) throw new Error(`MACs and BMC ${address}:${port} match different nodes (${[...candidates].join(', ')}); refusing to guess`);
    const uuid = [...candidates][0];
    if (!uuid) return null;
    const found = all.find((n) => n.uuid === uuid);
    if (found) return found;
    const n = await this.o.ironic.node(uuid);
    return { uuid: n.uuid, driver: n.driver, provision_state: n.provision_state, driver_info: n.driver_info };
  }

  private async forward(doc: Record<string, unknown>): Promise<{ forwarded: boolean; uuid?: string; error?: string }> {
    const url = `${(this.o.inspectorUrl as string).replace(/\/+$/, '')}/v1/continue`;
    try {
      const r = await (this.o.fetch ?? fetch)(url, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(doc), signal: AbortSignal.timeout(60_000),
      });
      const text = await r.text();
      if (r.status < 200 || r.status >= 300) return { forwarded: false, error: `${url} answered ${r.status}: ${text.replace(/\s+/g, ' ').slice(0, 300)}` };
      let uuid: string | undefined;
      try {
        const a = JSON.parse(text) as { uuid?: unknown };
        if (typeof a.uuid === 'string') uuid = a.uuid;
      } catch {
        // no body
      }
      return { forwarded: true, ...(uuid ? { uuid } : {}) };
    } catch (err) {
      return { forwarded: false, error: `${url} did not answer: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}` };
    }
  }

  /**
   * A node:http listener: the callback routes, and GET of the records.
   * `authorised` guards the record routes (the callback, like inspector's, is open: the agent has no token yet).
   */
  handler(authorised: (req: IncomingMessage) => boolean = () => true): (req: IncomingMessage, res: ServerResponse) => boolean {
    const send = (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...extra });
      res.end(text);
    };
    const fail = (res: ServerResponse, status: number, msg: string, extra: Record<string, string> = {}): void =>
      send(res, status, { error_message: JSON.stringify({ faultstring: msg, faultcode: status >= 500 ? 'Server' : 'Client', debuginfo: null }) }, extra);
    return (req, res) => {
      const path = new URL(req.url ?? '/', 'http://conductor').pathname;
      if (path === '/v1/continue' || path === '/v1/continue_inspection') {
        if (req.method !== 'POST') {
          fail(res, 405, 'method not allowed');
          return true;
        }
        const source = (req.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
        readJson(req, 4 * 1024 * 1024).then((body) => this.handle(body, source)).then(
          (r) => send(res, r.status, r.body),
          (err: unknown) => {
            const retry = err instanceof DiscoveryError && err.retryAfterS ? { 'Retry-After': String(err.retryAfterS) } : undefined;
            fail(res, err instanceof DiscoveryError ? err.status : 500, (err as Error).message, retry);
          },
        );
        return true;
      }
      const m = /^\/v1\/discoveries(?:\/([0-9a-f-]{36}))?$/.exec(path);
      if (!m) return false;
      req.resume();
      if (req.method !== 'GET') fail(res, 405, 'method not allowed');
      else if (!authorised(req)) fail(res, 401, 'authentication required (X-Auth-Token)');
      else if (!m[1]) send(res, 200, { discoveries: [...this.records.values()] });
      else {
        const r = this.records.get(m[1]);
        if (r) send(res, 200, r);
        else fail(res, 404, 'no such discovery');
      }
      return true;
    };
  }
}

/** Ironic's scheduling properties from the inventory, as inspector's standard hooks set them. */
function properties(inv: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const cpu = inv.cpu as { count?: unknown; architecture?: unknown } | undefined;
  const mem = inv.memory as { physical_mb?: unknown } | undefined;
  if (typeof cpu?.count === 'number') out.cpus = cpu.count;
  if (typeof cpu?.architecture === 'string') out.cpu_arch = cpu.architecture;
  if (typeof mem?.physical_mb === 'number') out.memory_mb = mem.physical_mb;
  return out;
}

function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new DiscoveryError(413, 'body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'));
      } catch {
        reject(new DiscoveryError(400, 'the body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}
