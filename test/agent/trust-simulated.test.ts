/**
 * Nothing simulated is ever reported as real. The simulated BMC stands in for
 * a real one only under `auto` on a machine without any IPMI device (a
 * laptop), and then every output says so; a device or backend the user named
 * that cannot be opened is an error with nothing written; the daemon serving
 * a conductor never simulates: without a device its BMC commands and the step
 * fail naming the cause, and its inventory reports no BMC address.
 *
 * "No device" is an empty directory the agent is told to look in (CliIo and
 * ServeOptions `ipmiDevices`), so these tests mean the same on a machine that
 * has a real /dev/ipmi0, and never touch it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { main } from '../../agent/cli.js';
import { loadConfig } from '../../agent/config.js';
import { createLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { openBackendFromConfig, serve, type ServeOptions } from '../../agent/serve.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';
import { FakeIronic, lookupOk } from '../ironic-client/fake-ironic.js';
import { httpRequest } from './helpers.js';

const PASSWORD = recordSecret('Trust-sim-24680');
const TOKEN = recordSecret('trust-token-' + 'Zx7'.repeat(11));
const NO_DEVICE_HINT = /no IPMI device: load ipmi_msghandler, ipmi_devintf and ipmi_si/;

async function run(argv: string[], devicesDir: string, stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const stdout = new LineCollector();
  const stderr = new LineCollector();
  // Typed loosely: the same file compiles against a tree without the ipmiDevices option.
  const io: Record<string, unknown> = { stdout, stderr, stdin: Readable.from([stdin]), env: {}, cmdlinePath: null, signals: false, ipmiDevices: [join(devicesDir, 'ipmi0')] };
  const code = await main(argv, io as never);
  captureLines('agent-trust-cli', [...stdout.lines, ...stderr.lines]);
  return { code, out: stdout.text(), err: stderr.text() };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'inband-trust-'));
}

/** What a run may have written: the simulated BMC's state file and the engine's state dir. */
function written(dir: string): string[] {
  const out: string[] = [];
  if (existsSync(join(dir, 'bmc.json'))) out.push('bmc.json');
  if (existsSync(join(dir, 'state'))) out.push(...readdirSync(join(dir, 'state')).map((f) => `state/${f}`));
  return out;
}

const stateArgs = (dir: string) => ['--sim-state-file', join(dir, 'bmc.json'), '--state-dir', join(dir, 'state')];

test('a device the user named that does not exist is an error naming it, exit 1, and nothing is written (no simulated stand-in)', async () => {
  const dir = tmp();
  try {
    const typo = join(dir, 'ipmi9');
    for (const argv of [
      ['set-credentials', '--username', 'ironic', '--password-stdin', '--device', typo, ...stateArgs(dir)],
      ['set-credentials', '--username', 'ironic', '--generate', '--json', '--device', typo, ...stateArgs(dir)],
      ['bmc', 'info', '--json', '--device', typo, ...stateArgs(dir)],
      ['bmc', 'raw', '0x06', '0x01', '--device', typo, ...stateArgs(dir)],
    ]) {
      const r = await run(argv, dir, `${PASSWORD}\n`);
      const what = argv.slice(0, 2).join(' ');
      assert.equal(r.code, 1, `${what}: ${r.out}${r.err}`);
      assert.ok(r.err.includes(typo), `${what} names the device: ${r.err}`);
      assert.match(r.err, /no IPMI device at .* \(configured\)/, what);
      assert.doesNotMatch(r.out, /Verified|"backend"/, what);
      assert.equal(r.out, '', `${what} prints no result`);
      assert.deepEqual(written(dir), [], `${what} wrote nothing`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--backend native without a device is an error saying so, and nothing is written', async () => {
  const dir = tmp();
  try {
    for (const extra of [[], ['--device', join(dir, 'ipmi9')]]) {
      const r = await run(['set-credentials', '--username', 'ironic', '--password-stdin', '--backend', 'native', ...extra, ...stateArgs(dir)], dir, `${PASSWORD}\n`);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.err, /set-credentials failed: native backend: no IPMI device/);
      assert.equal(r.out, '');
      assert.deepEqual(written(dir), []);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('auto on a laptop falls back loudly, and every output, human and --json, says the result is simulated', async () => {
  const dir = tmp();
  try {
    const human = await run(['set-credentials', '--username', 'ironic', '--password-stdin', '--channel', '1', ...stateArgs(dir)], dir, `${PASSWORD}\n`);
    assert.equal(human.code, 0, human.err);
    assert.match(human.err, /NO REAL BMC: no IPMI device .*using the SIMULATED BMC/, 'the fallback is logged on stderr');
    assert.match(human.out.split('\n')[0]!, /^SIMULATED BMC: .*no real BMC was read or changed/, 'the first line says so');
    assert.match(human.out, /Verified on the SIMULATED BMC only: password test passed/);
    assert.match(human.out, /BMC address: \S+ .*\(simulated, not a real address\)/);
    assert.doesNotMatch(human.out, /^Verified: /m, 'no unqualified "Verified"');

    const json = JSON.parse((await run(['set-credentials', '--username', 'ironic', '--password-stdin', '--json', ...stateArgs(dir)], dir, `${PASSWORD}\n`)).out);
    assert.equal(json.backend, 'simulated');
    assert.match(json.warnings[0], /^SIMULATED BMC: /);

    const gen = JSON.parse((await run(['set-credentials', '--username', 'gen', '--generate', '--json', ...stateArgs(dir)], dir)).out);
    assert.equal(gen.backend, 'simulated');

    const info = JSON.parse((await run(['bmc', 'info', '--json', ...stateArgs(dir)], dir)).out);
    assert.equal(info.backend, 'simulated');
    assert.match(info.warnings[0], /^SIMULATED BMC: /);
    const infoText = await run(['bmc', 'info', ...stateArgs(dir)], dir);
    assert.match(infoText.out, /^SIMULATED BMC: /);
    assert.match(infoText.out, /Backend:\s+simulated .*SIMULATED, not a real BMC; auto: fell back/);

    const raw = await run(['bmc', 'raw', '0x06', '0x01', ...stateArgs(dir)], dir);
    assert.equal(raw.code, 0, raw.err);
    assert.match(raw.out, /^ 20 01 /, 'stdout stays the response bytes');
    assert.match(raw.err, /SIMULATED BMC: /, 'and stderr names the simulation');

    // A forced simulated backend is no fallback, but its results say so all the same.
    const forced = JSON.parse((await run(['bmc', 'info', '--json', '--backend', 'simulated', ...stateArgs(dir)], dir)).out);
    assert.equal(forced.backend, 'simulated');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve --backend native (the systemd unit) without a device exits 1 naming the cause, so that Restart= waits for a late device', async () => {
  const dir = tmp();
  try {
    const serveArgs = ['--api-url', 'http://127.0.0.1:9', '--listen-host', '127.0.0.1', '--listen-port', '0', ...stateArgs(dir)];
    const r = await run(['serve', '--backend', 'native', ...serveArgs], dir);
    assert.equal(r.code, 1);
    assert.match(r.err, /serve failed: native backend: no IPMI device found/, r.out);
    // A device named with auto is meant just as much.
    const typo = join(dir, 'ipmi9');
    const named = await run(['serve', '--device', typo, ...serveArgs], dir);
    assert.equal(named.code, 1);
    assert.ok(named.err.includes(`no IPMI device at ${typo} (configured)`), named.err);
    assert.deepEqual(written(dir).filter((f) => f === 'bmc.json'), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

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

/** serve() in-process with a conductor URL, the default backend (auto) and `devices` as the only device node looked for. */
async function conductorAgent(fc: FakeIronic, dir: string, lines: LineCollector, extra: Partial<ServeOptions> = {}) {
  const loaded = loadConfig({
    argv: ['--api-url', fc.url, '--advertise-host', '127.0.0.1', '--listen-host', '127.0.0.1', '--listen-port', '0', ...stateArgs(dir)],
    env: {}, cmdlinePath: null,
  });
  return serve({ loaded, logger: createLogger({ stream: lines, format: 'json', level: 'debug' }), ipmiDevices: [join(dir, 'ipmi0')], ...extra } as ServeOptions);
}

test('the daemon serving a conductor on a machine without an IPMI device never simulates: it says so, bmc.* and the step FAIL, the inventory has no BMC address', async () => {
  const fc = await new FakeIronic('1.82').start();
  fc.setDefault('lookup', lookupOk('3f0e7b9c-0000-4000-8000-0000000000a1', TOKEN, 60));
  const dir = tmp();
  const lines = new LineCollector();
  try {
    const agent = await conductorAgent(fc, dir, lines);
    try {
      await fc.waitFor('heartbeat', 1);
      assert.ok(lines.lines.some((l) => /"level":"warn"/.test(l) && /NO BMC: no IPMI device: load ipmi_msghandler/.test(l)), 'the start says there is no BMC');
      const hb = JSON.parse(fc.of('heartbeat')[0]!.body);
      const ca: string = hb.agent_verify_ca;
      const base = `${hb.callback_url}/v1`;

      const status = await httpsJson(`${base}/status`, ca, 'GET');
      assert.equal(status.json.backend.kind, 'none');
      assert.match(status.json.backend.reason, NO_DEVICE_HINT);

      const cmd = (name: string, params: unknown) => httpsJson(`${base}/commands/?wait=true&agent_token=${TOKEN}`, ca, 'POST', { name, params });
      const calls: Array<[string, unknown]> = [
        ['bmc.get_info', {}],
        ['bmc.set_credentials', { username: 'ironic', password: PASSWORD }],
        ['bmc.set_credentials', { username: 'ironic', generate: true }],
        ['clean.execute_clean_step', { step: { interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'ironic', password: PASSWORD }, priority: 0 }, node: {}, ports: [] }],
        ['service.execute_service_step', { step: { interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'ironic', generate: true }, priority: 0 }, node: {}, ports: [] }],
      ];
      for (const [name, params] of calls) {
        const r = await cmd(name, params);
        assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.command_status, 'FAILED', `${name} must not succeed: ${JSON.stringify(r.json.command_result)}`);
        assert.match(r.json.command_error.details, NO_DEVICE_HINT, name);
        assert.equal(r.json.command_result, null, name);
      }
      const hw = await cmd('poll.get_hardware_info', {});
      assert.equal(hw.json.command_status, 'SUCCEEDED');
      assert.equal(hw.json.command_result.bmc_address, null, 'no made-up BMC address');
      assert.equal(hw.json.command_result.bmc_v6address, null);
      assert.equal(hw.json.command_result.bmc_mac, undefined);
      assert.deepEqual(written(dir).filter((f) => f === 'bmc.json'), [], 'no simulated BMC was even created');
      assert.equal(agent.selection, undefined);
    } finally {
      await agent.close();
    }
  } finally {
    captureLines('agent-trust-conductor', lines.lines);
    await fc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('discovery posts an inventory without a BMC address when there is no device', async () => {
  const fc = await new FakeIronic('1.82').start(); // lookup: 404, so the agent posts its inventory for discovery
  const dir = tmp();
  const lines = new LineCollector();
  try {
    const loaded = loadConfig({
      argv: ['--api-url', fc.url, '--inspection-callback-url', `${fc.url}/v1/continue`, '--advertise-host', '127.0.0.1', '--listen-host', '127.0.0.1', '--listen-port', '0', ...stateArgs(dir)],
      env: {}, cmdlinePath: null,
    });
    const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json' }), ipmiDevices: [join(dir, 'ipmi0')] } as ServeOptions);
    try {
      await fc.waitFor('inspection', 1);
      const posted = JSON.parse(fc.of('inspection')[0]!.body);
      assert.equal(posted.inventory.bmc_address, null);
      assert.equal(posted.inventory.bmc_v6address, null);
    } finally {
      await agent.close();
    }
  } finally {
    captureLines('agent-trust-discovery', lines.lines);
    await fc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a device that appears after the start is used from the next command on (the agent looks again; no restart needed)', async (t) => {
  const fc = await new FakeIronic('1.82').start();
  fc.setDefault('lookup', lookupOk('3f0e7b9c-0000-4000-8000-0000000000a2', TOKEN, 60));
  const dir = tmp();
  const lines = new LineCollector();
  // The late device is a character device node (what ipmi_devintf creates); the test opens the
  // simulated BMC behind it, as the addon cannot talk to a node that is not the IPMI driver's.
  const opened: string[] = [];
  const openBackend: NonNullable<ServeOptions['openBackend']> = (config, log, extra) => {
    opened.push(extra?.plan?.kind ?? '?');
    return openBackendFromConfig({ ...config, backend: 'simulated' }, log, {});
  };
  try {
    const agent = await conductorAgent(fc, dir, lines, { openBackend });
    try {
      await fc.waitFor('heartbeat', 1);
      const hb = JSON.parse(fc.of('heartbeat')[0]!.body);
      const base = `${hb.callback_url}/v1`;
      const cmd = (name: string) => httpsJson(`${base}/commands/?wait=true&agent_token=${TOKEN}`, hb.agent_verify_ca, 'POST', { name, params: {} });
      const before = await cmd('bmc.get_info');
      assert.equal(before.json.command_status, 'FAILED');
      assert.deepEqual(opened, [], 'nothing is opened without a device');
      try {
        execFileSync('mknod', [join(dir, 'ipmi0'), 'c', '1', '3']);
      } catch (e) {
        t.skip(`cannot create a device node here: ${(e as Error).message}`);
        return;
      }
      const after = await cmd('bmc.get_info');
      assert.equal(after.json.command_status, 'SUCCEEDED', JSON.stringify(after.json.command_error));
      assert.deepEqual(opened, ['native'], 'the device found is what was chosen');
      const status = await httpsJson(`${base}/status`, hb.agent_verify_ca, 'GET');
      assert.equal(status.json.backend.kind, 'simulated', 'status follows the backend now in use');
      assert.ok(lines.lines.some((l) => /an IPMI device appeared/.test(l)));
    } finally {
      await agent.close();
    }
  } finally {
    captureLines('agent-trust-late', lines.lines);
    await fc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Starts serve() with the backend's opening held, and returns the first /v1/status answered meanwhile. */
async function firstStatus(argv: string[], dir: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const port = await freePort();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const openBackend: NonNullable<ServeOptions['openBackend']> = async (config, log, extra) => {
    await gate;
    return openBackendFromConfig(config, log, extra);
  };
  const loaded = loadConfig({ argv: [...argv, '--listen-host', '127.0.0.1', '--listen-port', String(port), ...stateArgs(dir)], env: {}, cmdlinePath: null });
  const lines = new LineCollector();
  const starting = serve({ loaded, logger: createLogger({ stream: lines, format: 'json' }), openBackend, ipmiDevices: [join(dir, 'ipmi0')] } as ServeOptions);
  starting.catch(() => undefined);
  try {
    for (;;) {
      try {
        return (await httpRequest(`http://127.0.0.1:${port}`, 'GET', '/v1/status')).json;
      } catch {
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  } finally {
    release();
    await (await starting).close();
    captureLines('agent-trust-status', lines.lines);
  }
}

test('the very first /v1/status names the backend, and a simulated one says it is simulated', async () => {
  const dir = tmp();
  try {
    const forced = await firstStatus(['--standalone', '--backend', 'simulated'], dir);
    assert.equal(forced.backend?.kind, 'simulated', JSON.stringify(forced));
    const auto = await firstStatus(['--standalone'], dir);
    assert.equal(auto.backend?.kind, 'simulated', JSON.stringify(auto));
    assert.match(auto.backend.warning, /NO REAL BMC: .*SIMULATED BMC/);
    assert.match(auto.backend.reason, /auto: fell back to the simulated BMC/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a standalone daemon on the simulated BMC stamps its records and reports no made-up BMC address in its inventory', async () => {
  const dir = tmp();
  const lines = new LineCollector();
  const loaded = loadConfig({ argv: ['--standalone', '--listen-host', '127.0.0.1', '--listen-port', '0', ...stateArgs(dir)], env: {}, cmdlinePath: null });
  const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json' }), ipmiDevices: [join(dir, 'ipmi0')] } as ServeOptions);
  try {
    const set = await httpRequest(agent.url, 'POST', '/v1/commands/?wait=true', { name: 'bmc.set_credentials', params: { username: 'ironic', password: PASSWORD } });
    assert.equal(set.json.command_status, 'SUCCEEDED', JSON.stringify(set.json.command_error));
    assert.equal(set.json.command_result.backend, 'simulated');
    assert.match(set.json.command_result.warnings[0], /^SIMULATED BMC: /);
    const step = await httpRequest(agent.url, 'POST', '/v1/commands/?wait=true', {
      name: 'clean.execute_clean_step',
      params: { step: { interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'ironic', password: PASSWORD }, priority: 0 }, node: {}, ports: [] },
    });
    assert.equal(step.json.command_result.clean_result.backend, 'simulated');
    const info = await httpRequest(agent.url, 'POST', '/v1/commands/?wait=true', { name: 'bmc.get_info', params: {} });
    assert.equal(info.json.command_result.backend, 'simulated');
    const listed = await httpRequest(agent.url, 'GET', '/v1/commands/');
    assert.ok(listed.json.commands.filter((c: { command_name: string }) => c.command_name !== 'get_hardware_info').every((c: { command_result: { backend?: string; clean_result?: { backend?: string } } }) => (c.command_result.backend ?? c.command_result.clean_result?.backend) === 'simulated'), 'every record says so');
    const hw = await httpRequest(agent.url, 'POST', '/v1/commands/?wait=true', { name: 'poll.get_hardware_info', params: {} });
    assert.equal(hw.json.command_result.bmc_address, null, 'the simulated BMC\'s address is made up: not in the inventory');
  } finally {
    await agent.close();
    captureLines('agent-trust-standalone', lines.lines);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the daemon on a fallback simulation says so once, in one short line, before "API listening"', async () => {
  const dir = tmp();
  const lines = new LineCollector();
  const loaded = loadConfig({ argv: ['--standalone', '--listen-host', '127.0.0.1', '--listen-port', '0', ...stateArgs(dir)], env: {}, cmdlinePath: null });
  const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json' }), ipmiDevices: [join(dir, 'ipmi0')] } as ServeOptions);
  try {
    await httpRequest(agent.url, 'POST', '/v1/commands/?wait=true', { name: 'bmc.get_info', params: {} });
    const messages = lines.lines.map((l) => JSON.parse(l) as { level: string; message: string });
    const simulated = messages.filter((m) => /SIMULATED BMC|NO REAL BMC/.test(m.message) && m.level === 'warn');
    assert.equal(simulated.length, 1, JSON.stringify(simulated));
    assert.ok(simulated[0]!.message.length <= 100, 'one short line');
    const warnAt = messages.indexOf(simulated[0]!);
    const listenAt = messages.findIndex((m) => m.message.startsWith('API listening'));
    assert.ok(listenAt > warnAt, 'the warning comes before "API listening"');
  } finally {
    await agent.close();
    captureLines('agent-trust-warning', lines.lines);
    rmSync(dir, { recursive: true, force: true });
  }
});
