/**
 * The wire's key sets, pinned: every command result, the command list, the
 * status document and the CLI's `--json` output, by key path (in the order the
 * JSON carries them) and JSON type. Ironic reads these keys (`clean_result`,
 * `<kind>_step`, `command_status` …) and so do operators' scripts (`user_id`,
 * `verified.password_test`, `backend`, `warnings`): a key renamed, dropped,
 * added or moved fails here, whatever the change inside the agent was.
 *
 * The results come from the real daemon (`serve`) on the simulated BMC and
 * from the real CLI; one engine result carrying every optional field goes
 * through the API as a non-simulated backend would stamp it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { main } from '../../agent/cli.js';
import { loadConfig } from '../../agent/config.js';
import { createLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { serve } from '../../agent/serve.js';
import { stampBackend } from '../../agent/backend.js';
import type { CredentialsPort } from '../../agent/api/ports.js';
import { Secret } from '../../service/secret.js';
import type { BmcInfo, SetCredentialsResult } from '../../service/types.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';
import { httpRequest, startTestAgent } from './helpers.js';

const TOKEN = recordSecret('wire-token-' + 'Kp4'.repeat(10));
const PASSWORD = recordSecret('Wire-pass-8642');
const GENERATED = recordSecret('Wire-gen-' + 'x9'.repeat(5));

/** `path: type` for every value, in JSON order; an array's elements share `path[]` (their union, first seen first). */
function shape(value: unknown, path = '$', out: string[] = []): string[] {
  const add = (line: string) => {
    if (!out.includes(line)) out.push(line);
  };
  if (value === null) add(`${path}: null`);
  else if (Array.isArray(value)) {
    add(`${path}: array`);
    for (const v of value) shape(v, `${path}[]`, out);
  } else if (typeof value === 'object') {
    add(`${path}: object`);
    for (const [k, v] of Object.entries(value)) shape(v, `${path}.${k}`, out);
  } else add(`${path}: ${typeof value}`);
  return out;
}

const RECORD = ['$: object', '$.id: string', '$.command_name: string', '$.command_status: string', '$.command_error: null'];
const FAILED_RECORD = [
  '$: object', '$.id: string', '$.command_name: string', '$.command_status: string', '$.command_error: object',
  '$.command_error.type: string', '$.command_error.code: number', '$.command_error.message: string', '$.command_error.details: string',
  '$.command_error.reason: string', '$.command_result: null',
];

/** A set_credentials result under `p`, as the simulated BMC (IPMI 2.0 profile) answers it. */
const SET_RESULT = (p: string, extra: { policy?: boolean } = {}) => [
  `${p}: object`, `${p}.backend: string`, `${p}.user_id: number`, `${p}.username: string`, `${p}.privilege: string`,
  `${p}.channels: array`, `${p}.channels[]: number`, `${p}.password_size: number`, `${p}.slot: string`, `${p}.changed: boolean`,
  `${p}.password_before: string`, `${p}.actions: array`, `${p}.actions[]: string`, `${p}.verified: object`,
  `${p}.verified.password_test: string`, `${p}.verified.name: boolean`, `${p}.verified.enabled: boolean`,
  `${p}.verified.enabled_source: string`, `${p}.verified.access: object`, `${p}.verified.access.1: boolean`,
  `${p}.warnings: array`, `${p}.warnings[]: string`, `${p}.bmc: object`, `${p}.bmc.ipmi_version: string`,
  `${p}.bmc.manufacturer_id: number`, `${p}.bmc.product_id: number`, `${p}.bmc.firmware: string`, `${p}.bmc.lan_channel: number`,
  `${p}.bmc.address: string`, `${p}.bmc.v6address: string`, `${p}.bmc.mac: string`, `${p}.requests: number`,
  ...(extra.policy ? [`${p}.password_policy: string`] : []),
  `${p}.password_generated: boolean`,
];

const INFO_RESULT = (p: string) => [
  `${p}: object`, `${p}.backend: string`, `${p}.device: object`, `${p}.device.device_id: number`, `${p}.device.device_revision: number`,
  `${p}.device.firmware: string`, `${p}.device.ipmi_version: string`, `${p}.device.manufacturer_id: number`, `${p}.device.product_id: number`,
  `${p}.device.update_in_progress: boolean`, `${p}.ipmi_version: string`, `${p}.lan_channels: array`, `${p}.lan_channels[]: object`,
  `${p}.lan_channels[].channel: number`, `${p}.lan_channels[].medium: string`, `${p}.lan_channels[].medium_code: number`,
  `${p}.lan_channels[].protocol: number`, `${p}.lan_channels[].session_support: string`, `${p}.lan_channels[].active_sessions: number`,
  `${p}.lan_channels[].access: object`, `${p}.lan_channels[].access.volatile: object`, `${p}.lan_channels[].access.volatile.access_mode: string`,
  `${p}.lan_channels[].access.volatile.privilege_limit: string`, `${p}.lan_channels[].access.non_volatile: object`,
  `${p}.lan_channels[].access.non_volatile.access_mode: string`, `${p}.lan_channels[].access.non_volatile.privilege_limit: string`,
  `${p}.max_users: number`, `${p}.fixed_name_users: number`, `${p}.enabled_users: number`, `${p}.users: array`, `${p}.users[]: object`,
  `${p}.users[].id: number`, `${p}.users[].name: string`, `${p}.users[].enabled: boolean`, `${p}.users[].enabled_source: string`,
  `${p}.users[].fixed_name: boolean`, `${p}.users[].access: object`, `${p}.users[].access.1: object`,
  `${p}.users[].access.1.privilege: string`, `${p}.users[].access.1.privilege_level: number`, `${p}.users[].access.1.ipmi_messaging: boolean`,
  `${p}.users[].access.1.link_auth: boolean`, `${p}.users[].access.1.callin: boolean`, `${p}.lan: object`, `${p}.lan.channel: number`,
  `${p}.lan.address: string`, `${p}.lan.mac: string`, `${p}.lan.v6address: string`, `${p}.warnings: array`, `${p}.warnings[]: string`,
];

const ARGSINFO = ['username', 'password', 'password_sealed', 'generate', 'privilege', 'slot', 'channels', 'enable_channel_access', 'allow_fixed_slot', 'allow_lockout'];
const STEPS_RESULT = (kind: string) => {
  const s = `$.command_result.${kind}_steps.InbandBmcHardwareManager[]`;
  return [
    '$.command_result: object', `$.command_result.${kind}_steps: object`, `$.command_result.${kind}_steps.InbandBmcHardwareManager: array`,
    `${s}: object`, `${s}.step: string`, `${s}.priority: number`, `${s}.interface: string`, `${s}.reboot_requested: boolean`,
    ...(kind === 'deploy' ? [] : [`${s}.abortable: boolean`]), ...(kind === 'clean' ? [`${s}.requires_ramdisk: boolean`] : []),
    `${s}.argsinfo: object`, ...ARGSINFO.flatMap((a) => [`${s}.argsinfo.${a}: object`, `${s}.argsinfo.${a}.description: string`, `${s}.argsinfo.${a}.required: boolean`]),
    '$.command_result.hardware_manager_version: object', '$.command_result.hardware_manager_version.inband_bmc_hardware_manager: string',
  ];
};

test('the daemon\'s command results, command list and status carry exactly these keys (simulated BMC)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-wire-'));
  const lines = new LineCollector();
  const loaded = loadConfig({
    argv: ['--standalone', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', join(dir, 'state'), '--backend', 'simulated', '--sim-state-file', join(dir, 'bmc.json')],
    env: { INBAND_AGENT_AGENT_TOKEN: TOKEN },
    cmdlinePath: null,
  });
  const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json', level: 'debug' }) });
  const texts: string[] = [];
  const cmd = async (name: string, params: object): Promise<unknown> => {
    const r = await httpRequest(agent.url, 'POST', `/v1/commands/?wait=true&agent_token=${TOKEN}`, { name, params });
    assert.equal(r.status, 200, r.text);
    texts.push(r.text);
    return r.json;
  };
  try {
    assert.deepEqual(shape(await cmd('bmc.get_info', {})), [...RECORD, ...INFO_RESULT('$.command_result')]);
    assert.deepEqual(shape(await cmd('bmc.set_credentials', { username: 'ironic', password: PASSWORD, channels: [1] })), [...RECORD, ...SET_RESULT('$.command_result')]);
    assert.deepEqual(shape(await cmd('bmc.set_credentials', { username: 'gen', generate: true })), [...RECORD, ...SET_RESULT('$.command_result', { policy: true })]);
    for (const kind of ['clean', 'deploy', 'service']) {
      assert.deepEqual(shape(await cmd(`${kind}.get_${kind}_steps`, { node: { uuid: 'n-1' }, ports: [] })), [...RECORD, ...STEPS_RESULT(kind)], kind);
      const step = { interface: 'deploy', step: 'set_bmc_credentials', priority: 0, args: { username: 'ironic', password: PASSWORD } };
      assert.deepEqual(shape(await cmd(`${kind}.execute_${kind}_step`, { step, node: { uuid: 'n-1' }, ports: [] })), [
        ...RECORD, '$.command_result: object', ...SET_RESULT(`$.command_result.${kind}_result`),
        `$.command_result.${kind}_step: object`, `$.command_result.${kind}_step.interface: string`, `$.command_result.${kind}_step.step: string`,
        `$.command_result.${kind}_step.priority: number`,
      ], kind);
    }
    assert.deepEqual(shape(await cmd('standby.sync', {})), [...RECORD, '$.command_result: object', '$.command_result.result: string']);
    assert.deepEqual(shape(await cmd('standby.power_off', {})), FAILED_RECORD);
    assert.deepEqual(shape(await cmd('system.lockdown', {})), [...RECORD, '$.command_result: object', '$.command_result.result: string']);
    const status = await httpRequest(agent.url, 'GET', '/v1/status');
    assert.deepEqual(shape(status.json), ['$: object', '$.started_at: number', '$.version: string', '$.backend: object', '$.backend.kind: string', '$.backend.reason: string']);
    const list = await httpRequest(agent.url, 'GET', '/v1/commands/');
    assert.deepEqual(Object.keys(list.json), ['commands']);
    assert.equal(list.json.commands.length, texts.length);
    for (const rec of list.json.commands) assert.deepEqual(Object.keys(rec), ['id', 'command_name', 'command_status', 'command_error', 'command_result']);
    assert.deepEqual(list.json.commands.map((r: { command_name: string }) => r.command_name), [
      'get_info', 'set_credentials', 'set_credentials', 'get_clean_steps', 'execute_clean_step', 'get_deploy_steps', 'execute_deploy_step',
      'get_service_steps', 'execute_service_step', 'sync', 'power_off', 'lockdown',
    ]);
    for (const t of [...texts, list.text]) assert.ok(!t.includes(PASSWORD), 'a result holds the password');
  } finally {
    await agent.close();
    captureLines('agent-wire-results', lines.lines);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI\'s --json output carries the same keys as the API\'s results', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-wire-cli-'));
  const st = ['--backend', 'simulated', '--sim-state-file', join(dir, 'bmc.json'), '--state-dir', join(dir, 'state')];
  const run = async (argv: string[], stdin = ''): Promise<unknown> => {
    const stdout = new LineCollector();
    const stderr = new LineCollector();
    const code = await main(argv, { stdout, stderr, stdin: Readable.from([stdin]), env: {}, cmdlinePath: null, signals: false });
    // --show-secret prints the password on purpose: that stdout is not a leak.
    captureLines('agent-wire-cli', [...(argv.includes('--show-secret') ? [] : stdout.lines), ...stderr.lines]);
    assert.equal(code, 0, stderr.text());
    return JSON.parse(stdout.text());
  };
  try {
    assert.deepEqual(shape(await run(['bmc', 'info', '--json', ...st])), INFO_RESULT('$'));
    assert.deepEqual(shape(await run(['set-credentials', '--username', 'ironic', '--password-stdin', '--json', ...st], `${PASSWORD}\n${PASSWORD}\n`)), SET_RESULT('$'));
    assert.deepEqual(shape(await run(['set-credentials', '--username', 'gen', '--generate', '--json', ...st])), SET_RESULT('$', { policy: true }));
    const shown = await run(['set-credentials', '--username', 'gen2', '--generate', '--show-secret', '--json', ...st]) as Record<string, unknown>;
    assert.deepEqual(shape(shown), [...SET_RESULT('$', { policy: true }), '$.generated_password: string']);
    recordSecret(String(shown.generated_password));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** An engine result with every optional field set, on a backend that is not simulated (so no warning is added). */
function fullResult(): SetCredentialsResult & { backend: string } {
  return stampBackend({
    userId: 5, username: 'ironic', privilege: 'operator', channels: [1, 8], passwordSize: 20, slot: 'explicit', changed: true,
    passwordBefore: 'unknown', actions: ['wrote: user 5 name "ironic"'],
    verified: { passwordTest: 'unsupported', passwordTestCode: 0xc1, name: true, enabled: true, enabledSource: 'ipmi-messaging', access: { 1: true, 8: true }, channelAccess: { 1: true, 8: true } },
    warnings: ['channel 8 is disabled'],
    bmc: { ipmiVersion: '1.5', manufacturerId: 674, productId: 256, firmware: '2.10', lanChannel: 1, address: '10.0.0.9', v6address: 'fd00::9', mac: '02:00:00:00:00:09' },
    requests: 52, generatedPassword: Secret.fromString(GENERATED), passwordPolicy: 'alnum-20',
  }, 'vm-codec');
}

function fullInfo(): BmcInfo & { backend: string } {
  return stampBackend({
    device: { deviceId: 32, deviceRevision: 1, firmware: '2.10', ipmiVersion: '1.5', manufacturerId: 674, productId: 256, updateInProgress: false },
    ipmiVersion: '1.5',
    lanChannels: [{ channel: 1, medium: '802.3 LAN', mediumCode: 4, protocol: 1, sessionSupport: 'multi-session', activeSessions: 1, access: { volatile: null, nonVolatile: { accessMode: 'always', privilegeLimit: 'administrator' } } }],
    maxUsers: 10, fixedNameUsers: 2, enabledUsers: 1,
    users: [{ id: 2, name: 'root', enabled: true, enabledSource: 'status', fixedName: true, access: { 1: { privilege: 'administrator', privilegeLevel: 4, ipmiMessaging: true, linkAuth: true, callin: false } } }],
    lan: { channel: 1, mac: '02:00:00:00:00:09' },
  }, 'native');
}

test('every optional field of an engine result keeps its wire key; the generated password never reaches one', async () => {
  const credentials: CredentialsPort = { getInfo: async () => fullInfo(), setCredentials: async () => fullResult() };
  const a = await startTestAgent({ token: TOKEN, credentials, name: 'wire-full' });
  try {
    const q = `agent_token=${encodeURIComponent(TOKEN)}`;
    const set = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.set_credentials', params: { username: 'ironic', generate: true } });
    assert.equal(set.json.command_status, 'SUCCEEDED', set.text);
    assert.deepEqual(set.json.command_result, {
      backend: 'vm-codec', user_id: 5, username: 'ironic', privilege: 'operator', channels: [1, 8], password_size: 20, slot: 'explicit', changed: true,
      password_before: 'unknown', actions: ['wrote: user 5 name "ironic"'],
      verified: { password_test: 'unsupported', password_test_code: 0xc1, name: true, enabled: true, enabled_source: 'ipmi-messaging', access: { 1: true, 8: true }, channel_access: { 1: true, 8: true } },
      warnings: ['channel 8 is disabled'],
      bmc: { ipmi_version: '1.5', manufacturer_id: 674, product_id: 256, firmware: '2.10', lan_channel: 1, address: '10.0.0.9', v6address: 'fd00::9', mac: '02:00:00:00:00:09' },
      requests: 52, password_policy: 'alnum-20', password_generated: true,
    });
    assert.deepEqual(Object.keys(set.json.command_result), [
      'backend', 'user_id', 'username', 'privilege', 'channels', 'password_size', 'slot', 'changed', 'password_before', 'actions', 'verified',
      'warnings', 'bmc', 'requests', 'password_policy', 'password_generated',
    ]);
    assert.deepEqual(Object.keys(set.json.command_result.verified), ['password_test', 'password_test_code', 'name', 'enabled', 'enabled_source', 'access', 'channel_access']);
    assert.ok(!set.text.includes(GENERATED), 'the generated password reached the record');

    const info = await a.request('POST', `/v1/commands/?wait=true&${q}`, { name: 'bmc.get_info', params: {} });
    assert.deepEqual(info.json.command_result, {
      backend: 'native',
      device: { device_id: 32, device_revision: 1, firmware: '2.10', ipmi_version: '1.5', manufacturer_id: 674, product_id: 256, update_in_progress: false },
      ipmi_version: '1.5',
      lan_channels: [{ channel: 1, medium: '802.3 LAN', medium_code: 4, protocol: 1, session_support: 'multi-session', active_sessions: 1, access: { volatile: null, non_volatile: { access_mode: 'always', privilege_limit: 'administrator' } } }],
      max_users: 10, fixed_name_users: 2, enabled_users: 1,
      users: [{ id: 2, name: 'root', enabled: true, enabled_source: 'status', fixed_name: true, access: { 1: { privilege: 'administrator', privilege_level: 4, ipmi_messaging: true, link_auth: true, callin: false } } }],
      lan: { channel: 1, mac: '02:00:00:00:00:09' },
    });
    assert.deepEqual(shape(info.json.command_result).slice(0, 2), ['$: object', '$.backend: string']);
  } finally {
    await a.close();
  }
});
