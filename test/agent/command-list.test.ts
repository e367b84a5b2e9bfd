/**
 * GET /v1/commands/ reuses its serialized list while nothing in it can change,
 * and never serves a stale one: a running record, a record finishing or a new
 * record are always seen, with the same headers as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordSecret } from '../helpers/secrets.js';
import { RecordingCredentials, startTestAgent, waitDone } from './helpers.js';

const TOKEN = recordSecret('tok-' + 'L'.repeat(28) + 'list-01');
const PASSWORD = recordSecret('Ls-pa55word-y2');
const q = `agent_token=${encodeURIComponent(TOKEN)}`;

test('the command list follows every change, with the same JSON headers, while repeated polls reuse it', async () => {
  const creds = new RecordingCredentials();
  let release!: () => void;
  creds.gate = new Promise((r) => (release = r));
  const a = await startTestAgent({ token: TOKEN, credentials: creds, name: 'list' });
  try {
    const empty = await a.request('GET', '/v1/commands/');
    assert.deepEqual(empty.json, { commands: [] });
    assert.equal(empty.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(empty.headers['content-length'], String(Buffer.byteLength(empty.text)));

    const steps = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'clean.get_clean_steps', params: { node: {}, ports: [] } });
    assert.equal(steps.json.command_status, 'SUCCEEDED');
    const one = await a.request('GET', '/v1/commands/');
    assert.deepEqual(one.json.commands.map((c: { id: string }) => c.id), [steps.json.id]);
    const again = await a.request('GET', '/commands');
    assert.equal(again.text, one.text, 'an unchanged list answers the same bytes');
    assert.equal(again.headers['content-type'], 'application/json; charset=utf-8');

    const started = await a.request('POST', `/v1/commands/?wait=false&${q}`, { name: 'bmc.set_credentials', params: { username: 'ironic', password: PASSWORD } });
    assert.equal(started.json.command_status, 'RUNNING');
    const running = await a.request('GET', '/v1/commands/');
    assert.deepEqual(running.json.commands.map((c: { command_status: string }) => c.command_status), ['SUCCEEDED', 'RUNNING']);
    assert.equal(running.headers['content-type'], 'application/json; charset=utf-8');
    release();
    await waitDone(a, started.json.id);
    const finished = await a.request('GET', '/v1/commands/');
    assert.deepEqual(finished.json.commands.map((c: { command_status: string }) => c.command_status), ['SUCCEEDED', 'SUCCEEDED']);
    assert.ok(!finished.text.includes(PASSWORD));
    const head = await a.request('HEAD', '/v1/commands/');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(Buffer.byteLength(finished.text)));
  } finally {
    await a.close();
  }
});
