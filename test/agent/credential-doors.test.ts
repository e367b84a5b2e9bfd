/**
 * One table of credential requests, put to every door that takes one: the
 * agent's HTTP schema (ajv) and its param conversion, the contract's own
 * checker, the engine, the CLI's set-credentials flags, and the conductor
 * (`rotate`'s step args and `conductor rotate --username`). Each door must
 * accept or refuse exactly as the table says: they are derived from
 * service/credential-contract.ts, so they cannot drift. The step's argsinfo
 * (what Ironic checks argument names against) lists exactly the contract's fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { CONTRACT_JSON_NAME, FAILURES_JSON_NAME, sharedFloorFiles } from '../../service/tools/gen-credential-contract.js';
import { projectRoot } from '../native/project.js';
import { lazyValidator } from '../../agent/ajv.js';
import { main as agentMain } from '../../agent/cli.js';
import { LineCollector } from '../../agent/log-streams.js';
import { SET_CREDENTIALS_ARGSINFO, SET_CREDENTIALS_SCHEMA, toSetCredentialsArgs } from '../../agent/api/commands/bmc.js';
import { stepDescriptor, STEP_KINDS } from '../../agent/api/commands/steps.js';
import { main as conductorMain } from '../../conductor/cli.js';
import { refusedStepArgs } from '../../conductor/rotate.js';
import { CREDENTIAL_CONTRACT, checkValue, checkWireParams, credentialParamsSchema, type SchemaFragment } from '../../service/credential-contract.js';
import { Secret } from '../../service/secret.js';
import { CredentialService } from '../../service/credential-service.js';
import { createSimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { AppCmd, PasswordOp } from '../../ipmi-kcs/spec.js';
import { recordSecret } from '../helpers/secrets.js';
import { stampedEngine, startTestAgent, waitDone } from './helpers.js';
import { validateRequest } from '../../service/validate.js';
import type { SetCredentialsRequest } from '../../service/types.js';

const PW = 'Doors-pw-1234';
type Row = { params: Record<string, unknown>; ok: boolean };
const row = (ok: boolean, extra: Record<string, unknown>): Row => ({ ok, params: { username: 'door_user', password: PW, ...extra } });

const TABLE: Row[] = [
  row(true, {}),
  // User names: §22.28's 16 bytes of ASCII; dots and dashes as ipmitool and BMCs take them.
  row(true, { username: 'bmc-admin' }), row(true, { username: 'a.b_c-d' }), row(true, { username: 'x'.repeat(16) }), row(true, { username: '_svc' }), row(true, { username: '9lives' }),
  row(false, { username: 'été' }), row(false, { username: 'x'.repeat(17) }), row(false, { username: '' }), row(false, { username: '-admin' }), row(false, { username: '.hidden' }),
  row(false, { username: 'a b' }), row(false, { username: 'nul\u0000' }), row(false, { username: 'root!' }), row(false, { username: 7 }),
  // Passwords: 1-20 bytes of printable ASCII (§22.30).
  row(true, { password: 'x' }), row(true, { password: 'x'.repeat(20) }), row(true, { password: 'with space ~!' }),
  row(false, { password: '' }), row(false, { password: 'x'.repeat(21) }), row(false, { password: 'é'.repeat(20) }), row(false, { password: 'é' }),
  row(false, { password: 'nul\u0000byte' }), row(false, { password: 'tab\there' }), row(false, { password: 'del\u007f' }),
  // Privilege by name or §6.8 number.
  row(true, { privilege: 'administrator' }), row(true, { privilege: 'operator' }), row(true, { privilege: 'user' }), row(true, { privilege: 4 }), row(true, { privilege: 3 }), row(true, { privilege: 2 }),
  row(false, { privilege: 'callback' }), row(false, { privilege: 'oem' }), row(false, { privilege: 'ADMINISTRATOR' }), row(false, { privilege: 1 }), row(false, { privilege: 5 }), row(false, { privilege: 15 }), row(false, { privilege: 0 }),
  // Slots: user ids 2-63 (1 is the anonymous user).
  row(true, { slot: 2 }), row(true, { slot: 63 }),
  row(false, { slot: 1 }), row(false, { slot: 0 }), row(false, { slot: 64 }), row(false, { slot: 2.5 }), row(false, { slot: '3' }),
  // Channels: LAN channels are 1-11.
  row(true, { channels: [1] }), row(true, { channels: [11] }), row(true, { channels: [1, 8] }),
  row(false, { channels: [0] }), row(false, { channels: [15] }), row(false, { channels: [12] }), row(false, { channels: [14] }), row(false, { channels: [] }), row(false, { channels: [1, 1] }), row(false, { channels: 1 }),
  // Switches, the lock-out override, one password source, unknown fields.
  row(true, { enable_channel_access: true }), row(true, { allow_fixed_slot: true }), row(true, { allow_lockout: true }), row(true, { allow_lockout: false }),
  row(false, { allow_lockout: 'yes' }), row(false, { enable_channel_access: 1 }),
  row(false, { password: undefined }), row(false, { generate: true }), row(true, { password: undefined, generate: true }),
  row(false, { lockout: true }),
];

const clean = (p: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));

/** The engine's request for a row, as the API builds it (snake_case → camelCase, the password as a Secret). */
function engineForm(p: Record<string, unknown>): SetCredentialsRequest {
  const names: Record<string, string> = Object.fromEntries(CREDENTIAL_CONTRACT.fields.map((f) => [f.wire, f.engine]));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) out[names[k] ?? k] = k === 'password' && typeof v === 'string' ? Secret.fromString(v) : v;
  return out as unknown as SetCredentialsRequest;
}

/** set-credentials flags for a row, or null when a value has no flag spelling (a number as user name, a bad type). */
function flagsFor(p: Record<string, unknown>): { argv: string[]; stdin: string } | null {
  const argv: string[] = [];
  let stdin = '';
  for (const [k, v] of Object.entries(p)) {
    const f = CREDENTIAL_CONTRACT.fields.find((x) => x.wire === k);
    if (!f || !f.flag) return null;
    if (f.flagKind === 'stdin') {
      if (typeof v !== 'string' || v.includes('\n')) return null;
      argv.push(f.flag);
      stdin = `${v}\n`;
    } else if (f.flagKind === 'bool') {
      if (v === false) continue;
      if (v !== true) return null;
      argv.push(f.flag);
    } else if (f.flagKind === 'multi') {
      if (!Array.isArray(v) || v.length === 0) return null;
      for (const c of v) argv.push(f.flag, String(c));
    } else {
      // Flags are text: a row whose point is the JSON type ("3" for a slot, 7 for a name) has no CLI spelling.
      if (typeof v !== 'string' && typeof v !== 'number') return null;
      if ((f.schema.type === 'string' && typeof v !== 'string') || (f.schema.type === 'integer' && typeof v !== 'number')) return null;
      argv.push(`${f.flag}=${String(v)}`);
    }
  }
  return { argv, stdin };
}

test('agent schema, contract, engine, CLI and conductor accept and refuse the same table of requests', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'doors-'));
  const validate = await lazyValidator(SET_CREDENTIALS_SCHEMA)();
  const tally = { rows: TABLE.length, refused: 0, cli: 0, conductor: 0 };
  try {
    for (const [i, r] of TABLE.entries()) {
      const p = clean(r.params);
      const what = `row ${i} ${JSON.stringify(p)}`;
      if (!r.ok) tally.refused++;
      // The HTTP door: the schema, then the param conversion (one password source).
      let http = validate(p);
      if (http) {
        try {
          toSetCredentialsArgs(p, undefined).password?.dispose();
        } catch {
          http = false;
        }
      }
      assert.equal(http, r.ok, `HTTP schema: ${what} ${JSON.stringify(validate.errors?.[0] ?? '')}`);
      assert.equal(checkWireParams(p) === null, r.ok, `contract: ${what}`);
      let engine = true;
      try {
        validateRequest(engineForm(p));
      } catch {
        engine = false;
      }
      assert.equal(engine, r.ok, `engine: ${what}`);

      // The CLI: a refused row is a usage error (exit 2) naming its flag, before any backend opens.
      const flags = flagsFor(p);
      if (flags) {
        tally.cli++;
        const stdout = new LineCollector();
        const stderr = new LineCollector();
        const argv = ['set-credentials', ...flags.argv, '--json', '--backend', 'simulated', '--sim-state-file', join(dir, 'bmc.json'), '--state-dir', join(dir, 'state')];
        const code = await agentMain(argv, { stdout, stderr, stdin: Readable.from([flags.stdin]), env: {}, cmdlinePath: null, signals: false });
        if (r.ok) assert.notEqual(code, 2, `CLI accepts ${what}: ${stderr.text()}`);
        else {
          assert.equal(code, 2, `CLI refuses ${what}: ${stderr.text()}`);
          const v = checkWireParams(p)!;
          assert.ok(stderr.text().includes(v.flag ?? '--'), `CLI names the flag ${v.flag} for ${what}: ${stderr.text()}`);
        }
      }

      // The conductor sends a user name and a privilege (and a generated password).
      const onlyConductorFields = Object.keys(p).every((k) => ['username', 'password'].includes(k)) && typeof p.username === 'string';
      if (onlyConductorFields && checkValue({ type: 'string', pattern: '^[\\x20-\\x7E]{1,20}$' }, p.password, '') === null) {
        tally.conductor++;
        const u = p.username as string;
        assert.equal(refusedStepArgs({ usernames: [u, 'other_user'] }) === null, r.ok, `rotate: ${what}`);
        const out: string[] = [];
        const code = await conductorMain(['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:9', `--username=${u}`, '--username-b', 'other_user',
          '--store-path', join(dir, 'conductor', 'secrets.json'), '--records-dir', join(dir, 'records')], { stdout: () => undefined, stderr: (s) => out.push(s), env: {} });
        if (r.ok) assert.notEqual(code, 2, `conductor rotate accepts ${what}: ${out.join('')}`);
        else assert.ok(code === 2 && out.join('').includes('--username'), `conductor rotate refuses ${what} naming --username: ${out.join('')}`);
      }
    }
    for (const priv of ['administrator', 'operator'] as const) assert.equal(refusedStepArgs({ usernames: ['a', 'b'], privilege: priv }), null);
    assert.match(refusedStepArgs({ usernames: ['a', 'b'], privilege: 'callback' as 'operator' }) ?? '', /privilege/);
    console.log(`# doors: ${tally.rows} requests (${tally.refused} refused), ${tally.cli} also through the CLI, ${tally.conductor} through the conductor; every door agreed`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('argsinfo, the HTTP schema and the contract name the same fields, and the contract exports as JSON', () => {
  const wire = CREDENTIAL_CONTRACT.fields.map((f) => f.wire).sort();
  assert.deepEqual(Object.keys(SET_CREDENTIALS_ARGSINFO).sort(), wire);
  assert.deepEqual(Object.keys(SET_CREDENTIALS_SCHEMA.properties).sort(), wire);
  assert.deepEqual(SET_CREDENTIALS_SCHEMA.required, CREDENTIAL_CONTRACT.fields.filter((f) => f.required).map((f) => f.wire));
  for (const f of CREDENTIAL_CONTRACT.fields) assert.equal(SET_CREDENTIALS_ARGSINFO[f.wire]!.required, f.required, f.wire);
  for (const kind of STEP_KINDS) assert.deepEqual(stepDescriptor(kind).argsinfo, SET_CREDENTIALS_ARGSINFO);
  // Declarative: a JSON round trip loses nothing, so another implementation can load the same facts.
  assert.deepEqual(JSON.parse(JSON.stringify(CREDENTIAL_CONTRACT)), CREDENTIAL_CONTRACT);
  assert.deepEqual(JSON.parse(JSON.stringify(credentialParamsSchema())), credentialParamsSchema());
  // The checked-in JSON export (npm run gen:credential-contract) is current.
  for (const [name, content] of Object.entries(sharedFloorFiles())) {
    assert.equal(readFileSync(join(projectRoot(), 'service', name), 'utf8'), content, `service/${name} is stale: npm run gen:credential-contract`);
  }
  assert.deepEqual(Object.keys(sharedFloorFiles()), [CONTRACT_JSON_NAME, FAILURES_JSON_NAME]);
});

test('the contract\'s own checker agrees with ajv on every field\'s schema', async () => {
  const samples: unknown[] = [null, true, false, 0, 1, 2, 3, 4, 5, 11, 12, 15, 63, 64, -1, 2.5, '', 'a', 'admin', 'bmc-admin', 'été', 'x'.repeat(16), 'x'.repeat(17),
    'x'.repeat(20), 'x'.repeat(21), 'é'.repeat(20), 'a\u0000b', '-x', 'user', 'operator', 'administrator', 'callback', [], [1], [0], [1, 1], [1, 8], [12], ['1'], {}, { a: 1 }];
  for (const f of CREDENTIAL_CONTRACT.fields) {
    const validate = await lazyValidator(f.schema as object)();
    for (const s of samples) {
      assert.equal(checkValue(f.schema as SchemaFragment, s, f.rule) === null, validate(s), `${f.wire} ${JSON.stringify(s)}`);
    }
  }
});

test('over HTTP, demoting the only enabled administrator is a FAILED LOCKOUT_REFUSED record and nothing is written; allow_lockout does it', async () => {
  const t = createSimulatedTransport({ profile: 'ipmi20' });
  const dir = mkdtempSync(join(tmpdir(), 'doors-lockout-'));
  const agent = await startTestAgent({ credentials: stampedEngine(new CredentialService({ transport: t, stateDir: dir }), 'simulated'), name: 'lockout' });
  const writes = (): number => t.bmc.record.filter((e) => e.netFn === 0x06 && ([AppCmd.SET_USER_NAME, AppCmd.SET_USER_ACCESS, AppCmd.SET_CHANNEL_ACCESS].includes(e.cmd as 0x45)
    || (e.cmd === AppCmd.SET_USER_PASSWORD && ((e.data[1] ?? 0) & 3) !== PasswordOp.TEST_PASSWORD))).length;
  const pw = recordSecret('Lockout-pw-77');
  try {
    const before = JSON.stringify(t.bmc.snapshot());
    const refused: Array<[string, Record<string, unknown>]> = [
      ['bmc.set_credentials', { username: 'admin', password: pw, privilege: 'user' }],
      ['bmc.set_credentials', { username: 'admin', password: pw, privilege: 3 }],
      ['bmc.set_credentials', { username: 'newname', password: pw, slot: 2 }],
      ['clean.execute_clean_step', { step: { interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'admin', password: pw, privilege: 'operator' } } }],
    ];
    for (const [name, params] of refused) {
      const started = await agent.request('POST', '/v1/commands/', { name, params });
      assert.equal(started.status, 200, started.text);
      const done = await waitDone(agent, started.json.id);
      assert.equal(done.json.command_status, 'FAILED', `${name} ${JSON.stringify(params).replace(pw, '***')}`);
      assert.equal(done.json.command_error.reason, 'LOCKOUT_REFUSED');
      assert.match(done.json.command_error.details, /last enabled administrator.*Nothing was written/);
      assert.ok(!done.text.includes(pw));
    }
    assert.equal(writes(), 0, 'no IPMI write request reached the BMC');
    assert.equal(JSON.stringify(t.bmc.snapshot()), before, 'the user table is unchanged');
    assert.ok(t.bmc.passwordMatches(2, 'admin'), 'admin still holds its password');

    const forced = await agent.request('POST', '/v1/commands/', { name: 'bmc.set_credentials', params: { username: 'admin', password: pw, privilege: 'user', allow_lockout: true } });
    const done = await waitDone(agent, forced.json.id);
    assert.equal(done.json.command_status, 'SUCCEEDED', done.text.replace(pw, '***'));
    assert.ok((done.json.command_result.warnings as string[]).some((w) => /allowLockout/.test(w)));
    assert.equal(t.bmc.user(2)?.access[1]?.privilege, 2);
  } finally {
    await agent.close();
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
