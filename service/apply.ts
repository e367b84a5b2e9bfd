/**
 * Runs a {@link Plan}: journal, then its writes in order (with the retry rules
 * of bmc-client.ts and the vendor fall-backs each command names), then its
 * checks; on any failure after the first write, the plan's own undo. Nothing
 * here decides what to write: that is plan.ts. The same undo runner restores
 * a slot after a crash, from the journal (`runUndo`).
 */
import { CC } from '../ipmi-kcs/completion-codes.js';
import { IpmiCompletionCodeError, IpmiError, IpmiTimeoutError } from '../ipmi-kcs/errors.js';
import { PasswordOp } from '../ipmi-kcs/spec.js';
import type { BmcClient } from './bmc-client.js';
import type { BmcReader } from './bmc-reader.js';
import { ServiceError } from './errors.js';
import {
  enableRequest, getUserAccess, getUserName, MalformedResponseError, parseUserAccess, parseUserName, passwordRequest,
  setChannelAccess, setUserAccess, setUserName, setUserPrivilege, wipe, type PasswordSize, type UserAccess,
} from './ipmi-commands.js';
import type { Journal, JournalRecord } from './journal.js';
import type { SlotSnapshot } from './journal.js';
import type { Logger } from './logger.js';
import { generatePassword } from './password-generator.js';
import { blocksLogin, enabledOf, passwordAction, sameAccess, undoSelected, type Command, type Plan, type Touch, type UndoStep } from './plan.js';
import type { Secret } from './secret.js';
import type { RollbackStep, SetCredentialsResult, Verification } from './types.js';

/**
 * Completion codes with which BMCs reject a password by policy: 0xCC (OpenBMC's
 * PAM path, Lenovo/Huawei), 0xC7 and 0xD5 — the codes MAAS moves to its next
 * candidate on (research/ipmi.md §5), plus 0xC8 (field length limit).
 */
const POLICY_REJECTION = new Set<number>([CC.INVALID_DATA_FIELD, CC.REQUEST_DATA_LENGTH_INVALID, CC.REQUEST_DATA_FIELD_LENGTH_EXCEEDED, CC.NOT_SUPPORTED_IN_PRESENT_STATE]);

export const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Secret-free facts about an IPMI failure for ServiceError details. */
export function failureFacts(err: unknown): Record<string, unknown> {
  if (err instanceof IpmiCompletionCodeError) return { completionCode: err.completionCode, codeName: err.codeName, netFn: err.netFn, cmd: err.cmd };
  if (err instanceof IpmiTimeoutError) return { timeout: true, netFn: err.netFn, cmd: err.cmd, timeoutMs: err.timeoutMs };
  if (err instanceof IpmiError) return { error: err.name, ...('code' in err ? { errno: (err as { code: unknown }).code } : {}) };
  if (err instanceof MalformedResponseError) return { malformedResponse: err.what };
  return { error: err instanceof Error ? err.name : typeof err };
}

/** A failed read as the engine's error: nothing was changed. */
export function bmcError(err: unknown, doing: string): ServiceError {
  if (err instanceof ServiceError) return err;
  return new ServiceError('BMC_ERROR', `${doing}: ${describe(err)}; nothing was changed`, { details: failureFacts(err), cause: err });
}

/** A read-back that disagreed with what was written. */
export class VerificationError extends Error {
  readonly verified: Partial<Verification>;
  constructor(message: string, verified: Partial<Verification>) {
    super(message);
    this.name = 'VerificationError';
    this.verified = verified;
  }
}

/** Sends one write of a plan or an undo, with the fall-back the command names (never a password: that is `apply`'s). */
async function send(client: BmcClient, command: Exclude<Command, { op: 'set-password' }>): Promise<void> {
  switch (command.op) {
    case 'set-user-name':
      await client.call(setUserName(command.userId, command.name), { what: `Set User Name (user ${command.userId})` });
      return;
    case 'set-enabled': {
      const uid = command.userId;
      const verb = command.enabled ? 'enable' : 'disable';
      const rsp = await client.call(enableRequest(uid, command.enabled), { what: `Set User Password ${verb} (user ${uid})`, accept: [CC.REQUEST_DATA_LENGTH_INVALID] });
      // Some BMCs want the 2-byte form of op 0/1 (freeipmi workaround).
      if (rsp.completionCode === CC.REQUEST_DATA_LENGTH_INVALID) await client.call(enableRequest(uid, command.enabled, true), { what: `Set User Password ${verb}, 2-byte form (user ${uid})` });
      return;
    }
    case 'set-user-access': {
      const { channel: ch, userId: uid, access } = command;
      const what = `Set User Access (channel ${ch}, user ${uid})`;
      if (!command.privilegeFirst) {
        await client.call(setUserAccess(ch, uid, access), { what });
        return;
      }
      const rsp = await client.call(setUserAccess(ch, uid, access), { what, accept: [CC.INVALID_DATA_FIELD] });
      if (rsp.completionCode === CC.INVALID_DATA_FIELD) {
        // Supermicro-like firmware refuses enabling IPMI messaging while the privilege
        // limit is still "no access" (canonical/maas bmc_config.py): privilege alone
        // first (byte 1 bit 7 clear leaves bits 6:4 untouched), then the whole set.
        await client.call(setUserPrivilege(ch, uid, access.privilege), { what: `${what}, privilege only` });
        await client.call(setUserAccess(ch, uid, access), { what });
      }
      return;
    }
    case 'set-channel-access':
      await client.call(setChannelAccess(command.channel, command.store, command.access), { what: `Set Channel Access (channel ${command.channel}, ${command.store})` });
      return;
  }
}

export interface RestoreOutcome {
  ok: boolean;
  steps: RollbackStep[];
  /** Facts the caller must know that are not failures (e.g. a password cannot be restored). */
  notes: string[];
}

/**
 * Runs undo steps (plan.ts `undoFor`), every one even when an earlier one
 * fails, each outcome reported; then reads the slot back and compares it with
 * the snapshot.
 */
export async function runUndo(client: BmcClient, prior: SlotSnapshot, undo: readonly UndoStep[], logger: Logger): Promise<RestoreOutcome> {
  const uid = prior.userId;
  const steps: RollbackStep[] = [];
  const notes: string[] = [];
  for (const s of undo) {
    if (s.kind === 'note') {
      notes.push(s.note);
      continue;
    }
    if (s.command.op === 'set-password') throw new TypeError('an undo never writes a password');
    try {
      await send(client, s.command);
      steps.push(s.note ? { action: s.action, ok: true, note: s.note } : { action: s.action, ok: true });
    } catch (err) {
      logger.error('roll-back step failed', { userId: uid, action: s.action, error: describe(err) });
      steps.push({ action: s.action, ok: false, error: describe(err) });
    }
  }

  // Read back and compare with the snapshot.
  try {
    const problems: string[] = [];
    const name = await client.call(getUserName(uid), { what: `Get User Name (user ${uid})`, accept: [CC.INVALID_DATA_FIELD, CC.PARAMETER_OUT_OF_RANGE, CC.NOT_PRESENT], minLength: 16 });
    const nameNow = name.completionCode === CC.OK ? parseUserName(name.data) : '';
    if (nameNow !== prior.name) problems.push(`name reads "${nameNow}", expected "${prior.name}"`);
    let enabledNow: boolean | null = null;
    let anyMessaging = false;
    for (const [chText, a] of Object.entries(prior.access)) {
      const ch = Number(chText);
      const now = parseUserAccess(await client.data(getUserAccess(ch, uid), { what: `Get User Access (channel ${ch}, user ${uid})`, minLength: 4 }));
      if (!sameAccess(now, a)) problems.push(`channel ${ch} access differs from before`);
      if (now.enableStatus !== null) enabledNow = now.enableStatus === 'enabled';
      anyMessaging ||= now.ipmiMessaging;
    }
    // Enable status "unspecified" (a slot never enabled/disabled, IPMI 1.5): judge by IPMI messaging.
    const enabled = enabledNow ?? anyMessaging;
    if (enabled !== prior.enabled) problems.push(`user reads ${enabled ? 'enabled' : 'disabled'}, expected ${prior.enabled ? 'enabled' : 'disabled'}`);
    steps.push(problems.length ? { action: `read back user ${uid}`, ok: false, error: problems.join('; ') } : { action: `read back user ${uid}`, ok: true });
  } catch (err) {
    steps.push({ action: `read back user ${uid}`, ok: false, error: describe(err) });
  }
  return { ok: steps.every((s) => s.ok), steps, notes };
}

export interface ApplyContext {
  client: BmcClient;
  /** The reader the plan was read with (its device and channel cache stay valid; user reads are dropped before verifying). */
  reader: BmcReader;
  logger: Logger;
  journal?: Journal | undefined;
  /** The request's password (a plan with a given password). */
  password?: Secret | undefined;
  randomInt?: ((max: number) => number) | undefined;
  /** The journal exists although recovery ran: a change of another process since. Run recovery again (it throws when it cannot). */
  recoverAgain: () => Promise<void>;
  /** `client.requests` when the change started reading: the result counts from there. */
  startRequests: number;
}

async function beginJournal(ctx: ApplyContext, plan: Plan): Promise<JournalRecord | undefined> {
  const journal = ctx.journal;
  if (!journal) return undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        return await journal.begin({ username: plan.username, prior: plan.snapshot.prior, channelAccess: plan.snapshot.channelAccess });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
        // Another process left (or is writing) a journal since recover(): same rules.
        await ctx.recoverAgain();
      }
    }
  } catch (err) {
    if (err instanceof ServiceError) throw err;
    throw new Error(`cannot write the change journal ${journal.path} (${describe(err)}); nothing was written to the BMC`, { cause: err });
  }
}

/** Journals, writes, verifies; on failure undoes and throws the ServiceError that says how it ended. */
export async function applyPlan(plan: Plan, ctx: ApplyContext): Promise<SetCredentialsResult> {
  const { client, logger } = ctx;
  const uid = plan.userId;
  const generated = plan.password.source === 'generated' ? plan.password.candidates : undefined;
  const gen = (policy: number): Secret => generatePassword(policy, ctx.randomInt ? { randomInt: ctx.randomInt } : {});
  let candidate = 0;
  let secret: Secret | undefined;
  try {
    const record = await beginJournal(ctx, plan);
    const actions: string[] = [];
    const touched = new Set<Touch>();
    let firstWrite = true;
    /** Writes that changed observable state (re-sent idempotent writes do not count). */
    let changes = 0;
    let size: PasswordSize = plan.password.source === 'given' ? plan.password.size : generated![0]!.size;
    const attempt = async (touch: Touch, run: () => Promise<unknown>): Promise<void> => {
      touched.add(touch);
      try {
        await run();
      } catch (err) {
        // A refused first write (a completion code, not a lost response) changed nothing.
        if (firstWrite && err instanceof IpmiCompletionCodeError) touched.clear();
        throw err;
      }
      firstWrite = false;
    };
    let verified: Verification;
    let policyNote: string | undefined;
    try {
      logger.info('changing BMC user', { userId: uid, username: plan.username, slot: plan.slot, channels: plan.channels, privilege: plan.privilege });
      for (const step of plan.steps) {
        if (step.kind === 'in-place') {
          actions.push(step.action);
          continue;
        }
        const command = step.command;
        if (command.op !== 'set-password') {
          await attempt(step.touches, () => send(client, command));
        } else {
          secret = generated ? gen(generated[0]!.policy) : ctx.password;
          if (!secret) throw new TypeError('a plan with a given password needs the password');
          for (;;) {
            size = generated ? generated[candidate]!.size : size;
            const pwReq = passwordRequest(uid, PasswordOp.SET_PASSWORD, secret, size);
            try {
              await attempt(step.touches, () => client.call(pwReq, { what: `Set User Password (user ${uid}, ${size}-byte form)` }));
              break;
            } catch (err) {
              const rejected = err instanceof IpmiCompletionCodeError && POLICY_REJECTION.has(err.completionCode);
              if (!(generated && rejected && candidate + 1 < generated.length)) {
                if (rejected) policyNote = generated ? 'the BMC rejected every password policy' : 'the BMC rejected this password (completion code suggests its password policy)';
                throw err;
              }
              const was = generated[candidate]!.name;
              candidate++;
              const next = generated[candidate]!.name;
              const code = (err as IpmiCompletionCodeError).completionCode;
              actions.push(`rejected: generated password of policy ${was} (completion code 0x${code.toString(16)}); trying policy ${next}`);
              logger.warn('BMC rejected a generated password; trying the next policy', { userId: uid, policy: was, next, completionCode: code });
              secret.dispose();
              secret = gen(generated[candidate]!.policy);
            } finally {
              wipe(pwReq);
            }
          }
        }
        if (step.changes) changes++;
        actions.push(command.op === 'set-password' ? passwordAction(plan, size, generated?.[candidate]!.name) : step.action);
      }
      ctx.reader.forgetUsers();
      verified = await verify(ctx.reader, plan, secret!, size);
      if (plan.passwordTestUnreliable && verified.passwordTest === 'passed') verified.passwordTest = 'unreliable';
    } catch (err) {
      throw await undoAfter(err, ctx, plan, { touched, record, policyNote, actions });
    }
    if (record) await ctx.journal!.remove(record);

    // A password counts as a change when known to differ (or freshly generated); when the
    // BMC cannot tell (no or unreliable Test Password) only observable state counts.
    const changed = changes > 0 || plan.passwordBefore === 'differed' || plan.passwordBefore === 'empty-slot' || generated !== undefined;
    const result: SetCredentialsResult = {
      userId: uid, username: plan.username, privilege: plan.privilege, channels: plan.channels, passwordSize: size, slot: plan.slot,
      changed, passwordBefore: plan.passwordBefore, actions, verified, warnings: plan.warnings, bmc: plan.bmc,
      requests: client.requests - ctx.startRequests,
    };
    if (generated) {
      result.generatedPassword = secret!;
      result.passwordPolicy = generated[candidate]!.name;
    }
    logger.info('BMC user changed and verified', { userId: uid, username: plan.username, changed, requests: result.requests, passwordTest: verified.passwordTest });
    return result;
  } catch (err) {
    if (generated) secret?.dispose();
    throw err;
  }
}

/** Runs the plan's checks in order; a wrong password fails at once, any other disagreement once all are read. */
async function verify(reader: BmcReader, plan: Plan, secret: Secret, size: PasswordSize): Promise<Verification> {
  const v: Verification = { passwordTest: 'passed', name: false, enabled: false, enabledSource: 'status', access: {} };
  const raw: UserAccess[] = [];
  for (const c of plan.checks) {
    switch (c.check) {
      case 'test-password': {
        const t = await reader.testPassword(c.userId, secret, size);
        if (t.outcome === 'differs') {
          throw new VerificationError(`Test Password for user ${c.userId} failed with completion code 0x${t.completionCode.toString(16)}: the BMC does not hold the password just set`, v);
        }
        if (t.outcome === 'unknown') {
          v.passwordTest = 'unsupported';
          v.passwordTestCode = t.completionCode;
        }
        break;
      }
      case 'user-name':
        v.name = (await reader.userName(c.userId)) === c.equals;
        break;
      case 'user-access': {
        const a = await reader.userAccess(c.channel, c.userId);
        raw.push(a);
        v.access[c.channel] = a.privilege === c.privilege && a.ipmiMessaging && a.linkAuth && !a.callbackOnly;
        break;
      }
      case 'enabled': {
        const en = enabledOf(raw);
        v.enabled = en.enabled;
        v.enabledSource = en.source;
        break;
      }
      case 'channel-access': {
        v.channelAccess ??= {};
        const a = await reader.channelAccess(c.channel, c.store);
        v.channelAccess[c.channel] = (v.channelAccess[c.channel] ?? true) && a !== null && !blocksLogin(a, c.privilege);
        break;
      }
    }
  }
  const bad = [
    !v.name && 'name',
    !v.enabled && 'enabled state',
    ...Object.entries(v.access).filter(([, ok]) => !ok).map(([ch]) => `channel ${ch} access`),
    ...Object.entries(v.channelAccess ?? {}).filter(([, ok]) => !ok).map(([ch]) => `channel ${ch} channel access`),
  ].filter(Boolean);
  if (bad.length) throw new VerificationError(`read-back of user ${plan.userId} disagrees with what was written: ${bad.join(', ')}`, v);
  return v;
}

/** After a failed write or check: nothing to undo (a refused first write), or the plan's undo of what was attempted. */
async function undoAfter(
  err: unknown, ctx: ApplyContext, plan: Plan,
  done: { touched: ReadonlySet<Touch>; record: JournalRecord | undefined; policyNote: string | undefined; actions: string[] },
): Promise<ServiceError> {
  const uid = plan.userId;
  const { touched, record, policyNote, actions } = done;
  const failure = { message: describe(err), ...failureFacts(err), ...(policyNote ? { hint: policyNote } : {}) };
  const verification = err instanceof VerificationError ? err.verified : undefined;
  if (touched.size === 0) {
    if (record) await ctx.journal!.remove(record);
    ctx.logger.warn('BMC refused the first write; nothing was changed', { userId: uid, error: failure.message });
    return new ServiceError('BMC_ERROR', `${describe(err)}; nothing was changed${policyNote ? ` (${policyNote})` : ''}`, { details: { userId: uid, failure, actions }, cause: err });
  }
  ctx.logger.warn('credential change failed; rolling back', { userId: uid, error: failure.message });
  const outcome = await runUndo(ctx.client, plan.snapshot.prior, undoSelected(plan.undo, touched), ctx.logger);
  const details = { userId: uid, failure, ...(verification ? { verification } : {}), actions, rollback: outcome.steps, notes: outcome.notes };
  if (outcome.ok) {
    if (record) await ctx.journal!.remove(record);
    return new ServiceError('ROLLED_BACK', `${describe(err)}; user ${uid} was restored to its previous state${outcome.notes.length ? ` (${outcome.notes.join('; ')})` : ''}`, { details, cause: err });
  }
  // Keep the journal: the next start (or the next change) retries the roll-back.
  if (record) ctx.journal!.release(record);
  const failed = outcome.steps.filter((s) => !s.ok).map((s) => s.action);
  return new ServiceError('ROLLBACK_FAILED', `${describe(err)}; restoring user ${uid} failed too (${failed.join('; ')})${record ? '; the journal is kept and the roll-back is retried before the next change' : ''}`, { details, cause: err });
}
