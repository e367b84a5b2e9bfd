import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ValidateFunction } from 'ajv';
import { generateConfigValidator } from '../../agent/tools/gen-config-validator.js';
import { configValidator } from '../../agent/config-validator.js';
import { configSchema, ConfigError, envName, flagName, ipmiCallOptions, loadConfig, OPTIONS, optionsHelp, parseKernelCmdline, type OptionName } from '../../agent/config.js';
import { recordSecret } from '../helpers/secrets.js';

const files = (map: Record<string, string>) => (p: string) => {
  if (!(p in map)) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  return map[p]!;
};

test('defaults match IPA\'s: port 9999, lookup timeout 600 s, TLS 1.2, auto-TLS on, reads open', () => {
  const { config, sources } = loadConfig({ argv: [], env: {}, cmdlinePath: null });
  assert.equal(config.listen_port, 9999);
  assert.equal(config.advertise_port, 9999);
  assert.equal(config.lookup_timeout, 600);
  assert.equal(config.tls_min_version, '1.2');
  assert.equal(config.enable_auto_tls, true);
  assert.equal(config.require_token_for_reads, false);
  assert.equal(config.allow_remote_commands, false);
  assert.equal(config.api_url, undefined);
  assert.equal(sources.listen_port, 'default');
  assert.ok(Object.isFrozen(config));
});

test('layers: flag > env > kernel command line > config file > default, per option', () => {
  const l = loadConfig({
    argv: ['--listen-port', '1111', '--config', '/etc/agent.conf'],
    env: { INBAND_AGENT_LISTEN_PORT: '2222', INBAND_AGENT_ADVERTISE_PORT: '2223', INBAND_AGENT_BACKEND: 'simulated' },
    cmdlineText: 'BOOT_IMAGE=/vmlinuz ipa-listen-port=3333 ipa-advertise-port=3334 ipa-lookup-timeout=3335 ipa-api-url=http://10.0.0.1:6385,https://10.0.0.2:6385 ipa-insecure=1 quiet',
    readFile: files({ '/etc/agent.conf': '# agent\n[DEFAULT]\nlisten_port = 4444\nadvertise-port = 4445\nlookup_timeout = 4446\nlookup_interval = 4\n' }),
  });
  assert.equal(l.config.listen_port, 1111);
  assert.equal(l.sources.listen_port, 'flag');
  assert.equal(l.config.advertise_port, 2223);
  assert.equal(l.sources.advertise_port, 'env');
  assert.equal(l.config.lookup_timeout, 3335);
  assert.equal(l.sources.lookup_timeout, 'kernel-cmdline');
  assert.equal(l.config.lookup_interval, 4);
  assert.equal(l.sources.lookup_interval, 'file');
  assert.deepEqual(l.config.api_url, ['http://10.0.0.1:6385', 'https://10.0.0.2:6385']);
  assert.equal(l.config.insecure, true);
  assert.equal(l.config.backend, 'simulated');
  assert.equal(l.config.http_request_timeout, 30);
  assert.equal(l.sources.http_request_timeout, 'default');
});

test('a JSON config file works too, and flags take --name=value, --flag and --no-flag forms', () => {
  const l = loadConfig({
    argv: ['--config=/c.json', '--no-enable-auto-tls', '--standalone', '--api-url=http://a:1', '--api-url', 'http://b:2'],
    env: {}, cmdlinePath: null,
    readFile: files({ '/c.json': JSON.stringify({ listen_host: '127.0.0.1', max_command_records: 5, require_token_for_reads: true }) }),
  });
  assert.equal(l.config.listen_host, '127.0.0.1');
  assert.equal(l.config.max_command_records, 5);
  assert.equal(l.config.require_token_for_reads, true);
  assert.equal(l.config.enable_auto_tls, false);
  assert.equal(l.config.standalone, true);
  assert.deepEqual(l.config.api_url, ['http://a:1', 'http://b:2']);
});

test('invalid values are refused with the option and where it came from', () => {
  const bad: Array<[Parameters<typeof loadConfig>[0], RegExp]> = [
    [{ argv: ['--listen-port', 'abc'] }, /--listen-port \(command line\): expected an integer/],
    [{ argv: ['--listen-port', '70000'] }, /--listen-port must be <= 65535/],
    [{ env: { INBAND_AGENT_INSECURE: 'maybe' } }, /--insecure \(environment INBAND_AGENT_INSECURE\): expected true\/false/],
    [{ cmdlineText: 'ipa-api-url=ftp://x' }, /--api-url\[0\] must match pattern/],
    [{ argv: ['--backend', 'magic'] }, /--backend must be one of auto, native, simulated, vm-codec, ipmitool \(got "magic"\)/],
    [{ argv: ['--tls-min-version', '1.1'] }, /--tls-min-version must be one of 1.2, 1.3 \(got "1.1"\)/],
    [{ argv: ['--frobnicate'] }, /unknown option --frobnicate/],
    [{ argv: ['--listen-port'] }, /--listen-port needs a value/],
    [{ argv: ['--config', '/x.conf'], readFile: files({ '/x.conf': 'colour = red\n' }) }, /config file \/x\.conf: unknown option "colour"/],
    [{ argv: ['--config', '/missing'] }, /cannot read config file \/missing: ENOENT/],
    [{ argv: ['--listen-tls'] }, /--listen-tls needs both --tls-cert-file and --tls-key-file/],
    [{ argv: ['--backend', 'vm-codec'] }, /--backend vm-codec needs --vm-codec HOST:PORT/],
  ];
  for (const [opts, re] of bad) {
    assert.throws(() => loadConfig({ argv: [], env: {}, cmdlinePath: null, readFile: files({}), ...opts }), (e: unknown) => e instanceof ConfigError && re.test(e.message), String(re));
  }
});

test('the agent token is kept out of the config object; a flag warns, a file is read', () => {
  const token = recordSecret('cfg-token-' + 'w'.repeat(30));
  const fromCmdline = loadConfig({ argv: [], env: {}, cmdlineText: `ipa-agent-token=${token}` });
  assert.deepEqual(fromCmdline.agentToken, { value: token, source: 'kernel-cmdline' });
  assert.ok(!JSON.stringify(fromCmdline.config).includes(token));
  assert.equal(fromCmdline.warnings.length, 0);
  const fromFlag = loadConfig({ argv: ['--agent-token', token], env: {}, cmdlinePath: null });
  assert.equal(fromFlag.agentToken?.source, 'flag');
  assert.match(fromFlag.warnings[0]!, /visible to every local user in \/proc\/PID\/cmdline/);
  const fromFile = loadConfig({ argv: ['--agent-token-file', '/run/token'], env: {}, cmdlinePath: null, readFile: files({ '/run/token': `${token}\n` }) });
  assert.deepEqual(fromFile.agentToken, { value: token, source: 'file' });
  assert.ok(!JSON.stringify(fromFile).includes(token.slice(0, -1) + 'x'));
});

test('the kernel command line parser handles quotes and bare words', () => {
  const m = parseKernelCmdline('ro quiet ipa-api-url="http://10.0.0.1:6385" BOOTIF=01-52-54-00-12-34-56 ipa-insecure');
  assert.equal(m.get('ipa-api-url'), 'http://10.0.0.1:6385');
  assert.equal(m.get('ipa-insecure'), '');
  assert.equal(m.get('quiet'), '');
  assert.equal(loadConfig({ argv: [], env: {}, cmdlineText: 'ipa-insecure' }).config.insecure, true);
});

test('serve --help lists every option with its default and every source it can come from', () => {
  const help = optionsHelp();
  for (const n of Object.keys(OPTIONS) as OptionName[]) {
    assert.ok(help.includes(flagName(n)), `${n} missing from help`);
    assert.ok(help.includes(envName(n)), `${envName(n)} missing from help`);
    const cmd = (OPTIONS[n] as { cmdline?: string | null }).cmdline;
    if (cmd) assert.ok(help.includes(`kernel ${cmd}=`), `${cmd} missing from help`);
  }
  for (const ipa of ['ipa-api-url', 'ipa-listen-port', 'ipa-advertise-host', 'ipa-advertise-port', 'ipa-agent-token', 'ipa-insecure', 'ipa-inspection-callback-url', 'ipa-lookup-timeout']) {
    assert.ok(help.includes(ipa), ipa);
  }
});

test('the config validator the build generates for the bundle answers as the one compiled at run time', async () => {
  const code = generateConfigValidator();
  const standalone = (await import(`data:text/javascript,${encodeURIComponent(code)}`) as { configValidator: () => ValidateFunction }).configValidator();
  const compiled = configValidator(configSchema);
  const base = loadConfig({ argv: [], env: {}, cmdlinePath: null }).config as unknown as Record<string, unknown>;
  const cases: Record<string, unknown>[] = [
    { ...base },
    { ...base, backend: 'foo' },
    { ...base, listen_port: 70000 },
    { ...base, listen_port: 'x' },
    { ...base, api_url: ['ftp://x'] },
    { ...base, api_url: ['mdns', 'http://10.0.0.1:6385'] },
    { ...base, standalone: 'yes' },
    { ...base, no_such_option: 1 },
    { ...base, ironic_api_version: '2.1' },
  ];
  for (const c of cases) {
    assert.equal(standalone(c), compiled(c), JSON.stringify(c).slice(0, 80));
    assert.deepEqual(standalone.errors ?? null, compiled.errors ?? null);
  }
});

test('--ipmi-timeout and --ipmi-retries: defaults equal the service\'s, every source sets them, bounds are checked', async () => {
  const { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_RETRY } = await import('../../service/bmc-client.js');
  const d = loadConfig({ argv: [], env: {}, cmdlinePath: null });
  assert.deepEqual(ipmiCallOptions(d.config), { timeoutMs: DEFAULT_CALL_TIMEOUT_MS, retry: { attempts: DEFAULT_RETRY.attempts } });
  const f = loadConfig({ argv: ['--ipmi-timeout', '2', '--ipmi-retries=1'], env: {}, cmdlinePath: null });
  assert.deepEqual(ipmiCallOptions(f.config), { timeoutMs: 2000, retry: { attempts: 2 } });
  assert.equal(f.sources.ipmi_timeout, 'flag');
  const k = loadConfig({ argv: [], env: { INBAND_AGENT_IPMI_RETRIES: '0' }, cmdlineText: 'inband-ipmi-timeout=3 inband-ipmi-retries=4' });
  assert.equal(k.config.ipmi_timeout, 3);
  assert.equal(k.sources.ipmi_timeout, 'kernel-cmdline');
  assert.equal(k.config.ipmi_retries, 0);
  assert.equal(k.sources.ipmi_retries, 'env');
  const file = loadConfig({ argv: ['--config', '/a.conf'], env: {}, cmdlinePath: null, readFile: files({ '/a.conf': 'ipmi-timeout = 5\nipmi_retries = 2\n' }) });
  assert.deepEqual(ipmiCallOptions(file.config), { timeoutMs: 5000, retry: { attempts: 3 } });
  assert.throws(() => loadConfig({ argv: ['--ipmi-timeout', '0'], env: {}, cmdlinePath: null }), (e: Error) => e instanceof ConfigError && /--ipmi-timeout/.test(e.message));
  assert.throws(() => loadConfig({ argv: ['--ipmi-retries', '-1'], env: {}, cmdlinePath: null }), (e: Error) => e instanceof ConfigError && /--ipmi-retries/.test(e.message));
  assert.throws(() => loadConfig({ argv: ['--ipmi-timeout', '1.5'], env: {}, cmdlinePath: null }), ConfigError);
  assert.match(optionsHelp(['ipmi_timeout', 'ipmi_retries']), /--ipmi-timeout SECONDS[\s\S]*kernel inband-ipmi-timeout=[\s\S]*--ipmi-retries N/);
});

test('a configured agent token shorter than 32 characters is refused at start, naming where it came from', () => {
  const short = 'tok-' + 'y'.repeat(27); // 31
  const cases: Array<[Parameters<typeof loadConfig>[0], RegExp]> = [
    [{ argv: [], env: {}, cmdlineText: `ipa-agent-token=${short}` }, /ipa-agent-token\) is 31 characters; at least 32/],
    [{ argv: [], env: { INBAND_AGENT_AGENT_TOKEN: 'x' }, cmdlinePath: null }, /INBAND_AGENT_AGENT_TOKEN\) is 1 characters; at least 32/],
    [{ argv: ['--agent-token-file', '/run/t'], env: {}, cmdlinePath: null, readFile: files({ '/run/t': `${short}\n` }) }, /--agent-token-file\) is 31 characters/],
  ];
  for (const [input, re] of cases) {
    assert.throws(() => loadConfig(input), (e: Error) => e instanceof ConfigError && re.test(e.message) && !e.message.includes(short));
  }
  assert.equal(loadConfig({ argv: [], env: {}, cmdlineText: `ipa-agent-token=${short}z` }).agentToken?.value.length, 32);
});
