/**
 * The vendor quirks each profile adds on top of the spec behaviour covered in
 * commands-every-profile.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSimulatedTransport, listProfiles, SimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { call, padded, STRONG, STRONG20 } from './sim-helpers.js';

async function withBmc(profile: string, fn: (t: SimulatedTransport) => Promise<void>): Promise<void> {
  const t = createSimulatedTransport({ profile });
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

const setName = (t: SimulatedTransport, id: number, name: string) => call(t, 0x45, [id, ...padded(name)]);
const setPw = (t: SimulatedTransport, id: number, pw: string) => call(t, 0x47, [id, 0x02, ...padded(pw)]);
const enable = (t: SimulatedTransport, id: number) => call(t, 0x47, [id, 0x01, ...padded('')]);

describe('profile catalogue', () => {
  it('lists the required profiles, also through SimulatedTransport.listProfiles()', () => {
    for (const p of ['ipmi20', 'ipmi15', 'lan-channel-2', 'lan-channel-8', 'dual-lan', 'fixed-admin', 'password-policy', 'openbmc-old', 'dell-like', 'intel-like']) {
      assert.ok(listProfiles().includes(p), p);
    }
    assert.deepEqual(SimulatedTransport.listProfiles(), listProfiles());
  });
  it('defaults to ipmi20 and names the profile in the description', async () => {
    await withBmc('ipmi20', async (t) => assert.equal(t.description, 'simulated (ipmi20)'));
    const t = createSimulatedTransport();
    assert.equal(t.bmc.profile.name, 'ipmi20');
    await t.close();
  });
  it('refuses an unknown profile, naming the known ones', () => {
    assert.throws(() => createSimulatedTransport({ profile: 'nope' }), /unknown simulated BMC profile "nope".*ipmi20/);
  });
});

describe('ipmi20', () => {
  it('has user 2 "admin" enabled as administrator on LAN channel 1, and 16 users', async () => {
    await withBmc('ipmi20', async (t) => {
      const admin = t.bmc.user(2)!;
      assert.equal(admin.name, 'admin');
      assert.equal(admin.enabled, true);
      assert.equal(admin.access[1]?.privilege, 4);
      assert.equal(t.bmc.users().length, 16);
      assert.deepEqual(t.bmc.lanChannels(), [1]);
    });
  });
  it('allows the same name in two slots', async () => {
    await withBmc('ipmi20', async (t) => {
      assert.equal((await setName(t, 3, 'admin')).cc, 0);
    });
  });
});

describe('ipmi15', () => {
  it('reports IPMI 1.5 and never sets enable-status bits', async () => {
    await withBmc('ipmi15', async (t) => {
      assert.equal((await call(t, 0x01)).data[4], 0x51);
      await call(t, 0x47, [2, 0x00]);
      assert.equal((await call(t, 0x44, [1, 2])).data[1]! >> 6, 0);
    });
  });
});

describe('LAN channel numbering', () => {
  for (const [profile, channels] of [['lan-channel-2', [2]], ['lan-channel-8', [8]], ['dual-lan', [1, 8]], ['intel-like', [1, 2]]] as const) {
    it(`${profile} has LAN on ${channels.join(' and ')} only`, async () => {
      await withBmc(profile, async (t) => {
        const found: number[] = [];
        for (let ch = 1; ch <= 0x0b; ch++) {
          const r = await call(t, 0x42, [ch]);
          if (r.cc === 0 && (r.data[1] === 0x04 || r.data[1] === 0x06)) found.push(ch);
        }
        assert.deepEqual(found, [...channels]);
      });
    });
  }
  it('dual-lan answers a missing channel with 0xCB, as ipmi_sim does', async () => {
    await withBmc('dual-lan', async (t) => assert.equal((await call(t, 0x42, [2])).cc, 0xcb));
  });
  it('dual-lan keeps distinct LAN addresses per channel', async () => {
    await withBmc('dual-lan', async (t) => {
      const a = await call(t, 0x02, [1, 3, 0, 0], 0x0c);
      const b = await call(t, 0x02, [8, 3, 0, 0], 0x0c);
      assert.notDeepEqual(a.data, b.data);
      const ma = await call(t, 0x02, [1, 5, 0, 0], 0x0c);
      const mb = await call(t, 0x02, [8, 5, 0, 0], 0x0c);
      assert.notDeepEqual(ma.data, mb.data);
    });
  });
});

describe('fixed-admin (Supermicro-like)', () => {
  it('reports two fixed names and refuses to rename ADMIN in slot 2 (0xCC)', async () => {
    await withBmc('fixed-admin', async (t) => {
      assert.equal((await call(t, 0x44, [1, 2])).data[2], 2);
      assert.deepEqual((await call(t, 0x46, [2])).data, padded('ADMIN'));
      assert.equal((await setName(t, 2, 'other')).cc, 0xcc);
      assert.equal(t.bmc.user(2)?.name, 'ADMIN');
      assert.equal(t.bmc.user(2)?.fixedName, true);
      assert.equal(t.bmc.users().length, 10);
    });
  });
  it('refuses IPMI messaging together with privilege No Access (0xCC), accepts it with a privilege', async () => {
    await withBmc('fixed-admin', async (t) => {
      assert.equal((await call(t, 0x43, [0x90 | 1, 3, 0x0f, 0])).cc, 0xcc);
      assert.equal((await call(t, 0x43, [0x10 | 1, 3, 0x04, 0])).cc, 0, 'privilege first');
      assert.equal((await call(t, 0x43, [0xb0 | 1, 3, 0x04, 0])).cc, 0, 'then messaging');
    });
  });
});

describe('password-policy', () => {
  const weak: [string, string][] = [
    ['Kq7!mZ2#vR9$', 'shorter than 13'],
    ['kq7!mz2#vr9$tw4x', 'no upper case'],
    ['KQ7!MZ2#VR9$TW4X', 'no lower case'],
    ['Kqx!mZy#vRz$tWwx', 'no digit'],
    ['Kq7amZ2bvR9ctW4x', 'no special'],
    ['Kq7!mZ2#vR99tW4x', 'adjacent repeat'],
  ];
  for (const [pw, why] of weak) {
    it(`refuses a password with ${why} (0xCC) and keeps the old one`, async () => {
      await withBmc('password-policy', async (t) => {
        const before = t.bmc.user(3)!.password.hash;
        assert.equal((await setPw(t, 3, pw)).cc, 0xcc);
        assert.equal(t.bmc.user(3)!.password.hash, before);
      });
    });
  }
  it('accepts a strong password, in the 20-byte form too', async () => {
    await withBmc('password-policy', async (t) => {
      assert.equal((await setPw(t, 3, STRONG)).cc, 0);
      assert.equal((await call(t, 0x47, [0x80 | 3, 0x02, ...padded(STRONG20, 20)])).cc, 0);
    });
  });
});

describe('openbmc-old', () => {
  it('reports LAN as "Other LAN" (0x06)', async () => {
    await withBmc('openbmc-old', async (t) => assert.equal((await call(t, 0x42, [1])).data[1], 0x06));
  });
  it('answers Get User Name on an empty slot with 0xC9', async () => {
    await withBmc('openbmc-old', async (t) => assert.equal((await call(t, 0x46, [5])).cc, 0xc9));
  });
  it('refuses a duplicate name (0xCC) but allows renaming a slot to its own name', async () => {
    await withBmc('openbmc-old', async (t) => {
      assert.equal((await setName(t, 3, 'root')).cc, 0xcc);
      assert.equal((await setName(t, 3, 'agent')).cc, 0);
      assert.equal((await setName(t, 3, 'agent')).cc, 0);
      assert.equal((await setName(t, 4, 'agent')).cc, 0xcc);
    });
  });
  it('refuses names outside [a-zA-Z_][a-zA-Z_0-9]* (0xCC)', async () => {
    await withBmc('openbmc-old', async (t) => {
      for (const n of ['9lives', 'a-b', 'a.b', 'a b']) assert.equal((await setName(t, 3, n)).cc, 0xcc, n);
    });
  });
  it('refuses session limit ≠ 0 (0xCC) and access mode 3 (0x83)', async () => {
    await withBmc('openbmc-old', async (t) => {
      assert.equal((await call(t, 0x43, [0x90 | 1, 3, 4, 1])).cc, 0xcc);
      assert.equal((await call(t, 0x43, [0x90 | 1, 3, 4, 0])).cc, 0);
      assert.equal((await call(t, 0x40, [1, 0x83, 0])).cc, 0x83);
    });
  });
  it('answers Test Password with the other size 0xC7 (phosphor-host-ipmid#204)', async () => {
    await withBmc('openbmc-old', async (t) => {
      await setPw(t, 3, STRONG);
      assert.equal((await call(t, 0x47, [0x80 | 3, 0x03, ...padded(STRONG, 20)])).cc, 0xc7);
    });
  });
});

describe('dell-like', () => {
  it('refuses enable with 0xD5 until the slot has a name and a password, then accepts it', async () => {
    await withBmc('dell-like', async (t) => {
      assert.equal((await enable(t, 3)).cc, 0xd5);
      await setPw(t, 3, STRONG);
      assert.equal((await enable(t, 3)).cc, 0xd5, 'no name yet');
      await setName(t, 3, 'agent');
      assert.equal((await enable(t, 3)).cc, 0);
      assert.equal(t.bmc.user(3)?.enabled, true);
    });
  });
  it('ships "root" in slot 2', async () => {
    await withBmc('dell-like', async (t) => assert.deepEqual((await call(t, 0x46, [2])).data, padded('root')));
  });
});

describe('intel-like', () => {
  it('answers Get User Name on an empty slot with 0xCC and refuses duplicate names (0xCC)', async () => {
    await withBmc('intel-like', async (t) => {
      assert.equal((await call(t, 0x46, [5])).cc, 0xcc);
      assert.equal((await setName(t, 3, 'root')).cc, 0xcc);
      assert.equal((await setName(t, 3, 'agent')).cc, 0);
    });
  });
  it('refuses enable/disable without the password bytes (0xC7), accepts the 18-byte form', async () => {
    await withBmc('intel-like', async (t) => {
      assert.equal((await call(t, 0x47, [3, 0x01])).cc, 0xc7);
      assert.equal(t.bmc.user(3)?.enabled, false);
      assert.equal((await enable(t, 3)).cc, 0);
      assert.equal(t.bmc.user(3)?.enabled, true);
    });
  });
});
