"""The `inband-bmc` vendor interface: Ironic's ipmitool vendor passthru
(send_raw, bmc_reset) plus `set_bmc_credentials`, which rotates the node's
BMC credential through its running agent (inband-agent) with no lock-out.

    baremetal node passthru call NODE set_bmc_credentials --arg username=ironic

Everything the caller can get wrong is refused in validate(), which Ironic
runs synchronously under the node's exclusive lock before the async body is
spawned: the API answers 400 with the reason, and nothing is generated,
stored or sent. The body then holds the lock for the whole rotation (so the
power sync and other operations cannot use a half-changed credential) and
records its outcome, without any secret, in
driver_internal_info.inband_bmc_rotation (and last_error on failure).
"""

import datetime
import os
import re
import tempfile
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import strutils
from oslo_utils import timeutils

from ironic.common import exception
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conductor import utils as cond_utils
from ironic.drivers import base
from ironic.drivers.modules import agent_client
from ironic.drivers.modules import ipmitool

from inband_ironic import contract
from inband_ironic import passwords
from inband_ironic import retire
from inband_ironic import rotation
from inband_ironic import sealing
from inband_ironic import stores

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

opts = [
    cfg.StrOpt('secret_store', default='driver_info', choices=['driver_info', 'barbican'],
               help='Where set_bmc_credentials keeps the new BMC password besides '
                    'driver_info.ipmi_password: driver_info only, or also Barbican '
                    '(reached with the keystoneauth options of [inband_bmc_barbican]).'),
    cfg.StrOpt('barbican_project_id',
               help='X-Project-Id sent to a Barbican without Keystone (auth_type = none); '
                    'unset with Keystone.'),
    cfg.BoolOpt('retire_previous', default=True,
                help='Disable the previous BMC user once the new one is in driver_info, and read it '
                     'back; a rotation whose previous user stays enabled fails at retire-previous.'),
]
CONF.register_opts(opts, group='inband_bmc')
try:
    from ironic.conf import auth as ironic_auth
    ironic_auth.register_auth_opts(CONF, 'inband_bmc_barbican', service_type='key-manager')
except cfg.DuplicateOptError:  # registered twice in one process (tests)
    pass

METHOD = 'set_bmc_credentials'
ARGS = ('username', 'username_b', 'privilege', 'password_policy', 'password_length',
        'password', 'use_given_password')
RECORD_KEY = 'inband_bmc_rotation'
ERROR_PREFIX = 'set_bmc_credentials failed'
# States where an agent runs and no other operation owns the node: fast track
# (manageable, available) and a manual clean the agent is waiting in.
AGENT_STATES = (states.MANAGEABLE, states.AVAILABLE, states.CLEANWAIT)
if hasattr(states, 'SERVICEWAIT'):  # Ironic >= 23.0 (service steps)
    AGENT_STATES = AGENT_STATES + (states.SERVICEWAIT,)

HOW_TO_GET_AN_AGENT = (
    'set_bmc_credentials needs the node\'s agent running now: enable fast track '
    '([deploy]fast_track = true, or driver_info fast_track=true) and power the node on '
    'in manageable/available so the agent looks up and heartbeats; or start a manual '
    'clean whose step waits (the agent heartbeats in "clean wait"); or, on Ironic 2023.2 '
    'or later, a service step. An active node with no ramdisk running has no agent: rotate '
    'it once it is manageable again, or with `conductor rotate`, whose manual clean boots one.')

DESCRIPTION = (
    'Rotate the BMC credential in-band through the running agent, with no lock-out. '
    'Args: username (required; the node alternates between username and username_b, '
    'default username + "%s"), privilege (administrator|operator, default administrator), '
    'password_policy (%s) or password_length (%s). '
    'A BMC-safe password is generated (a caller\'s password only with use_given_password=true), '
    'stored, sent to the agent sealed to its certificate, proven with a power state read, '
    'then put in driver_info; the previous user is disabled and read back (a rotation whose '
    'previous user still reads enabled fails at retire-previous, keeping the new credential). Outcome: '
    'driver_internal_info.inband_bmc_rotation.') % (
        contract.SECOND_USER_SUFFIX, '|'.join(p['name'] for p in passwords.POLICIES),
        '|'.join(sorted({str(p['length']) for p in passwords.POLICIES})))


class AgentNotReachable(exception.Invalid):
    _msg_fmt = '%(err)s'


class RotationRefused(exception.Invalid):
    _msg_fmt = '%(err)s'


def _refuse(msg: str) -> None:
    raise RotationRefused(err=msg)


def parse_args(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """The validated args (raises RotationRefused / MissingParameterValue naming the field)."""
    unknown = sorted(set(kwargs) - set(ARGS) - {'http_method'})
    if unknown:
        _refuse('set_bmc_credentials: unknown argument(s) %s; accepted: %s' % (', '.join(unknown), ', '.join(ARGS)))
    if not kwargs.get('username'):
        raise exception.MissingParameterValue(err='set_bmc_credentials: username is required (the BMC user to rotate to)')
    try:
        pair = contract.user_pair(kwargs['username'], kwargs.get('username_b'))
        privilege = contract.check_privilege(kwargs.get('privilege', 'administrator'))
        if privilege == 'user':
            raise contract.ContractError('privilege', 'Ironic needs administrator or operator to manage power')
        length = kwargs.get('password_length')
        if length is not None:
            if not re.fullmatch(r'\d{1,3}', str(length)):
                raise contract.ContractError('password_length', 'must be a number of characters (16 or 20)')
            length = int(length)
        policy = passwords.policy_index(kwargs.get('password_policy'), length)
        given = kwargs.get('password')
        use_given = strutils.bool_from_string(kwargs.get('use_given_password', False), strict=False)
        if given is not None and not use_given:
            raise contract.ContractError('password', 'a password is never taken from the caller unless '
                                         'use_given_password=true is given too; leave it out and a '
                                         'BMC-safe one is generated')
        if use_given:
            if given is None:
                raise contract.ContractError('password', 'use_given_password=true needs password')
            contract.check_password(given)
    except contract.ContractError as e:
        _refuse('set_bmc_credentials: %s' % e)
    return {'pair': pair, 'privilege': privilege, 'policy': policy,
            'password': given if use_given else None}


def agent_alive(node: Any) -> bool:
    """Ironic's agent_is_alive, for every heartbeat stamp Ironic writes.

    Ironic stamps a heartbeat with utcnow().isoformat(), which leaves out the
    '.%f' part when the microseconds are 0; its value_within_timeout then
    parses the stamp it wrote with '%Y-%m-%dT%H:%M:%S.%f' and raises
    ValueError (an HTTP 500 to the caller). Such a stamp is judged by the same
    rule: an agent_url, and a heartbeat within [deploy]fast_track_timeout.
    """
    try:
        return cond_utils.agent_is_alive(node)
    except ValueError:
        info = node.driver_internal_info
        if not info.get('agent_url'):
            return False
        try:
            last = datetime.datetime.fromisoformat(info.get('agent_last_heartbeat'))
        except (TypeError, ValueError):
            return False
        return last >= timeutils.utcnow() - datetime.timedelta(seconds=CONF.deploy.fast_track_timeout)


def check_node(task: Any) -> None:
    """Refuses a node the rotation cannot run on, saying what to do."""
    node = task.node
    if node.maintenance:
        _refuse('set_bmc_credentials: node %s is in maintenance; a rotation needs Ironic to reach the BMC '
                '(take it out of maintenance first)' % node.uuid)
    state, target = node.provision_state, node.target_provision_state
    if state not in AGENT_STATES or (target and state not in (states.CLEANWAIT, getattr(states, 'SERVICEWAIT', None))):
        raise AgentNotReachable(err='set_bmc_credentials: node %s is "%s"%s. %s' % (
            node.uuid, state, ' -> %s' % target if target else '', HOW_TO_GET_AN_AGENT))
    if not agent_alive(node):
        raise AgentNotReachable(err='set_bmc_credentials: no agent is reachable for node %s (%s). %s' % (
            node.uuid, 'no agent_url recorded' if not node.driver_internal_info.get('agent_url')
            else 'last heartbeat older than [deploy]fast_track_timeout', HOW_TO_GET_AN_AGENT))
    ca = node.driver_internal_info.get('agent_verify_ca')
    if not isinstance(ca, str) or not ca:
        raise AgentNotReachable(err='set_bmc_credentials: the agent of node %s sent no TLS certificate '
                                '(agent_verify_ca), so the password cannot be sealed to it; run the agent '
                                'with auto-TLS' % node.uuid)


def pinned_recipient(node: Any) -> sealing.Recipient:
    ca = node.driver_internal_info.get('agent_verify_ca')
    if '-----BEGIN CERTIFICATE-----' in ca:
        return sealing.recipient_from_pem(ca.encode('ascii'), 'driver_internal_info.agent_verify_ca (inline)')
    try:
        with open(ca, 'rb') as f:
            pem = f.read()
    except OSError as e:
        raise sealing.SealError('Ironic pinned the agent certificate at %s, which cannot be read (%s)'
                                % (ca, os.strerror(e.errno) if e.errno else e)) from None
    return sealing.recipient_from_pem(pem, ca)


class IronicPorts:
    """The rotation's ports on a real Ironic task."""

    def __init__(self, task: Any, recipient: sealing.Recipient, privilege: str) -> None:
        self.task = task
        self.recipient = recipient
        self.privilege = privilege

    def set_in_band(self, username: str, password: str) -> Dict[str, Any]:
        node = self.task.node
        sealed = sealing.seal(self.recipient, password, node.uuid, username)
        client = agent_client.get_client(self.task)
        # bmc.set_credentials is the agent's own command (stock IPA has none);
        # AgentClient has no public generic call, _command is what its helpers use.
        params = {'username': username, 'password_sealed': sealed, 'privilege': self.privilege}
        contract.check_wire_params(params)  # what the agent's bmc.set_credentials takes
        result = client._command(node, 'bmc.set_credentials', params, wait=True)
        status = result.get('command_status')
        if status != 'SUCCEEDED':
            err = result.get('command_error') or {}
            msg = err.get('message') or err.get('details') or err if isinstance(err, dict) else err
            raise RuntimeError('the agent answered %s: %s' % (status, msg))
        return result.get('command_result') or {}

    def _with_credential(self, username: str, password: str) -> Dict[str, Any]:
        info = dict(self.task.node.driver_info)
        info['ipmi_username'] = username
        info['ipmi_password'] = password
        return info

    def prove(self, username: str, password: str) -> str:
        node = self.task.node
        saved = node.driver_info
        node.driver_info = self._with_credential(username, password)
        try:
            # The power interface's own read (ipmitool "power status"), never a power action.
            state = self.task.driver.power.get_power_state(self.task)
        finally:
            node.driver_info = saved
        if state not in (states.POWER_ON, states.POWER_OFF):
            raise RuntimeError('the power interface read "%s" logged in as %s' % (state, username))
        return state

    def update_ironic(self, username: str, password: str) -> None:
        node = self.task.node
        node.driver_info = self._with_credential(username, password)
        node.save()

    def retire(self, as_user: str, as_password: str, username: str) -> Tuple[bool, str, bool]:
        info = ipmitool._parse_driver_info(self.task.node)  # driver_info holds as_user now
        r = retire.retire_user(lambda commands: run_in_one_session(info, commands), username)
        return r.ok, r.detail, r.transient


def run_in_one_session(info: Dict[str, Any], commands: Sequence[str]) -> str:
    """Runs ipmitool `commands` in one lanplus session (`ipmitool exec FILE`),
    through Ironic's own ipmitool call (its password file, timing and pacing
    options). Exit status 1 is what `exec` answers when any command failed,
    including a channel that does not exist; it is taken, not retried by
    Ironic, and the caller reads what was printed (retire.py decides). The
    file holds commands only, never a password."""
    fd, path = tempfile.mkstemp(prefix='inband-retire-', suffix='.ipmi', dir=CONF.tempdir)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(''.join(c + '\n' for c in commands))
        if ' ' in path:  # Ironic splits the command on spaces
            raise RuntimeError('the temporary directory %s has a space in its path' % os.path.dirname(path))
        out, _err = ipmitool._exec_ipmitool(info, 'exec %s' % path, check_exit_code=[0, 1])
        return out
    finally:
        os.unlink(path)


def make_store(task: Any) -> rotation.Store:
    if CONF.inband_bmc.secret_store != 'barbican':
        return stores.DriverInfoStore(task.node)
    from ironic.common import keystone
    session = keystone.get_session('inband_bmc_barbican')
    auth = keystone.get_auth('inband_bmc_barbican')
    adapter = keystone.get_adapter('inband_bmc_barbican', session=session, auth=auth)
    headers = {'X-Project-Id': CONF.inband_bmc.barbican_project_id} if CONF.inband_bmc.barbican_project_id else {}
    return stores.BarbicanStore(task.node, adapter, headers)


class InbandBMCVendor(ipmitool.VendorPassthru):
    """ipmitool's vendor passthru plus set_bmc_credentials."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        # The back-off between tries at retiring the previous user (rotation.RETIRE_DELAYS).
        self._sleep = sleep

    def validate(self, task: Any, method: Optional[str] = None, **kwargs: Any) -> None:
        if method != METHOD:
            return super().validate(task, method, **kwargs)
        parse_args(kwargs)
        ipmitool._parse_driver_info(task.node)
        check_node(task)
        try:
            pinned_recipient(task.node)
        except sealing.SealError as e:
            raise AgentNotReachable(err='set_bmc_credentials: %s' % e)

    @base.passthru(['POST'], async_call=True, description=DESCRIPTION, require_exclusive_lock=True)
    @task_manager.require_exclusive_lock
    def set_bmc_credentials(self, task: Any, http_method: str = 'POST', **kwargs: Any) -> None:
        args = parse_args(kwargs)
        node = task.node
        held = node.driver_info.get('ipmi_username')
        username = contract.next_username(args['pair'], held)
        password = args['password'] or passwords.generate(args['policy'])
        try:
            recipient = pinned_recipient(node)
            store = make_store(task)
        except Exception as e:
            record = {'node': node.uuid, 'outcome': 'failed', 'failed_step': 'seal', 'error': str(e),
                      'current': {'username': held, 'note': 'unchanged'}, 'steps': []}
        else:
            record = rotation.rotate(node.uuid, held, username, password, store,
                                     IronicPorts(task, recipient, args['privilege']),
                                     retire_previous=CONF.inband_bmc.retire_previous, log=LOG.info,
                                     sleep=self._sleep)
            record['step_args'] = {'password': 'sealed', 'agent_key_id': recipient.kid,
                                   'certificate': recipient.source}
        password = None
        node.set_driver_internal_info(RECORD_KEY, record)
        if record['outcome'] != 'rotated':
            node.last_error = '%s at %s: %s; Ironic logs in as %s' % (
                ERROR_PREFIX, record['failed_step'], record['error'], record['current']['username'])
            LOG.error('set_bmc_credentials on node %s: %s', node.uuid, node.last_error)
        else:
            if node.last_error and node.last_error.startswith(ERROR_PREFIX):
                node.last_error = None
            LOG.info('set_bmc_credentials on node %s: rotated to %s%s', node.uuid, username,
                     ' with warnings: ' + '; '.join(record['warnings']) if record.get('warnings') else '')
        node.save()
