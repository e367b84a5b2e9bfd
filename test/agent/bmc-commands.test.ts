/**
 * The operator's ipmitool habits (`user list|enable|disable|test`, `channel
 * info`, `mc info`, `-v`) against a real OpenIPMI ipmi_sim: our CLI in-band over
 * the vm-codec backend, `ipmitool -I lanplus` out-of-band on the same BMC as
 * the reference and the proof. Skips visibly without ipmi_sim/ipmitool.
 */
import { describe, it, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { main } from '../../agent/cli.js';
import { LineCollector } from '../../agent/log-streams.js';
import { openVmCodecTransport } from '../../ipmi-kcs/vm-codec.js';
import { CredentialService } from '../../service/index.js';
import { TracingTransport } from '../../service/ipmi-trace.js';
import { IPMITOOL_PATH, ipmiSimAvailability, startIpmiSim, type IpmiSim } from '../harness/ipmi-sim.js';
import { LANPLUS_CIPHER_SUITE } from '../harness/lanplus.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';
import { CaptureLogger, testSecret } from '../service/service-helpers.js';

const avail = ipmiSimAvailability();
const ADMIN_PW = recordSecret('Adm1n-sim-pw');
const OP_PW = recordSecret('0perator-pw7');
const SET_PW = 'Tr4ce-me-not!';

interface Run { code: number; out: string; err: string }

async function cli(argv: string[], stdin = ''): Promise<Run> {
  const stdout = new LineCollector();
  const stderr = new LineCollector();
  const code = await main(argv, { stdout, stderr, stdin: Readable.from([stdin]), env: {}, cmdlinePath: null, signals: false });
  captureLines('agent-bmc-commands', [...stdout.lines, ...stderr.lines]);
  return { code, out: stdout.text(), err: stderr.text() };
}

/** ipmitool over lanplus as the admin; the password travels in the environment (-E), never in argv. */
function ipmitool(sim: IpmiSim, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(IPMITOOL_PATH, ['-I', 'lanplus', '-C', LANPLUS_CIPHER_SUITE, '-H', sim.host, '-p', String(sim.lanPort), '-U', 'admin', '-E', '-N', '1', '-R', '2', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', IPMI_PASSWORD: ADMIN_PW },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out: out.replace(/\n$/, ''), err });
    });
  });
}

/** Every byte form a password could take in a trace: text, hex with and without spaces, either case. */
function leakForms(password: string): string[] {
  const hex = Buffer.from(password, 'latin1').toString('hex');
  const spaced = hex.match(/../g)!.join(' ');
  return [password, hex, hex.toUpperCase(), spaced, spaced.toUpperCase()];
}

describe('ipmitool habits against a real ipmi_sim (in-band vm-codec, ipmitool lanplus as the reference)', { skip: avail.available ? false : avail.reason }, () => {
  let sim: IpmiSim;
  let dir: string;
  let backend: string[];

  before(async () => {
    sim = await startIpmiSim({
      users: [
        { id: 2, name: 'admin', password: ADMIN_PW, privilege: 'admin' },
        { id: 3, name: 'operator1', password: OP_PW, privilege: 'operator' },
        { id: 5, name: 'off-user', password: 'Unused-pw-5', privilege: 'user', enabled: false },
      ],
    });
    recordSecret('Unused-pw-5');
    dir = mkdtempSync(join(tmpdir(), 'bmc-cmds-'));
    backend = ['--backend', 'vm-codec', '--vm-codec', `${sim.host}:${sim.vmPort}`, '--state-dir', join(dir, 'state'), '--ipmi-timeout', '3'];
  });
  after(async () => {
    await sim?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('user list prints exactly what ipmitool user list prints on the same BMC, with or without the channel', async () => {
    const ref = await ipmitool(sim, ['user', 'list', '1']);
    assert.equal(ref.code, 0, ref.err);
    assert.match(ref.out, /^ID {2}Name\t {5}Callin {2}Link Auth\tIPMI Msg {3}Channel Priv Limit\n/);
    for (const argv of [['user', 'list'], ['user', 'list', '1'], ['user', 'list', '--channel', '1'], ['user', 'list', '--channel=0x1']]) {
      const ours = await cli([...argv, ...backend]);
      assert.equal(ours.code, 0, ours.err);
      assert.equal(ours.out, ref.out, argv.join(' '));
    }
    // ipmitool's default channel over LAN is "this channel" (1); ours is the first LAN channel: the same here.
    assert.equal((await ipmitool(sim, ['user', 'list'])).out, ref.out);
  });

  it('user disable / enable change the BMC as ipmitool sees it, and the LAN login follows', async () => {
    const row = async (id: number): Promise<string> => (await ipmitool(sim, ['user', 'list', '1'])).out.split('\n').find((l) => l.startsWith(`${id} `))!;
    assert.match(await row(3), /^3 {3}operator1 {8}true {4}false {6}true {7}OPERATOR$/);

    const off = await cli(['user', 'disable', '3', ...backend]);
    assert.equal(off.code, 0, off.err);
    assert.match(off.out, /^User 3 \("operator1"\) disabled: reads back disabled \(IPMI messaging, LAN channel 1\)/);
    // ipmi_sim keeps "enabled" as the IPMI messaging bit (IPMI_SIM_QUIRKS.ipmiMessagingIsUserEnable).
    assert.match(await row(3), /^3 {3}operator1 {8}true {4}false {6}false {6}OPERATOR$/);
    assert.equal((await sim.lanplusLogin('operator1', OP_PW)).ok, false, 'a disabled user cannot log in over LAN');

    const on = await cli(['user', 'enable', '3', ...backend]);
    assert.equal(on.code, 0, on.err);
    assert.match(on.out, /^User 3 \("operator1"\) enabled: reads back enabled/);
    assert.match(await row(3), /^3 {3}operator1 {8}true {4}false {6}true {7}OPERATOR$/);
    assert.equal((await sim.lanplusLogin('operator1', OP_PW)).ok, true, 'enabled again, it logs in');
  });

  it('user disable refuses the last enabled administrator and writes nothing; --allow-lockout overrides', async () => {
    const before = (await ipmitool(sim, ['user', 'list', '1'])).out;
    const refused = await cli(['user', 'disable', '2', '-v', ...backend]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /LOCKOUT_REFUSED: user 2 \("admin"\) is the last enabled administrator/);
    assert.ok(!/cmd 0x47/.test(refused.err), 'no Set User Password was sent');
    assert.equal((await ipmitool(sim, ['user', 'list', '1'])).out, before);

    const forced = await cli(['user', 'disable', '2', '--allow-lockout', ...backend]);
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.err, /was the last enabled administrator \(disabled as asked\)/);
    assert.equal((await sim.lanplusLogin('admin', ADMIN_PW)).ok, false);
    const back = await cli(['user', 'enable', '2', ...backend]);
    assert.equal(back.code, 0, back.err);
    assert.equal((await sim.lanplusLogin('admin', ADMIN_PW)).ok, true);
  });

  it('user priv takes the privilege as a name or a number, and never lowers the last administrator', async () => {
    const row = async (id: number): Promise<string> => (await ipmitool(sim, ['user', 'list', '1'])).out.split('\n').find((l) => l.startsWith(`${id} `))!;
    const up = await cli(['user', 'priv', '3', 'ADMINISTRATOR', '1', ...backend]);
    assert.equal(up.code, 0, up.err);
    assert.match(up.out, /^User 3 \("operator1"\) privilege set to ADMINISTRATOR: reads back ADMINISTRATOR on channel 1/);
    assert.match(await row(3), /ADMINISTRATOR$/);
    const down = await cli(['user', 'priv', '3', '0x3', ...backend]);
    assert.equal(down.code, 0, down.err);
    assert.match(await row(3), /true {7}OPERATOR$/, 'IPMI messaging untouched, privilege OPERATOR');
    const refused = await cli(['user', 'priv', '2', 'user', ...backend]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /LOCKOUT_REFUSED: user 2 \("admin"\) is the last enabled administrator; lowering its privilege/);
    assert.match(await row(2), /ADMINISTRATOR$/);
  });

  it('channel info matches ipmitool channel info (but its own session count), mc info matches ipmitool mc info', async () => {
    const ref = await ipmitool(sim, ['channel', 'info', '1']);
    assert.equal(ref.code, 0, ref.err);
    for (const argv of [['channel', 'info'], ['channel', 'info', '1']]) {
      const ours = await cli([...argv, ...backend]);
      assert.equal(ours.code, 0, ours.err);
      // ipmitool's own RMCP+ session is active while it asks; our in-band read has none.
      const strip = (t: string): string => t.replace(/(Active Session Count\s+: )\d+/, '$1N');
      assert.equal(strip(ours.out), strip(ref.out), argv.join(' '));
    }
    const si = await cli(['channel', 'info', '15', ...backend]);
    assert.equal(si.code, 0, si.err);
    assert.equal(si.out, (await ipmitool(sim, ['channel', 'info', '15'])).out);

    const mc = await ipmitool(sim, ['mc', 'info']);
    const ours = await cli(['mc', 'info', ...backend]);
    assert.equal(ours.code, 0, ours.err);
    assert.equal(ours.out, mc.out);
  });

  it('bmc raw and set-credentials take -v / --trace too: every exchange on stderr, the password bytes masked', async () => {
    const raw = await cli(['bmc', 'raw', '0x06', '0x01', '-v', ...backend]);
    assert.equal(raw.code, 0, raw.err);
    assert.match(raw.err, /^>> NetFn 0x06 \(App\) cmd 0x01 \(Get Device ID\) data: \(none\)$/m);
    const rsp = /^<< NetFn 0x07 cmd 0x01 cc 0x00 \(ok\) data: ((?:[0-9a-f]{2} ?)+) \[\d+\.\d ms\]$/m.exec(raw.err);
    assert.ok(rsp, raw.err);
    assert.equal(rsp[1], raw.out.trim().split(/\s+/).join(' '), 'the traced response is the bytes printed on stdout');

    const pw = recordSecret('Tr4ced-cli-pw9');
    const set = await cli(['set-credentials', '--username', 'tracedcli', '--password-stdin', '--channel', '1', '--trace', ...backend], `${pw}\n`);
    assert.equal(set.code, 0, set.err);
    const lines = set.err.split('\n');
    assert.ok(lines.some((l) => /^>> NetFn 0x06 \(App\) cmd 0x45 \(Set User Name\) data: [0-9a-f]{2} 74 72 61 63 65 64 63 6c 69/.test(l)), 'Set User Name is traced as it is');
    assert.ok(lines.some((l) => /^>> NetFn 0x06 \(App\) cmd 0x47 \(Set User Password\) data: [0-9a-f]{2} 02 <(16|20) bytes masked>$/.test(l)), 'Set Password (op 2), masked');
    assert.ok(lines.some((l) => /^>> NetFn 0x06 \(App\) cmd 0x47 \(Set User Password\) data: [0-9a-f]{2} 03 <(16|20) bytes masked>$/.test(l)), 'Test Password (op 3), masked');
    for (const l of lines.filter((x) => x.startsWith('<<'))) assert.match(l, /^<< NetFn 0x[0-9a-f]{2} cmd 0x[0-9a-f]{2} cc 0x[0-9a-f]{2} \(.+\) data: /);
    for (const form of leakForms(pw)) assert.ok(!set.err.includes(form) && !set.out.includes(form), `the trace never holds the password (${form})`);
    assert.equal((await sim.lanplusLogin('tracedcli', pw)).ok, true, 'the traced change is real: the user logs in over lanplus');
  });

  it('-v traces every request and response with the password bytes masked (user test and a whole credential change)', async () => {
    const test = await cli(['user', 'test', '3', '16', '--password-stdin', '-v', ...backend], `${OP_PW}\n`);
    assert.equal(test.code, 0, test.err);
    assert.equal(test.out, 'Success');
    assert.match(test.err, /^>> NetFn 0x06 \(App\) cmd 0x47 \(Set User Password\) data: 03 03 <16 bytes masked>$/m);
    assert.match(test.err, /^<< NetFn 0x07 cmd 0x47 cc 0x00 \(ok\) data: \(none\)/m);
    for (const form of leakForms(OP_PW)) assert.ok(!test.err.includes(form) && !test.out.includes(form), `the trace never holds the password (${form})`);

    // The same TracingTransport the CLI wraps, under a whole change: Set Password, Test Password, roll-forward.
    const lines: string[] = [];
    const t = new TracingTransport(await openVmCodecTransport({ host: sim.host, port: sim.vmPort }), (l) => lines.push(l));
    const debug = new CaptureLogger('agent-bmc-commands-debug');
    try {
      const svc = new CredentialService({ transport: t, logger: debug, stateDir: join(dir, 'svc'), timeoutMs: 3000 });
      const r = await svc.setCredentials({ username: 'traced', password: testSecret(SET_PW), channels: [1] });
      assert.ok(r.userId > 0);
    } finally {
      await t.close();
    }
    captureLines('agent-bmc-commands-trace', lines);
    const sets = lines.filter((l) => / cmd 0x47 /.test(l) && l.startsWith('>>'));
    assert.ok(sets.some((l) => / data: [0-9a-f]{2} 02 <16 bytes masked>$/.test(l)), 'Set Password (op 2) is traced, masked');
    assert.ok(sets.some((l) => / data: [0-9a-f]{2} 03 <16 bytes masked>$/.test(l)), 'Test Password (op 3) is traced, masked');
    const debugText = debug.lines.join('\n');
    assert.match(debugText, /"ipmi":"NetFn 0x06 \(App\) cmd 0x47 \(Set User Password\) data: [0-9a-f]{2} 02 <16 bytes masked> -> cc 0x00/, 'the debug log summarises exchanges, masked');
    for (const form of leakForms(SET_PW)) {
      assert.ok(!lines.join('\n').includes(form), `trace: ${form}`);
      assert.ok(!debugText.includes(form), `debug log: ${form}`);
    }
    assert.equal((await sim.lanplusLogin('traced', SET_PW)).ok, true, 'the traced change is real');
  });
});

test('usage errors exit 2 before anything is sent, naming the valid values; help fits a screen', async () => {
  const sim = ['--backend', 'simulated'];
  const cases: Array<[string[], RegExp]> = [
    [['user', 'disable', ...sim], /give the user ID/],
    [['user', 'disable', '64', ...sim], /user ID "64": must be a number 1-63/],
    [['user', 'list', '16', ...sim], /CHANNEL: "16" is not a channel number \(0-15\)/],
    [['user', 'list', '1', '--channel', '1', ...sim], /give the channel once/],
    [['user', 'frob', ...sim], /unknown user subcommand "frob" \(list, enable, disable, test, priv\)/],
    [['user', 'list', '-x', ...sim], /unknown option -x/],
    [['user', 'test', '3', 'Secret-arg-1', ...sim], /never from an argument/],
    [['channel', 'info', 'x', ...sim], /"x" is not a channel number/],
    [['user', 'priv', '3', 'superuser', ...sim], /privilege "superuser": one of callback \(1\), user \(2\), operator \(3\), administrator \(4\), oem \(5\), no-access \(15\)/],
    [['user', 'priv', '3', '6', ...sim], /privilege "6": one of/],
    [['user', 'priv', '3', ...sim], /user priv takes ID, LEVEL/],
    [['mc', 'info', '--backend', 'foo'], /--backend must be one of auto, native, simulated, vm-codec, ipmitool \(got "foo"\)/],
    [['mc', 'info', '--log-format', 'xml', ...sim], /--log-format must be one of auto, json, text/],
    [['mc', 'frob'], /unknown mc subcommand/],
  ];
  for (const [argv, re] of cases) {
    const r = await cli(argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, re, argv.join(' '));
    assert.ok(!r.err.includes('Secret-arg-1'), 'an argument that may be a password is not echoed');
  }
  for (const argv of [['user', '--help'], ['user', 'list', '--help'], ['channel', '--help'], ['mc', 'info', '-h']]) {
    const r = await cli(argv);
    assert.equal(r.code, 0, argv.join(' '));
    const lines = r.out.trimEnd().split('\n');
    assert.ok(lines.length <= 24, `${argv.join(' ')}: ${lines.length} lines`);
    for (const l of lines) assert.ok(l.length <= 100, `${argv.join(' ')}: line too wide: ${l}`);
    assert.match(r.out, /--backend auto\|native\|simulated\|vm-codec\|ipmitool/);
    assert.match(r.out, /-v, --trace/);
  }
  for (const argv of [['bmc', 'raw', '--help'], ['bmc', 'info', '--help']]) {
    const lines = (await cli(argv)).out.trimEnd().split('\n');
    assert.ok(lines.length <= 24 && lines.every((l) => l.length <= 100), `${argv.join(' ')} fits a screen`);
  }
  const top = await cli(['--help']);
  for (const c of ['serve', 'bmc raw', 'bmc info', 'set-credentials', 'user list', 'user enable|disable', 'channel info', 'mc info', 'conductor rotate', 'conductor serve']) {
    assert.ok(top.out.includes(`inband-agent ${c}`), `top-level help lists ${c}`);
  }
});

test('on the simulated backend the commands say SIMULATED on stderr, and stdout keeps ipmitool\'s format', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bmc-cmds-sim-'));
  try {
    const args = ['--backend', 'simulated', '--sim-state-file', join(dir, 'bmc.json'), '--state-dir', join(dir, 'state')];
    const list = await cli(['user', 'list', ...args]);
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^ID {2}Name\t/);
    assert.match(list.err, /SIMULATED BMC/);
    const mc = await cli(['mc', 'info', ...args]);
    assert.equal(mc.code, 0, mc.err);
    assert.match(mc.out, /^Device ID {17}: \d+$/m);
    assert.match(mc.err, /SIMULATED BMC/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
