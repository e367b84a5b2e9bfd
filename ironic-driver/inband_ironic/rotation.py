"""One BMC credential rotation, in the order and with the failure table of
`conductor rotate` (conductor/rotate.ts), over injected ports so the same rows
test both paths. The table and these step names (`passthruSteps`) are the
shared floor's rotation-failures.json, generated from service/rotation-failures.ts:

  store-pending    the new password is stored as pending before it goes anywhere
  set-in-band      the running agent sets it for the user Ironic does not hold
                   (sealed to the agent's certificate; the agent rolls back its
                   own write on failure)
  prove            the node's power interface reads the power state with the
                   new credential (a read: never a power action)
  update-ironic    driver_info gets the new user and password
  store-current    the store marks the new password current
  retire-previous  the previous user is disabled, logged in as the new one, and
                   read back (retire.py); a busy or silent BMC is tried again
                   with back-off (2 s, 4 s). Failure: the rotation fails here,
                   nothing is rolled back (Ironic's new credential is proven
                   and current) and the store keeps the previous value, which
                   may still log in; rotating again overwrites that user
  delete-superseded

Before update-ironic every failure leaves Ironic on the previous user, whose
BMC slot was never touched; after it Ironic holds the new, proven one. A
rotation after a leak exists to make the previous password useless, so the
node is rotated only once the previous user reads back disabled. No step
locks the operator out. The record holds no password."""

import datetime
import time
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple


class Store(Protocol):
    kind: str

    def put_pending(self, username: str, password: str) -> str: ...

    def mark_current(self, entry: str) -> None: ...

    def mark_failed(self, entry: str, reason: str) -> None: ...

    def delete_superseded(self, keep: int) -> int: ...


class Ports(Protocol):
    def set_in_band(self, username: str, password: str) -> Dict[str, Any]:
        """The agent sets `username`'s password (sealed on the way); raises on failure."""

    def prove(self, username: str, password: str) -> str:
        """The power state read with this credential; raises when it does not log in."""

    def update_ironic(self, username: str, password: str) -> None: ...

    def retire(self, as_user: str, as_password: str, username: str) -> Tuple[bool, str, bool]:
        """Disables `username` logged in as `as_user` and reads it back: (ok, detail, transient),
        `transient` False when waiting will not change the answer (no such user, the last
        administrator); raising counts as transient."""


# Back-off between tries at retiring the previous user, as `conductor rotate` (2 s, then 4 s).
RETIRE_DELAYS = (2.0, 4.0)


class StepFailure(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


def _now() -> str:
    return datetime.datetime.utcnow().replace(microsecond=0).isoformat() + 'Z'


def rotate(node: str, held: Optional[str], username: str, password: str, store: Store, ports: Ports,
           retire_previous: bool = True, log: Callable[[str], None] = lambda _l: None,
           now: Callable[[], str] = _now, retire_delays: Sequence[float] = RETIRE_DELAYS,
           sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """Rotates `node` from BMC user `held` to `username` with `password`."""
    rec: Dict[str, Any] = {
        'node': node, 'started_at': now(), 'finished_at': None, 'outcome': 'failed',
        'failed_step': None, 'error': None, 'warnings': [],
        'initial': {'username': held},
        'next': {'username': username, 'secret_id': None, 'secret_state': None, 'store': store.kind},
        'step_args': {'password': 'sealed'},
        'applied': [], 'rolled_back': [],
        'current': {'username': held, 'note': 'unchanged: the credential Ironic held before the rotation'},
        'steps': [],
    }
    steps: List[Dict[str, str]] = rec['steps']

    def mark(step: str, status: str, detail: str) -> None:
        steps.append({'step': step, 'status': status, 'at': now(), 'detail': detail})
        log('set_bmc_credentials %s: %s %s%s' % (node, step, status, ': ' + detail if detail else ''))

    def run(step: str, fn: Callable[[], Any], detail: Callable[[Any], str]) -> Any:
        try:
            v = fn()
        except Exception as e:  # every failure is recorded, named by step
            msg = str(e) or e.__class__.__name__
            mark(step, 'failed', msg)
            raise StepFailure(step, msg) from None
        mark(step, 'ok', detail(v))
        return v

    entry: Optional[str] = None
    updated = False
    try:
        entry = run('store-pending', lambda: store.put_pending(username, password),
                    lambda e: 'entry %s for %s in the %s store' % (e, username, store.kind))
        rec['next'].update(secret_id=entry, secret_state='pending')

        result = run('set-in-band', lambda: ports.set_in_band(username, password),
                     lambda r: 'BMC user %s set in-band by the agent%s' % (
                         username, ' (user id %s)' % r.get('user_id') if isinstance(r, dict) and r.get('user_id') else ''))
        rec['applied'].append('BMC user %s set in-band by the agent' % username)
        if isinstance(result, dict):
            rec['agent_result'] = {k: result[k] for k in ('user_id', 'channels', 'backend', 'bmc_address') if k in result}

        state = run('prove', lambda: ports.prove(username, password),
                    lambda s: "the node's power interface read \"%s\" logged in as %s" % (s, username))
        rec['proof'] = {'power_state': state}

        run('update-ironic', lambda: ports.update_ironic(username, password),
            lambda _v: 'driver_info ipmi_username=%s, ipmi_password updated' % username)
        updated = True
        rec['applied'].append('Ironic driver_info now logs in as %s' % username)
        rec['current'] = {'username': username, 'note': "proven with the node's power interface; in Ironic driver_info"}

        run('store-current', lambda: store.mark_current(entry), lambda _v: 'entry %s current' % entry)
        rec['next']['secret_state'] = 'current'

        retired = False
        unretired: Optional[str] = None
        if not retire_previous or not held or held == username:
            mark('retire-previous', 'skipped',
                 'asked to keep the previous user' if not retire_previous else 'no previous user to retire')
        else:
            # A busy or silent BMC may answer the next time; an answer that will not
            # change by waiting (no such user, the last administrator) is not asked again.
            tries = 0
            while True:
                tries += 1
                try:
                    ok, detail, transient = ports.retire(username, password, held)
                except Exception as e:
                    ok, detail, transient = False, str(e) or e.__class__.__name__, True
                if ok or not transient or tries > len(retire_delays):
                    break
                delay = retire_delays[tries - 1]
                log('set_bmc_credentials %s: retire-previous: %s; trying again in %g s' % (node, detail, delay))
                sleep(delay)
            if ok:
                retired = True
                rec['applied'].append('previous BMC user %s disabled' % held)
                mark('retire-previous', 'ok', detail + (' (try %d)' % tries if tries > 1 else ''))
            else:
                unretired = ("previous BMC user %s is still enabled after %d tr%s (%s); Ironic logs in as %s, "
                             "proven and current; rotate again to overwrite %s's password"
                             % (held, tries, 'y' if tries == 1 else 'ies', detail, username, held))
                mark('retire-previous', 'failed', detail)
        try:
            n = store.delete_superseded(0 if retired or not held or held == username else 1)
            mark('delete-superseded', 'ok', '%d superseded or failed value(s) deleted' % n)
        except Exception as e:
            rec['warnings'].append('superseded values not deleted: %s' % e)
            mark('delete-superseded', 'failed', str(e))
        if unretired:
            # Not rolled back: Ironic's new credential is proven and current, and the
            # store keeps the previous value (it may still log in). The rotation
            # failed at its last purpose, retiring the previous password.
            rec['failed_step'] = 'retire-previous'
            rec['error'] = unretired
        else:
            rec['outcome'] = 'rotated'
    except StepFailure as f:
        rec['failed_step'] = f.step
        rec['error'] = str(f)
        if entry is not None:
            if updated:
                rec['warnings'].append('store entry %s stays pending: it is the password Ironic now uses' % entry)
            else:
                try:
                    store.mark_failed(entry, 'rotation failed at %s' % f.step)
                    rec['next']['secret_state'] = 'failed'
                    rec['rolled_back'].append('store entry %s marked failed' % entry)
                except Exception as e:
                    rec['warnings'].append('store entry %s could not be marked failed: %s' % (entry, e))
    finally:
        rec['finished_at'] = now()
    return rec
