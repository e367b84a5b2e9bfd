/**
 * The one contract suite every transport backend must pass (STYLE.md: "one
 * contract test suite for every backend"). Each backend's *.contract.test.ts
 * calls describeTransportContract() with a factory that opens a fresh target.
 *
 * Only behaviour the IPMI v2.0 spec and transport.ts promise is asserted here.
 * Where a real emulator departs from the spec, the target declares it in
 * `quirks` with the reason, and the assertion names it: differences are
 * written down, not papered over.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  IpmiClosedError, IpmiCompletionCodeError, IpmiRequestError, IpmiTimeoutError, IpmiTransportError,
} from '../../ipmi-kcs/errors.js';
import { invoke } from '../../ipmi-kcs/invoke.js';
import { AppCmd, NetFn, TransportCmd, LanParam } from '../../ipmi-kcs/spec.js';
import type { Transport } from '../../ipmi-kcs/transport.js';

export interface ContractTarget {
  transport: Transport;
  /** An empty user slot the suite may name and must leave empty again. */
  freeSlot: number;
  /** A LAN channel number of this BMC. */
  lanChannel: number;
  /** Stops and removes the target. */
  close(): Promise<void>;
  /** Makes the BMC stop answering; resolves to a function that resumes it. Absent: the timeout case is skipped, with the reason. */
  stall?(): Promise<() => Promise<void>>;
  /** Reason why stall is not available (reported by the skip). */
  stallUnavailable?: string;
  /** Documented departures from the spec: completion code expected instead, with why. */
  quirks?: {
    /** Completion code for Set User Name of user 0; the spec's answer is 0xCC (invalid data field) or 0xC9 (out of range). */
    setUserNameUid0?: number;
    /** Bytes that cannot round-trip in a user name on this backend, and why. */
    nameBytesUnsupported?: { bytes: number[]; why: string };
  };
}

const te = new TextEncoder();
const nameBytes = (name: string | number[]): number[] => {
  const raw = typeof name === 'string' ? [...te.encode(name)] : name;
  const out = new Array(16).fill(0);
  raw.slice(0, 16).forEach((b, i) => { out[i] = b; });
  return out;
};

export function describeTransportContract(label: string, open: () => Promise<ContractTarget>): void {
  describe(`transport contract: ${label}`, () => {
    let t: ContractTarget;
    before(async () => { t = await open(); });
    after(async () => { await t?.close(); });

    it('answers Get Device ID (§20.1) with completion code 0 and a 1.5 or 2.0 version byte', async () => {
      const rsp = await t.transport.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID });
      assert.equal(rsp.completionCode, 0);
      assert.ok(rsp.data.length >= 11, `Get Device ID returned ${rsp.data.length} bytes, the spec requires at least 11`);
      assert.ok([0x02, 0x51].includes(rsp.data[4]!), `IPMI version byte 0x${rsp.data[4]!.toString(16)}`);
    });

    it('resolves (does not reject) with 0xC1 for an unsupported command, and invoke() turns it into a typed error', async () => {
      const rsp = await t.transport.send({ netFn: NetFn.APP, cmd: 0x99 });
      assert.equal(rsp.completionCode, 0xc1);
      await assert.rejects(invoke(t.transport, { netFn: NetFn.APP, cmd: 0x99 }), (err: unknown) => {
        assert.ok(err instanceof IpmiCompletionCodeError);
        assert.equal(err.completionCode, 0xc1);
        assert.equal(err.netFn, NetFn.APP);
        assert.equal(err.cmd, 0x99);
        assert.equal(err.codeName, 'Invalid command');
        assert.match(err.message, /0xc1 \(Invalid command\)/);
        return true;
      });
    });

    it('answers a request of invalid length with 0xC7 (Get User Name with no data, §22.29)', async () => {
      const rsp = await t.transport.send({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME });
      assert.equal(rsp.completionCode, 0xc7);
    });

    it('answers Set User Name for user 0 with invalid data / out of range (§22.28)', async () => {
      const rsp = await t.transport.send({ netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [0, ...nameBytes('nobody')] });
      const expected = t.quirks?.setUserNameUid0;
      if (expected !== undefined) assert.equal(rsp.completionCode, expected);
      else assert.ok([0xcc, 0xc9].includes(rsp.completionCode), `got 0x${rsp.completionCode.toString(16)}`);
    });

    it('round-trips a user name through Set/Get User Name, including framing bytes 0xA0 0xA1 0xAA', async () => {
      const slot = t.freeSlot;
      const special = [0x41, 0xa0, 0x42, 0xa1, 0x43, 0xaa, 0x44];
      const unsupported = t.quirks?.nameBytesUnsupported;
      const name = unsupported ? special.filter((b) => !unsupported.bytes.includes(b)) : special;
      try {
        await invoke(t.transport, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [slot, ...nameBytes(name)] });
        const got = await invoke(t.transport, { netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [slot] });
        assert.deepEqual([...got.subarray(0, 16)], nameBytes(name));
      } finally {
        await invoke(t.transport, { netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data: [slot, ...nameBytes('')] }).catch(() => undefined);
      }
    });

    it('reads the LAN IP address parameter (§23.2 parameter 3) on the LAN channel', async () => {
      const data = await invoke(t.transport, { netFn: NetFn.TRANSPORT, cmd: TransportCmd.GET_LAN_CONFIG, data: [t.lanChannel, LanParam.IP_ADDRESS, 0, 0] });
      assert.equal(data.length, 5, 'revision byte + 4 address bytes');
    });

    it('refuses malformed requests before sending anything, naming the field', async () => {
      const before = t.transport.stats().requests;
      const cases: Array<[object, string]> = [
        [{ netFn: 0x07, cmd: 1 }, 'netFn'],
        [{ netFn: 0x40, cmd: 1 }, 'netFn'],
        [{ netFn: 6, cmd: 0x100 }, 'cmd'],
        [{ netFn: 6, cmd: 1, lun: 4 }, 'lun'],
        [{ netFn: 6, cmd: 1, data: new Array(t.transport.limits.maxRequestData + 1).fill(0) }, 'data'],
        [{ netFn: 6, cmd: 1, data: [1, 256] }, 'data[1]'],
      ];
      for (const [req, field] of cases) {
        await assert.rejects(t.transport.send(req as never), (err: unknown) => {
          assert.ok(err instanceof IpmiRequestError, String(err));
          assert.equal(err.field, field);
          assert.ok(err.message.includes(field));
          return true;
        });
      }
      await assert.rejects(t.transport.send({ netFn: 6, cmd: 1 }, { timeoutMs: 0 }), IpmiRequestError);
      assert.equal(t.transport.stats().requests, before, 'nothing reached the BMC');
    });

    it('keeps one request in flight: concurrent sends are answered in order, each with its own response', async () => {
      const reqs = Array.from({ length: 12 }, (_, i) => (i % 2 === 0
        ? { netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID }
        : { netFn: NetFn.APP, cmd: AppCmd.GET_CHANNEL_ACCESS, data: [t.lanChannel, 0x40] }));
      const order: number[] = [];
      const rsps = await Promise.all(reqs.map((r, i) => t.transport.send(r).then((x) => { order.push(i); return x; })));
      assert.deepEqual(order, reqs.map((_, i) => i));
      rsps.forEach((r, i) => {
        assert.equal(r.completionCode, 0, `request ${i}`);
        if (i % 2 === 0) assert.ok(r.data.length >= 11, `request ${i} got a Get Device ID answer`);
        else assert.equal(r.data.length, 2, `request ${i} got a Get Channel Access answer`);
      });
    });

    it('counts requests and bytes', async () => {
      const s0 = t.transport.stats();
      await t.transport.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID });
      const s1 = t.transport.stats();
      assert.equal(s1.requests, s0.requests + 1);
      assert.equal(s1.responses, s0.responses + 1);
      assert.equal(s1.bytesOut, s0.bytesOut + 2);
      assert.ok(s1.bytesIn >= s0.bytesIn + 3 + 11);
    });

    it('times out a request the BMC never answers, and the late answer is not taken for the next request', async (ctx) => {
      if (!t.stall) {
        ctx.skip(t.stallUnavailable ?? 'this target cannot be made to stop answering');
        return;
      }
      const resume = await t.stall();
      let resumed = false;
      try {
        await assert.rejects(t.transport.send({ netFn: NetFn.APP, cmd: AppCmd.GET_CHANNEL_ACCESS, data: [t.lanChannel, 0x40] }, { timeoutMs: 300 }), (err: unknown) => {
          assert.ok(err instanceof IpmiTimeoutError || (err instanceof IpmiTransportError && err.code === 'ETIMEDOUT'), String(err));
          return true;
        });
        await resume();
        resumed = true;
        const next = await t.transport.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID }, { timeoutMs: 5000 });
        assert.equal(next.completionCode, 0);
        assert.ok(next.data.length >= 11, 'the answer is Get Device ID\'s, not the stale Get Channel Access one');
      } finally {
        if (!resumed) await resume();
      }
    });

    it('rejects with a closed-transport error after close(), and close() is idempotent', async () => {
      const extra = await open();
      await extra.transport.close();
      await extra.transport.close();
      await assert.rejects(extra.transport.send({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID }), (err: unknown) => {
        assert.ok(err instanceof IpmiClosedError);
        return true;
      });
      await extra.close();
    });
  });
}

/**
 * A contract target on a running ipmi_sim (test/harness/ipmi-sim.ts): its
 * generated config leaves slot 7 empty, its LAN channel is 1, and stalling
 * stops the process (SIGSTOP), so the late answer after a timeout really arrives.
 */
export function ipmiSimTarget(transport: Transport, sim: { pause(): void; resume(): void; stop(): Promise<void> }): ContractTarget {
  return {
    transport,
    freeSlot: 7,
    lanChannel: 1,
    close: async () => {
      await transport.close();
      await sim.stop();
    },
    stall: async () => {
      sim.pause();
      return async () => sim.resume();
    },
  };
}
