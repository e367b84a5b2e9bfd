import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, LogRing, redactShapes, SecretRedactor } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { AgentTokenStore, MASKED_TOKEN } from '../../agent/token.js';
import { Secret } from '../../service/secret.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';

const LOOKUP_TOKEN = recordSecret('lk-' + 'R'.repeat(40));

test('a lookup token is accepted only when >= 32 characters, and checked exactly', () => {
  const t = new AgentTokenStore();
  assert.equal(t.hasToken, false);
  assert.equal(t.check(LOOKUP_TOKEN), false, 'no token on file: nothing matches');
  assert.equal(t.applyLookup('short-token'), 'ignored');
  assert.equal(t.applyLookup(null), 'ignored');
  assert.equal(t.applyLookup(LOOKUP_TOKEN), 'accepted');
  assert.equal(t.source, 'lookup');
  assert.equal(t.applyLookup(LOOKUP_TOKEN), 'kept');
  assert.equal(t.check(LOOKUP_TOKEN), true);
  assert.equal(t.check(LOOKUP_TOKEN + 'x'), false);
  assert.equal(t.check(LOOKUP_TOKEN.slice(1)), false);
  assert.equal(t.check(''), false);
  assert.equal(t.check(['a']), false);
  assert.equal(t.reveal(), LOOKUP_TOKEN);
});

test('"******" with no token on file locks the agent down; with one on file it is kept', () => {
  const lines = new LineCollector();
  const { log } = createLogger({ stream: lines, format: 'json' });
  const fresh = new AgentTokenStore(log);
  assert.equal(fresh.applyLookup(MASKED_TOKEN), 'lockdown');
  assert.match(fresh.lockdownReason ?? '', /already handed out/);
  const known = new AgentTokenStore();
  known.setConfigured(LOOKUP_TOKEN, 'kernel-cmdline');
  assert.equal(known.applyLookup(MASKED_TOKEN), 'kept');
  assert.equal(known.lockdownReason, null);
  assert.equal(known.check(LOOKUP_TOKEN), true);
  captureLines('agent-token', lines.lines);
});

test('the logger masks registered secrets, query tokens and password fields in every line', async () => {
  const lines = new LineCollector();
  const logger = createLogger({ stream: lines, format: 'json' });
  const pw = recordSecret('Lg-secret-4242');
  logger.redactor.register(pw);
  logger.redactor.register(LOOKUP_TOKEN);
  const child = logger.log.child({ module: 'x' });
  child.info(`oops ${pw} and ${LOOKUP_TOKEN}`);
  child.warn('GET /v1/commands/?agent_token=someothertoken123&wait=true');
  child.error('body {"name":"bmc.set_credentials","params":{"password":"unregistered-pw-1"}}', { detail: `nested ${pw}` });
  child.info('a Secret prints masked', { value: Secret.fromString('never-seen-pw-2') });
  await new Promise((r) => setImmediate(r));
  const text = lines.text();
  for (const s of [pw, LOOKUP_TOKEN, 'someothertoken123', 'unregistered-pw-1', 'never-seen-pw-2']) assert.ok(!text.includes(s), `${s.slice(0, 4)}… leaked`);
  assert.match(text, /agent_token=\*\*\*&wait=true/);
  assert.equal(logger.ring.text().split('\n').filter(Boolean).length, 4, 'the ring keeps the redacted lines');
  assert.ok(!logger.ring.text().includes(pw));
  captureLines('agent-logger', lines.lines);
});

test('the human format is used on a terminal, JSON otherwise', async () => {
  const tty = Object.assign(new LineCollector(), { isTTY: true });
  createLogger({ stream: tty }).log.child({ module: 'api' }).info('hello', { n: 1 });
  const pipe = new LineCollector();
  createLogger({ stream: pipe }).log.info('hello');
  await new Promise((r) => setImmediate(r));
  assert.match(tty.lines[0]!, /^\S+Z INFO {2}\[api\] hello \{"n":1\}$/);
  assert.equal(JSON.parse(pipe.lines[0]!).message, 'hello');
});

test('redaction shapes leave masked values and ordinary text alone', () => {
  assert.equal(redactShapes('nothing secret here'), 'nothing secret here');
  assert.equal(redactShapes('{"agent_token": "******"}'), '{"agent_token": "******"}');
  assert.equal(redactShapes('{"ipmi_password":"abc"}'), '{"ipmi_password":"***"}');
});

test('every registered secret is masked whatever its length (the engine takes 1-20 byte passwords)', () => {
  const r = new SecretRedactor();
  for (const pw of ['Q', 'k9', 'p4s', 'Zx7!', 'a1B2c']) r.register(pw);
  assert.equal(r.size, 5);
  const line = r.redact('set user 3 password to a1B2c; then Zx7! then p4s, k9 and Q');
  for (const pw of ['a1B2c', 'Zx7!', 'p4s', 'k9']) assert.ok(!line.includes(pw), `${pw} left in ${line}`);
  assert.ok(!/Q/.test(line), line);
  r.register('');
  assert.equal(r.size, 5, 'an empty value is nothing to mask');
});

test('the log ring keeps the last lines in order as it wraps around', () => {
  const ring = new LogRing(3);
  assert.equal(ring.text(), '');
  ring.push('a');
  ring.push('b');
  assert.equal(ring.text(), 'a\nb\n');
  for (const l of ['c', 'd', 'e']) ring.push(l);
  assert.equal(ring.text(), 'c\nd\ne\n');
  ring.push('f');
  assert.equal(ring.text(), 'd\ne\nf\n');
  for (let i = 0; i < 7; i++) ring.push(`n${i}`);
  assert.equal(ring.text(), 'n4\nn5\nn6\n');
});
