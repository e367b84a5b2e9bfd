"""Doubles in Ironic's test style: a node object and a task manager double
(mock.Mock with the TaskManager interface), and fake rotation ports."""

import copy
import datetime
from unittest import mock

from ironic.common import states
from ironic.conductor import task_manager

UUID = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123'


class FakeNode:
    """The Node fields the driver reads and writes; save() records snapshots."""

    def __init__(self, **kw):
        self.uuid = UUID
        self.provision_state = states.MANAGEABLE
        self.target_provision_state = None
        self.maintenance = False
        self.last_error = None
        self.power_state = states.POWER_ON
        self.driver_info = {'ipmi_address': '192.0.2.10', 'ipmi_username': 'admin',
                            'ipmi_password': 'Old-password-1'}
        self.driver_internal_info = {
            'agent_url': 'https://192.0.2.20:9999',
            'agent_last_heartbeat': datetime.datetime.utcnow().isoformat(),
            'agent_verify_ca': '/var/lib/ironic/certificates/%s.crt' % UUID,
        }
        self.saved = []
        for k, v in kw.items():
            setattr(self, k, v)

    def set_driver_internal_info(self, key, value):
        info = dict(self.driver_internal_info)
        info[key] = value
        self.driver_internal_info = info

    def save(self):
        self.saved.append(copy.deepcopy({'driver_info': self.driver_info,
                                         'driver_internal_info': self.driver_internal_info,
                                         'last_error': self.last_error}))


def fake_task(node=None, shared=False):
    task = mock.Mock(spec=task_manager.TaskManager)
    task.node = node or FakeNode()
    task.shared = shared
    task.context = mock.Mock()
    task.driver = mock.Mock()
    return task


class FakeStore:
    kind = 'fake'

    def __init__(self, fail=None):
        self.fail = fail
        self.entries = {}

    def _maybe(self, what):
        if self.fail == what:
            raise RuntimeError('store down (%s)' % what)

    def put_pending(self, username, password):
        self._maybe('put_pending')
        self.entries['e1'] = 'pending'
        return 'e1'

    def mark_current(self, entry):
        self._maybe('mark_current')
        self.entries[entry] = 'current'

    def mark_failed(self, entry, reason):
        self.entries[entry] = 'failed'

    def delete_superseded(self, keep):
        return 0

    def state(self):
        return self.entries.get('e1', 'none')


class FakePorts:
    """A BMC with the previous user enabled; each port can be told to fail."""

    def __init__(self, fail=None):
        self.fail = fail
        self.bmc_written = False
        self.ironic_user = 'admin'
        self.previous_enabled = True

    def set_in_band(self, username, password):
        if self.fail == 'set-in-band':
            raise RuntimeError('the agent answered FAILED: BMC refused')
        self.bmc_written = True
        return {'user_id': 3}

    def prove(self, username, password):
        if self.fail == 'prove':
            raise RuntimeError('IPMI call failed: power status')
        return states.POWER_ON

    def update_ironic(self, username, password):
        if self.fail == 'update-ironic':
            raise RuntimeError('node save failed')
        self.ironic_user = username

    def retire(self, as_user, as_password, username):
        if self.fail == 'retire-previous':
            return False, 'user disable 2: Insufficient privilege level', False
        self.previous_enabled = False
        return True, 'user 2 (%s) disabled, reads back disabled (enable status)' % username, False


class FakeBmc:
    """ipmitool 1.8.19 over lanplus against a BMC, for `ipmitool exec FILE`: the
    commands retire.py sends, answered as ipmitool prints them (checked against
    ipmi_sim 2.0.33). `reports_status` False is ipmi_sim: §22.27 enable status
    always 00b ("unknown"), IPMI messaging the enable flag. `keeps_enabled` is a
    BMC that drops the disable; `busy` the number of sessions answered with an
    ipmitool failure first."""

    def __init__(self, users=None, session_user=3, reports_status=True, keeps_enabled=False, busy=0):
        # id -> [name, enabled, privilege]
        self.users = users or {2: ['admin', True, 'ADMINISTRATOR'], 3: ['ironic', True, 'ADMINISTRATOR']}
        self.session_user = session_user
        self.reports_status = reports_status
        self.keeps_enabled = keeps_enabled
        self.busy = busy
        self.sessions = []
        self.disabled = []

    def _access(self, uid):
        name, enabled, priv = self.users.get(uid, ['', False, 'Unknown (0x00)'])
        status = ('enabled' if enabled else 'disabled') if self.reports_status else 'unknown'
        return ('\nUser ID              : %d\nUser Name            : %s\nFixed Name           : No\n'
                'Access Available     : call-in / callback\nLink Authentication  : disabled\n'
                'IPMI Messaging       : %s\nPrivilege Level      : %s\nEnable Status        : %s\n'
                % (uid, name, 'enabled' if enabled else 'disabled', priv, status))

    def exec_ipmitool(self, info, command, check_exit_code=None):
        from oslo_concurrency import processutils
        verb, path = command.split(' ')
        assert verb == 'exec', command
        with open(path) as f:
            lines = f.read().splitlines()
        self.sessions.append(lines)
        if self.busy:
            self.busy -= 1
            raise processutils.ProcessExecutionError(
                exit_code=1, cmd='ipmitool exec', stderr='Error: Unable to establish IPMI v2 / RMCP+ session')
        out = []
        for line in lines:
            w = line.split()
            if w[:2] == ['raw', '0x06'] and w[2] == '0x3d':
                out.append(' 01 3f 01 %02x 04 11' % self.session_user)
            elif w[:2] == ['channel', 'info']:
                if w[2] == '1':
                    out.append('Channel 0x1 info:\n  Channel Medium Type   : 802.3 LAN\n'
                               '  Channel Protocol Type : IPMB-1.0')
            elif w[:2] == ['channel', 'getaccess']:
                ids = [int(w[3])] if len(w) > 3 else list(range(1, 16))
                out.append('Maximum User IDs     : 15\nEnabled User IDs     : %d\n'
                           % sum(1 for u in self.users.values() if u[1]))
                out.extend(self._access(i) for i in ids)
            elif w[:2] == ['user', 'disable']:
                uid = int(w[2])
                self.disabled.append(uid)
                if uid in self.users and not self.keeps_enabled:
                    self.users[uid][1] = False
            else:
                raise AssertionError('unexpected ipmitool command %r' % line)
        return '\n'.join(out) + '\n', ''
