/**
 * Bad input against the running daemon (real engine, simulated BMC): malformed
 * JSON, wrong types, huge bodies, unknown commands and fields, bad tokens.
 * Every answer must be a 4xx with a clear faultstring, and the BMC must not
 * have been touched: not one IPMI request, the same user table after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config.js';
import { createLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { serve } from '../../agent/serve.js';
import { checkWireParams } from '../../service/credential-contract.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';
import { httpRequest } from './helpers.js';

const TOKEN = recordSecret('fuzz-token-' + 'Kx7'.repeat(10));
const PASSWORD = recordSecret('Fz-pass-9876');

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rawHttp(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(text));
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

test('fuzzed requests all get a 4xx with a faultstring and never reach the BMC', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-fuzz-'));
  const lines = new LineCollector();
  const loaded = loadConfig({
    argv: ['--standalone', '--backend', 'simulated', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', join(dir, 'state'), '--max-body-bytes', '16384'],
    env: { INBAND_AGENT_AGENT_TOKEN: TOKEN },
    cmdlinePath: null,
  });
  const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json' }) });
  const engine = agent.credentials;
  assert.ok(engine, 'the simulated BMC is open');
  const transport = engine.transport;
  try {
    const before = JSON.stringify(await engine.getInfo());
    const requestsBefore = transport.stats().requests;
    const base = agent.url;
    const q = `agent_token=${TOKEN}`;
    const rnd = prng(0xb3c);
    const junk = (): unknown => {
      const pick = Math.floor(rnd() * 9);
      return [null, 7, -1.5, 'x'.repeat(Math.floor(rnd() * 40)), true, [], [1, 'a'], { a: { b: 1 } }, Number.MAX_SAFE_INTEGER + 2][pick];
    };
    const fields = ['username', 'password', 'generate', 'privilege', 'slot', 'channels', 'enable_channel_access', 'allow_fixed_slot'];
    const cases: Array<{ what: string; method: string; path: string; body?: unknown; field?: string }> = [];
    // Malformed JSON.
    for (const body of ['{', '{"name":', '[', '"just a string"', '123', 'null', '{"name": "bmc.set_credentials", "params": {"username": "a", "password": "' + PASSWORD + '"', '\u0000\u0001', '{"name": "bmc.get_info"} trailing']) {
      cases.push({ what: `malformed ${JSON.stringify(body).slice(0, 30)}`, method: 'POST', path: `/v1/commands/?${q}`, body });
    }
    // Wrong types and unknown fields in bmc.set_credentials (every one would otherwise write the BMC).
    for (let i = 0; i < 150; i++) {
      const params: Record<string, unknown> = { username: 'fuzz', password: PASSWORD };
      const f = fields[Math.floor(rnd() * fields.length)]!;
      const v = junk();
      params[f] = v;
      if (rnd() < 0.3) params[`extra_${i}`] = junk();
      // The contract is the oracle: what it accepts would write the BMC, so only those are left out.
      if (checkWireParams(params) === null) continue;
      cases.push({ what: `set_credentials ${f}=${JSON.stringify(v)?.slice(0, 20)}`, method: 'POST', path: `/v1/commands/?${q}`, body: { name: 'bmc.set_credentials', params } });
    }
    // The inputs that used to pass the door and fail at the BMC (one credential contract):
    // each is a 400 naming the field on bmc.set_credentials, and a FAILED step naming it (below).
    const contractCases: Array<[string, Record<string, unknown>]> = [
      ['slot', { slot: 1 }], ['slot', { slot: 64 }], ['slot', { slot: 0 }],
      ['channels', { channels: [0] }], ['channels', { channels: [15] }], ['channels', { channels: [12] }], ['channels', { channels: [] }], ['channels', { channels: [1, 1] }],
      ['username', { username: 'été' }], ['username', { username: '-admin' }], ['username', { username: 'a b' }], ['username', { username: 'x'.repeat(17) }], ['username', { username: '' }],
      ['password', { password: 'nul\u0000byte' }], ['password', { password: 'é'.repeat(20) }], ['password', { password: 'x'.repeat(21) }], ['password', { password: 'tab\there' }],
      ['privilege', { privilege: 'callback' }], ['privilege', { privilege: 1 }], ['privilege', { privilege: 5 }], ['privilege', { privilege: 15 }], ['privilege', { privilege: 'Administrator' }],
      ['allow_lockout', { allow_lockout: 'yes' }], ['allow_lockout', { allow_lockout: 1 }],
    ];
    const stepCases: typeof cases = [];
    for (const [field, extra] of contractCases) {
      const args = { username: 'fuzz', password: PASSWORD, ...extra };
      const names = { what: `contract ${field}=${JSON.stringify(extra[field as keyof typeof extra]).slice(0, 24)}`, field };
      cases.push({ ...names, method: 'POST', path: `/v1/commands/?${q}`, body: { name: 'bmc.set_credentials', params: args } });
      const kind = ['clean', 'deploy', 'service'][stepCases.length % 3]!;
      stepCases.push({ ...names, what: `${kind} step ${names.what}`, method: 'POST', path: `/v1/commands/?${q}`, body: { name: `${kind}.execute_${kind}_step`, params: { step: { interface: 'deploy', step: 'set_bmc_credentials', args } } } });
    }
    // Step args, unknown commands, bad names, bad envelopes.
    cases.push({ what: 'step args wrong type', method: 'POST', path: `/v1/commands/?${q}`, body: { name: 'clean.execute_clean_step', params: { step: { interface: 'deploy', step: 'set_bmc_credentials', args: { username: 5, generate: true } } } } });
    cases.push({ what: 'step not an object', method: 'POST', path: `/v1/commands/?${q}`, body: { name: 'service.execute_service_step', params: { step: 'set_bmc_credentials' } } });
    for (const name of ['bmc', 'bmc.', '.x', 'a.b.c', 'bmc.set_credentials.x', 'no.such', 'bmc.format_disk', 'x'.repeat(300), '../bmc.get_info']) {
      cases.push({ what: `name ${name.slice(0, 20)}`, method: 'POST', path: `/v1/commands/?${q}`, body: { name, params: {} } });
    }
    for (const body of [{}, { name: 1 }, { name: null, params: {} }, { name: 'bmc.get_info', params: 'x' }, { name: 'bmc.get_info', params: [] }, { name: 'bmc.get_info', params: {}, x: 1 }, [{ name: 'bmc.get_info' }]]) {
      cases.push({ what: `envelope ${JSON.stringify(body)}`, method: 'POST', path: `/v1/commands/?${q}`, body });
    }
    // Huge bodies: declared and streamed.
    cases.push({ what: 'huge body', method: 'POST', path: `/v1/commands/?${q}`, body: { name: 'bmc.set_credentials', params: { username: 'a', password: PASSWORD, pad: 'y'.repeat(100_000) } } });
    // Bad tokens (valid bodies).
    const good = { name: 'bmc.set_credentials', params: { username: 'fuzz', password: PASSWORD } };
    for (const tok of ['', 'agent_token=', 'agent_token=short', `agent_token=${TOKEN}x`, `agent_token=${TOKEN.slice(0, -1)}`, `agent_token=${TOKEN.toUpperCase()}`, `agent_token=${TOKEN}&agent_token=${TOKEN}`, 'token=' + TOKEN]) {
      cases.push({ what: `token "${tok.replace(TOKEN, 'T').slice(0, 30)}"`, method: 'POST', path: `/v1/commands/?${tok}`, body: good });
    }
    // Unknown routes and methods.
    for (const [method, path] of [['PUT', '/v1/commands/'], ['DELETE', '/v1/commands/x'], ['GET', '/v1/commandz'], ['POST', '/v1/status'], ['GET', '/v1/commands/%00'], ['PATCH', '/']]) {
      cases.push({ what: `${method} ${path}`, method: method!, path: path! });
    }

    const statuses = new Map<number, number>();
    let contractRefused = 0;
    for (const c of cases) {
      const r = await httpRequest(base, c.method, c.path, c.body);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      assert.ok(r.status >= 400 && r.status < 500, `${c.what}: got ${r.status} ${r.text.slice(0, 200)}`);
      assert.equal(typeof r.json?.faultstring, 'string', `${c.what}: no faultstring in ${r.text.slice(0, 100)}`);
      assert.ok(r.json.faultstring.length > 5, `${c.what}: faultstring too short`);
      assert.equal(r.json.faultcode, 'Client', c.what);
      if (c.field) {
        assert.equal(r.status, 400, c.what);
        assert.match(r.json.faultstring, new RegExp(`params(\\.step\\.args)?\\.${c.field}\\b`), `${c.what}: the faultstring names the field: ${r.json.faultstring}`);
        contractRefused++;
      }
      assert.ok(!r.text.includes(PASSWORD) && !r.text.includes(TOKEN), `${c.what}: a secret was echoed`);
    }
    // A streamed (chunked) huge body without Content-Length is cut off at the limit too.
    const chunked = await rawHttp(agent.port, `POST /v1/commands/?${q} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
      `4000\r\n${'z'.repeat(0x4000)}\r\n4000\r\n${'z'.repeat(0x4000)}\r\n0\r\n\r\n`);
    assert.match(chunked, /^HTTP\/1\.1 413/);
    // Garbage that is not HTTP at all: node answers 400 and the daemon keeps serving.
    const garbage = await rawHttp(agent.port, 'HELLO\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400/);

    assert.equal(transport.stats().requests, requestsBefore, 'no IPMI request was sent while fuzzing');
    assert.equal(JSON.stringify(await engine.getInfo()), before, 'the user table is unchanged');
    const listed = await httpRequest(base, 'GET', `/v1/commands/?${q}`);
    assert.ok((listed.json.commands as Array<{ command_name: string; command_status: string }>).every((c) => /^execute_\w+_step$/.test(c.command_name) && c.command_status === 'FAILED'),
      'no command record but the refused steps\' was created');
    const ok = await httpRequest(base, 'GET', '/v1/status');
    assert.equal(ok.status, 200, 'the daemon still answers');
    assert.ok(!lines.text().includes(PASSWORD) && !lines.text().includes(TOKEN), 'a secret reached the log');
    assert.equal(contractRefused, contractCases.length);
    // On the step path the same refusal is a FAILED command: Ironic copies a step refused with
    // 4xx, args and password included, into the node's last_error. Still nothing reaches the BMC.
    for (const c of stepCases) {
      const r = await httpRequest(base, c.method, c.path, c.body);
      assert.equal(r.status, 200, `${c.what}: ${r.text.slice(0, 200)}`);
      const done = await httpRequest(base, 'GET', `/v1/commands/${r.json.id}?wait=true&${q}`);
      assert.equal(done.json.command_status, 'FAILED', c.what);
      assert.equal(done.json.command_error.reason, 'INVALID_REQUEST', c.what);
      assert.match(done.json.command_error.details, new RegExp(`params\\.step\\.args\\.${c.field}\\b`), `${c.what}: ${done.json.command_error.details}`);
      assert.ok(!done.text.includes(PASSWORD) && !r.text.includes(PASSWORD), `${c.what}: the password was echoed`);
    }
    captureLines('agent-fuzz-statuses', JSON.stringify(Object.fromEntries(statuses)));
    console.log(`# fuzz: ${cases.length} requests + ${stepCases.length} steps (${contractRefused} contract cases as 400, ${stepCases.length} as FAILED steps), answers ${JSON.stringify(Object.fromEntries(statuses))}, 0 IPMI requests`);
  } finally {
    await agent.close();
    captureLines('agent-fuzz', lines.lines);
    rmSync(dir, { recursive: true, force: true });
  }
});
