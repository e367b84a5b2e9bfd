/**
 * BarbicanSecretStore against a real Barbican 15 (Debian python3-barbican,
 * started on a free loopback port with sqlite by test/harness/barbican.ts):
 * the store contract, plus what Barbican itself shows — a `passphrase` secret
 * whose payload is the password, project scoping, unwrapped error bodies, and
 * an UNAVAILABLE error when Barbican is down.
 *
 * Skips, saying why, when python3-barbican is not installed (scripts/install-barbican.sh).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BarbicanSecretStore, unwrapError } from '../../conductor/barbican-store.js';
import { SecretStoreError } from '../../conductor/secret-store.js';
import { generatePassword } from '../../service/password-generator.js';
import { freeLoopbackPort } from '../harness/ironic.js';
import { Barbican, barbicanAvailability } from '../harness/barbican.js';
import { recordSecret } from '../helpers/secrets.js';
import { secretStoreContract } from './secret-store-contract.js';

const avail = barbicanAvailability();
const skip = avail.available ? false : `real Barbican: ${avail.reason}`;
let barbican: Barbican | undefined;

before(async () => {
  if (skip) return;
  barbican = await Barbican.start();
  console.log(`# Barbican up in ${barbican.startMs} ms at ${barbican.url}`);
});
after(async () => {
  await barbican?.stop();
});

const store = (projectId = randomUUID()): BarbicanSecretStore => new BarbicanSecretStore({ url: (barbican as Barbican).url, auth: { projectId } });

describe('BarbicanSecretStore: store contract on a real Barbican', () => {
  secretStoreContract({ skip, make: async () => store() });
});

describe('BarbicanSecretStore: Barbican specifics', () => {
  it('stores a passphrase secret whose payload is the password, scoped to the project', { skip }, async () => {
    const project = randomUUID();
    const s = store(project);
    const pw = generatePassword(0);
    recordSecret(pw.reveal());
    const e = await s.putPending('node-1', 'ironic', pw);
    const url = (barbican as Barbican).url;
    const meta = await (await fetch(`${url}/v1/secrets/${e.id}`, { headers: { 'X-Project-Id': project } })).json() as Record<string, unknown>;
    assert.equal(meta.secret_type, 'passphrase');
    assert.equal(meta.name, 'inband-bmc:node-1');
    const payload = await fetch(`${url}/v1/secrets/${e.id}/payload`, { headers: { 'X-Project-Id': project, Accept: 'text/plain' } });
    assert.equal(await payload.text(), pw.reveal());
    // another project neither lists nor reads it
    const other = store(randomUUID());
    assert.deepEqual(await other.history('node-1'), []);
    await assert.rejects(other.getSecret('node-1', e.id), (x: unknown) => x instanceof SecretStoreError && x.code === 'DENIED' && /not allowed/.test(x.message));
  });

  it('unwraps error bodies: JSON description, and the HTML page of the context middleware', { skip }, async () => {
    const r = await fetch(`${(barbican as Barbican).url}/v1/secrets`);
    const text = Buffer.from(await r.arrayBuffer());
    assert.equal(r.status, 400);
    assert.match(unwrapError(text, r.headers.get('content-type')), /Missing X-Project-Id/);
    assert.equal(unwrapError(Buffer.from('{"code": 404, "title": "Not Found", "description": "Secret not found."}'), 'application/json'), 'Secret not found.');
    const reader = new BarbicanSecretStore({ url: (barbican as Barbican).url, auth: { projectId: randomUUID(), roles: 'reader' } });
    await assert.rejects(reader.putPending('node-1', 'ironic', generatePassword(0)),
      (x: unknown) => x instanceof SecretStoreError && x.code === 'DENIED' && /Secret creation attempt not allowed/.test(x.message));
  });

  it('reports UNAVAILABLE when nothing answers', async () => {
    const port = await freeLoopbackPort();
    const down = new BarbicanSecretStore({ url: `http://127.0.0.1:${port}`, auth: { projectId: 'p' }, timeoutMs: 3000 });
    const pw = generatePassword(0);
    const err = await down.putPending('node-1', 'ironic', pw).catch((e: unknown) => e);
    assert.ok(err instanceof SecretStoreError && err.code === 'UNAVAILABLE', String(err));
    assert.ok(!err.message.includes(pw.reveal()));
  });
});
