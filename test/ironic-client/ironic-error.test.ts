import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unwrapIronicError } from '../../agent/ironic/ironic-error.js';
import { callbackIsTrusted, inspectionPayload, pickRootDisk } from '../../agent/ironic/discovery.js';
import { lookupPath } from '../../agent/ironic/lookup.js';
import { lookupBackoffSeconds } from '../../agent/ironic/backoff.js';

describe('unwrapIronicError', () => {
  it('unwraps Ironic\'s JSON-string-in-JSON error_message (verbatim body from Ironic 21.4)', () => {
    const body = '{"error_message": "{\\"faultcode\\": \\"Client\\", \\"faultstring\\": \\"Detected change in ramdisk provided \\\\\\"callback_url\\\\\\"\\", \\"debuginfo\\": null}"}';
    assert.equal(unwrapIronicError(body), 'Detected change in ramdisk provided "callback_url"');
  });
  it('reads ironic-inspector\'s {"error": {"message"}} and Barbican\'s {title, description}', () => {
    assert.equal(unwrapIronicError('{"error":{"message":"The following failures happened:\\nhook failed"}}'), 'The following failures happened: hook failed');
    assert.equal(unwrapIronicError('{"code": 404, "title": "Not Found", "description": "Secret not found."}'), 'Not Found: Secret not found.');
  });
  it('falls back to the clipped body for HTML or empty answers', () => {
    assert.equal(unwrapIronicError('<html><body>502 Bad Gateway</body></html>'), '<html><body>502 Bad Gateway</body></html>');
    assert.equal(unwrapIronicError(''), '(empty body)');
    assert.ok(unwrapIronicError('x'.repeat(2000)).length <= 501);
  });
});

describe('lookup and discovery helpers', () => {
  it('builds the lookup query with readable MACs and the node uuid', () => {
    assert.equal(lookupPath(['52:54:00:00:00:01', '52:54:00:00:00:02'], 'abc'), '/v1/lookup?addresses=52:54:00:00:00:01,52:54:00:00:00:02&node_uuid=abc');
    assert.equal(lookupPath([], 'abc'), '/v1/lookup?node_uuid=abc');
  });
  it('keeps every back-off wait between 1 s and 60 s', () => {
    for (let n = 1; n < 40; n++) {
      for (const r of [0, 0.999999]) {
        const w = lookupBackoffSeconds(n, 1, () => r);
        assert.ok(w >= 1 && w <= 60, `attempt ${n}: ${w}`);
      }
    }
  });
  it('accepts discovered credentials only over https or from loopback', () => {
    assert.equal(callbackIsTrusted('https://192.0.2.1:5050/v1/continue'), true);
    assert.equal(callbackIsTrusted('http://127.0.0.1:5050/v1/continue'), true);
    assert.equal(callbackIsTrusted('http://[::1]:5050/v1/continue'), true);
    assert.equal(callbackIsTrusted('http://192.0.2.1:5050/v1/continue'), false);
    // ipa-insecure: the certificate is not checked, so no peer is authenticated, loopback included.
    assert.equal(callbackIsTrusted('https://192.0.2.1:5050/v1/continue', true), false);
    assert.equal(callbackIsTrusted('https://127.0.0.1:5050/v1/continue', true), false);
  });
  it('picks the smallest disk of at least 4 GiB as root_disk, like IPA', () => {
    const disks = [{ name: '/dev/sdb', size: 2 * 1024 ** 3 }, { name: '/dev/sdc', size: 500 * 1024 ** 3 }, { name: '/dev/sda', size: 100 * 1024 ** 3 }];
    assert.equal((pickRootDisk({ disks }) as { name: string }).name, '/dev/sda');
    assert.equal(pickRootDisk({ disks: [] }), null);
    const p = inspectionPayload({ disks, boot: { pxe_interface: 'aa:bb:cc:dd:ee:ff' } }, '1.0.0');
    assert.equal(p.boot_interface, 'aa:bb:cc:dd:ee:ff');
    assert.deepEqual(p.configuration, { collectors: ['default'], managers: [{ name: 'inband_agent', version: '1.0.0' }] });
  });
});
