/**
 * Restoring a user slot to a snapshot: after a failed write (in process) or
 * after a crash (from the journal). Every step is attempted even when an
 * earlier one fails, and each outcome is reported; then the slot is read back
 * and compared with the snapshot.
 */
import { CC } from '../ipmi-kcs/completion-codes.js';
import { Privilege } from '../ipmi-kcs/spec.js';
import type { BmcClient } from './bmc-client.js';
import { enableRequest, getUserAccess, getUserName, parseUserAccess, parseUserName, setChannelAccess, setUserAccess, setUserName, type UserChannelAccess } from './ipmi-commands.js';
import type { ChannelAccessSnapshot, SlotSnapshot } from './journal.js';
import type { Logger } from './logger.js';
import type { RollbackStep } from './types.js';

/** What a change may have written, so a roll-back restores exactly that. */
export interface Touched {
  name: boolean;
  password: boolean;
  enable: boolean;
  access: Set<number>;
  channelAccess: Set<number>;
}

export function nothingTouched(): Touched {
  return { name: false, password: false, enable: false, access: new Set(), channelAccess: new Set() };
}

/** After a crash nothing is known about progress: restore everything the journal covers. */
export function everythingTouched(prior: SlotSnapshot, channels: ChannelAccessSnapshot[]): Touched {
  return {
    name: true, password: true, enable: true,
    access: new Set(Object.keys(prior.access).map(Number)),
    channelAccess: new Set(channels.map((c) => c.channel)),
  };
}

export function anyTouched(t: Touched): boolean {
  return t.name || t.password || t.enable || t.access.size > 0 || t.channelAccess.size > 0;
}

/**
 * Privilege limits Set User Access accepts (§22.26 Table 22-28). An empty slot
 * may read back 0 (ipmi_sim) or another reserved value that cannot be written;
 * it is restored as NO ACCESS (0xF), which grants the same: nothing.
 */
const WRITABLE_PRIVILEGES = new Set<number>([Privilege.CALLBACK, Privilege.USER, Privilege.OPERATOR, Privilege.ADMINISTRATOR, Privilege.NO_ACCESS]);

export function writablePrivilege(p: number): number {
  return WRITABLE_PRIVILEGES.has(p) ? p : Privilege.NO_ACCESS;
}

export function sameAccess(a: UserChannelAccess, b: UserChannelAccess): boolean {
  return writablePrivilege(a.privilege) === writablePrivilege(b.privilege)
    && a.ipmiMessaging === b.ipmiMessaging && a.linkAuth === b.linkAuth && a.callbackOnly === b.callbackOnly;
}

export interface RestoreOutcome {
  ok: boolean;
  steps: RollbackStep[];
  /** Facts the caller must know that are not failures (e.g. a password cannot be restored). */
  notes: string[];
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export async function restoreSlot(
  client: BmcClient, prior: SlotSnapshot, channelAccess: ChannelAccessSnapshot[], touched: Touched, logger: Logger,
): Promise<RestoreOutcome> {
  const uid = prior.userId;
  const steps: RollbackStep[] = [];
  const notes: string[] = [];
  const step = async (action: string, run: () => Promise<unknown>, note?: string): Promise<void> => {
    try {
      await run();
      steps.push(note ? { action, ok: true, note } : { action, ok: true });
    } catch (err) {
      logger.error('roll-back step failed', { userId: uid, action, error: describe(err) });
      steps.push({ action, ok: false, error: describe(err) });
    }
  };
  const disable = async (): Promise<void> => {
    const rsp = await client.call(enableRequest(uid, false), { what: `Set User Password disable (user ${uid})`, accept: [CC.REQUEST_DATA_LENGTH_INVALID] });
    // Some BMCs want the 2-byte form of op 0/1 (freeipmi workaround).
    if (rsp.completionCode === CC.REQUEST_DATA_LENGTH_INVALID) await client.call(enableRequest(uid, false, true), { what: `Set User Password disable, 2-byte form (user ${uid})` });
  };

  // Cut access first: a slot that was disabled is disabled before anything else is restored.
  if (!prior.enabled && anyTouched(touched)) await step(`disable user ${uid}`, disable);
  for (const ch of [...touched.access].sort((a, b) => a - b)) {
    const a = prior.access[String(ch)];
    if (!a) continue;
    const priv = writablePrivilege(a.privilege);
    const note = priv !== a.privilege ? `privilege 0x${a.privilege.toString(16)} read before cannot be written (§22.26); restored as no-access (0xF)` : undefined;
    await step(`restore user ${uid} access on channel ${ch}`, () => client.call(setUserAccess(ch, uid, { ...a, privilege: priv }), { what: `Set User Access (channel ${ch}, user ${uid})` }), note);
  }
  if (touched.name) {
    await step(prior.name ? `restore user ${uid} name "${prior.name}"` : `clear user ${uid} name`,
      () => client.call(setUserName(uid, prior.name), { what: `Set User Name (user ${uid})` }));
  }
  if (prior.enabled && touched.enable) {
    await step(`re-enable user ${uid}`, async () => {
      const rsp = await client.call(enableRequest(uid, true), { what: `Set User Password enable (user ${uid})`, accept: [CC.REQUEST_DATA_LENGTH_INVALID] });
      if (rsp.completionCode === CC.REQUEST_DATA_LENGTH_INVALID) await client.call(enableRequest(uid, true, true), { what: `Set User Password enable, 2-byte form (user ${uid})` });
    });
  }
  for (const snap of channelAccess) {
    if (!touched.channelAccess.has(snap.channel)) continue;
    // Non-volatile first, then the present setting, as when they were changed.
    for (const store of ['non-volatile', 'volatile'] as const) {
      const a = snap.stores[store];
      if (!a) continue;
      await step(`restore channel ${snap.channel} ${store} access`,
        () => client.call(setChannelAccess(snap.channel, store, a), { what: `Set Channel Access (channel ${snap.channel}, ${store})` }));
    }
  }
  if (touched.password && prior.name !== '') {
    notes.push(`user ${uid}'s previous password cannot be restored (IPMI passwords are write-only); the new password stays set on that slot`);
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
