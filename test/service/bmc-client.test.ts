import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpmiCompletionCodeError, IpmiTimeoutError, IpmiTransportError } from '../../ipmi-kcs/errors.js';
import { BmcClient } from '../../service/bmc-client.js';
import { MalformedResponseError } from '../../service/ipmi-commands.js';
import { silentLogger } from '../../service/logger.js';
import { rsp, ScriptedTransport } from './scripted-transport.js';

const req = { netFn: 0x06, cmd: 0x44, data: [1, 2] };

function client(t: ScriptedTransport, delays: number[] = [], attempts = 4): BmcClient {
  return new BmcClient(t, { logger: silentLogger, timeoutMs: 1234, retry: { attempts, initialDelayMs: 10, maxDelayMs: 25 }, sleep: async (ms) => { delays.push(ms); } });
}

test('0xC0 node busy and 0xD2 init in progress are retried with bounded exponential back-off', async () => {
  const t = new ScriptedTransport([rsp(0xc0), rsp(0xd2), rsp(0xc0), rsp(0, [1, 2, 3, 4])]);
  const delays: number[] = [];
  const c = client(t, delays);
  const r = await c.call(req, { what: 'Get User Access', minLength: 4 });
  assert.equal(r.completionCode, 0);
  assert.deepEqual(delays, [10, 20, 25]);
  assert.equal(c.requests, 4);
  assert.ok(t.sent.every((s) => s.timeoutMs === 1234), 'every call carries the timeout');
});

test('retries stop at the attempt limit and the last error is thrown', async () => {
  const t = new ScriptedTransport([rsp(0xc0), rsp(0xc0), rsp(0xc0)]);
  await assert.rejects(client(t, [], 3).call(req, { what: 'x' }), (e: unknown) => e instanceof IpmiCompletionCodeError && e.completionCode === 0xc0);
  assert.equal(t.sent.length, 3);
});

test('other completion codes are not retried; accepted ones are returned', async () => {
  const t = new ScriptedTransport([rsp(0xcc), rsp(0xcb)]);
  const c = client(t);
  await assert.rejects(c.call(req, { what: 'Set User Name (user 3)' }), /Set User Name \(user 3\) failed: completion code 0xcc/);
  assert.equal((await c.call(req, { what: 'x', accept: [0xcb] })).completionCode, 0xcb);
  assert.equal(t.sent.length, 2);
});

test('timeouts, 0xC3 and 0xFF are retried for idempotent commands only', async () => {
  const timeout = new IpmiTimeoutError(6, 0x45, 10, 'scripted');
  let t = new ScriptedTransport([timeout, rsp(0xc3), rsp(0xff), rsp(0)]);
  assert.equal((await client(t).call(req, { what: 'x' })).completionCode, 0);
  t = new ScriptedTransport([timeout]);
  await assert.rejects(client(t).call(req, { what: 'x', idempotent: false }), IpmiTimeoutError);
  t = new ScriptedTransport([rsp(0xc3)]);
  await assert.rejects(client(t).call(req, { what: 'x', idempotent: false }), IpmiCompletionCodeError);
});

test('EBUSY/EAGAIN from the driver are retried; other transport errors are not', async () => {
  let t = new ScriptedTransport([new IpmiTransportError('native', 'EBUSY', 'busy'), new IpmiTransportError('native', 'EAGAIN', 'again'), rsp(0)]);
  assert.equal((await client(t).call(req, { what: 'x' })).completionCode, 0);
  t = new ScriptedTransport([new IpmiTransportError('native', 'ENOENT', 'gone'), rsp(0)]);
  await assert.rejects(client(t).call(req, { what: 'x' }), (e: unknown) => e instanceof IpmiTransportError && e.code === 'ENOENT');
});

test('a truncated or short response is retried, then reported as malformed', async () => {
  let t = new ScriptedTransport([rsp(0, [1, 2, 3, 4], true), rsp(0, [1, 2]), rsp(0, [1, 2, 3, 4])]);
  assert.equal((await client(t).call(req, { what: 'x', minLength: 4 })).data.length, 4);
  t = new ScriptedTransport([rsp(0, [1]), rsp(0, [1])]);
  await assert.rejects(client(t, [], 2).call(req, { what: 'Get User Access', minLength: 4 }), MalformedResponseError);
});
