/**
 * Scenario 2, explicit request: rotate one node's BMC credential through
 * Ironic's public REST API and the agent's `deploy.set_bmc_credentials` step,
 * with no lock-out at any point.
 *
 * ## Two user slots
 * The new password never goes to the user Ironic is logged in as. A node
 * alternates between two BMC users, `<U>` and `<U>_b` (or a configured pair):
 * the rotation writes the one Ironic does not hold, so the credential in
 * Ironic's driver_info keeps working until the new one is proven out-of-band
 * and Ironic holds it. Only then is the previous user disabled (§22.30 op 0),
 * and the next rotation overwrites its password and enables it again.
 *
 * ## Order, and why each failure point is safe
 *  1. read-node — refuse nodes in maintenance, without an ipmi_address, or not
 *     `manageable`/`available`. Nothing applied.
 *  1b. seal — find the certificate of the node's running agent (the one Ironic
 *     pinned from agent_verify_ca, or `agentCertificate`): the password goes
 *     into the step args sealed to it (conductor/seal.ts), since Ironic keeps
 *     step args unmasked. None: refused, nothing applied — unless
 *     `allowPlainArgs`, which sends it plain with a warning in the record.
 *  2. store-pending — the new password is stored as *pending* before it goes
 *     anywhere, so a password that may reach the BMC is never only in memory.
 *     Store down (e.g. Barbican): nothing applied, Ironic's credential untouched.
 *  3. manage (from `available` only) — a state change Ironic undoes with `provide`.
 *  4. clean — manual clean with set_bmc_credentials for the *other* user. If
 *     it fails (agent dies, BMC stops answering, step error), Ironic still
 *     holds the previous user, whose slot was not touched; the agent rolls
 *     its own write back, and if it died mid-write the other slot holds at
 *     most the pending password (recorded as failed in the store). The node is
 *     moved from `clean failed` back to `manageable`.
 *  5. prove — ipmitool lanplus `mc info` with the new user at the BMC address
 *     Ironic uses. Failure: driver_info untouched, previous user still works.
 *  6. update-ironic — PATCH driver_info ipmi_username/ipmi_password.
 *     Failure: Ironic keeps the previous (working) credential.
 *  7. ironic-power-check — Ironic reaches the BMC with driver_info, by a call
 *     that only reads: Ironic has no read-only power API, so the state is
 *     first read from the BMC itself (lanplus `power status`, new user), and
 *     Ironic is asked for exactly that state, which its conductor reads from
 *     the BMC and skips (never the state its database holds: a stale one
 *     would make it act). Failure: driver_info is put back to the previous
 *     credential when the store knows its password; the previous user is
 *     still enabled.
 *  8. store-current — mark the new entry current (the old one superseded).
 *     Failure: Ironic holds the new, proven credential; the store still has
 *     it as *pending*, so it is not lost; the previous user stays enabled.
 *  9. retire-previous — disable the previous user over lanplus, logged in as
 *     the new one, and read it back; a busy or silent BMC is tried again with
 *     back-off. Failure: the rotation fails at this step (the previous
 *     password may still log in), nothing is rolled back (Ironic's new
 *     credential is proven and current) and the next rotation, which writes
 *     to that user, retires its password.
 * 10. delete-superseded — drop superseded values from the store (kept when
 *     the previous user could not be retired, since it still logs in).
 * 11. return-node — `provide` back to `available` if that is where it was.
 *
 * Every run ends in a {@link RotationRecord}: node, each step with its
 * outcome, what was applied, what was rolled back, and which credential
 * Ironic holds (and that works) now. No record or log line holds a password.
 */
import type { Secret } from '../service/secret.js';
import { checkWireParams } from '../service/credential-contract.js';
import { generatePassword } from '../service/password-generator.js';
import { endpointFromDriverInfo, ironicPowerCheck, retryRetirement, type BmcEndpoint, type BmcProver } from './bmc-proof.js';
import { pinnedCertificate, recipientFromCertificate, SEALED_PURPOSE, sealPassword, type SealRecipient } from './seal.js';
import type { IronicApi, IronicNodeView } from './ironic-api.js';

/** The Ironic calls a rotation makes (IronicApi implements them over REST). */
export type IronicPort = Pick<IronicApi, 'node' | 'provision' | 'power' | 'patchDriverInfo' | 'waitForProvision' | 'waitForPower'> & Partial<Pick<IronicApi, 'clearMaintenance'>>;
import type { SecretEntry, SecretState, SecretStore } from './secret-store.js';

/** The step names are declared with the failure table both rotations share (service/rotation-failures.ts). */
import type { RotationStepName } from '../service/rotation-failures.js';
export type { RotationStepName };

export interface RotationStep {
  step: RotationStepName;
  status: 'ok' | 'failed' | 'skipped';
  at: string;
  detail: string;
}

export interface RotationRecord {
  node: string;
  nodeUuid: string | null;
  startedAt: string;
  finishedAt: string;
  outcome: 'rotated' | 'failed';
  failedStep: RotationStepName | null;
  error: string | null;
  warnings: string[];
  initial: { provisionState: string | null; powerState: string | null; username: string | null };
  /** The user the rotation wrote, and its store entry. */
  next: { username: string | null; secretId: string | null; secretState: SecretState | null; store: string };
  /** How the password travelled in the step args Ironic keeps: sealed to the agent's key (its id), or plain. */
  stepArgs?: { password: 'sealed' | 'plain' | null; agentKeyId: string | null; certificate: string | null };
  applied: string[];
  rolledBack: string[];
  /** The credential Ironic holds at the end, which works. */
  current: { username: string | null; note: string };
  steps: RotationStep[];
}

export interface RotateOptions {
  node: string;
  ironic: IronicPort;
  store: SecretStore;
  prover: BmcProver;
  /** The two users a node alternates between. */
  usernames: readonly [string, string];
  privilege?: 'administrator' | 'operator';
  /** Disable the previous user once the new one is current (default true). */
  retirePrevious?: boolean;
  /** Tries at retiring the previous user when the failure may pass (the BMC busy or silent), default 3. */
  retireAttempts?: number;
  /** Back-off before the second try, doubled each time, default 2 s. */
  retireDelayMs?: number;
  /** Default: the first BMC-safe policy (16 characters, fits every BMC). */
  generate?: () => Secret;
  /** The clean (reboot, agent, step, power off), default 30 min. */
  cleanTimeoutMs?: number;
  /**
   * The agent's certificate PEM to seal the password to (`--agent-cert`);
   * default: the one Ironic pinned for the node's running agent.
   */
  agentCertificate?: string;
  /** Reads the pinned certificate at the path in driver_internal_info.agent_verify_ca (default fs). */
  readCertificate?: (path: string) => Promise<string>;
  /** Send the password in plain step args when there is no agent certificate to seal to (Ironic keeps them unmasked). */
  allowPlainArgs?: boolean;
  /** Other provision/power transitions, default 5 min. */
  stateTimeoutMs?: number;
  /**
   * The node's pending entry an earlier, interrupted run left for the user
   * this rotation writes: its password is sent again instead of a new one, so
   * a node never has two pending secrets. The caller keeps (and disposes) it.
   */
  pending?: { entry: SecretEntry; secret: Secret };
  log?: (line: string) => void;
  now?: () => Date;
}

class StepFailure extends Error {
  constructor(readonly step: RotationStepName, message: string) {
    super(message);
  }
}

export const STEP_INTERFACE = 'deploy';
export const STEP_NAME = 'set_bmc_credentials';

/** The user of the pair Ironic does not hold now. */
export function nextUsername(pair: readonly [string, string], held: string | null): string {
  return held === pair[0] ? pair[1] : pair[0];
}

/** What the credential contract refuses in the args this rotation would send (either user of the pair), or null. */
export function refusedStepArgs(opts: Pick<RotateOptions, 'usernames' | 'privilege'>): string | null {
  for (const username of opts.usernames) {
    const v = checkWireParams({ username, generate: true, privilege: opts.privilege ?? 'administrator' });
    if (v) return `step arg ${v.field}${v.field === 'username' ? ` (user ${JSON.stringify(username)})` : ''}: ${v.message}`;
  }
  return null;
}

export async function rotate(opts: RotateOptions): Promise<RotationRecord> {
  const now = opts.now ?? (() => new Date());
  const log = opts.log ?? (() => undefined);
  const stateTimeout = opts.stateTimeoutMs ?? 300_000;
  const rec: RotationRecord = {
    node: opts.node, nodeUuid: null, startedAt: now().toISOString(), finishedAt: '', outcome: 'failed', failedStep: null, error: null, warnings: [],
    initial: { provisionState: null, powerState: null, username: null },
    next: { username: null, secretId: null, secretState: null, store: opts.store.kind },
    stepArgs: { password: null, agentKeyId: null, certificate: null },
    applied: [], rolledBack: [], current: { username: null, note: '' }, steps: [],
  };
  const mark = (step: RotationStepName, status: RotationStep['status'], detail: string): void => {
    rec.steps.push({ step, status, at: now().toISOString(), detail });
    log(`rotate ${opts.node}: ${step} ${status}${detail ? `: ${detail}` : ''}`);
  };
  const run = async <T>(step: RotationStepName, fn: () => Promise<T>, detail: (v: T) => string): Promise<T> => {
    try {
      const v = await fn();
      mark(step, 'ok', detail(v));
      return v;
    } catch (err) {
      const msg = err instanceof StepFailure ? err.message : (err as Error).message;
      mark(step, 'failed', msg);
      throw new StepFailure(step, msg);
    }
  };

  // The step args, checked by the credential contract before Ironic is contacted:
  // a request the agent would refuse must not reboot the node into the ramdisk first.
  const refused = refusedStepArgs(opts);
  if (refused) {
    mark('check-request', 'failed', refused);
    rec.failedStep = 'check-request';
    rec.error = refused;
    rec.current = { username: null, note: 'Ironic was not contacted' };
    rec.finishedAt = now().toISOString();
    return rec;
  }

  let node: IronicNodeView | undefined;
  let entry: SecretEntry | undefined;
  let secret: Secret | undefined;
  let bmc: BmcEndpoint | undefined;
  let movedToManageable = false;
  let ironicUpdated = false;
  let storeCurrent = false;

  try {
    node = await run('read-node', async () => {
      const n = await opts.ironic.node(opts.node);
      if (n.maintenance) throw new Error('node is in maintenance; a rotation needs Ironic to reach the BMC');
      if (!['manageable', 'available'].includes(n.provision_state) || n.target_provision_state) {
        throw new Error(`node is "${n.provision_state}"${n.target_provision_state ? ` → ${n.target_provision_state}` : ''}; rotate needs manageable or available`);
      }
      return n;
    }, (n) => `${n.uuid} ${n.provision_state}, ${n.power_state ?? 'power unknown'}, Ironic logs in as ${String(n.driver_info.ipmi_username ?? '(none)')}`);
    rec.nodeUuid = node.uuid;
    const held = typeof node.driver_info.ipmi_username === 'string' ? node.driver_info.ipmi_username : null;
    rec.initial = { provisionState: node.provision_state, powerState: node.power_state, username: held };
    rec.current = { username: held, note: 'unchanged: the credential Ironic held before the rotation' };
    try {
      bmc = endpointFromDriverInfo(node.driver_info);
    } catch (err) {
      mark('read-node', 'failed', (err as Error).message);
      throw new StepFailure('read-node', (err as Error).message);
    }
    const username = nextUsername(opts.usernames, held);
    rec.next.username = username;
    const uuid = node.uuid;

    const recipient = await run('seal', async (): Promise<SealRecipient | null> => {
      const pinned = opts.agentCertificate !== undefined
        ? { pem: opts.agentCertificate, source: 'the given agent certificate' }
        : await pinnedCertificate((node as IronicNodeView).driver_internal_info as Record<string, unknown> | undefined, opts.readCertificate);
      if (pinned) return recipientFromCertificate(pinned.pem, pinned.source, now());
      if (opts.allowPlainArgs) return null;
      throw new Error('no agent certificate to seal the password to: Ironic has pinned none for this node (no agent running with auto-TLS now; '
        + 'with [deploy]fast_track the running agent\'s certificate is pinned and kept through the clean). Give --agent-cert, '
        + 'or --allow-plain-args to send the password in plain step args, which Ironic keeps unmasked');
    }, (r) => (r ? `the password goes sealed to the agent key ${r.kid} (certificate ${r.source}, valid until ${r.notAfter.toISOString()})` : 'no agent certificate: the password goes in PLAIN step args (--allow-plain-args)'));
    if (recipient) {
      rec.stepArgs = { password: 'sealed', agentKeyId: recipient.kid, certificate: recipient.source };
    } else {
      rec.steps[rec.steps.length - 1]!.status = 'skipped';
      rec.stepArgs = { password: 'plain', agentKeyId: null, certificate: null };
      rec.warnings.push(`PLAIN PASSWORD IN STEP ARGS: no agent certificate to seal to, and --allow-plain-args was given; Ironic keeps the password of ${username} unmasked in driver_internal_info.clean_steps and its API returns it — rotate again with a sealed password to retire it`);
    }

    if (opts.pending && opts.pending.entry.username === username && opts.pending.entry.state === 'pending') {
      secret = opts.pending.secret;
      entry = opts.pending.entry;
      mark('store-pending', 'ok', `entry ${entry.id} for ${username}, left pending by an earlier run: reused, no new password generated`);
    } else {
      secret = (opts.generate ?? (() => generatePassword(0)))();
      entry = await run('store-pending', () => opts.store.putPending(uuid, username, secret as Secret), (e) => `entry ${e.id} for ${username} in the ${opts.store.kind} store`);
    }
    rec.next.secretId = entry.id;
    rec.next.secretState = 'pending';

    if (node.provision_state === 'available') {
      await run('manage', async () => {
        await opts.ironic.provision(uuid, 'manage');
        movedToManageable = true;
        rec.applied.push('node moved available → manageable');
        await opts.ironic.waitForProvision(uuid, ['manageable'], stateTimeout);
      }, () => 'available → manageable');
    }

    await run('clean', async () => {
      rec.applied.push(`manual clean started: ${STEP_INTERFACE}.${STEP_NAME} for BMC user ${username}`);
      const password = recipient
        ? { password_sealed: sealPassword(recipient, secret as Secret, { node: uuid, user: username, purpose: SEALED_PURPOSE }) }
        : { password: (secret as Secret).reveal() };
      await opts.ironic.provision(uuid, 'clean', {
        clean_steps: [{ interface: STEP_INTERFACE, step: STEP_NAME, args: { username, ...password, privilege: opts.privilege ?? 'administrator' } }],
      });
      const done = await opts.ironic.waitForProvision(uuid, ['manageable', 'clean failed'], opts.cleanTimeoutMs ?? 1_800_000);
      if (done.provision_state !== 'manageable') {
        throw new Error(`clean failed: ${done.last_error ?? '(no last_error)'}; BMC user ${username} may hold the pending password, ${held ?? 'the previous user'} is untouched`);
      }
      rec.applied.push(`BMC user ${username} set in-band by the agent`);
    }, () => `BMC user ${username} set in-band; node back to manageable`);

    await run('prove', async () => {
      const p = await opts.prover.prove(bmc as BmcEndpoint, { username, password: secret as Secret });
      if (!p.ok) throw new Error(`lanplus login as ${username} at ${bmc?.host}:${bmc?.port} failed after ${p.attempts} attempt(s): ${p.detail}`);
      return p;
    }, (p) => `lanplus login as ${username} at ${bmc?.host}:${bmc?.port} (attempt ${p.attempts})`);

    await run('update-ironic', async () => {
      await opts.ironic.patchDriverInfo(uuid, { ipmi_username: username, ipmi_password: secret as Secret });
      ironicUpdated = true;
      rec.applied.push(`Ironic driver_info now logs in as ${username}`);
      rec.current = { username, note: 'proven over lanplus; in Ironic driver_info' };
    }, () => `driver_info ipmi_username=${username}, ipmi_password updated`);

    await run('ironic-power-check', () => ironicPowerCheck(opts.ironic, opts.prover, uuid, bmc as BmcEndpoint, { username, password: secret as Secret }, stateTimeout),
      (p) => `Ironic's power status call as ${username} answered ${p}`);

    await run('store-current', () => opts.store.markCurrent(uuid, (entry as SecretEntry).id), (e) => `entry ${e.id} current`);
    storeCurrent = true;
    rec.next.secretState = 'current';

    let retired = false;
    let unretired: string | null = null;
    if (opts.retirePrevious === false || !held || held === username) {
      mark('retire-previous', 'skipped', opts.retirePrevious === false ? 'asked to keep the previous user' : 'no previous user to retire');
    } else {
      // A rotation after a leak exists to make the previous password useless:
      // the previous user must read back disabled before the node is called
      // rotated. A busy or silent BMC is tried again with back-off.
      const { last: r, tries: all } = await retryRetirement(() => opts.prover.retire(bmc as BmcEndpoint, { username, password: secret as Secret }, held), {
        ...(opts.retireAttempts !== undefined ? { attempts: opts.retireAttempts } : {}),
        ...(opts.retireDelayMs !== undefined ? { delayMs: opts.retireDelayMs } : {}),
        onRetry: (failed, delay) => log(`rotate ${opts.node}: retire-previous: ${failed.detail}; trying again in ${delay} ms`),
      });
      const tries = all.length;
      if (r.ok) {
        retired = true;
        rec.applied.push(`previous BMC user ${held} disabled`);
        mark('retire-previous', 'ok', `${r.detail}${tries > 1 ? ` (try ${tries})` : ''}`);
      } else {
        unretired = `previous BMC user ${held} is still enabled after ${tries} tr${tries === 1 ? 'y' : 'ies'} (${r.detail}); Ironic logs in as ${username}, proven; rotate again to overwrite ${held}'s password`;
        mark('retire-previous', 'failed', r.detail);
      }
    }

    try {
      const n = await opts.store.deleteSuperseded(uuid, { keep: retired || !held || held === username ? 0 : 1 });
      mark('delete-superseded', 'ok', `${n} superseded or failed value(s) deleted`);
    } catch (err) {
      rec.warnings.push(`superseded values not deleted: ${(err as Error).message}`);
      mark('delete-superseded', 'failed', (err as Error).message);
    }

    if (movedToManageable) {
      try {
        await opts.ironic.provision(uuid, 'provide');
        await opts.ironic.waitForProvision(uuid, ['available'], stateTimeout);
        mark('return-node', 'ok', 'manageable → available');
      } catch (err) {
        rec.warnings.push(`node left manageable: ${(err as Error).message}`);
        mark('return-node', 'failed', (err as Error).message);
      }
    }
    if (unretired) {
      // Not rolled back: Ironic's new credential is proven and current. The
      // rotation failed at its last purpose, retiring the previous password.
      rec.failedStep = 'retire-previous';
      rec.error = unretired;
    } else {
      rec.outcome = 'rotated';
    }
  } catch (err) {
    const f = err instanceof StepFailure ? err : new StepFailure('read-node', (err as Error).message);
    rec.failedStep = f.step;
    rec.error = f.message;
    await recover(opts, rec, { node, entry, secret, movedToManageable, ironicUpdated, storeCurrent, stateTimeout, mark });
  } finally {
    if (secret !== opts.pending?.secret) secret?.dispose();
    rec.finishedAt = now().toISOString();
  }
  return rec;
}

interface RecoverState {
  node: IronicNodeView | undefined;
  entry: SecretEntry | undefined;
  secret: Secret | undefined;
  movedToManageable: boolean;
  ironicUpdated: boolean;
  storeCurrent: boolean;
  stateTimeout: number;
  mark: (step: RotationStepName, status: RotationStep['status'], detail: string) => void;
}

/** After a failed step: put Ironic back on a working credential, the node back where it was, and the store entry in a final state. */
async function recover(opts: RotateOptions, rec: RotationRecord, s: RecoverState): Promise<void> {
  const uuid = s.node?.uuid;
  if (!uuid) return;
  const held = rec.initial.username;
  // Ironic was switched but its own power call failed: switch back when the store knows the previous password.
  if (s.ironicUpdated && !s.storeCurrent && rec.failedStep === 'ironic-power-check') {
    try {
      const prev = await opts.store.getCurrent(uuid);
      if (prev && prev.entry.username === held) {
        await opts.ironic.patchDriverInfo(uuid, { ipmi_username: held as string, ipmi_password: prev.secret });
        prev.secret.dispose();
        rec.rolledBack.push(`Ironic driver_info back to ${held}`);
        rec.current = { username: held, note: 'restored: the credential Ironic held before; its BMC user was never changed' };
      } else {
        rec.warnings.push(`Ironic keeps ${rec.next.username} (proven over lanplus); the store has no password for ${held ?? 'the previous user'} to switch back to`);
      }
    } catch (err) {
      rec.warnings.push(`could not switch Ironic back to ${held}: ${(err as Error).message}`);
    }
  }
  if (s.entry && !s.storeCurrent) {
    if (s.ironicUpdated && rec.current.username === rec.next.username) {
      rec.warnings.push(`store entry ${s.entry.id} stays pending: it is the password Ironic now uses`);
    } else {
      try {
        await opts.store.markFailed(uuid, s.entry.id, `rotation failed at ${rec.failedStep}`);
        rec.next.secretState = 'failed';
        rec.rolledBack.push(`store entry ${s.entry.id} marked failed`);
      } catch (err) {
        rec.warnings.push(`store entry ${s.entry.id} could not be marked failed: ${(err as Error).message}`);
      }
    }
  }
  try {
    let n = await opts.ironic.node(uuid);
    if (n.target_provision_state && !n.provision_state.endsWith('failed')) {
      n = await opts.ironic.waitForProvision(uuid, ['manageable', 'available', 'clean failed'], s.stateTimeout);
    }
    if (n.provision_state === 'clean failed') {
      await opts.ironic.provision(uuid, 'manage');
      await opts.ironic.waitForProvision(uuid, ['manageable'], s.stateTimeout);
      rec.rolledBack.push('node moved clean failed → manageable');
      // Ironic 21.4 sets maintenance (fault "clean failure") when a clean *step*
      // fails. The rotation refused a node already in maintenance, so this flag
      // came with its failed step: clear it, or the next rotation would be
      // refused too. (The API version used here predates the `fault` field.)
      const after = await opts.ironic.node(uuid);
      if (after.maintenance && opts.ironic.clearMaintenance) {
        await opts.ironic.clearMaintenance(uuid);
        rec.rolledBack.push('maintenance (fault "clean failure") that Ironic set when the step failed: cleared');
      }
    }
    if (s.movedToManageable) {
      await opts.ironic.provision(uuid, 'provide');
      await opts.ironic.waitForProvision(uuid, ['available'], s.stateTimeout);
      rec.rolledBack.push('node moved manageable → available');
    }
    s.mark('return-node', 'ok', `node ${(await opts.ironic.node(uuid)).provision_state}`);
  } catch (err) {
    rec.warnings.push(`node not returned to ${rec.initial.provisionState}: ${(err as Error).message}`);
    s.mark('return-node', 'failed', (err as Error).message);
  }
}
