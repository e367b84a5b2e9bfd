/**
 * The listener's connection cap and timeouts (agent/http-guard.ts): idle and
 * slow sockets cannot use up the descriptors or shut Ironic out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config.js';
import { defaultConnectionLimits, guardConnections, openFileLimit } from '../../agent/http-guard.js';
import { createLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { serve } from '../../agent/serve.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';
import { httpRequest } from './helpers.js';

const TOKEN = recordSecret('cap-token-' + 'Hw3'.repeat(10));

/** Opens `n` TCP connections that send nothing; resolves once all are connected (or closed by the server). */
async function idleSockets(port: number, n: number): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.once('connect', () => resolve());
      s.once('close', () => resolve());
      out.push(s);
    })));
  }
  return out;
}

test('the cap is a quarter of the fd limit, 16..512', () => {
  assert.equal(defaultConnectionLimits(1024).maxConnections, 256);
  assert.equal(defaultConnectionLimits(20).maxConnections, 16);
  assert.equal(defaultConnectionLimits(1_048_576).maxConnections, 512);
  assert.equal(openFileLimit(() => 'Limit  Soft Limit  Hard Limit  Units\nMax open files            1024                 524288               files\n'), 1024);
  assert.ok((openFileLimit() ?? 0) > 0, 'read from /proc/self/limits');
});

test('the daemon: 1,100 idle sockets, and Ironic\'s status and command calls still get through', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-cap-'));
  const lines = new LineCollector();
  const loaded = loadConfig({
    argv: ['--standalone', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', join(dir, 'state'), '--backend', 'simulated'],
    env: { INBAND_AGENT_AGENT_TOKEN: TOKEN }, cmdlinePath: null,
  });
  const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json', level: 'info' }) });
  const sockets: Socket[] = [];
  try {
    const cap = defaultConnectionLimits().maxConnections;
    sockets.push(...await idleSockets(agent.port, 1100));
    // A client's connect completes in the kernel's backlog: wait until the daemon accepted them all.
    while (agent.connections.open + agent.connections.evicted < 1100) await new Promise((r) => setTimeout(r, 20));
    assert.ok(agent.connections.open <= cap, `${agent.connections.open} open, cap ${cap}`);
    assert.ok(agent.connections.evicted >= 1100 - cap, `evicted ${agent.connections.evicted}`);
    const status = await httpRequest(agent.url, 'GET', '/v1/status');
    assert.equal(status.status, 200);
    const info = await httpRequest(agent.url, 'POST', `/v1/commands/?wait=true&agent_token=${TOKEN}`, { name: 'bmc.get_info', params: {} });
    assert.equal(info.status, 200);
    assert.equal(info.json.command_status, 'SUCCEEDED');
    assert.ok(agent.connections.open <= cap);
    assert.ok(lines.text().includes('closed the oldest idle one'), 'the eviction is logged');
    assert.ok(lines.lines.filter((l) => l.includes('closed the oldest idle one')).length < 10, 'but not once per socket');
  } finally {
    for (const s of sockets) s.destroy();
    await agent.close();
    captureLines('agent-connection-cap', lines.lines);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a request in progress is never evicted; at the cap with all busy a new connection is closed; idle and slow-header sockets time out', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/slow') void gate.then(() => res.end('slow done'));
    else res.end('ok');
  });
  const guard = guardConnections(server, { maxConnections: 3, firstRequestMs: 300, requestTimeoutMs: 60_000, headersTimeoutMs: 20_000 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const slow = [httpRequest(base, 'GET', '/slow'), httpRequest(base, 'GET', '/slow'), httpRequest(base, 'GET', '/slow')];
    while (guard.open < 3) await new Promise((r) => setTimeout(r, 10));
    // Wait until all three are being handled (busy), then a fourth arrives.
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(httpRequest(base, 'GET', '/'), 'closed: every connection is busy');
    assert.equal(guard.refused, 1);
    release();
    assert.deepEqual((await Promise.all(slow)).map((r) => r.text), ['slow done', 'slow done', 'slow done'], 'the busy ones were not evicted');

    // An idle socket and one dribbling its headers are closed once the first-request time is up.
    server.closeIdleConnections();
    while (guard.open > 0) await new Promise((r) => setTimeout(r, 10));
    const [idle] = await idleSockets((server.address() as AddressInfo).port, 1);
    const dribble = connect((server.address() as AddressInfo).port, '127.0.0.1');
    dribble.on('error', () => undefined);
    dribble.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await Promise.all([idle, dribble].map((s) => new Promise((r) => (s!.destroyed ? r(null) : s!.once('close', r)))));
    assert.equal(guard.timedOut, 2);
    assert.equal(guard.evicted, 0);
    assert.equal((await httpRequest(base, 'GET', '/')).text, 'ok');
  } finally {
    release();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
