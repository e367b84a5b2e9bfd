/**
 * The vendor-passthru-shaped endpoint on a real loopback HTTP server: token
 * required, 202 + poll until done, one rotation per node at a time, Ironic's
 * error shape, method discovery. The rotation itself is injected (the
 * real-Ironic run goes through this endpoint in rotate-ironic.test.ts).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createPassthruHandler } from '../../conductor/passthru.js';
import type { RotationRecord } from '../../conductor/rotate.js';
import { Secret } from '../../service/secret.js';
import { recordSecret } from '../helpers/secrets.js';

const TOKEN = recordSecret('passthru-token-1234');

function record(node: string): RotationRecord {
  return {
    node, nodeUuid: node, startedAt: 't0', finishedAt: 't1', outcome: 'rotated', failedStep: null, error: null, warnings: [],
    initial: { provisionState: 'manageable', powerState: 'power off', username: 'ironic' },
    next: { username: 'ironic_b', secretId: 'abc', secretState: 'current', store: 'file' },
    applied: [], rolledBack: [], current: { username: 'ironic_b', note: 'proven' }, steps: [],
  };
}

describe('vendor passthru endpoint', () => {
  let server: http.Server;
  let base: string;
  const gates = new Map<string, () => void>();
  const started: string[] = [];

  before(async () => {
    const handler = createPassthruHandler({
      token: Secret.fromString(TOKEN),
      rotate: (node) => {
        started.push(node);
        if (node === 'boom') return Promise.reject(new Error('store exploded'));
        return new Promise((res) => gates.set(node, () => res(record(node))));
      },
    });
    server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const call = async (method: string, path: string, token: string | null = TOKEN): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(base + path, { method, headers: { ...(token ? { 'X-Auth-Token': token } : {}), 'Content-Type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
    return { status: r.status, body: await r.json() as Record<string, unknown> };
  };
  const fault = (b: Record<string, unknown>): string => (JSON.parse(String(b.error_message)) as { faultstring: string }).faultstring;

  it('needs the token', async () => {
    for (const t of [null, 'wrong-token-xyz']) {
      const r = await call('POST', '/v1/nodes/n1/vendor_passthru?method=set_bmc_credentials', t);
      assert.equal(r.status, 401);
      assert.match(fault(r.body), /X-Auth-Token/);
    }
    assert.deepEqual(started, []);
    assert.throws(() => createPassthruHandler({ rotate: async () => record('x') }), /token/);
  });

  it('lists the method as Ironic does', async () => {
    const r = await call('GET', '/v1/nodes/n1/vendor_passthru/methods');
    assert.equal(r.status, 200);
    assert.deepEqual((r.body.set_bmc_credentials as Record<string, unknown>).http_methods, ['POST']);
  });

  it('starts a rotation (202), refuses a second one for the node (409), and reports the record when done', async () => {
    const r = await call('POST', '/v1/nodes/n1/vendor_passthru?method=set_bmc_credentials');
    assert.equal(r.status, 202);
    assert.equal(r.body.status, 'running');
    const href = String(r.body.href);
    const again = await call('POST', '/v1/nodes/n1/vendor_passthru?method=set_bmc_credentials');
    assert.equal(again.status, 409);
    assert.match(fault(again.body), /already running/);
    assert.equal((await call('GET', href)).body.status, 'running');
    (gates.get('n1') as () => void)();
    let s = await call('GET', href);
    for (let i = 0; i < 100 && s.body.status !== 'done'; i++) s = await call('GET', href);
    assert.equal(s.body.status, 'done');
    assert.equal((s.body.record as RotationRecord).current.username, 'ironic_b');
    assert.equal((await call('POST', '/v1/nodes/n1/vendor_passthru?method=set_bmc_credentials')).status, 202, 'the node is free again');
    (gates.get('n1') as () => void)();
  });

  it('records a rotation that throws as failed', async () => {
    const r = await call('POST', '/v1/nodes/boom/vendor_passthru?method=set_bmc_credentials');
    let s = await call('GET', String(r.body.href));
    for (let i = 0; i < 100 && s.body.status !== 'done'; i++) s = await call('GET', String(r.body.href));
    assert.equal((s.body.record as RotationRecord).outcome, 'failed');
    assert.match(String((s.body.record as RotationRecord).error), /store exploded/);
  });

  it('refuses unknown methods, bad idents, wrong verbs and unknown paths in Ironic\'s error shape', async () => {
    assert.equal((await call('POST', '/v1/nodes/n1/vendor_passthru?method=send_raw')).status, 400);
    assert.equal((await call('POST', '/v1/nodes/..%2Fx/vendor_passthru?method=set_bmc_credentials')).status, 400);
    assert.equal((await call('GET', '/v1/nodes/n1/vendor_passthru?method=set_bmc_credentials')).status, 405);
    assert.equal((await call('GET', '/v1/rotations/00000000-0000-4000-8000-000000000000')).status, 404);
    const r = await call('GET', '/nope');
    assert.equal(r.status, 404);
    assert.equal(fault(r.body), 'not found');
  });
});
