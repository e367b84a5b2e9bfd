/**
 * The driver's BarbicanStore (ironic-driver/inband_ironic/stores.py) against
 * a real Barbican (test/harness/barbican.ts, no Keystone: X-Project-Id), built
 * by the vendor interface from an ironic.conf (`[inband_bmc] secret_store =
 * barbican`, Ironic's keystoneauth options in `[inband_bmc_barbican]`:
 * auth_type none, endpoint_override): pending → current → a second rotation
 * supersedes it → delete_superseded removes the old secret from Barbican; a
 * failed one is deleted too. Skipped, saying why, without python3-barbican.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Barbican, barbicanAvailability } from '../harness/barbican.js';
import { ironicAvailability, SYSTEM_PYTHON } from '../harness/ironic.js';
import { recordSecret } from '../helpers/secrets.js';
import { projectRoot } from '../harness/e2e.js';

const b = barbicanAvailability();
const i = ironicAvailability();
const skip = !b.available ? b.reason : !i.available ? i.reason : false;

const SCRIPT = `
import json, os, sys, tempfile
from unittest import mock
url, project = sys.argv[1], sys.argv[2]
pw1, pw2, pw3 = sys.stdin.read().split('\\n')[:3]
# The store as the vendor interface builds it from ironic.conf: [inband_bmc] and
# Ironic's own service credentials in [inband_bmc_barbican] (no Keystone here).
conf = os.path.join(tempfile.mkdtemp(), 'ironic.conf')
with open(conf, 'w') as f:
    f.write('[inband_bmc]\\nsecret_store = barbican\\nbarbican_project_id = %s\\n'
            '[inband_bmc_barbican]\\nauth_type = none\\nendpoint_override = %s\\n' % (project, url))
from oslo_config import cfg
from inband_ironic import stores, vendor
cfg.CONF(['--config-file', conf], project='ironic')
class Node:
    uuid = '0d7e2a9b-8f55-4c1e-9b44-7b5b3c1f2a10'
    driver_internal_info = {}
    def set_driver_internal_info(self, k, v):
        self.driver_internal_info = dict(self.driver_internal_info, **{k: v})
    def save(self):
        pass
node = Node()
s = vendor.make_store(mock.Mock(node=node))
assert isinstance(s, stores.BarbicanStore), type(s)
ad = s.adapter
e1 = s.put_pending('ironic', pw1); s.mark_current(e1)
e2 = s.put_pending('ironic_b', pw2); s.mark_current(e2)
e3 = s.put_pending('ironic', pw3); s.mark_failed(e3, 'test')
payload = lambda ref: ad.get(ref + '/payload', headers={'X-Project-Id': project, 'Accept': 'text/plain'}, raise_exc=False)
before = [payload(e).status_code for e in (e1, e2, e3)]
deleted = s.delete_superseded(0)
print(json.dumps({'before': before, 'deleted': deleted, 'after': [payload(e).status_code for e in (e1, e2, e3)],
                  'current_ok': payload(e2).text == pw2,
                  'states': [(e['username'], e['state']) for e in node.driver_internal_info[stores.SECRETS_KEY]]}))
`;

describe('the driver\'s Barbican store against a real Barbican', () => {
  let barbican: Barbican;
  before(async () => {
    if (!skip) barbican = await Barbican.start();
  });
  after(async () => {
    await barbican?.stop();
  });

  it('keeps pending/current/superseded/failed and deletes what is no longer needed', { skip }, () => {
    const pws = ['Barb-pw-one-1', 'Barb-pw-two-2', 'Barb-pw-three-3'].map(recordSecret);
    const r = spawnSync(SYSTEM_PYTHON, ['-c', SCRIPT, barbican.url, randomUUID()], {
      input: pws.join('\n'), encoding: 'utf8', env: { PATH: '/usr/bin:/bin', PYTHONPATH: join(projectRoot(), 'ironic-driver'), HOME: '/tmp' },
    });
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    const out = JSON.parse(r.stdout) as { before: number[]; deleted: number; after: number[]; current_ok: boolean; states: Array<[string, string]> };
    assert.deepEqual(out.before, [200, 200, 200]);
    assert.equal(out.deleted, 2, 'the superseded and the failed secret');
    assert.deepEqual(out.after, [404, 200, 404]);
    assert.ok(out.current_ok, 'Barbican returns the current password');
    assert.deepEqual(out.states, [['ironic_b', 'current']]);
    for (const pw of pws) assert.ok(!r.stdout.includes(pw) && !r.stderr.includes(pw));
  });
});
