/**
 * Out-of-band rotation of one node's BMC credential, logged in over lanplus as
 * the user Ironic holds: the credential engine (service/credential-service.ts:
 * discovery of channels and slots, write order, in-band-style read-back,
 * roll-back, crash journal) runs unchanged over an `ipmitool -I lanplus shell`
 * transport, so a deployed (`active`) node is rotated without a reboot.
 *
 * The same two-user alternation as the in-band path (rotate.ts): the new
 * password goes to the user Ironic does *not* log in as, is proven with a
 * fresh lanplus login, then committed to Ironic's driver_info, and only then
 * is the previous user retired. The session user itself is out of the
 * engine's reach: every write to its user id is refused by the transport
 * (SessionUserGuard) before it is sent.
 *
 * | Step | If it fails | Ironic logs in as |
 * |---|---|---|
 * | store-pending (or the node's pending entry, on resume) | nothing applied | previous |
 * | set-out-of-band: the engine writes the other user | the engine rolls its writes back; entry failed. Roll-back impossible (BMC stopped answering): entry stays pending and the journal is kept, the next run rolls back and redoes it with the same password | previous (never written) |
 * | prove: a fresh lanplus login as the new user | new user disabled (as the previous one); entry failed | previous |
 * | update-ironic: PATCH driver_info (409/503 retried) | new user disabled; entry failed | previous |
 * | ironic-check: driver_info read back names the new user | as update-ironic | previous |
 * | store-current | entry stays pending: the next run finds Ironic on it and finishes | new, proven |
 * | retire-previous (as the new user; read back disabled, retried on session errors) | not done: entry current, the node reported failed at this step and resumable; the fleet run takes it up again later and the next run finishes it | new |
 * | delete-superseded | warning | new |
 */
import type { Secret } from '../service/secret.js';
import { CredentialService } from '../service/credential-service.js';
import { ServiceError } from '../service/errors.js';
import { generatePassword } from '../service/password-generator.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import { retryRetirement, type BmcCredential, type BmcEndpoint } from './bmc-proof.js';
import { retireUser, SessionUserGuard, sessionUserId, sessionsOf, type BmcAccess, type LoginResult, type RetireResult } from './fleet-bmc.js';
import type { IronicNodeView } from './ironic-api.js';
import type { SecretEntry, SecretState, SecretStore } from './secret-store.js';

export type OobStepName =
  | 'store-pending' | 'resume-pending' | 'set-out-of-band' | 'prove' | 'update-ironic' | 'ironic-check'
  | 'store-current' | 'retire-previous' | 'delete-superseded';

export interface OobStep {
  step: OobStepName;
  status: 'ok' | 'failed' | 'skipped';
  at: string;
  detail: string;
}

export interface OobRecord {
  node: string;
  nodeUuid: string;
  path: 'out-of-band';
  startedAt: string;
  finishedAt: string;
  outcome: 'rotated' | 'failed';
  /** After a failure: whether the node keeps a pending entry the next run resumes (true), or ended rolled back (false). */
  resumable: boolean;
  /** After a failure at retire-previous: whether it was the session's (the BMC busy or silent), so trying again later may succeed. */
  retryable?: boolean;
  resumed: boolean;
  failedStep: OobStepName | null;
  error: string | null;
  warnings: string[];
  initial: { provisionState: string; username: string | null };
  next: { username: string; secretId: string | null; secretState: SecretState | null; store: string };
  engine: { userId: number | null; sessionUserId: number | null; changed: boolean | null; requests: number; actions: string[] };
  applied: string[];
  rolledBack: string[];
  /** The credential Ironic holds at the end, which logs in. */
  current: { username: string | null; note: string };
  /** RMCP+ sessions this rotation opened (logins, the engine's shell, proofs, retirement). */
  ipmiSessions: number;
  steps: OobStep[];
}

/** The Ironic calls the out-of-band path makes. */
export interface OobIronic {
  node(ident: string): Promise<IronicNodeView>;
  patchDriverInfo(ident: string, values: Record<string, string | Secret>): Promise<void>;
}

export interface OobOptions {
  node: IronicNodeView;
  ironic: OobIronic;
  store: SecretStore;
  bmc: BmcEndpoint;
  access: BmcAccess;
  /** The credential Ironic holds now, which logged in. */
  current: BmcCredential;
  /** The user to write (the one of the pair Ironic does not hold). */
  nextUsername: string;
  /** The node's pending entry and its password, when an earlier run left one: reused, never a second one. */
  pending?: { entry: SecretEntry; secret: Secret };
  /** Journal directory of this node's engine (one per node: the journal is also the engine's lock). */
  journalDir: string;
  privilege?: 'administrator' | 'operator';
  retirePrevious?: boolean;
  /** Per IPMI request through the engine, default 5000 ms; the engine's retries, default 3 attempts. */
  ipmiTimeoutMs?: number;
  ipmiAttempts?: number;
  generate?: () => Secret;
  /** Runs `fn` under the per-BMC pacing gate. */
  paced?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Retirement tries on session errors (each its own session) and the first gap between them, ms; default 3 and 2000. */
  retireAttempts?: number;
  retireDelayMs?: number;
  /** A hook for the journal path of this change, called before the engine runs (tests, the bench). */
  now?: () => Date;
  log?: (line: string) => void;
}

class StepFailure extends Error {
  constructor(readonly step: OobStepName, message: string) {
    super(message);
  }
}

/** Engine errors after which the other slot may hold the pending password (nothing could be restored, or it is unknown). */
const UNSETTLED = new Set(['ROLLBACK_FAILED', 'INTERRUPTED_CHANGE', 'BUSY']);

export async function rotateOutOfBand(o: OobOptions): Promise<OobRecord> {
  const now = o.now ?? (() => new Date());
  const log = o.log ?? (() => undefined);
  const paced = o.paced ?? (<T>(fn: () => Promise<T>) => fn());
  const uuid = o.node.uuid;
  const held = o.current.username;
  const rec: OobRecord = {
    node: o.node.name ?? uuid, nodeUuid: uuid, path: 'out-of-band', startedAt: now().toISOString(), finishedAt: '', outcome: 'failed',
    resumable: false, resumed: o.pending !== undefined, failedStep: null, error: null, warnings: [],
    initial: { provisionState: o.node.provision_state, username: typeof o.node.driver_info.ipmi_username === 'string' ? o.node.driver_info.ipmi_username : null },
    next: { username: o.nextUsername, secretId: null, secretState: null, store: o.store.kind },
    engine: { userId: null, sessionUserId: null, changed: null, requests: 0, actions: [] },
    applied: [], rolledBack: [], current: { username: held, note: 'unchanged: the credential Ironic held before the rotation' }, ipmiSessions: 0, steps: [],
  };
  const mark = (step: OobStepName, status: OobStep['status'], detail: string): void => {
    rec.steps.push({ step, status, at: now().toISOString(), detail });
    log(`rotate ${rec.node}: ${step} ${status}${detail ? `: ${detail}` : ''}`);
  };
  const run = async <T>(step: OobStepName, fn: () => Promise<T>, detail: (v: T) => string): Promise<T> => {
    try {
      const v = await fn();
      mark(step, 'ok', detail(v));
      return v;
    } catch (err) {
      const msg = (err as Error).message;
      mark(step, 'failed', msg);
      throw new StepFailure(step, msg);
    }
  };
  const login = async (cred: BmcCredential): Promise<LoginResult> => {
    // One login, and again only when the BMC did not answer or had no session free:
    // a refused password is never retried (each refusal counts toward LAN parameter 26).
    let r: LoginResult | undefined;
    for (let i = 0; i < 3; i++) {
      if (i) await new Promise((res) => setTimeout(res, 1000 * 2 ** i));
      r = await paced(() => o.access.login(o.bmc, cred));
      rec.ipmiSessions++;
      if (r.verdict === 'ok' || r.verdict === 'rejected') break;
    }
    return r as LoginResult;
  };

  let secret: Secret | undefined;
  let entry: SecretEntry | undefined;
  let engineTouched = false;
  let ironicUpdated = false;
  let storeCurrent = false;
  try {
    if (o.pending) {
      entry = o.pending.entry;
      secret = o.pending.secret;
      mark('resume-pending', 'ok', `entry ${entry.id} for ${entry.username}, left pending by an earlier run: reused, no new password generated`);
    } else {
      secret = (o.generate ?? (() => generatePassword(0)))();
      entry = await run('store-pending', () => o.store.putPending(uuid, o.nextUsername, secret as Secret), (e) => `entry ${e.id} for ${o.nextUsername} in the ${o.store.kind} store`);
    }
    rec.next.secretId = entry.id;
    rec.next.secretState = 'pending';

    await run('set-out-of-band', async () => {
      let transport: Transport | undefined;
      let guard: SessionUserGuard | undefined;
      try {
        return await paced(async () => {
          transport = o.access.openTransport(o.bmc, o.current);
          const uid = await sessionUserId(transport, o.ipmiTimeoutMs ?? 5000);
          rec.engine.sessionUserId = uid;
          guard = new SessionUserGuard(transport, uid);
          const svc = new CredentialService({
            transport: guard, stateDir: o.journalDir, timeoutMs: o.ipmiTimeoutMs ?? 5000,
            retry: { attempts: o.ipmiAttempts ?? 3, initialDelayMs: 200, maxDelayMs: 2000 },
          });
          // A change an earlier run left half done on this node (its journal): rolled back first.
          const recovered = await svc.recover();
          if (recovered) rec.applied.push(`interrupted change of user ${recovered.userId} from an earlier run: ${recovered.outcome}`);
          engineTouched = true;
          const r = await svc.setCredentials({ username: o.nextUsername, password: secret as Secret, privilege: o.privilege ?? 'administrator' });
          rec.engine.userId = r.userId;
          rec.engine.changed = r.changed;
          rec.engine.actions = r.actions;
          rec.engine.requests = svc.requests;
          rec.applied.push(`BMC user ${r.userId} (${o.nextUsername}) set out-of-band, logged in as user ${uid} (${held})`);
          return r;
        });
      } catch (err) {
        if (err instanceof ServiceError && !UNSETTLED.has(err.code)) engineTouched = false;
        throw err;
      } finally {
        if (transport) {
          rec.ipmiSessions += sessionsOf(transport);
          await transport.close().catch(() => undefined);
        }
      }
    }, (r) => `user ${r.userId} ${o.nextUsername}: ${r.changed ? 'written' : 'already in place'}, read back (${r.requests} requests)`);
    engineTouched = true;

    await run('prove', async () => {
      const r = await login({ username: o.nextUsername, password: secret as Secret });
      if (r.verdict !== 'ok') throw new Error(`lanplus login as ${o.nextUsername} at ${o.bmc.host}:${o.bmc.port}: ${r.detail}`);
      return r;
    }, (r) => `lanplus login as ${o.nextUsername} at ${o.bmc.host}:${o.bmc.port} (${r.elapsedMs} ms)`);

    await run('update-ironic', async () => {
      try {
        await o.ironic.patchDriverInfo(uuid, { ipmi_username: o.nextUsername, ipmi_password: secret as Secret });
      } catch (err) {
        // The answer may be lost after Ironic applied it: what it holds now decides.
        const n = await o.ironic.node(uuid).catch(() => undefined);
        if (n?.driver_info.ipmi_username !== o.nextUsername) throw err;
      }
      ironicUpdated = true;
      rec.applied.push(`Ironic driver_info now logs in as ${o.nextUsername}`);
      rec.current = { username: o.nextUsername, note: 'proven over lanplus; in Ironic driver_info' };
    }, () => `driver_info ipmi_username=${o.nextUsername}, ipmi_password updated`);

    await run('ironic-check', async () => {
      const n = await o.ironic.node(uuid);
      if (n.driver_info.ipmi_username !== o.nextUsername) throw new Error(`Ironic's driver_info names ${String(n.driver_info.ipmi_username)} after the update`);
      return n;
    }, () => `Ironic's driver_info reads back ipmi_username=${o.nextUsername}`);

    try {
      await o.store.markCurrent(uuid, entry.id);
      storeCurrent = true;
      rec.next.secretState = 'current';
      mark('store-current', 'ok', `entry ${entry.id} current`);
    } catch (err) {
      rec.warnings.push(`store entry ${entry.id} stays pending (${(err as Error).message}); it is the password Ironic uses, and the next run marks it current`);
      mark('store-current', 'failed', (err as Error).message);
    }

    if (await retire(o, rec, secret, held, storeCurrent, mark, paced, rec.engine.sessionUserId ?? undefined)) rec.outcome = 'rotated';
  } catch (err) {
    const f = err instanceof StepFailure ? err : new StepFailure('store-pending', (err as Error).message);
    rec.failedStep = f.step;
    rec.error = f.message;
    await recover(o, rec, { entry, secret, engineTouched, ironicUpdated, held, paced });
  } finally {
    if (!o.pending) secret?.dispose();
    rec.finishedAt = now().toISOString();
  }
  return rec;
}

/**
 * Disables `username` logged in as `as`, read back; tried again (a new session
 * each time, with back-off) while the failure is the session's, not the user's.
 */
export async function retireVerified(
  o: Pick<OobOptions, 'access' | 'bmc' | 'ipmiTimeoutMs' | 'retireAttempts' | 'retireDelayMs'>, as: BmcCredential, username: string,
  paced: <T>(fn: () => Promise<T>) => Promise<T>, knownId?: number,
): Promise<RetireResult & { tries: number }> {
  const { last, tries } = await retryRetirement(
    () => paced(() => retireUser(o.access, o.bmc, as, username, { ...(knownId !== undefined ? { knownId } : {}), ...(o.ipmiTimeoutMs !== undefined ? { timeoutMs: o.ipmiTimeoutMs } : {}) })),
    { ...(o.retireAttempts !== undefined ? { attempts: o.retireAttempts } : {}), ...(o.retireDelayMs !== undefined ? { delayMs: o.retireDelayMs } : {}) },
  );
  return { ...last, sessions: tries.reduce((n, t) => n + t.sessions, 0), tries: tries.length };
}

/**
 * The previous user retired (as the new one), superseded values deleted. False
 * when the previous user could not be shown disabled: the rotation is then not
 * done (failed at retire-previous, resumable), whatever else holds.
 */
async function retire(
  o: OobOptions, rec: OobRecord, secret: Secret, previous: string, storeCurrent: boolean,
  mark: (step: OobStepName, status: OobStep['status'], detail: string) => void, paced: <T>(fn: () => Promise<T>) => Promise<T>, knownId?: number,
): Promise<boolean> {
  let retired = false;
  let failure: string | null = null;
  if (o.retirePrevious === false) {
    mark('retire-previous', 'skipped', `${previous} left enabled (keep previous)`);
  } else if (previous === o.nextUsername) {
    mark('retire-previous', 'skipped', 'no previous user');
  } else {
    const r = await retireVerified(o, { username: o.nextUsername, password: secret }, previous, paced, knownId);
    rec.ipmiSessions += r.sessions;
    const tries = r.tries > 1 ? ` (${r.tries} tries)` : '';
    if (r.ok) {
      retired = true;
      rec.applied.push(`previous BMC user ${previous} disabled`);
      mark('retire-previous', 'ok', `${r.detail}${tries}`);
    } else {
      failure = `previous BMC user ${previous} not retired${tries}: ${r.detail}`;
      rec.retryable = r.transient;
      mark('retire-previous', 'failed', failure);
    }
  }
  if (storeCurrent) {
    try {
      const n = await o.store.deleteSuperseded(o.node.uuid, { keep: retired || o.retirePrevious !== false ? 0 : 1 });
      mark('delete-superseded', 'ok', `${n} superseded or failed value(s) deleted`);
    } catch (err) {
      rec.warnings.push(`superseded values not deleted: ${(err as Error).message}`);
      mark('delete-superseded', 'failed', (err as Error).message);
    }
  }
  if (failure) {
    // Ironic holds the new, proven credential; only the retirement is missing, and the
    // next take-up (or run) does it logged in as that credential.
    rec.failedStep = 'retire-previous';
    rec.error = failure;
    rec.resumable = true;
    return false;
  }
  return true;
}

/** After a failed step, before Ironic holds the new credential: the new user disabled again, the entry failed — or left pending to resume. */
async function recover(
  o: OobOptions, rec: OobRecord,
  s: { entry: SecretEntry | undefined; secret: Secret | undefined; engineTouched: boolean; ironicUpdated: boolean; held: string; paced: <T>(fn: () => Promise<T>) => Promise<T> },
): Promise<void> {
  if (!s.entry) return;
  if (s.ironicUpdated) {
    rec.resumable = true;
    rec.warnings.push(`store entry ${s.entry.id} stays pending: it is the password Ironic now uses; the next run finishes`);
    return;
  }
  if (rec.failedStep === 'set-out-of-band' && s.engineTouched) {
    // The engine could not restore the slot (or could not be asked): its journal is kept and the
    // pending password may be on the BMC. The next run rolls the journal back and redoes the change
    // with this same password.
    rec.resumable = true;
    rec.warnings.push(`store entry ${s.entry.id} stays pending: user ${o.nextUsername} may hold it; the next run rolls back the interrupted change and redoes it with the same password`);
    return;
  }
  if (rec.failedStep === 'prove' || rec.failedStep === 'update-ironic' || rec.failedStep === 'ironic-check') {
    // The new user is enabled with a password Ironic does not know: disable it again, logged in as Ironic's user, read back.
    const r = await retireVerified(o, o.current, o.nextUsername, s.paced, rec.engine.userId ?? undefined);
    rec.ipmiSessions += r.sessions;
    if (!r.ok) {
      rec.resumable = true;
      rec.warnings.push(`new BMC user ${o.nextUsername} could not be disabled again (${r.detail}); store entry ${s.entry.id} stays pending and the next run resumes with it`);
      return;
    }
    rec.rolledBack.push(`new BMC user ${o.nextUsername} disabled again`);
  }
  try {
    await o.store.markFailed(o.node.uuid, s.entry.id, `out-of-band rotation failed at ${rec.failedStep}`);
    rec.next.secretState = 'failed';
    rec.rolledBack.push(`store entry ${s.entry.id} marked failed`);
  } catch (err) {
    rec.resumable = true;
    rec.warnings.push(`store entry ${s.entry.id} could not be marked failed: ${(err as Error).message}`);
  }
}

/**
 * Finishes a rotation an earlier run committed to Ironic but could not record:
 * Ironic holds the pending entry's user. That credential is proven, the entry
 * marked current, and the previous user retired.
 */
export async function finishCommitted(o: Omit<OobOptions, 'current' | 'nextUsername'> & { pending: { entry: SecretEntry; secret: Secret }; previous: string | null }): Promise<OobRecord> {
  const now = o.now ?? (() => new Date());
  const paced = o.paced ?? (<T>(fn: () => Promise<T>) => fn());
  const uuid = o.node.uuid;
  const { entry, secret } = o.pending;
  const rec: OobRecord = {
    node: o.node.name ?? uuid, nodeUuid: uuid, path: 'out-of-band', startedAt: now().toISOString(), finishedAt: '', outcome: 'failed', resumable: true, resumed: true,
    failedStep: null, error: null, warnings: [], initial: { provisionState: o.node.provision_state, username: entry.username },
    next: { username: entry.username, secretId: entry.id, secretState: 'pending', store: o.store.kind },
    engine: { userId: null, sessionUserId: null, changed: null, requests: 0, actions: [] },
    applied: [], rolledBack: [], current: { username: entry.username, note: 'in Ironic driver_info (committed by an earlier run)' }, ipmiSessions: 0, steps: [],
  };
  const mark = (step: OobStepName, status: OobStep['status'], detail: string): void => {
    rec.steps.push({ step, status, at: now().toISOString(), detail });
    o.log?.(`rotate ${rec.node}: ${step} ${status}${detail ? `: ${detail}` : ''}`);
  };
  mark('resume-pending', 'ok', `Ironic already logs in as ${entry.username} (entry ${entry.id}, left pending by an earlier run)`);
  try {
    const r = await paced(() => o.access.login(o.bmc, { username: entry.username, password: secret }));
    rec.ipmiSessions++;
    if (r.verdict !== 'ok') throw new StepFailure('prove', `Ironic's credential ${entry.username} does not log in: ${r.detail}`);
    mark('prove', 'ok', `lanplus login as ${entry.username} (${r.elapsedMs} ms)`);
    await o.store.markCurrent(uuid, entry.id).catch((err: Error) => {
      throw new StepFailure('store-current', err.message);
    });
    rec.next.secretState = 'current';
    mark('store-current', 'ok', `entry ${entry.id} current`);
    const prev = o.previous;
    if (await retire({ ...o, current: { username: entry.username, password: secret }, nextUsername: entry.username }, rec, secret, prev ?? entry.username, true, mark, paced)) {
      rec.outcome = 'rotated';
      rec.resumable = false;
    }
  } catch (err) {
    const f = err instanceof StepFailure ? err : new StepFailure('prove', (err as Error).message);
    rec.failedStep = f.step;
    rec.error = f.message;
    mark(f.step, 'failed', f.message);
  } finally {
    rec.finishedAt = now().toISOString();
  }
  return rec;
}
