/**
 * The planner as a pure function: a BMC state value and a request in, the
 * plan (or the next read it needs) out. No transport, no simulator: the state
 * is written here by hand, which is the point of planning the change as data.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { accessKey, channelAccessKey, emptyChangeState, type ChangeState, type LanChannel, type Need } from '../../service/bmc-reader.js';
import { ServiceError } from '../../service/errors.js';
import type { ChannelAccess, DeviceId, UserAccess } from '../../service/ipmi-commands.js';
import { everyTouch, planChange, undoFor, undoSelected, type Plan, type Step, type Write } from '../../service/plan.js';
import { validateRequest } from '../../service/validate.js';
import type { SetCredentialsRequest } from '../../service/types.js';
import { testSecret } from './service-helpers.js';

const ADMIN = 4;
const OPERATOR = 3;

interface UserSpec { name: string; enabled?: boolean; privilege?: number; messaging?: boolean; callbackOnly?: boolean; status?: boolean }
interface BmcSpec {
  ipmi?: '2.0' | '1.5';
  maxUsers?: number;
  fixed?: number;
  lan?: number[];
  users?: Record<number, UserSpec>;
  /** Per channel, both stores; default always available, administrator limit. */
  channelAccess?: Record<number, Partial<Record<'volatile' | 'non-volatile', ChannelAccess | null>>>;
  passwordBefore?: ChangeState['passwordBefore'];
}

const OPEN: ChannelAccess = { accessMode: 2, authBits: 0, privilegeLimit: ADMIN };

/** Everything a change could ask about this BMC, read already. */
function bmcState(spec: BmcSpec = {}): ChangeState {
  const v2 = (spec.ipmi ?? '2.0') === '2.0';
  const maxUsers = spec.maxUsers ?? 10;
  const fixed = spec.fixed ?? 1;
  const lanIds = spec.lan ?? [1];
  const device: DeviceId = {
    deviceId: 0x20, deviceRevision: 1, updateInProgress: false, firmware: '1.00', ipmiVersion: v2 ? '2.0' : '1.5',
    ipmiMajor: v2 ? 2 : 1, ipmiMinor: v2 ? 0 : 5, manufacturerId: 4753, productId: 1,
  };
  const lan: LanChannel[] = lanIds.map((channel) => ({ channel, medium: 4, protocol: 1, sessionSupport: 2, activeSessions: 0, mediumName: '802.3 LAN' }));
  const users = spec.users ?? { 2: { name: 'admin', privilege: ADMIN } };
  const state = emptyChangeState();
  state.device = device;
  state.lan = lan;
  state.allLan = lan;
  state.limits = { maxUsers, fixedNameCount: fixed, enabledCount: Object.keys(users).length };
  const names = new Map<number, string>();
  for (let id = 2; id <= maxUsers; id++) names.set(id, users[id]?.name ?? '');
  state.names = names;
  for (let id = 1; id <= maxUsers; id++) {
    const u = users[id];
    for (const ch of lanIds) {
      const enabled = u ? u.enabled ?? true : false;
      const a: UserAccess = {
        maxUsers, enabledCount: 1, fixedNameCount: fixed,
        enableStatus: u?.status === false || !v2 ? null : enabled ? 'enabled' : 'disabled',
        callbackOnly: u?.callbackOnly ?? false, linkAuth: !!u, ipmiMessaging: u ? u.messaging ?? enabled : false,
        privilege: u?.privilege ?? 0xf,
      };
      state.userAccess.set(accessKey(ch, id), a);
    }
  }
  for (const ch of lanIds) {
    for (const store of ['volatile', 'non-volatile'] as const) {
      const given = spec.channelAccess?.[ch];
      state.channelAccess.set(channelAccessKey(ch, store), given && store in given ? given[store]! : OPEN);
    }
  }
  state.lanAddress = { channel: lanIds[0]!, address: '192.0.2.10' };
  state.passwordBefore = spec.passwordBefore ?? { before: 'unknown', unreliable: false };
  return state;
}

const PASSWORD_16 = 'Plan-Test_pw1234';
const PASSWORD_20 = 'Plan-Test_pw12345678';

function request(over: Partial<SetCredentialsRequest> = {}): ReturnType<typeof validateRequest> {
  return validateRequest({ username: 'svc', ...(over.generate ? {} : { password: testSecret(PASSWORD_16) }), ...over });
}

function plan(state: ChangeState, req = request()): Plan {
  const p = planChange(state, req);
  assert.ok(p.plan, `the planner asked for ${JSON.stringify(p.need)} although the state holds everything`);
  return p.plan;
}

/**
 * Plans from nothing, answering each need from `full` the way the reader
 * would: returns the reads in the order they were asked for, and the plan.
 */
function planFromScratch(full: ChangeState, req = request()): { needs: Need[]; plan: Plan } {
  const state = emptyChangeState();
  const needs: Need[] = [];
  for (let p = planChange(state, req); ; p = planChange(state, req)) {
    if (p.plan) return { needs, plan: p.plan };
    const need = p.need;
    needs.push(need);
    assert.ok(needs.length < 50, 'the planner keeps asking');
    switch (need.read) {
      case 'device': state.device = full.device!; break;
      case 'lan-channels': state.lan = full.allLan!.filter((c) => !need.channels || need.channels.includes(c.channel)); break;
      case 'all-lan-channels': state.allLan = full.allLan!; break;
      case 'limits': state.limits = full.limits!; break;
      case 'user-names': state.names = full.names!; break;
      case 'user-access':
        for (const ch of need.channels) state.userAccess.set(accessKey(ch, need.userId), full.userAccess.get(accessKey(ch, need.userId))!);
        break;
      case 'channel-access':
        for (const r of need.reads) state.channelAccess.set(channelAccessKey(r.channel, r.store), full.channelAccess.get(channelAccessKey(r.channel, r.store))!);
        break;
      case 'lan-address': state.lanAddress = full.lanAddress!; break;
      case 'password-test': state.passwordBefore = full.passwordBefore ?? { before: 'unknown', unreliable: false }; break;
    }
  }
}

const writes = (p: Plan): Write[] => p.steps.filter((s): s is Write => s.kind === 'write');
const ops = (steps: Step[]): string[] => steps.map((s) => (s.kind === 'write' ? (s.command.op === 'set-user-access' || s.command.op === 'set-channel-access' ? `${s.command.op}:${s.command.channel}${s.command.op === 'set-channel-access' ? `:${s.command.store}` : ''}` : s.command.op) : 'in-place'));
const refused = (code: string, field?: string) => (e: unknown): boolean => e instanceof ServiceError && e.code === code && (field === undefined || e.field === field);

describe('planChange: a pure function of BMC state and request', () => {
  it('a fresh user: the first empty slot, name → password → enable → access per LAN channel, then the checks', () => {
    const p = plan(bmcState({ lan: [1, 2] }));
    assert.equal(p.userId, 3, 'slot 2 holds "admin"');
    assert.equal(p.slot, 'empty');
    assert.equal(p.passwordBefore, 'empty-slot');
    assert.deepEqual(ops(p.steps), ['set-user-name', 'set-password', 'set-enabled', 'set-user-access:1', 'set-user-access:2']);
    assert.deepEqual(p.checks.map((c) => c.check), ['test-password', 'user-name', 'user-access', 'user-access', 'enabled']);
    for (const w of writes(p)) {
      assert.equal(w.idempotent, true, `${w.command.op} is safe to re-send`);
      assert.match(w.spec, /^§22\.\d+/);
    }
    assert.deepEqual(p.bmc, { ipmiVersion: '2.0', manufacturerId: 4753, productId: 1, firmware: '1.00', lanChannel: 1, address: '192.0.2.10' });
  });

  it('reads only what the decision needs: a fresh change reads no other user, in the order the engine sends them', () => {
    const { needs, plan: p } = planFromScratch(bmcState({ lan: [1, 2] }));
    assert.deepEqual(needs.map((n) => n.read), ['device', 'lan-channels', 'limits', 'user-names', 'user-access', 'channel-access', 'lan-address']);
    assert.deepEqual(needs[4], { read: 'user-access', userId: p.userId, channels: [1, 2] });
    assert.deepEqual(needs[5], { read: 'channel-access', reads: [{ channel: 1, store: 'volatile' }, { channel: 2, store: 'volatile' }] }, 'the stored setting only when asked to fix it');
  });

  it('the 20-byte password form only for more than 16 bytes on IPMI 2.0', () => {
    const pw = (p: Plan) => writes(p).find((w) => w.command.op === 'set-password')!.command;
    assert.deepEqual(pw(plan(bmcState())), { op: 'set-password', userId: 3, password: { source: 'given', size: 16 } });
    assert.deepEqual(pw(plan(bmcState(), request({ password: testSecret(PASSWORD_20) }))), { op: 'set-password', userId: 3, password: { source: 'given', size: 20 } });
    assert.deepEqual(pw(plan(bmcState({ ipmi: '1.5' }))), { op: 'set-password', userId: 3, password: { source: 'given', size: 16 } });
    assert.throws(() => plan(bmcState({ ipmi: '1.5' }), request({ password: testSecret(PASSWORD_20) })), refused('UNSUPPORTED', 'password'));
    // Generated: 16-character policies first (every BMC takes them); 20-character ones on 2.0 only.
    const gen = (ipmi: '2.0' | '1.5') => {
      const c = pw(plan(bmcState({ ipmi }), request({ generate: true })));
      assert.equal(c.op === 'set-password' && c.password.source, 'generated');
      return c.op === 'set-password' && c.password.source === 'generated' ? c.password.candidates.map((x) => x.size) : [];
    };
    assert.deepEqual(gen('2.0'), [16, 16, 20, 20]);
    assert.deepEqual(gen('1.5'), [16, 16]);
  });

  it('channel access is written only when asked, non-volatile first, and then checked', () => {
    const blocked = { 1: { volatile: { accessMode: 0, authBits: 0, privilegeLimit: 2 }, 'non-volatile': { accessMode: 1, authBits: 0x20, privilegeLimit: ADMIN } } };
    const warned = plan(bmcState({ channelAccess: blocked }));
    assert.ok(!writes(warned).some((w) => w.command.op === 'set-channel-access'));
    assert.match(warned.warnings.join('\n'), /channel 1 volatile access \(mode disabled, privilege limit user\) blocks administrator LAN logins; enableChannelAccess would fix it/);
    assert.deepEqual(warned.snapshot.channelAccess, []);

    const fixed = plan(bmcState({ channelAccess: blocked }), request({ enableChannelAccess: true }));
    assert.deepEqual(ops(fixed.steps).slice(-2), ['set-channel-access:1:non-volatile', 'set-channel-access:1:volatile']);
    const nv = writes(fixed).find((w) => w.command.op === 'set-channel-access')!.command;
    assert.deepEqual(nv, { op: 'set-channel-access', channel: 1, store: 'non-volatile', access: { accessMode: 2, authBits: 0x20, privilegeLimit: ADMIN } }, 'authentication bits carried over');
    assert.deepEqual(fixed.checks.filter((c) => c.check === 'channel-access').map((c) => c.check === 'channel-access' && c.store), ['non-volatile', 'volatile']);
    assert.deepEqual(fixed.undo.filter((u) => u.kind === 'write' && u.command.op === 'set-channel-access').map((u) => u.kind === 'write' && u.action),
      ['restore channel 1 non-volatile access', 'restore channel 1 volatile access']);
  });

  it('a slot already as asked: only the password is written (it cannot be read), after Test Password', () => {
    const users = { 2: { name: 'admin', privilege: ADMIN }, 3: { name: 'svc', privilege: ADMIN } };
    const { needs, plan: p } = planFromScratch(bmcState({ users, passwordBefore: { before: 'matched', unreliable: false } }));
    assert.deepEqual(needs.at(-1), { read: 'password-test', userId: 3, size: 16 });
    assert.equal(p.slot, 'existing-name');
    assert.deepEqual(ops(p.steps), ['in-place', 'set-password', 'in-place', 'in-place']);
    assert.equal(p.passwordBefore, 'matched');
    assert.match(writes(p)[0]!.action, /^in place: user 3 password \(Test Password matched before/);
  });

  it('a BMC without enable status: enable is re-sent, and counts as a change only if the slot looked disabled', () => {
    const users = { 2: { name: 'admin', privilege: ADMIN }, 3: { name: 'svc', privilege: ADMIN, status: false } };
    const p = plan(bmcState({ users, passwordBefore: { before: 'unknown', unreliable: true } }));
    const enable = writes(p).find((w) => w.command.op === 'set-enabled')!;
    assert.equal(enable.changes, false);
    assert.equal(p.passwordTestUnreliable, true);
  });

  it('vendor fixed-name slots: refused without allowFixedSlot, never renamed', () => {
    const vendor = { fixed: 2, users: { 2: { name: 'ADMIN', privilege: ADMIN }, 3: { name: 'other', privilege: ADMIN } } };
    assert.throws(() => plan(bmcState(vendor), request({ username: 'ADMIN' })), refused('INVALID_REQUEST', 'allowFixedSlot'));
    assert.throws(() => plan(bmcState(vendor), request({ slot: 2, allowFixedSlot: true })), refused('INVALID_REQUEST', 'slot'));
    const p = plan(bmcState(vendor), request({ username: 'ADMIN', allowFixedSlot: true }));
    assert.equal(p.userId, 2);
    assert.ok(!writes(p).some((w) => w.command.op === 'set-user-name'));
  });

  it('never locks the operator out: demoting or renaming the last administrator is refused before any write', () => {
    const lone = bmcState({ users: { 2: { name: 'admin', privilege: ADMIN } } });
    assert.throws(() => plan(lone, request({ username: 'admin', privilege: 'operator' })), refused('LOCKOUT_REFUSED', 'privilege'));
    assert.throws(() => plan(lone, request({ slot: 2 })), refused('LOCKOUT_REFUSED', 'slot'));
    const allowed = plan(lone, request({ username: 'admin', privilege: 'operator', allowLockout: true }));
    assert.deepEqual(allowed.lockout, { channels: [1], renamed: false, allowed: true });
    assert.match(allowed.warnings.join('\n'), /last enabled administrator on LAN channel 1; setting its privilege to operator as asked \(allowLockout\)/);
    // A callback-only or disabled administrator does not count; an enabled one does.
    const weak = bmcState({ users: { 2: { name: 'admin', privilege: ADMIN }, 4: { name: 'cb', privilege: ADMIN, callbackOnly: true }, 5: { name: 'off', privilege: ADMIN, enabled: false } } });
    assert.throws(() => plan(weak, request({ username: 'admin', privilege: 'operator' })), refused('LOCKOUT_REFUSED'));
    const covered = bmcState({ users: { 2: { name: 'admin', privilege: ADMIN }, 4: { name: 'ops', privilege: OPERATOR }, 6: { name: 'root', privilege: ADMIN } } });
    const { needs, plan: p } = planFromScratch(covered, request({ username: 'admin', privilege: 'operator' }));
    assert.equal(p.lockout, null);
    assert.deepEqual(needs.filter((n) => n.read === 'user-access').map((n) => n.read === 'user-access' && n.userId), [2, 4, 6], 'other slots read one at a time until covered');
  });

  it('a rename judged on every LAN channel, also those the request did not name', () => {
    const state = bmcState({ lan: [1, 2], users: { 2: { name: 'admin', privilege: ADMIN } } });
    assert.throws(() => planFromScratch(state, request({ slot: 2, channels: [1] })), (err: unknown) => {
      assert.ok(refused('LOCKOUT_REFUSED', 'slot')(err));
      assert.deepEqual((err as ServiceError).details, { userId: 2, channels: [1, 2], renamed: true });
      return true;
    });
  });

  it('the undo mirrors the snapshot: what the slot was, restored in order; a disabled slot is disabled first', () => {
    const users = { 2: { name: 'admin', privilege: ADMIN }, 3: { name: 'svc', privilege: OPERATOR } };
    const p = plan(bmcState({ users, passwordBefore: { before: 'differed', unreliable: false } }));
    assert.deepEqual(p.snapshot.prior, { userId: 3, name: 'svc', enabled: true, enabledSource: 'status', access: { 1: { privilege: OPERATOR, ipmiMessaging: true, linkAuth: true, callbackOnly: false } } });
    assert.deepEqual(p.undo.map((u) => (u.kind === 'write' ? u.action : 'note')), ['restore user 3 access on channel 1', 'restore user 3 name "svc"', 're-enable user 3', 'note']);
    assert.deepEqual(p.undo[0]!.kind === 'write' && p.undo[0]!.command, { op: 'set-user-access', channel: 1, userId: 3, access: p.snapshot.prior.access['1'], privilegeFirst: false });

    const fresh = plan(bmcState());
    assert.deepEqual(fresh.undo.map((u) => (u.kind === 'write' ? u.action : 'note')), ['disable user 3', 'restore user 3 access on channel 1', 'clear user 3 name']);
    const reserved = fresh.undo[1]!;
    assert.ok(reserved.kind === 'write' && reserved.command.op === 'set-user-access' && reserved.command.access.privilege === 0xf);
    // Only what was attempted is undone; nothing attempted, nothing undone.
    assert.deepEqual(undoSelected(fresh.undo, new Set()).length, 0);
    assert.deepEqual(undoSelected(fresh.undo, new Set(['name'])).map((u) => u.kind === 'write' && u.action), ['disable user 3', 'clear user 3 name']);
    // After a crash, from the journal: the whole undo, the same one.
    assert.deepEqual(undoFor(fresh.snapshot.prior, fresh.snapshot.channelAccess), fresh.undo);
    assert.deepEqual(undoSelected(fresh.undo, everyTouch(fresh.undo)), fresh.undo);
  });

  it('refusals before the slot is chosen: a firmware update in progress, a channel that is not LAN, no LAN at all', () => {
    const busy = bmcState();
    busy.device = { ...busy.device!, updateInProgress: true };
    assert.throws(() => plan(busy), refused('BMC_ERROR'));
    assert.throws(() => plan(bmcState({ lan: [1] }), request({ channels: [3] })), refused('INVALID_REQUEST', 'channels'));
    assert.throws(() => plan(bmcState({ lan: [] })), refused('UNSUPPORTED'));
  });
});
