/**
 * The simulated backend as a transport: contract preconditions enforced before
 * the BMC sees anything, asynchrony, the one-in-flight queue, timeouts with
 * late answers dropped, cancellation, close and counters.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { KCS_LIMITS } from '../../ipmi-kcs/transport.js';
import { IpmiClosedError, IpmiRequestError, IpmiTimeoutError } from '../../ipmi-kcs/errors.js';
import { invoke } from '../../ipmi-kcs/invoke.js';
import { IpmiCompletionCodeError } from '../../ipmi-kcs/errors.js';
import { APP, call, padded, sleep } from './sim-helpers.js';

describe('SimulatedTransport', () => {
  it('is kind "simulated" with the KCS limits', async () => {
    const t = createSimulatedTransport();
    assert.equal(t.kind, 'simulated');
    assert.deepEqual(t.limits, KCS_LIMITS);
    await t.close();
  });

  it('answers on a later tick, never synchronously', async () => {
    const t = createSimulatedTransport();
    let answered = false;
    const p = t.send({ netFn: APP, cmd: 0x01 }).then((r) => { answered = true; return r; });
    assert.equal(t.bmc.record.length, 0, 'the BMC has not seen it yet');
    await Promise.resolve();
    assert.equal(answered, false);
    assert.equal((await p).completionCode, 0);
    await t.close();
  });

  it('refuses out-of-contract requests before they reach the BMC', async () => {
    const t = createSimulatedTransport();
    const bad = [
      { netFn: APP, cmd: 0x45, data: new Array<number>(39).fill(0x41) }, // over 38 data bytes
      { netFn: 0x07, cmd: 0x01 }, // odd netFn is a response
      { netFn: 0x40, cmd: 0x01 },
      { netFn: APP, cmd: 0x100 },
      { netFn: APP, cmd: 0x01, lun: 4 },
      { netFn: APP, cmd: 0x45, data: [1, 256] },
    ];
    for (const req of bad) await assert.rejects(t.send(req), IpmiRequestError);
    await assert.rejects(t.send({ netFn: APP, cmd: 0x01 }, { timeoutMs: 0 }), IpmiRequestError);
    assert.equal(t.bmc.record.length, 0);
    assert.equal(t.stats().requests, 0);
    // 38 bytes is the most KCS carries, and it does reach the BMC (which refuses the length).
    assert.equal((await call(t, 0x45, new Array<number>(38).fill(0x41))).cc, 0xc7);
    await t.close();
  });

  it('never puts request bytes into a refusal message', async () => {
    const t = createSimulatedTransport();
    const secret = [...Buffer.from('Secret-Pa55word!Secret-Pa55word!Secret')];
    const err = await t.send({ netFn: APP, cmd: 0x47, data: [3, 2, ...secret, 0x21] }).catch((e: Error) => e);
    assert.ok(err instanceof IpmiRequestError);
    assert.ok(!err.message.includes('Secret'));
    await t.close();
  });

  it('keeps one request in flight and answers in order under concurrent callers', async () => {
    const t = createSimulatedTransport({ latencyMs: 1 });
    const sends = Array.from({ length: 20 }, (_, i) => call(t, 0x46, [(i % 15) + 1]));
    const results = await Promise.all(sends);
    assert.ok(results.every((r) => r.cc === 0));
    assert.deepEqual(t.bmc.record.map((e) => e.data[0]), Array.from({ length: 20 }, (_, i) => (i % 15) + 1));
    assert.equal(t.maxInFlight, 1);
    await t.close();
  });

  it('times out a request the BMC never answers and goes on with the next', async () => {
    const t = createSimulatedTransport();
    t.bmc.noResponse();
    await assert.rejects(t.send({ netFn: APP, cmd: 0x01 }, { timeoutMs: 20 }), (e: unknown) => e instanceof IpmiTimeoutError && e.timeoutMs === 20);
    assert.equal((await call(t, 0x01)).cc, 0);
    assert.deepEqual({ ...t.stats(), bytesIn: 0, bytesOut: 0 }, { requests: 2, responses: 1, timeouts: 1, transportErrors: 0, bytesIn: 0, bytesOut: 0 });
    await t.close();
  });

  it('drops a late answer instead of handing it to the next request', async () => {
    const t = createSimulatedTransport();
    t.bmc.inject({ match: { cmd: 0x46 }, action: { kind: 'late-response', delayMs: 60 } });
    await assert.rejects(t.send({ netFn: APP, cmd: 0x46, data: [2] }, { timeoutMs: 10 }), IpmiTimeoutError);
    const next = await call(t, 0x01);
    assert.equal(next.cc, 0);
    assert.equal(next.data.length, 11, 'Get Device ID data, not the late user name');
    await sleep(200);
    assert.equal(t.lateResponsesDropped, 1);
    const after = await call(t, 0x42, [1]);
    assert.equal(after.data[0], 1, 'still in step');
    await t.close();
  });

  it('a latency longer than the timeout times out, and the answer is dropped', async () => {
    const t = createSimulatedTransport({ latencyMs: 50 });
    await assert.rejects(t.send({ netFn: APP, cmd: 0x01 }, { timeoutMs: 5 }), IpmiTimeoutError);
    await sleep(200);
    assert.equal(t.lateResponsesDropped, 1);
    await t.close();
  });

  it('removes an aborted request from the queue before the BMC sees it', async () => {
    const t = createSimulatedTransport({ latencyMs: 5 });
    const ac = new AbortController();
    const first = call(t, 0x01);
    const second = t.send({ netFn: APP, cmd: 0x45, data: [3, ...padded('aborted')] }, { signal: ac.signal });
    ac.abort(new Error('caller gave up'));
    await assert.rejects(second, /caller gave up/);
    await first;
    assert.equal(t.bmc.user(3)?.name, '');
    assert.deepEqual(t.bmc.record.map((e) => e.cmd), [0x01]);
    await t.close();
  });

  it('rejects queued and later requests with IpmiClosedError after close()', async () => {
    const t = createSimulatedTransport({ latencyMs: 5 });
    const first = call(t, 0x01);
    await new Promise((r) => setImmediate(r)); // first is now with the BMC
    const queued = t.send({ netFn: APP, cmd: 0x01 });
    const closing = t.close();
    await first;
    await assert.rejects(queued, IpmiClosedError);
    await closing;
    await assert.rejects(t.send({ netFn: APP, cmd: 0x01 }), IpmiClosedError);
    await t.close(); // idempotent
  });

  it('works with invoke(): non-zero codes become IpmiCompletionCodeError', async () => {
    const t = createSimulatedTransport();
    const err = await invoke(t, { netFn: APP, cmd: 0x46, data: [0] }, { what: 'Get User Name (user 0)' }).catch((e: unknown) => e);
    assert.ok(err instanceof IpmiCompletionCodeError);
    assert.equal(err.completionCode, 0xcc);
    await t.close();
  });

  it('leaves no timer behind after close(), even with an answer still on its way', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length;
    const before = timers();
    const t = createSimulatedTransport();
    t.bmc.inject({ action: { kind: 'late-response', delayMs: 60_000 } });
    await assert.rejects(t.send({ netFn: APP, cmd: 0x01 }, { timeoutMs: 10 }), IpmiTimeoutError);
    await t.close();
    assert.equal(timers(), before);
  });

  it('refuses a negative latency', () => {
    assert.throws(() => createSimulatedTransport({ latencyMs: -1 }), RangeError);
  });
});
