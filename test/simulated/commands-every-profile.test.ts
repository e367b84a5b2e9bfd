/**
 * Every command of the simulated BMC, with its success and error completion
 * codes, run against every vendor profile. Expectations come from the profile's
 * declared data, so a new profile is covered by adding it to profiles.ts.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createSimulatedTransport, getProfile, listProfiles, lanChannels, type SimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { ipv4Bytes, ipv6Bytes, macBytes } from '../../ipmi-kcs/simulated/addresses.js';
import { APP, TRANSPORT, call, padded, STRONG, STRONG20 } from './sim-helpers.js';

for (const name of listProfiles()) {
  const p = getProfile(name);
  const lans = lanChannels(p);
  const lan = lans[0]!;
  const v2 = p.device.ipmiVersion === 0x02;
  const q = p.quirks;
  const freeSlot = p.fixedNames + 2; // above the fixed names and the factory admin in slot 2

  describe(`simulated BMC, profile ${name}`, () => {
    let t: SimulatedTransport;
    beforeEach(() => { t = createSimulatedTransport({ profile: name }); });
    afterEach(async () => { await t.close(); });

    describe('Get Device ID (§20.1)', () => {
      it('reports the profile identity and IPMI version', async () => {
        const r = await call(t, 0x01);
        assert.equal(r.cc, 0);
        assert.equal(r.data.length, 11);
        assert.equal(r.data[4], p.device.ipmiVersion);
        assert.equal(r.data[2]! & 0x80, 0, 'device available');
        assert.equal(r.data[6]! | (r.data[7]! << 8) | (r.data[8]! << 16), p.device.manufacturerId);
        assert.equal(r.data[9]! | (r.data[10]! << 8), p.device.productId);
      });
      it('refuses request data with 0xC7', async () => {
        assert.equal((await call(t, 0x01, [0])).cc, 0xc7);
      });
    });

    describe('Get Channel Info (§22.24)', () => {
      it('describes each LAN channel', async () => {
        for (const ch of lans) {
          const r = await call(t, 0x42, [ch]);
          assert.equal(r.cc, 0);
          assert.deepEqual(r.data.slice(0, 3), [ch, name === 'openbmc-old' ? 0x06 : 0x04, 0x01]);
          assert.equal(r.data[3]! >> 6, 2, 'multi-session');
          assert.deepEqual(r.data.slice(4, 7), [0xf2, 0x1b, 0x00]);
        }
      });
      it('resolves channel 0xE to the system interface in-band', async () => {
        const r = await call(t, 0x42, [0x0e]);
        assert.equal(r.cc, 0);
        assert.deepEqual(r.data.slice(0, 4), [0x0f, 0x0c, 0x05, 0x00]);
      });
      it('answers a missing channel with the profile code, bad length 0xC7, reserved bits 0xCC', async () => {
        assert.equal((await call(t, 0x42, [0x05])).cc, q.missingChannelCode);
        assert.equal((await call(t, 0x42, [])).cc, 0xc7);
        assert.equal((await call(t, 0x42, [lan, 0])).cc, 0xc7);
        assert.equal((await call(t, 0x42, [0x10 | lan])).cc, 0xcc);
      });
    });

    describe('Get/Set Channel Access (§22.23/§22.22)', () => {
      it('reads volatile and non-volatile access of each LAN channel', async () => {
        for (const ch of lans) {
          assert.deepEqual(await call(t, 0x41, [ch, 0x40]), { cc: 0, data: [0x02, 0x04] });
          assert.deepEqual(await call(t, 0x41, [ch, 0x80]), { cc: 0, data: [0x02, 0x04] });
        }
      });
      it('sets volatile and non-volatile settings independently', async () => {
        assert.equal((await call(t, 0x40, [lan, 0x80 | 0x18 | 0x02, 0x80 | 0x03])).cc, 0);
        assert.deepEqual(await call(t, 0x41, [lan, 0x80]), { cc: 0, data: [0x1a, 0x03] });
        assert.deepEqual(await call(t, 0x41, [lan, 0x40]), { cc: 0, data: [0x02, 0x04] });
        assert.equal((await call(t, 0x40, [lan, 0x42, 0x42])).cc, 0);
        assert.deepEqual(await call(t, 0x41, [lan, 0x40]), { cc: 0, data: [0x02, 0x02] });
        assert.deepEqual(t.bmc.channelAccess(lan)?.volatile.privilegeLimit, 3);
      });
      it('"don\'t set" selectors change nothing', async () => {
        assert.equal((await call(t, 0x40, [lan, 0x00, 0x01])).cc, 0);
        assert.deepEqual(await call(t, 0x41, [lan, 0x80]), { cc: 0, data: [0x02, 0x04] });
      });
      it('refuses session-less channels with 0x82', async () => {
        assert.equal((await call(t, 0x41, [0x0f, 0x80])).cc, 0x82);
        assert.equal((await call(t, 0x40, [0x00, 0x82, 0x84])).cc, 0x82);
      });
      it('refuses unsupported access modes with 0x83', async () => {
        const unsupported = [0, 1, 2, 3].filter((m) => !q.accessModes.includes(m));
        for (const m of unsupported) assert.equal((await call(t, 0x40, [lan, 0x80 | m, 0x00])).cc, 0x83);
        for (const m of q.accessModes) assert.equal((await call(t, 0x40, [lan, 0x80 | m, 0x00])).cc, 0);
      });
      it('refuses bad lengths (0xC7) and invalid fields (0xCC)', async () => {
        assert.equal((await call(t, 0x41, [lan])).cc, 0xc7);
        assert.equal((await call(t, 0x40, [lan, 0x82])).cc, 0xc7);
        assert.equal((await call(t, 0x41, [lan, 0x00])).cc, 0xcc, 'selector 00 is reserved');
        assert.equal((await call(t, 0x41, [lan, 0xc0])).cc, 0xcc, 'selector 11 is reserved');
        assert.equal((await call(t, 0x41, [0x05, 0x40])).cc, 0xcc, 'no such channel');
        assert.equal((await call(t, 0x40, [lan, 0xc2, 0x84])).cc, 0xcc);
        assert.equal((await call(t, 0x40, [lan, 0x86, 0x00])).cc, 0xcc, 'mode 6 is reserved');
        assert.equal((await call(t, 0x40, [lan, 0x00, 0x80])).cc, 0xcc, 'privilege 0');
        assert.equal((await call(t, 0x40, [lan, 0x00, 0x86])).cc, 0xcc, 'privilege 6');
      });
    });

    describe('Get Channel Authentication Capabilities (§22.13)', () => {
      it('answers the IPMI 1.5 form on a LAN channel', async () => {
        const r = await call(t, 0x38, [lan, 0x04]);
        assert.equal(r.cc, 0);
        assert.equal(r.data.length, 8);
        assert.equal(r.data[0], lan);
        assert.equal(r.data[1], q.authTypes);
        assert.equal(r.data[2]! & 0x04, 0x04, 'non-null user names exist');
        assert.equal(r.data[3], 0);
      });
      it(v2 ? 'answers the v2.0 extended form' : 'refuses the v2.0 bit as a reserved field (0xCC)', async () => {
        const r = await call(t, 0x38, [0x80 | lan, 0x04]);
        if (v2) {
          assert.equal(r.cc, 0);
          assert.equal(r.data[1]! & 0x80, 0x80);
          assert.equal(r.data[3], 0x03);
        } else {
          assert.equal(r.cc, 0xcc);
        }
      });
      it('reports per-message and user-level auth disabled from volatile channel access', async () => {
        await call(t, 0x40, [lan, 0x80 | 0x18 | 0x02, 0x00]);
        const r = await call(t, 0x38, [lan, 0x04]);
        assert.equal(r.data[2]! & 0x18, 0x18);
      });
      it('refuses session-less channels, bad privilege (0xCC) and bad length (0xC7)', async () => {
        assert.equal((await call(t, 0x38, [0x0e, 0x04])).cc, 0xcc);
        assert.equal((await call(t, 0x38, [0x0f, 0x04])).cc, 0xcc);
        assert.equal((await call(t, 0x38, [lan, 0x00])).cc, 0xcc);
        assert.equal((await call(t, 0x38, [lan, 0x06])).cc, 0xcc);
        assert.equal((await call(t, 0x38, [lan])).cc, 0xc7);
      });
    });

    describe('Get/Set User Access (§22.27/§22.26)', () => {
      it('reports max users, enabled count, fixed names and the factory admin', async () => {
        for (const ch of lans) {
          const r = await call(t, 0x44, [ch, 2]);
          assert.equal(r.cc, 0);
          assert.equal(r.data[0], p.maxUsers);
          assert.equal(r.data[1]! & 0x3f, 1, 'one enabled user');
          assert.equal(r.data[1]! >> 6, v2 ? 1 : 0, 'enable status');
          assert.equal(r.data[2], p.fixedNames);
          assert.equal(r.data[3], 0x34, 'link auth + IPMI messaging + administrator');
        }
        assert.deepEqual((await call(t, 0x44, [lan, freeSlot])).data.slice(1), [1, p.fixedNames, 0x0f]);
      });
      it('sets access with the 4-byte form and reads it back', async () => {
        assert.equal((await call(t, 0x43, [0x80 | 0x20 | 0x10 | lan, freeSlot, 0x04, 0x00])).cc, 0);
        assert.equal((await call(t, 0x44, [lan, freeSlot])).data[3], 0x34);
        assert.deepEqual(t.bmc.user(freeSlot)?.access[lan], { callbackOnly: false, linkAuth: true, ipmiMessaging: true, privilege: 4, sessionLimit: 0 });
      });
      it('accepts the 3-byte form; bit 7 clear changes only the privilege', async () => {
        assert.equal((await call(t, 0x43, [0x10 | lan, freeSlot, 0x02])).cc, 0);
        assert.equal((await call(t, 0x44, [lan, freeSlot])).data[3], 0x02);
      });
      it('keeps user access per channel', async () => {
        await call(t, 0x43, [0x80 | 0x10 | lan, freeSlot, 0x03, 0x00]);
        for (const ch of lans.slice(1)) assert.equal((await call(t, 0x44, [ch, freeSlot])).data[3], 0x0f);
        assert.equal((await call(t, 0x44, [lan, freeSlot])).data[3], 0x13);
      });
      it('refuses user 0 (0xCC), users above the maximum (0xC9), non-session channels (0xCC)', async () => {
        assert.equal((await call(t, 0x44, [lan, 0])).cc, 0xcc);
        assert.equal((await call(t, 0x44, [lan, p.maxUsers + 1])).cc, 0xc9);
        assert.equal((await call(t, 0x44, [0x0f, 2])).cc, 0xcc);
        assert.equal((await call(t, 0x44, [0x0e, 2])).cc, 0xcc);
        assert.equal((await call(t, 0x43, [0x90 | lan, 0, 0x04, 0])).cc, 0xcc);
        assert.equal((await call(t, 0x43, [0x90 | lan, p.maxUsers + 1, 0x04, 0])).cc, 0xc9);
        assert.equal((await call(t, 0x43, [0x90 | 0x0f, freeSlot, 0x04, 0])).cc, 0xcc);
      });
      it('refuses bad lengths (0xC7) and bad privileges or reserved bits (0xCC)', async () => {
        assert.equal((await call(t, 0x44, [lan])).cc, 0xc7);
        assert.equal((await call(t, 0x43, [0x90 | lan, freeSlot])).cc, 0xc7);
        assert.equal((await call(t, 0x43, [0x90 | lan, freeSlot, 4, 0, 0])).cc, 0xc7);
        for (const priv of [0x00, 0x05, 0x06, 0x0e]) assert.equal((await call(t, 0x43, [0x90 | lan, freeSlot, priv, 0])).cc, 0xcc, `privilege ${priv}`);
        assert.equal((await call(t, 0x43, [0x90 | lan, 0x40 | freeSlot, 4, 0])).cc, 0xcc);
        assert.equal((await call(t, 0x44, [lan, 0x80 | 2])).cc, 0xcc);
      });
      it(q.sessionLimitMustBeZero ? 'refuses a non-zero session limit (0xCC)' : 'accepts a session limit', async () => {
        const r = await call(t, 0x43, [0x90 | lan, freeSlot, 4, 2]);
        assert.equal(r.cc, q.sessionLimitMustBeZero ? 0xcc : 0);
      });
    });

    describe('Get/Set User Name (§22.29/§22.28)', () => {
      it('sets a name and reads back its 16 bytes', async () => {
        assert.equal((await call(t, 0x45, [freeSlot, ...padded('agent_user')])).cc, 0);
        assert.deepEqual(await call(t, 0x46, [freeSlot]), { cc: 0, data: padded('agent_user') });
        assert.equal(t.bmc.user(freeSlot)?.name, 'agent_user');
      });
      it('answers an empty slot as the profile does', async () => {
        const r = await call(t, 0x46, [freeSlot]);
        if (q.emptyNameCode === undefined) assert.deepEqual(r, { cc: 0, data: padded('') });
        else assert.equal(r.cc, q.emptyNameCode);
      });
      it('refuses to rename fixed-name slots (0xCC)', async () => {
        for (let id = 1; id <= p.fixedNames; id++) {
          assert.equal((await call(t, 0x45, [id, ...padded('x_name')])).cc, 0xcc);
        }
        assert.equal(t.bmc.user(1)?.name, '');
      });
      it('refuses bad lengths (0xC7), user 0 (0xCC), out-of-range users (0xC9), control characters (0xCC)', async () => {
        assert.equal((await call(t, 0x45, [freeSlot, ...padded('abc', 15)])).cc, 0xc7);
        assert.equal((await call(t, 0x45, [freeSlot, ...padded('abc'), 0])).cc, 0xc7);
        assert.equal((await call(t, 0x46, [])).cc, 0xc7);
        assert.equal((await call(t, 0x45, [0, ...padded('abc')])).cc, 0xcc);
        assert.equal((await call(t, 0x46, [0])).cc, 0xcc);
        assert.equal((await call(t, 0x45, [p.maxUsers + 1, ...padded('abc')])).cc, 0xc9);
        assert.equal((await call(t, 0x46, [p.maxUsers + 1])).cc, 0xc9);
        assert.equal((await call(t, 0x45, [freeSlot, ...padded('a\nb')])).cc, 0xcc);
        assert.equal((await call(t, 0x45, [freeSlot, 0x61, 0x00, 0x62, ...new Array<number>(13).fill(0)])).cc, 0xcc, 'bytes after the NUL');
      });
    });

    describe('Set User Password (§22.30)', () => {
      const setPw = (id: number, pw: string, size: 16 | 20 = 16) => call(t, 0x47, [(size === 20 ? 0x80 : 0) | id, 0x02, ...padded(pw, size)]);
      const testPw = (id: number, pw: string, size: 16 | 20 = 16) => call(t, 0x47, [(size === 20 ? 0x80 : 0) | id, 0x03, ...padded(pw, size)]);

      it('sets a 16-byte password; test answers 0x00 on match, 0x80 on mismatch', async () => {
        assert.equal((await setPw(freeSlot, STRONG)).cc, 0);
        assert.equal((await testPw(freeSlot, STRONG)).cc, 0);
        assert.equal((await testPw(freeSlot, 'Wrong!pass1234x')).cc, 0x80);
        assert.ok(t.bmc.passwordMatches(freeSlot, STRONG, 16));
        assert.deepEqual(t.bmc.user(freeSlot)?.password.bytes, Uint8Array.from(padded(STRONG)));
      });
      it(v2 ? 'sets a 20-byte password; testing with the other size fails with the profile code' : 'refuses the 20-byte form (0xCC)', async () => {
        if (!v2) {
          assert.equal((await setPw(freeSlot, STRONG20, 20)).cc, 0xcc);
          assert.equal((await testPw(freeSlot, STRONG, 20)).cc, 0xcc);
          return;
        }
        assert.equal((await setPw(freeSlot, STRONG20, 20)).cc, 0);
        assert.equal((await testPw(freeSlot, STRONG20, 20)).cc, 0);
        assert.equal((await testPw(freeSlot, STRONG20.slice(0, 16), 16)).cc, q.testWrongSizeCode);
        assert.equal(t.bmc.user(freeSlot)?.password.size, 20);
        await setPw(freeSlot, STRONG, 16);
        assert.equal((await testPw(freeSlot, STRONG, 20)).cc, q.testWrongSizeCode);
      });
      it('disables and enables a user; Get User Access reflects it', async () => {
        await call(t, 0x45, [freeSlot, ...padded('agent_user')]);
        await setPw(freeSlot, STRONG);
        assert.equal((await call(t, 0x47, [freeSlot, 0x01, ...padded('')])).cc, 0, 'enable with 16 zero bytes');
        let r = await call(t, 0x44, [lan, freeSlot]);
        assert.equal(r.data[1]! & 0x3f, 2);
        assert.equal(r.data[1]! >> 6, v2 ? 1 : 0);
        if (q.enableNeedsPasswordBytes) {
          assert.equal((await call(t, 0x47, [freeSlot, 0x00])).cc, 0xc7, 'this BMC wants the password bytes');
          assert.equal(t.bmc.user(freeSlot)?.enabled, true);
          assert.equal((await call(t, 0x47, [freeSlot, 0x00, ...padded('')])).cc, 0);
        } else {
          assert.equal((await call(t, 0x47, [freeSlot, 0x00])).cc, 0, 'disable, 2-byte form');
        }
        r = await call(t, 0x44, [lan, freeSlot]);
        assert.equal(r.data[1]! & 0x3f, 1);
        assert.equal(r.data[1]! >> 6, v2 ? 2 : 0);
        assert.equal(t.bmc.user(freeSlot)?.enabled, false);
      });
      it('refuses bad lengths (0xC7), reserved bits (0xCC), user 0 (0xCC), out-of-range users (0xC9)', async () => {
        assert.equal((await call(t, 0x47, [freeSlot])).cc, 0xc7);
        assert.equal((await call(t, 0x47, [freeSlot, 0x02])).cc, 0xc7, 'set without a password');
        assert.equal((await call(t, 0x47, [freeSlot, 0x02, ...padded(STRONG, 16), 0])).cc, 0xc7);
        assert.equal((await call(t, 0x47, [freeSlot, 0x03, ...padded('x', 15)])).cc, 0xc7);
        assert.equal((await call(t, 0x47, [freeSlot, 0x01, 0, 0, 0])).cc, 0xc7);
        assert.equal((await call(t, 0x47, [0x40 | freeSlot, 0x02, ...padded(STRONG)])).cc, 0xcc);
        assert.equal((await call(t, 0x47, [freeSlot, 0x06, ...padded(STRONG)])).cc, 0xcc);
        assert.equal((await call(t, 0x47, [0, 0x02, ...padded(STRONG)])).cc, 0xcc);
        assert.equal((await call(t, 0x47, [p.maxUsers + 1, 0x02, ...padded(STRONG)])).cc, 0xc9);
      });
    });

    describe('Get LAN Configuration Parameters (§23.2)', () => {
      it('reports IP, source, MAC, mask and gateway of each LAN channel', async () => {
        for (const ch of lans) {
          const cfg = p.channels.find((c) => c.number === ch)!.lan!;
          const get = async (param: number) => call(t, 0x02, [ch, param, 0, 0], TRANSPORT);
          assert.deepEqual(await get(3), { cc: 0, data: [0x11, ...ipv4Bytes(cfg.ipAddress)] });
          assert.deepEqual(await get(4), { cc: 0, data: [0x11, cfg.ipSource] });
          assert.deepEqual(await get(5), { cc: 0, data: [0x11, ...macBytes(cfg.macAddress)] });
          assert.deepEqual(await get(6), { cc: 0, data: [0x11, ...ipv4Bytes(cfg.subnetMask)] });
          assert.deepEqual(await get(12), { cc: 0, data: [0x11, ...ipv4Bytes(cfg.defaultGateway)] });
        }
      });
      it('reports "set complete" for parameter 0 (Set In Progress)', async () => {
        assert.deepEqual(await call(t, 0x02, [lan, 0, 0, 0], TRANSPORT), { cc: 0, data: [0x11, 0x00] });
      });
      it('answers the revision only when bit 7 is set', async () => {
        assert.deepEqual(await call(t, 0x02, [0x80 | lan, 3, 0, 0], TRANSPORT), { cc: 0, data: [0x11] });
      });
      const v6 = p.channels.find((c) => c.number === lan)!.lan!.ipv6;
      it(v6 ? 'reports IPv6 support and addresses (params 50, 56, 59)' : 'has no IPv6 parameters (0x80)', async () => {
        const get = async (param: number, set = 0) => call(t, 0x02, [lan, param, set, 0], TRANSPORT);
        if (!v6) {
          for (const param of [50, 51, 55, 56, 59]) assert.equal((await get(param)).cc, 0x80);
          return;
        }
        assert.deepEqual(await get(50), { cc: 0, data: [0x11, 0x02] });
        assert.deepEqual(await get(51), { cc: 0, data: [0x11, 0x02] }, 'IPv4 and IPv6 enabled');
        assert.deepEqual(await get(55), { cc: 0, data: [0x11, v6.staticMax, v6.dynamicMax, 0x03] });
        const s = v6.static[0]!;
        assert.deepEqual(await get(56, 0), { cc: 0, data: [0x11, 0, 0x80, ...ipv6Bytes(s.address), s.prefixLength, 0] });
        const d = v6.dynamic[0]!;
        assert.deepEqual(await get(59, 0), { cc: 0, data: [0x11, 0, d.source, ...ipv6Bytes(d.address), d.prefixLength, 0] });
        assert.equal((await get(56, 1)).data[2], 0x00, 'unused static slot is disabled');
        assert.equal((await get(56, v6.staticMax)).cc, 0xc9);
        assert.equal((await get(59, v6.dynamicMax)).cc, 0xc9);
      });
      it('refuses unknown parameters (0x80), non-LAN channels (0xCC), bad length (0xC7)', async () => {
        assert.equal((await call(t, 0x02, [lan, 99, 0, 0], TRANSPORT)).cc, 0x80);
        assert.equal((await call(t, 0x02, [0x0f, 3, 0, 0], TRANSPORT)).cc, 0xcc);
        assert.equal((await call(t, 0x02, [0x05, 3, 0, 0], TRANSPORT)).cc, 0xcc);
        assert.equal((await call(t, 0x02, [lan, 3, 0], TRANSPORT)).cc, 0xc7);
      });
    });

    describe('commands the BMC does not have', () => {
      it('answers 0xC1 for unknown commands and 0xC2 for LUN ≠ 0', async () => {
        assert.equal((await call(t, 0x99)).cc, 0xc1);
        assert.equal((await call(t, 0x01, [], TRANSPORT)).cc, 0xc1, 'Set LAN Configuration is not simulated');
        assert.equal((await call(t, 0x10, [], 0x0a)).cc, 0xc1);
        const r = await t.send({ netFn: APP, cmd: 0x01, lun: 1 });
        assert.equal(r.completionCode, 0xc2);
      });
    });
  });
}
