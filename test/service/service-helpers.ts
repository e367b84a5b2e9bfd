/**
 * Shared by the service tests: a capturing logger (its lines also go to the
 * suite-wide leak check), secret bookkeeping, and the user-table comparison
 * behind "fully applied and verified, or exactly as before".
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { captureLines, recordSecret } from '../helpers/secrets.js';
import type { Logger } from '../../service/logger.js';
import { Secret } from '../../service/secret.js';
import type { SimulatedBmc, UserView } from '../../ipmi-kcs/simulated/index.js';

export class CaptureLogger implements Logger {
  readonly lines: string[] = [];
  constructor(private readonly name = 'service') {}
  #log(level: string, msg: string, meta?: object): void {
    const line = JSON.stringify({ level, msg, ...meta });
    this.lines.push(line);
    captureLines(this.name, line);
  }
  debug(msg: string, meta?: object): void { this.#log('debug', msg, meta); }
  info(msg: string, meta?: object): void { this.#log('info', msg, meta); }
  warn(msg: string, meta?: object): void { this.#log('warn', msg, meta); }
  error(msg: string, meta?: object): void { this.#log('error', msg, meta); }
}

/** A test password, recorded for the suite-wide leak check. */
export function testSecret(s: string): Secret {
  recordSecret(s);
  return Secret.fromString(s);
}

/** Records a generated secret for the leak check and returns its text. */
export function recordGenerated(s: Secret | undefined): string {
  assert.ok(s, 'a generated password is returned');
  const text = s.reveal();
  recordSecret(text);
  return text;
}

/** Asserts `secret` appears in none of the given things (serialised every way a leak could happen). */
export function assertNoLeak(secret: string, ...things: unknown[]): void {
  for (const t of things) {
    const forms = [
      typeof t === 'string' ? t : '',
      inspect(t, { depth: 12, showHidden: true }),
      (() => { try { return JSON.stringify(t) ?? ''; } catch { return ''; } })(),
      t instanceof Error ? `${t.message}\n${t.stack ?? ''}\n${inspect(t.cause, { depth: 12 })}` : '',
    ];
    for (const f of forms) assert.ok(!f.includes(secret), `secret leaked into ${f.slice(0, 200)}`);
  }
}

/** The parts of a slot a change may touch, normalised as the roll-back promises them. */
export interface SlotState {
  name: string;
  enabled: boolean;
  access: Record<number, { privilege: number; ipmiMessaging: boolean; linkAuth: boolean; callbackOnly: boolean }>;
}

const writable = (p: number): number => ([1, 2, 3, 4, 0xf].includes(p) ? p : 0xf);

export function slotState(u: UserView): SlotState {
  const access: SlotState['access'] = {};
  for (const [ch, a] of Object.entries(u.access)) {
    access[Number(ch)] = { privilege: writable(a.privilege), ipmiMessaging: a.ipmiMessaging, linkAuth: a.linkAuth, callbackOnly: a.callbackOnly };
  }
  return { name: u.name, enabled: u.enabled, access };
}

/** Every slot, plus password hashes (a roll-back cannot restore a password, so they are compared separately). */
export function table(bmc: SimulatedBmc): { slots: Record<number, SlotState>; hashes: Record<number, string>; channelAccess: unknown } {
  const snap = bmc.snapshot();
  const slots: Record<number, SlotState> = {};
  const hashes: Record<number, string> = {};
  for (const u of snap.users) {
    slots[u.id] = slotState(u);
    hashes[u.id] = u.password.hash;
  }
  return { slots, hashes, channelAccess: snap.channelAccess };
}

/** Asserts user `id` is fully applied: name, enabled, password, and access on every LAN channel. */
export function assertApplied(bmc: SimulatedBmc, id: number, username: string, password: string, privilege = 4): void {
  const u = bmc.user(id);
  assert.ok(u, `user ${id} exists`);
  assert.equal(u.name, username);
  assert.equal(u.enabled, true, `user ${id} enabled`);
  const size = Buffer.byteLength(password) > 16 ? 20 : 16;
  assert.ok(bmc.passwordMatches(id, password, size), `user ${id} holds the new password (${size}-byte form)`);
  for (const ch of bmc.lanChannels()) {
    assert.deepEqual(u.access[ch] && { ...u.access[ch], sessionLimit: 0 }, { privilege, ipmiMessaging: true, linkAuth: true, callbackOnly: false, sessionLimit: 0 }, `channel ${ch} access`);
  }
}
