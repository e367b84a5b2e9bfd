/**
 * serve() with the real conductor client against a scripted fake Ironic on
 * loopback: the wiring between the API, the token store and the client. The
 * client's own behaviour (back-off, fail-over, ...) is tested in test/ironic-client/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config.js';
import { createLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { serve } from '../../agent/serve.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';
import { FakeIronic, lookupOk } from '../ironic-client/fake-ironic.js';

const TOKEN = recordSecret('lookup-token-' + 'Pq4'.repeat(11));
const PASSWORD = recordSecret('Cd-pass-13579');

function httpsJson(url: string, ca: string, method: string, body?: unknown): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(url, { method, ca, agent: false, headers: payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function withAgent(fc: FakeIronic, name: string, fn: (a: Awaited<ReturnType<typeof serve>>, lines: LineCollector) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'inband-cond-'));
  const lines = new LineCollector();
  const loaded = loadConfig({
    argv: ['--api-url', fc.url, '--advertise-host', '127.0.0.1', '--listen-host', '127.0.0.1', '--listen-port', '0', '--backend', 'simulated', '--state-dir', join(dir, 's')],
    env: {}, cmdlinePath: null,
  });
  const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json', level: 'debug' }) });
  try {
    await fn(agent, lines);
  } finally {
    await agent.close();
    captureLines(`agent-conductor-${name}`, lines.lines);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('lookup hands the token to the API; the heartbeat advertises an https callback with the auto-TLS certificate; Ironic\'s commands then pass', async () => {
  const fc = await new FakeIronic('1.82').start();
  fc.setDefault('lookup', lookupOk('3f0e7b9c-0000-4000-8000-000000000001', TOKEN, 60));
  try {
    await withAgent(fc, 'token', async (agent, lines) => {
      await fc.waitFor('heartbeat', 1);
      const hb = JSON.parse(fc.of('heartbeat')[0]!.body);
      assert.equal(hb.callback_url, `https://127.0.0.1:${agent.port}`);
      assert.equal(hb.agent_token, TOKEN);
      const ca: string = hb.agent_verify_ca;
      assert.equal(new X509Certificate(ca).subjectAltName, 'IP Address:127.0.0.1');
      assert.equal(agent.tokens.source, 'lookup');

      // The conductor, as Ironic does it: pinned CA, token in the query.
      const base = hb.callback_url;
      const denied = await httpsJson(`${base}/v1/commands/?wait=true`, ca, 'POST', { name: 'bmc.get_info', params: {} });
      assert.equal(denied.status, 401);
      const r = await httpsJson(`${base}/v1/commands/?wait=true&agent_token=${TOKEN}`, ca, 'POST', {
        name: 'clean.execute_clean_step',
        params: { step: { interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'ironic', password: PASSWORD }, priority: 0 }, node: {}, ports: [] },
      });
      assert.equal(r.status, 200);
      assert.equal(r.json.command_status, 'SUCCEEDED', JSON.stringify(r.json.command_error));
      const polled = await httpsJson(`${base}/v1/commands/`, ca, 'GET');
      assert.equal(polled.json.commands.at(-1).command_name, 'execute_clean_step');
      // The async command's end forces a heartbeat.
      await fc.waitFor('heartbeat', 2);
      const text = lines.text();
      assert.ok(!text.includes(TOKEN) && !text.includes(PASSWORD), 'a secret reached the log');
    });
  } finally {
    await fc.stop();
  }
});

test('a lookup answering "******" to an agent without a token locks the API down', async () => {
  const fc = await new FakeIronic('1.82').start();
  fc.setDefault('lookup', lookupOk('3f0e7b9c-0000-4000-8000-000000000002', '******', 60));
  try {
    await withAgent(fc, 'lockdown', async (agent) => {
      await fc.waitFor('lookup', 1);
      for (let i = 0; i < 100 && !agent.tokens.lockdownReason; i++) await new Promise((r) => setTimeout(r, 20));
      assert.match(agent.tokens.lockdownReason ?? '', /already handed out/);
      const r = await httpsJson(`https://127.0.0.1:${agent.port}/v1/commands/?wait=true`, agent.tls.verifyCa!, 'POST', { name: 'bmc.get_info', params: {} });
      assert.equal(r.status, 403);
      assert.match(r.json.faultstring, /locked down/);
      // Locked down is not a crash: the agent stays up (a restart would meet the same "******").
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(agent.fatal, undefined);
      const status = await httpsJson(`https://127.0.0.1:${agent.port}/v1/status`, agent.tls.verifyCa!, 'GET');
      assert.equal(status.status, 200);
    });
  } finally {
    await fc.stop();
  }
});

test('a lookup that times out stops the agent with a fatal error (the CLI then exits 1 for systemd to restart it)', async () => {
  const fc = await new FakeIronic('1.82').start(); // lookup: 404 "Resource could not be found." by default
  try {
    const dir = mkdtempSync(join(tmpdir(), 'inband-cond-'));
    const lines = new LineCollector();
    const loaded = loadConfig({
      argv: ['--api-url', fc.url, '--lookup-timeout', '1', '--advertise-host', '127.0.0.1', '--listen-host', '127.0.0.1', '--listen-port', '0', '--backend', 'simulated', '--state-dir', join(dir, 's')],
      env: {}, cmdlinePath: null,
    });
    const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json' }) });
    try {
      await agent.stopped;
      assert.ok(agent.fatal, 'the agent says why it gave up');
      assert.ok(fc.of('lookup').length >= 1);
    } finally {
      await agent.close();
      captureLines('agent-conductor-timeout', lines.lines);
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await fc.stop();
  }
});
