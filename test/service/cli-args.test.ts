/**
 * The one argument parser both programs use (service/cli-args.ts): what a
 * declaration accepts, and the usage errors it words — each names its flag,
 * an option with allowed values lists them, and -h/--help wins over them all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHelp, parseCommand, UsageError, type OptionSpecs } from '../../service/cli-args.js';

const OPTIONS = {
  backend: { type: 'string', choices: ['auto', 'native', 'simulated'], help: 'how to reach the BMC' },
  channel: { type: 'string', multiple: true, meta: 'N', help: 'a channel, repeatable' },
  insecure: { type: 'boolean', negatable: true, help: 'skip TLS checks' },
  trace: { type: 'boolean', short: 'v', help: 'trace' },
  store: { type: 'string', default: 'file', help: 'where' },
  retries: { type: 'string', meta: 'N', help: 'retries' },
} as const satisfies OptionSpecs;
const spec = { options: OPTIONS };

function refused(argv: string[]): UsageError {
  try {
    parseCommand(spec, argv);
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    return e;
  }
  assert.fail(`accepted ${argv.join(' ')}`);
}

test('values: --name value, --name=value, repeats, -v, --no-flag, defaults, positionals and --', () => {
  const p = parseCommand(spec, ['pos1', '--backend', 'native', '--channel=1', '--channel', '2', '-v', '--no-insecure', '--retries', '-1', '--', '--not-a-flag']);
  assert.equal(p.values.backend, 'native');
  assert.deepEqual(p.values.channel, ['1', '2']);
  assert.equal(p.values.trace, true);
  assert.equal(p.values.insecure, false);
  assert.equal(p.values.store, 'file', 'the default');
  assert.equal(p.values.retries, '-1', 'a value may start with one dash (its own rule refuses it, naming the flag)');
  assert.deepEqual(p.positionals, ['pos1', '--not-a-flag']);
  assert.deepEqual([...p.given].sort(), ['backend', 'channel', 'insecure', 'retries', 'trace']);
  assert.equal(p.help, false);
  assert.equal(parseCommand(spec, ['--insecure=yes']).values.insecure, true);
  assert.equal(parseCommand(spec, ['--insecure=0']).values.insecure, false);
});

test('usage errors name the flag, list the allowed values and never echo a switch\'s value', () => {
  const cases: Array<[string[], RegExp, string]> = [
    [['--backend', 'foo'], /^--backend must be one of auto, native, simulated \(got "foo"\)$/, '--backend'],
    [['--frobnicate'], /^unknown option --frobnicate \(see --help\)$/, '--frobnicate'],
    [['--chanel', '1'], /^unknown option --chanel \(did you mean --channel\?\) \(see --help\)$/, '--chanel'],
    [['-x'], /^unknown option -x/, '-x'],
    [['-vx'], /^unknown option -x/, '-x'],
    [['--retries'], /^--retries needs a value \(N\)$/, '--retries'],
    [['--retries', '--trace'], /^--retries needs a value/, '--retries'],
    [['--trace=Secret-pw-1'], /^--trace takes no value$/, '--trace'],
    [['--insecure=maybe'], /^--insecure is true or false/, '--insecure'],
    [['--no-trace'], /^unknown option --no-trace/, '--no-trace'],
  ];
  for (const [argv, re, flag] of cases) {
    const e = refused(argv);
    assert.match(e.message, re, argv.join(' '));
    assert.equal(e.flag, flag, argv.join(' '));
    assert.ok(!e.message.includes('Secret-pw-1'));
  }
  assert.equal(parseCommand(spec, ['--backend', 'foo', '--help']).help, true, '--help wins over a bad value');
  assert.equal(parseCommand(spec, ['-h', '--frobnicate']).help, true);
});

test('the help lists each option once: one per line, or by name in a brief section', () => {
  const help = formatHelp('prog', {
    name: ['cmd'], usage: ['cmd [options]'], summary: 's', about: 'Does a thing.', options: OPTIONS,
    sections: [{ title: 'more', options: ['store', 'retries'], brief: true }], footer: 'exit: 0 ok',
  });
  assert.equal(help, [
    'usage: prog cmd [options]', '', 'Does a thing.', '', 'options:',
    '  --backend auto|native|simulated  how to reach the BMC',
    '  --channel N               a channel, repeatable',
    '  --[no-]insecure           skip TLS checks',
    '  -v, --trace               trace',
    'more:', '  --store VALUE --retries N', 'exit: 0 ok',
  ].join('\n'));
});
