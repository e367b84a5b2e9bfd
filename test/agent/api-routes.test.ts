import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { recordSecret } from '../helpers/secrets.js';
import { Secret } from '../../service/secret.js';
import { RecordingCredentials, sampleSetResult, startTestAgent, waitDone } from './helpers.js';

const TOKEN = recordSecret('tok-' + 'A'.repeat(28) + 'routes-1'); // >= 32 chars, like Ironic's
const PASSWORD = recordSecret('Rt-pa55word-x1');
const q = `agent_token=${encodeURIComponent(TOKEN)}`;

test('GET /, /v1, /v1/ and /v1/status answer without a token, as IPA', async () => {
  const a = await startTestAgent({ token: TOKEN, name: 'docs' });
  try {
    const root = await a.request('GET', '/');
    assert.equal(root.status, 200);
    assert.equal(root.json.name, 'OpenStack Ironic Python Agent API');
    assert.equal(root.json.default_version.id, 'v1');
    for (const p of ['/v1', '/v1/']) {
      const v1 = await a.request('GET', p);
      assert.equal(v1.status, 200);
      assert.equal(v1.json.media_types[0].type, 'application/vnd.openstack.ironic-python-agent.v1+json');
    }
    for (const p of ['/v1/status', '/status']) {
      const s = await a.request('GET', p);
      assert.equal(s.status, 200);
      assert.match(String(s.headers['content-type']), /application\/json/);
      assert.equal(s.json.version, '0.1.0-test');
      assert.equal(typeof s.json.started_at, 'number');
    }
  } finally {
    await a.close();
  }
});

test('both path forms and the unversioned aliases reach the commands routes', async () => {
  const a = await startTestAgent({ token: TOKEN, name: 'paths' });
  try {
    for (const p of ['/v1/commands', '/v1/commands/', '/commands', '/commands/']) {
      const r = await a.request('POST', `${p}?wait=true&${q}`, { name: 'clean.get_clean_steps', params: {} });
      assert.equal(r.status, 200, p);
      assert.equal(r.json.command_name, 'get_clean_steps');
      const l = await a.request('GET', p);
      assert.equal(l.status, 200, p);
      assert.ok(Array.isArray(l.json.commands));
    }
    const list = await a.request('GET', '/v1/commands/');
    assert.equal(list.json.commands.length, 4);
    const id = list.json.commands[0].id;
    for (const p of [`/v1/commands/${id}`, `/commands/${id}`]) {
      const one = await a.request('GET', p);
      assert.equal(one.status, 200);
      assert.deepEqual(Object.keys(one.json).sort(), ['command_error', 'command_name', 'command_result', 'command_status', 'id']);
    }
  } finally {
    await a.close();
  }
});

test('error table: every refusal is {faultcode, faultstring} with IPA\'s status code', async () => {
  const creds = new RecordingCredentials();
  const a = await startTestAgent({ token: TOKEN, credentials: creds, name: 'errors' });
  try {
    const post = (body: unknown, query = q) => a.request('POST', `/v1/commands/?${query}`, body);
    const cases: Array<[string, Promise<{ status: number; json: any }>, number, RegExp]> = [ // eslint-disable-line @typescript-eslint/no-explicit-any
      ['no token', post({ name: 'bmc.get_info', params: {} }, ''), 401, /^Token invalid\.$/],
      ['bad token', post({ name: 'bmc.get_info', params: {} }, 'agent_token=' + 'x'.repeat(43)), 401, /^Token invalid\.$/],
      ['no name', post({ params: {} }), 400, /^Missing or invalid name or params: name/],
      ['params not an object', post({ name: 'bmc.get_info', params: [1] }), 400, /params: must be an object/],
      ['unknown envelope field', post({ name: 'bmc.get_info', params: {}, extra: 1 }), 400, /extra: unknown field/],
      ['bad name form', post({ name: 'getinfo', params: {} }), 400, /Command name must be of the form <extension>\.<name>/],
      ['unknown extension', post({ name: 'nope.x', params: {} }), 404, /^Not found: Extension with id nope not found\.$/],
      ['unknown command', post({ name: 'bmc.nope', params: {} }), 400, /^Invalid command: Unknown command: nope$/],
      ['unknown param', post({ name: 'bmc.set_credentials', params: { username: 'u', password: PASSWORD, colour: 'red' } }), 400, /params\.colour: unknown field/],
      ['wrong type', post({ name: 'bmc.set_credentials', params: { username: 7, password: PASSWORD } }), 400, /params\.username: must be 1-16 ASCII letters.* \(got a number\)/],
      ['password and generate', post({ name: 'bmc.set_credentials', params: { username: 'u', password: PASSWORD, generate: true } }), 400, /params\.password: give either/],
      ['neither password nor generate', post({ name: 'bmc.set_credentials', params: { username: 'u' } }), 400, /params\.password: required/],
      ['slot out of range', post({ name: 'bmc.set_credentials', params: { username: 'u', generate: true, slot: 64 } }), 400, /params\.slot: must be a user ID 2-63 \(got 64\)/],
      ['bad privilege', post({ name: 'bmc.set_credentials', params: { username: 'u', generate: true, privilege: 'root' } }), 400, /params\.privilege: must be administrator, operator or user \(or 4, 3, 2\)/],
      ['malformed JSON', a.request('POST', `/v1/commands/?${q}`, '{"name": "bmc.get_info", '), 400, /^Malformed JSON in request body/],
      ['empty body', a.request('POST', `/v1/commands/?${q}`, ''), 400, /body is empty/],
      ['unknown command id', a.request('GET', '/v1/commands/0000'), 404, /^Not found: Command Result with id 0000 not found\.$/],
      ['unknown route', a.request('GET', '/v2/things'), 404, /^Not Found/],
      ['wrong method', a.request('DELETE', '/v1/commands/'), 405, /^Method Not Allowed/],
      ['huge body', a.request('POST', `/v1/commands/?${q}`, JSON.stringify({ name: 'bmc.get_info', params: { pad: 'x'.repeat(70_000) } })), 413, /^Request body too large/],
    ];
    for (const [what, p, status, re] of cases) {
      const r = await p;
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.faultcode, 'Client', what);
      assert.match(r.json.faultstring, re, what);
      assert.ok(!r.json.faultstring.includes(PASSWORD), `${what} echoes the password`);
    }
    assert.equal(creds.calls.length, 0, 'nothing was executed');
    assert.equal(creds.infoCalls, 0);
    assert.equal(a.api.store.size, 0, 'no record for a refused command');
  } finally {
    await a.close();
  }
});

test('one command at a time: 409 "Agent is busy" while an async command runs', async () => {
  const creds = new RecordingCredentials();
  let release!: () => void;
  creds.gate = new Promise((r) => (release = r));
  const a = await startTestAgent({ token: TOKEN, credentials: creds, name: 'busy' });
  try {
    const started = await a.request('POST', `/v1/commands/?wait=false&${q}`, { name: 'bmc.set_credentials', params: { username: 'ironic', password: PASSWORD } });
    assert.equal(started.status, 200);
    assert.equal(started.json.command_status, 'RUNNING');
    const second = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.get_info', params: {} });
    assert.equal(second.status, 409);
    assert.equal(second.json.faultstring, 'Agent is busy: executing command bmc.set_credentials');
    release();
    const done = await waitDone(a, started.json.id);
    assert.equal(done.json.command_status, 'SUCCEEDED');
    const after = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.get_info', params: {} });
    assert.equal(after.status, 200);
  } finally {
    await a.close();
  }
});

test('bmc.set_credentials runs async, hands the engine a Secret, and its record never holds the password', async () => {
  const creds = new RecordingCredentials();
  const a = await startTestAgent({ token: TOKEN, credentials: creds, name: 'setcreds' });
  let asyncDone = 0;
  a.api.hooks.onAsyncDone = () => asyncDone++;
  try {
    const r = await a.request('POST', `/v1/commands/?wait=true&${q}`, {
      name: 'bmc.set_credentials',
      params: { username: 'ironic', password: PASSWORD, privilege: 'operator', slot: 5, channels: [1, 2], enable_channel_access: true },
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.command_name, 'set_credentials');
    assert.equal(r.json.command_status, 'SUCCEEDED');
    assert.equal(r.json.command_result.user_id, 3);
    assert.equal(r.json.command_result.password_generated, false);
    const call = creds.calls[0]!;
    assert.equal(call.username, 'ironic');
    assert.equal(String(call.password), '***');
    assert.equal(creds.revealed[0], PASSWORD);
    assert.equal(call.privilege, 'operator');
    assert.equal(call.slot, 5);
    assert.deepEqual(call.channels, [1, 2]);
    assert.equal(call.enableChannelAccess, true);
    assert.equal(asyncDone, 1, 'the forced-heartbeat hook ran');
    const list = await a.request('GET', '/v1/commands/');
    assert.ok(!list.text.includes(PASSWORD));
    assert.ok(!a.lines.text().includes(PASSWORD), 'the password reached the log');
    assert.ok(!a.lines.text().includes(TOKEN), 'the token reached the log');
  } finally {
    await a.close();
  }
});

test('a generated password is never returned; the record says only that one was generated', async () => {
  const creds = new RecordingCredentials();
  const generated = recordSecret('Gen-' + 'q7'.repeat(6));
  creds.result = sampleSetResult({ userId: 4, username: 'gen', generatedPassword: Secret.fromString(generated), passwordPolicy: 'mixed-16' });
  const a = await startTestAgent({ token: TOKEN, credentials: creds, name: 'generate' });
  try {
    const r = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.set_credentials', params: { username: 'gen', generate: true } });
    assert.equal(r.json.command_status, 'SUCCEEDED');
    assert.equal(r.json.command_result.password_generated, true);
    assert.equal(creds.calls[0]!.generate, true);
    assert.ok(!r.text.includes(generated));
    assert.ok(!('password' in r.json.command_result));
    assert.ok(!('generated_password' in r.json.command_result));
    assert.equal(r.json.command_result.password_policy, 'mixed-16');
  } finally {
    await a.close();
  }
});

test('an engine failure becomes a FAILED record with IPA\'s command_error shape', async () => {
  const creds = new RecordingCredentials();
  const { ServiceError } = await import('../../service/errors.js');
  creds.fail = new ServiceError('NO_FREE_SLOT', 'no empty user slot on channel 1');
  const a = await startTestAgent({ token: TOKEN, credentials: creds, name: 'fail' });
  try {
    const r = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.set_credentials', params: { username: 'x', password: PASSWORD } });
    assert.equal(r.status, 200);
    assert.equal(r.json.command_status, 'FAILED');
    assert.deepEqual(Object.keys(r.json.command_error).sort(), ['code', 'details', 'message', 'reason', 'type']);
    assert.equal(r.json.command_error.reason, 'NO_FREE_SLOT');
    assert.match(r.json.command_error.details, /NO_FREE_SLOT: no empty user slot/);
    assert.equal(r.json.command_result, null);
  } finally {
    await a.close();
  }
});

test('bmc.get_info is sync and answers the engine\'s info', async () => {
  const a = await startTestAgent({ token: TOKEN, name: 'getinfo' });
  try {
    const r = await a.request('POST', `/v1/commands/?wait=false&${q}`, { name: 'bmc.get_info', params: {} });
    assert.equal(r.json.command_status, 'SUCCEEDED');
    assert.equal(r.json.command_result.ipmi_version, '2.0');
  } finally {
    await a.close();
  }
});

for (const kind of ['clean', 'deploy', 'service'] as const) {
  test(`${kind} steps: set_bmc_credentials is offered at priority 0 on the deploy interface and runs from execute_${kind}_step`, async () => {
    const creds = new RecordingCredentials();
    const a = await startTestAgent({ token: TOKEN, credentials: creds, name: `steps-${kind}` });
    try {
      const node = { uuid: '005b0121-8e4a-4047-b0aa-c470ed9317b3', driver_internal_info: { clean_steps: [{ interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'ironic', password: PASSWORD } }] } };
      const ports = [{ address: '52:54:00:12:34:56' }];
      const steps = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: `${kind}.get_${kind}_steps`, params: { node, ports } });
      assert.equal(steps.json.command_status, 'SUCCEEDED');
      const list = steps.json.command_result[`${kind}_steps`].InbandBmcHardwareManager;
      assert.equal(list.length, 1);
      assert.equal(list[0].step, 'set_bmc_credentials');
      assert.equal(list[0].interface, 'deploy');
      assert.equal(list[0].priority, 0);
      assert.equal(list[0].argsinfo.username.required, true);
      assert.ok(steps.json.command_result.hardware_manager_version);

      const step = { interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'ironic', password: PASSWORD, channels: [1] }, priority: 0, abortable: false };
      const exec = await a.request('POST', `/v1/commands/?wait=false&${q}`, { name: `${kind}.execute_${kind}_step`, params: { step, node, ports, [`${kind}_version`]: steps.json.command_result.hardware_manager_version } });
      assert.equal(exec.status, 200);
      assert.equal(exec.json.command_name, `execute_${kind}_step`);
      const done = await waitDone(a, exec.json.id);
      assert.equal(done.json.command_status, 'SUCCEEDED');
      assert.equal(done.json.command_result[`${kind}_step`].step, 'set_bmc_credentials');
      assert.equal(done.json.command_result[`${kind}_step`].interface, 'deploy');
      assert.equal(done.json.command_result[`${kind}_step`].args, undefined, 'the echoed step drops the args');
      assert.equal(done.json.command_result[`${kind}_result`].user_id, 3);
      assert.equal(creds.revealed[0], PASSWORD);
      assert.deepEqual(creds.calls[0]!.channels, [1]);
      const all = await a.request('GET', '/v1/commands/');
      assert.ok(!all.text.includes(PASSWORD));

      // Bad args: refused before anything runs, naming the field; a 400 without a plain password,
      // a FAILED record with one (Ironic would copy a 4xx step's args into last_error).
      const calls = creds.calls.length;
      const bad = await a.request('POST', `/v1/commands/?${q}`, { name: `${kind}.execute_${kind}_step`, params: { step: { ...step, args: { username: 'ironic', generate: true, bogus: 1 } }, node, ports } });
      assert.equal(bad.status, 400);
      assert.match(bad.json.faultstring, /params\.step\.args\.bogus: unknown field/);
      const badPlain = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: `${kind}.execute_${kind}_step`, params: { step: { ...step, args: { username: 'ironic', password: PASSWORD, bogus: 1 } }, node, ports } });
      assert.equal(badPlain.status, 200);
      assert.equal(badPlain.json.command_status, 'FAILED');
      assert.equal(badPlain.json.command_error.reason, 'INVALID_REQUEST');
      assert.match(badPlain.json.command_error.details, /params\.step\.args\.bogus: unknown field/);
      assert.ok(!badPlain.text.includes(PASSWORD));
      assert.equal(creds.calls.length, calls, 'nothing reached the engine');

      // A step this agent does not have: a FAILED record, as IPA's dispatch does.
      const other = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: `${kind}.execute_${kind}_step`, params: { step: { interface: 'deploy', step: 'erase_devices_metadata', priority: 99 }, node, ports } });
      assert.equal(other.json.command_status, 'FAILED');
      assert.match(other.json.command_error.details, /No hardware manager found to handle/);
      assert.equal(creds.calls.length, 1);
    } finally {
      await a.close();
    }
  });
}

test('log.collect_system_logs returns a base64 tar.gz of the redacted agent log', async () => {
  let agentLog = '';
  const a = await startTestAgent({
    token: TOKEN,
    name: 'logs',
    deps: { collectLogs: async () => [{ name: 'inband-agent.log', text: agentLog }] },
  });
  try {
    a.logger.log.info(`something mentioning ${TOKEN}`);
    await new Promise((r) => setImmediate(r));
    agentLog = a.logger.ring.text();
    const r = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'log.collect_system_logs', params: {} });
    assert.equal(r.json.command_status, 'SUCCEEDED');
    const tarball = gunzipSync(Buffer.from(r.json.command_result.system_logs, 'base64'));
    assert.equal(tarball.subarray(0, 16).toString('utf8').replace(/\0+$/, ''), 'inband-agent.log');
    assert.equal(tarball.subarray(257, 262).toString('ascii'), 'ustar');
    const text = tarball.toString('utf8');
    assert.match(text, /something mentioning \*\*\*/);
    assert.ok(!text.includes(TOKEN));
  } finally {
    await a.close();
  }
});

test('standby.sync, standby.power_off and system.lockdown answer as Ironic expects', async () => {
  let synced = 0;
  const a = await startTestAgent({ token: TOKEN, name: 'standby', deps: { sync: async () => void synced++ } });
  try {
    const s = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'standby.sync', params: {} });
    assert.equal(s.json.command_status, 'SUCCEEDED');
    assert.equal(synced, 1);
    const p = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'standby.power_off', params: {} });
    assert.equal(p.json.command_status, 'FAILED');
    assert.match(p.json.command_error.details, /power it off out-of-band/);
    const l = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'system.lockdown', params: {} });
    assert.equal(l.json.command_status, 'SUCCEEDED');
    await new Promise((r) => setImmediate(r));
    const refused = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.get_info', params: {} });
    assert.equal(refused.status, 403);
    assert.match(refused.json.faultstring, /locked down/);
  } finally {
    await a.close();
  }
});

test('without a token, commands are taken from loopback only (unless --allow-remote-commands)', async () => {
  const local = await startTestAgent({ name: 'notoken-local' });
  const remote = await startTestAgent({ name: 'notoken-remote', clientAddress: '192.0.2.10' });
  const allowed = await startTestAgent({ name: 'notoken-allowed', clientAddress: '192.0.2.10', config: { allow_remote_commands: true } });
  try {
    const body = { name: 'bmc.get_info', params: {} };
    assert.equal((await local.request('POST', '/v1/commands/?wait=true', body)).status, 200);
    const r = await remote.request('POST', '/v1/commands/?wait=true', body);
    assert.equal(r.status, 403);
    assert.match(r.json.faultstring, /only from loopback/);
    assert.equal((await allowed.request('POST', '/v1/commands/?wait=true', body)).status, 200);
    // A token presented to an agent that has none cannot be checked: refused, as IPA does.
    assert.equal((await local.request('POST', `/v1/commands/?${q}`, body)).status, 401);
  } finally {
    await Promise.all([local.close(), remote.close(), allowed.close()]);
  }
});

test('reads are open by default (Ironic polls without a token) and need the token with require_token_for_reads', async () => {
  const open = await startTestAgent({ token: TOKEN, name: 'reads-open' });
  const closed = await startTestAgent({ token: TOKEN, name: 'reads-closed', config: { require_token_for_reads: true } });
  try {
    assert.equal((await open.request('GET', '/v1/commands/')).status, 200);
    assert.equal((await closed.request('GET', '/v1/commands/')).status, 401);
    assert.equal((await closed.request('GET', `/v1/commands/?${q}`)).status, 200);
    assert.equal((await closed.request('GET', `/v1/commands/abc?${q}`)).status, 404);
    assert.equal((await closed.request('GET', '/v1/commands/abc')).status, 401);
    assert.equal((await closed.request('GET', '/v1/status')).status, 200);
  } finally {
    await Promise.all([open.close(), closed.close()]);
  }
});

test('the request log has one line per request with the query token masked', async () => {
  const a = await startTestAgent({ token: TOKEN, name: 'reqlog' });
  try {
    await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.get_info', params: {} });
    await a.request('GET', '/v1/status');
    await new Promise((r) => setImmediate(r));
    const http = a.lines.lines.map((l) => JSON.parse(l)).filter((l) => l.module === 'http');
    assert.equal(http.length, 2);
    assert.match(http[0].message, /^POST \/v1\/commands\/\?wait=true&agent_token=\*\*\* 200 \d+\.\dms$/);
    assert.match(http[1].message, /^GET \/v1\/status 200 /);
    assert.ok(!a.lines.text().includes(TOKEN));
  } finally {
    await a.close();
  }
});

test('command records are bounded: the oldest finished ones are dropped', async () => {
  const a = await startTestAgent({ token: TOKEN, name: 'bounded', config: { max_command_records: 3 } });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.get_info', params: {} })).json.id);
    const list = await a.request('GET', '/v1/commands/');
    assert.deepEqual(list.json.commands.map((c: { id: string }) => c.id), ids.slice(2));
    assert.equal((await a.request('GET', `/v1/commands/${ids[0]}`)).status, 404);
  } finally {
    await a.close();
  }
});
