/**
 * The agent's API with a password sealed to its auto-TLS certificate
 * (`password_sealed`), as conductor/seal.ts makes it from the PEM the agent
 * sends Ironic as agent_verify_ca: bmc.set_credentials and the
 * set_bmc_credentials clean step open it and hand the engine a Secret; a
 * value for another key or node is refused naming the field, and nothing
 * reaches the BMC. The key is the one autoTls() made, handed to the API as
 * `serve` hands it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { autoTls } from '../../agent/tls/server-tls.js';
import { generateSelfSigned } from '../../service/tls/self-signed.js';
import { recipientFromCertificate, sealPassword } from '../../conductor/seal.js';
import { Secret } from '../../service/secret.js';
import { recordSecret } from '../helpers/secrets.js';
import { RecordingCredentials, startTestAgent, type TestAgent } from './helpers.js';

const TOKEN = recordSecret('tok-' + 'S'.repeat(28) + 'sealed-1');
const PASSWORD = recordSecret('Se4led_pw,Kq7?Zx');
const q = `agent_token=${encodeURIComponent(TOKEN)}`;
const NODE = '6f0b8e2c-5d4a-4c1e-9f7b-2a3c4d5e6f70';
const OTHER = '7f0b8e2c-5d4a-4c1e-9f7b-2a3c4d5e6f71';

describe('password_sealed on the agent API', () => {
  let verifyCa: string;
  let creds: RecordingCredentials;
  let a: TestAgent;
  const seal = (opts: { node?: string; user?: string; cert?: string } = {}) =>
    sealPassword(recipientFromCertificate(opts.cert ?? verifyCa), Secret.fromString(PASSWORD), { node: opts.node ?? NODE, user: opts.user ?? 'ironic_b' });
  const step = (args: Record<string, unknown>, node = NODE) => ({
    name: 'clean.execute_clean_step',
    params: { step: { interface: 'deploy', step: 'set_bmc_credentials', priority: 0, args }, node: { uuid: node }, ports: [], clean_version: {} },
  });

  before(async () => {
    const tls = autoTls('127.0.0.1', '1.2');
    verifyCa = tls.verifyCa as string;
    assert.equal(tls.sealingKey?.kid, recipientFromCertificate(verifyCa).kid, 'the key serve can inject is the certificate\'s');
    creds = new RecordingCredentials();
    a = await startTestAgent({ token: TOKEN, credentials: creds, name: 'sealed', deps: { sealingKey: tls.sealingKey } });
  });
  after(async () => {
    await a.close();
  });

  it('the step declares password_sealed in its argsinfo (Ironic refuses undeclared args)', async () => {
    const r = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'clean.get_clean_steps', params: { node: { uuid: NODE }, ports: [] } });
    const s = r.json.command_result.clean_steps.InbandBmcHardwareManager[0];
    assert.equal(s.argsinfo.password_sealed.required, false);
    assert.equal(s.argsinfo.password.required, false);
  });

  it('bmc.set_credentials opens a sealed password and the engine gets it as a Secret', async () => {
    creds.calls.length = 0;
    creds.revealed.length = 0;
    const r = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.set_credentials', params: { username: 'ironic_b', password_sealed: seal() } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.command_status, 'SUCCEEDED');
    assert.equal(creds.calls.length, 1);
    assert.equal(String(creds.calls[0]!.password), '***');
    assert.equal(creds.revealed[0], PASSWORD);
    assert.equal(creds.calls[0]!.username, 'ironic_b');
  });

  it('the clean step opens a value sealed for its node; the record and log hold no password', async () => {
    creds.calls.length = 0;
    creds.revealed.length = 0;
    const r = await a.request('POST', `/v1/commands/?wait=true&${q}`, step({ username: 'ironic_b', password_sealed: seal(), privilege: 'administrator' }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.command_status, 'SUCCEEDED', r.text);
    assert.equal(creds.revealed[0], PASSWORD);
    assert.deepEqual(r.json.command_result.clean_step, { interface: 'deploy', step: 'set_bmc_credentials', priority: 0 });
    const list = await a.request('GET', '/v1/commands/');
    assert.ok(!list.text.includes(PASSWORD));
    assert.ok(!a.lines.text().includes(PASSWORD), 'the password reached the log');
  });

  it('refused, naming the field, with nothing written: another node, another agent key, another user, a replay, a tampered value', async () => {
    creds.calls.length = 0;
    const replayed = seal();
    const first = await a.request('POST', `/v1/commands/?wait=true&${q}`, step({ username: 'ironic_b', password_sealed: replayed }));
    assert.equal(first.json.command_status, 'SUCCEEDED');
    creds.calls.length = 0;
    const otherCert = generateSelfSigned({ address: '127.0.0.1', commonName: 'other' }).certPem;
    const good = seal();
    const cases: [string, unknown, RegExp][] = [
      ['other node', step({ username: 'ironic_b', password_sealed: seal({ node: OTHER }) }), /params\.step\.args\.password_sealed: sealed for node 7f0b8e2c.*serves node 6f0b8e2c/],
      ['step for another node', step({ username: 'ironic_b', password_sealed: seal() }, OTHER), /params\.step\.args\.password_sealed: sealed for node 6f0b8e2c/],
      ['other agent key', step({ username: 'ironic_b', password_sealed: seal({ cert: otherCert }) }), /params\.step\.args\.password_sealed: sealed for another agent key/],
      ['other user', step({ username: 'ironic', password_sealed: seal() }), /params\.step\.args\.password_sealed: sealed for BMC user "ironic_b"/],
      ['replay', step({ username: 'ironic_b', password_sealed: replayed }), /params\.step\.args\.password_sealed: .*already used/],
      ['tampered', step({ username: 'ironic_b', password_sealed: { ...good, ct: Buffer.from('x'.repeat(16)).toString('base64url') } }), /params\.step\.args\.password_sealed: does not open/],
      ['malformed', { name: 'bmc.set_credentials', params: { username: 'ironic_b', password_sealed: { v: 1 } } }, /params\.password_sealed/],
    ];
    for (const [what, body, re] of cases) {
      const r = await a.request('POST', `/v1/commands/?wait=true&${q}`, body);
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.match(r.json.faultstring, re, what);
      assert.ok(!r.text.includes(PASSWORD), what);
    }
    // With a plain password in the args the refusal is a FAILED record, not a 400 that Ironic would copy into last_error.
    const both = await a.request('POST', `/v1/commands/?wait=true&${q}`, step({ username: 'ironic_b', password_sealed: good, password: PASSWORD }));
    assert.equal(both.json.command_status, 'FAILED', both.text);
    assert.match(both.json.command_error.details, /params\.step\.args\.password_sealed: give either/);
    assert.ok(!both.text.includes(PASSWORD));
    assert.equal(creds.calls.length, 0, 'nothing reached the BMC');
  });

  it('an agent without auto-TLS has no key: a sealed password is refused, by the command and by the step', async () => {
    const plain = await startTestAgent({ token: TOKEN, credentials: creds, name: 'sealed-nokey' });
    try {
      creds.calls.length = 0;
      const r = await plain.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.set_credentials', params: { username: 'ironic_b', password_sealed: seal() } });
      assert.equal(r.status, 400);
      assert.match(r.json.faultstring, /params\.password_sealed: this agent has no sealing key/);
      const s = await plain.request('POST', `/v1/commands/?wait=true&${q}`, step({ username: 'ironic_b', password_sealed: seal() }));
      assert.equal(s.status, 400);
      assert.match(s.json.faultstring, /params\.step\.args\.password_sealed: this agent has no sealing key/);
      assert.equal(creds.calls.length, 0, 'nothing reached the BMC');
    } finally {
      await plain.close();
    }
  });
});
