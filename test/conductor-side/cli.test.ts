/**
 * `inband-agent conductor` argument handling: usage errors exit 2 before any
 * network call; --help prints the usage; tokens are read from the environment
 * only (there is no option that takes one).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { main, USAGE } from '../../conductor/cli.js';
import { CONDUCTOR_COMMANDS } from '../../conductor/commands.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s), env: {} });
  return { code, out, err };
}

describe('conductor CLI', () => {
  it('prints the usage on --help and with no command', async () => {
    assert.deepEqual(await run('conductor', '--help'), { code: 0, out: USAGE + '\n', err: '' });
    for (const c of CONDUCTOR_COMMANDS) assert.match(USAGE, new RegExp(`inband-agent conductor ${c.name[0]} `), c.name[0]);
    const rotateHelp = await run('rotate', '--help');
    assert.equal(rotateHelp.code, 0);
    assert.match(rotateHelp.out, /--agent-cert FILE/);
    assert.match(rotateHelp.out, /--allow-plain-args/);
    assert.match(rotateHelp.out, /--all --driver D/, 'the fleet options are named');
    const fleetHelp = await run('fleet', '-h');
    assert.equal(fleetHelp.code, 0);
    assert.match(fleetHelp.out, /--initial-password-stdin +stdin: the enrolment password/);
    assert.equal((await run()).code, 2);
  });

  it('refuses bad usage with exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command/],
      [['rotate'], /exactly one NODE/],
      [['rotate', 'n1'], /--ironic-url is required/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--username', 'way-too-long-bmc-user'], /1-16/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--username', 'a', '--username-b', 'a'], /must differ/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--store', 'vault'], /--store must be one of file, barbican \(got "vault"\)/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--store', 'barbican'], /--barbican-url/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--store', 'barbican', '--barbican-url', 'http://127.0.0.1:1'], /BARBICAN_AUTH_TOKEN/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--password', 'x'], /unknown option --password \(see --help\)/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--recrods-dir', '/tmp/x'], /unknown option --recrods-dir \(did you mean --records-dir\?\)/],
      [['rotate', 'n1', '--ironic-url'], /--ironic-url needs a value \(URL\)/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--keep-previous=yes'], /--keep-previous takes no value/],
      [['fleet', '--ironic-url', 'http://127.0.0.1:1'], /give one or more NODEs, or --all/],
      [['--log-format', 'json', 'rotate', '--ironic-url', 'http://127.0.0.1:1'], /exactly one NODE/],
      [['--log-format=xml', 'rotate', 'n1'], /--log-format must be one of auto, json, text \(got "xml"\)/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--clean-timeout', '0'], /positive/],
      [['rotate', 'n1', '--ironic-url', 'http://127.0.0.1:1', '--agent-cert', '/nonexistent/agent.crt'], /--agent-cert \/nonexistent\/agent\.crt: ENOENT/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, re, argv.join(' '));
    }
  });
});
