/**
 * The API's doors for callers that are not Ironic: a web page open on the node
 * (loopback is no boundary for a browser), bodies built to break the serializer
 * or to make an error message echo what was sent, and methods IPA refuses.
 * Each refusal leaves the credential port untouched and no command record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandRecord } from '../../agent/api/records.js';
import { recordSecret } from '../helpers/secrets.js';
import { RecordingCredentials, startTestAgent } from './helpers.js';

const PASSWORD = recordSecret('Br0wser-pw-x9');
const TOKEN = recordSecret('tok-' + 'B'.repeat(28) + 'doors-01');
const setCreds = JSON.stringify({ name: 'bmc.set_credentials', params: { username: 'ironic', password: PASSWORD } });

test('tokenless (loopback-only) mode: a cross-origin text/plain or form POST sets nothing', async () => {
  const creds = new RecordingCredentials();
  const a = await startTestAgent({ credentials: creds, name: 'browser-tokenless' });
  try {
    const attempts: Array<[string, Record<string, string>, number]> = [
      // What a page's fetch(..., {mode: 'no-cors', body: string}) or a <form enctype=text/plain> sends.
      ['text/plain, foreign Origin', { 'content-type': 'text/plain;charset=UTF-8', origin: 'http://evil.example' }, 403],
      ['text/plain, no Origin', { 'content-type': 'text/plain' }, 415],
      ['form, no Origin', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
      ['multipart, no Origin', { 'content-type': 'multipart/form-data; boundary=x' }, 415],
      ['no content type', { 'content-type': '' }, 415],
      ['JSON, foreign Origin (a DNS-rebound name)', { 'content-type': 'application/json', origin: 'http://rebind.example:9999' }, 403],
      ['JSON, Origin null (sandboxed frame)', { 'content-type': 'application/json', origin: 'null' }, 403],
      ['JSON, cross-site fetch metadata', { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }, 403],
    ];
    for (const [what, headers, status] of attempts) {
      const r = await a.request('POST', '/v1/commands/?wait=true', setCreds, headers);
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.equal(r.json.faultcode, 'Client', what);
      assert.ok(!r.text.includes(PASSWORD), what);
    }
    assert.equal(creds.calls.length, 0, 'the BMC was never asked');
    assert.equal(a.api.store.size, 0, 'no command record');
    // Ironic's (and the CLI's) request still works: application/json, no Origin.
    const ok = await a.request('POST', '/v1/commands/?wait=true', setCreds, { 'content-type': 'application/json; charset=utf-8' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.command_status, 'SUCCEEDED');
    assert.equal(creds.calls.length, 1);
  } finally {
    await a.close();
  }
});

test('with a token too, an Origin is refused before the token is even looked at', async () => {
  const creds = new RecordingCredentials();
  const a = await startTestAgent({ token: TOKEN, credentials: creds, name: 'browser-token' });
  try {
    const r = await a.request('POST', `/v1/commands/?wait=true&agent_token=${encodeURIComponent(TOKEN)}`, setCreds, { origin: 'https://evil.example' });
    assert.equal(r.status, 403);
    const list = await a.request('GET', '/v1/commands/', undefined, { origin: 'https://evil.example' });
    assert.equal(list.status, 403, 'a page cannot read the records either');
    assert.equal(creds.calls.length, 0);
  } finally {
    await a.close();
  }
});

test('a malformed-JSON error names the position, never the text around it', async () => {
  const secret = recordSecret('Hunter22');
  const a = await startTestAgent({ name: 'malformed' });
  try {
    for (const body of [`["${secret}",x]`, `{"name":"bmc.set_credentials","params":{"password":"${secret}",}}`, `{"x":"${secret}`]) {
      const r = await a.request('POST', '/v1/commands/', body);
      assert.equal(r.status, 400);
      assert.match(r.json.faultstring, /^Malformed JSON in request body/);
      assert.ok(!r.text.includes(secret), `echoed: ${r.json.faultstring}`);
      assert.ok(!r.text.includes('Hunter'), `echoed a piece: ${r.json.faultstring}`);
    }
    assert.ok(!a.lines.lines.join('\n').includes(secret));
  } finally {
    await a.close();
  }
});

test('a 20,000-deep array in a step is refused at the door; an unserializable record never poisons the list', async () => {
  const creds = new RecordingCredentials();
  const a = await startTestAgent({ credentials: creds, name: 'deep' });
  try {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const body = `{"name":"clean.execute_clean_step","params":{"step":{"interface":"management","step":"set_bmc_credentials","priority":0,"args":{"username":"ironic","password":"${PASSWORD}","x":${deep}}},"node":{},"ports":[]}}`;
    const r = await a.request('POST', '/v1/commands/?wait=true', body);
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.match(r.json.faultstring, /nests deeper than 64 levels/);
    assert.equal(creds.calls.length, 0, 'the BMC was not written');
    assert.equal(a.api.store.size, 0);

    // A record the serializer cannot write (however it got there): the list still answers.
    const ok = await a.request('POST', '/v1/commands/?wait=true', { name: 'clean.get_clean_steps', params: {} });
    assert.equal(ok.status, 200);
    const bad = new CommandRecord('clean.execute_clean_step');
    let nested: unknown[] = [];
    const top = nested;
    for (let i = 0; i < 20_000; i++) {
      const next: unknown[] = [];
      nested.push(next);
      nested = next;
    }
    bad.succeed({ clean_step: { args: top } });
    a.api.store.add(bad);
    const list = await a.request('GET', '/v1/commands/');
    assert.equal(list.status, 200, list.text.slice(0, 200));
    assert.equal(list.json.commands.length, 2);
    assert.equal(list.json.commands[0].command_status, 'SUCCEEDED');
    assert.equal(list.json.commands[1].id, bad.id);
    assert.equal(list.json.commands[1].command_status, 'FAILED');
    assert.equal(list.json.commands[1].command_error.type, 'SerializationError');
    const one = await a.request('GET', `/v1/commands/${bad.id}`);
    assert.equal(one.status, 200);
    assert.equal(one.json.command_error.type, 'SerializationError');
  } finally {
    await a.close();
  }
});

test('POST (and every other method but GET/HEAD) on /v1/status is 405 with Allow, as IPA', async () => {
  const a = await startTestAgent({ name: 'status-405' });
  try {
    for (const p of ['/v1/status', '/status']) {
      for (const m of ['POST', 'PUT', 'DELETE']) {
        const r = await a.request(m, p, m === 'DELETE' ? undefined : {});
        assert.equal(r.status, 405, `${m} ${p}`);
        assert.equal(r.headers.allow, 'GET, HEAD');
        assert.match(r.json.faultstring, /^Method Not Allowed/);
      }
      const head = await a.request('HEAD', p);
      assert.equal(head.status, 200);
    }
  } finally {
    await a.close();
  }
});
