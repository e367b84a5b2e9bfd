import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  enableRequest, getChannelAccess, getLanConfig, getUserAccess, MalformedResponseError, parseChannelInfo, parseDeviceId, parseIpv6Entry,
  parseUserAccess, parseUserName, passwordRequest, setChannelAccess, setUserAccess, setUserName, setUserPrivilege, wipe,
} from '../../service/ipmi-commands.js';
import { Secret } from '../../service/secret.js';
import { recordSecret } from '../helpers/secrets.js';

const bytes = (r: { data?: Uint8Array | readonly number[] }): number[] => Array.from(r.data ?? []);

test('§20.1 Get Device ID: version BCD, 20-bit manufacturer, product, update-in-progress bit', () => {
  // ipmi_sim's answer (research bmc-sim.md §1.5): 00 03 09 08 02 9f 91 12 00 02 0f
  const d = parseDeviceId(Uint8Array.from([0x00, 0x03, 0x09, 0x08, 0x02, 0x9f, 0x91, 0x12, 0x00, 0x02, 0x0f]));
  assert.equal(d.ipmiVersion, '2.0');
  assert.equal(d.manufacturerId, 0x1291);
  assert.equal(d.productId, 0x0f02);
  assert.equal(d.firmware, '9.08');
  assert.equal(d.updateInProgress, false);
  const v15 = parseDeviceId(Uint8Array.from([0x20, 0x01, 0x80, 0x15, 0x51, 0, 0x57, 0x01, 0x00, 0x1b, 0x00]));
  assert.equal(v15.ipmiVersion, '1.5');
  assert.equal(v15.ipmiMajor, 1);
  assert.equal(v15.updateInProgress, true);
  assert.equal(v15.manufacturerId, 343);
  assert.throws(() => parseDeviceId(Uint8Array.from([0, 1, 2])), MalformedResponseError);
});

test('§22.26 Set User Access: always 4 bytes, change bit, callin clear, session limit 0', () => {
  const r = setUserAccess(8, 5, { privilege: 4, ipmiMessaging: true, linkAuth: true, callbackOnly: false });
  assert.deepEqual([r.netFn, r.cmd], [0x06, 0x43]);
  assert.deepEqual(bytes(r), [0x80 | 0x20 | 0x10 | 8, 5, 4, 0]);
  assert.deepEqual(bytes(setUserAccess(1, 63, { privilege: 0xf, ipmiMessaging: false, linkAuth: false, callbackOnly: true })), [0xc1, 63, 0x0f, 0]);
  assert.deepEqual(bytes(setUserPrivilege(2, 3, 4)), [2, 3, 4, 0], 'bit 7 clear: privilege only');
});

test('§22.27 Get User Access: max ids, enable status bits, fixed names, access bits', () => {
  assert.deepEqual(bytes(getUserAccess(1, 3)), [1, 3]);
  const a = parseUserAccess(Uint8Array.from([0x3f, 0x42, 0x01, 0x34]));
  assert.deepEqual(a, { maxUsers: 63, enableStatus: 'enabled', enabledCount: 2, fixedNameCount: 1, callbackOnly: false, linkAuth: true, ipmiMessaging: true, privilege: 4 });
  assert.equal(parseUserAccess(Uint8Array.from([16, 0x81, 2, 0x4f])).enableStatus, 'disabled');
  assert.equal(parseUserAccess(Uint8Array.from([16, 0x01, 2, 0x4f])).enableStatus, null, 'unspecified (IPMI 1.5 / ipmi_sim)');
  assert.throws(() => parseUserAccess(Uint8Array.from([16, 1, 2])), MalformedResponseError);
});

test('§22.28/§22.29 user names: 16 bytes NUL padded; read up to the first NUL', () => {
  const r = setUserName(7, 'svc_agent');
  assert.equal(bytes(r).length, 17);
  assert.deepEqual(bytes(r).slice(0, 10), [7, ...Buffer.from('svc_agent')]);
  assert.ok(bytes(r).slice(10).every((b) => b === 0));
  assert.deepEqual(bytes(setUserName(7, '')), [7, ...new Array(16).fill(0)]);
  assert.equal(parseUserName(Uint8Array.from([...Buffer.from('admin'), 0, 0x41, ...new Array(9).fill(0)])), 'admin');
  assert.equal(parseUserName(new Uint8Array(16)), '');
});

test('§22.30 Set User Password: size bit, op, NUL padding; enable with 16 zero bytes or 2-byte form; wipe', () => {
  const pw = recordSecret('Abcdefghij12345678');
  const s = Secret.fromString(pw);
  const r20 = passwordRequest(4, 2, s, 20);
  assert.deepEqual(bytes(r20).slice(0, 2), [0x80 | 4, 2]);
  assert.equal(bytes(r20).length, 22);
  assert.equal(Buffer.from(r20.data.subarray(2, 20)).toString(), pw);
  assert.deepEqual(bytes(r20).slice(20), [0, 0]);
  wipe(r20);
  assert.ok(bytes(r20).every((b) => b === 0));
  assert.throws(() => passwordRequest(4, 2, s, 16), /at most 16/);
  const t16 = passwordRequest(4, 3, Secret.fromString('abc'), 16);
  assert.deepEqual(bytes(t16).slice(0, 2), [4, 3]);
  assert.equal(bytes(t16).length, 18);
  assert.deepEqual(bytes(enableRequest(9, true)), [9, 1, ...new Array(16).fill(0)]);
  assert.deepEqual(bytes(enableRequest(9, false, true)), [9, 0]);
});

test('§22.22/§22.23 channel access: store selectors, auth bits carried over', () => {
  assert.deepEqual(bytes(getChannelAccess(1, 'volatile')), [1, 0x80]);
  assert.deepEqual(bytes(getChannelAccess(1, 'non-volatile')), [1, 0x40]);
  assert.deepEqual(bytes(setChannelAccess(2, 'non-volatile', { accessMode: 2, authBits: 0x18, privilegeLimit: 4 })), [2, 0x40 | 0x18 | 2, 0x44]);
  assert.deepEqual(bytes(setChannelAccess(2, 'volatile', { accessMode: 2, authBits: 0, privilegeLimit: 4 })), [2, 0x82, 0x84]);
});

test('§22.24 Get Channel Info and §23.2 LAN parameters', () => {
  assert.deepEqual(parseChannelInfo(Uint8Array.from([1, 4, 1, 0x80, 0xf2, 0x1b, 0, 0, 0])), { channel: 1, medium: 4, protocol: 1, sessionSupport: 2, activeSessions: 0 });
  assert.deepEqual(bytes(getLanConfig(1, 3)), [1, 3, 0, 0]);
  const entry = Uint8Array.from([0x11, 0, 0x80, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 64, 0]);
  assert.equal(parseIpv6Entry(entry), '2001:db8::14');
  const ll = Uint8Array.from([0x11, 0, 0x80, 0xfe, 0x80, ...new Array(13).fill(0), 1, 64, 0]);
  assert.equal(parseIpv6Entry(ll), undefined, 'link-local skipped');
});
