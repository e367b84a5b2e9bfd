/**
 * The daemon end to end, in-process: `serve()` with a real backend, driven
 * over HTTP the way Ironic drives IPA. Against ipmi_sim (VM codec), the new
 * credentials are proven by an out-of-band lanplus login.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadConfig } from '../../agent/config.js';
import { createLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { serve, type RunningAgent } from '../../agent/serve.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';
import { ipmiSimAvailability, startIpmiSim } from '../harness/ipmi-sim.js';
import { httpRequest } from './helpers.js';

const TOKEN = recordSecret('e2e-token-' + 'Zq9'.repeat(10));
const NEW_PASSWORD = recordSecret('Nw-pass-e2e-77');

async function startAgent(argv: string[], name: string): Promise<{ agent: RunningAgent; lines: LineCollector; dir: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'inband-serve-'));
  const lines = new LineCollector();
  const loaded = loadConfig({
    argv: ['--standalone', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', join(dir, 'state'), ...argv],
    env: { INBAND_AGENT_AGENT_TOKEN: TOKEN },
    cmdlinePath: null,
  });
  const logger = createLogger({ stream: lines, format: 'json', level: 'debug' });
  const agent = await serve({ loaded, logger });
  return {
    agent, lines, dir,
    stop: async () => {
      await agent.close();
      captureLines(`agent-serve-${name}`, lines.lines);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('serve (simulated BMC): status reports the backend; set_credentials over HTTP creates a verified user', async () => {
  const a = await startAgent(['--backend', 'simulated'], 'simulated');
  try {
    const status = await httpRequest(a.agent.url, 'GET', '/v1/status');
    assert.equal(status.json.backend.kind, 'simulated');
    const r = await httpRequest(a.agent.url, 'POST', `/v1/commands/?wait=true&agent_token=${TOKEN}`, {
      name: 'bmc.set_credentials', params: { username: 'ironic', password: NEW_PASSWORD },
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.command_status, 'SUCCEEDED', JSON.stringify(r.json.command_error));
    assert.equal(r.json.command_result.username, 'ironic');
    assert.equal(r.json.command_result.verified.name, true);
    assert.equal(r.json.command_result.verified.password_test, 'passed');
    const info = await httpRequest(a.agent.url, 'POST', `/v1/commands/?wait=true&agent_token=${TOKEN}`, { name: 'bmc.get_info', params: {} });
    const user = info.json.command_result.users.find((u: { name: string }) => u.name === 'ironic');
    assert.ok(user && user.enabled, 'the new user is listed and enabled');
    const all = await httpRequest(a.agent.url, 'GET', '/v1/commands/');
    assert.ok(!all.text.includes(NEW_PASSWORD));
    // What Ironic collects after a failure: the agent's own log, redacted, in a tar.gz.
    a.agent.logger.log.warn(`a careless line with ${NEW_PASSWORD} in it`);
    const logs = await httpRequest(a.agent.url, 'POST', `/v1/commands/?wait=true&agent_token=${TOKEN}`, { name: 'log.collect_system_logs', params: {} });
    assert.equal(logs.json.command_status, 'SUCCEEDED');
    const tarball = gunzipSync(Buffer.from(logs.json.command_result.system_logs, 'base64')).toString('utf8');
    assert.match(tarball, /inband-agent\.log/);
    assert.match(tarball, /command bmc\.set_credentials succeeded/);
    assert.match(tarball, /a careless line with \*\*\* in it/);
    assert.match(tarball, /journal\.(log|unavailable)/);
    assert.ok(!tarball.includes(NEW_PASSWORD) && !tarball.includes(TOKEN), 'a secret reached the collected logs');
    assert.ok(!a.lines.text().includes(NEW_PASSWORD));
    assert.ok(!a.lines.text().includes(TOKEN));
  } finally {
    await a.stop();
  }
});

test('serve (ipmi_sim over the VM codec): a manual-clean step sets a user that logs in over lanplus', async (t) => {
  const avail = ipmiSimAvailability();
  if (!avail.available) {
    t.skip(`ipmi_sim not available: ${avail.reason}`);
    return;
  }
  const sim = await startIpmiSim();
  const a = await startAgent(['--backend', 'vm-codec', '--vm-codec', `${sim.host}:${sim.vmPort}`], 'ipmi-sim');
  try {
    const q = `agent_token=${TOKEN}`;
    const steps = await httpRequest(a.agent.url, 'POST', `/v1/commands/?wait=true&${q}`, { name: 'clean.get_clean_steps', params: { node: {}, ports: [] } });
    assert.equal(steps.json.command_status, 'SUCCEEDED');
    const step = { interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'ironic', password: NEW_PASSWORD }, priority: 0, abortable: false };
    const exec = await httpRequest(a.agent.url, 'POST', `/v1/commands/?wait=false&${q}`, {
      name: 'clean.execute_clean_step', params: { step, node: {}, ports: [], clean_version: steps.json.command_result.hardware_manager_version },
    });
    assert.equal(exec.json.command_status, 'RUNNING');
    const done = await httpRequest(a.agent.url, 'GET', `/v1/commands/${exec.json.id}?wait=true`);
    assert.equal(done.json.command_status, 'SUCCEEDED', JSON.stringify(done.json.command_error));
    assert.deepEqual(done.json.command_result.clean_step, { interface: 'deploy', step: 'set_bmc_credentials', priority: 0, abortable: false });
    const login = await sim.lanplusLogin('ironic', NEW_PASSWORD);
    assert.ok(login.ok, `lanplus login with the new credentials failed: ${login.stderr}`);
    const wrong = await sim.lanplusLogin('ironic', 'Wrong-pass-123');
    assert.equal(wrong.ok, false, 'a wrong password must not log in');
    assert.ok(!a.lines.text().includes(NEW_PASSWORD));
  } finally {
    await a.stop();
    await sim.stop();
  }
});
