"""Where the new password is kept before and after Ironic holds it.

- DriverInfoStore (default): the node's own driver_info, the place Ironic
  keeps ipmi_password. A pending password waits under
  `inband_bmc_pending_password` (Ironic's API masks every driver_info key
  containing "password"); a failed one under `inband_bmc_failed_password`
  until the next successful rotation.
- BarbicanStore (`[inband_bmc] secret_store = barbican`): a Barbican secret per
  password, reached with Ironic's own service credentials from the
  `[inband_bmc_barbican]` keystoneauth section; the node keeps only the secret
  refs and their states in driver_internal_info.
"""

import uuid
from typing import Any, Callable, Dict, List, Optional

PENDING_USER = 'inband_bmc_pending_username'
PENDING_PASSWORD = 'inband_bmc_pending_password'
FAILED_USER = 'inband_bmc_failed_username'
FAILED_PASSWORD = 'inband_bmc_failed_password'
SECRETS_KEY = 'inband_bmc_secrets'


class StoreError(Exception):
    pass


class DriverInfoStore:
    kind = 'driver_info'

    def __init__(self, node: Any) -> None:
        self.node = node
        self._entry: Optional[str] = None

    def _update(self, fn: Callable[[Dict[str, Any]], None]) -> None:
        info = dict(self.node.driver_info or {})
        fn(info)
        self.node.driver_info = info  # reassigned so the object layer sees the change
        self.node.save()

    def put_pending(self, username: str, password: str) -> str:
        def f(info: Dict[str, Any]) -> None:
            info[PENDING_USER] = username
            info[PENDING_PASSWORD] = password
        self._update(f)
        self._entry = uuid.uuid4().hex
        return self._entry

    def mark_current(self, entry: str) -> None:
        # driver_info ipmi_username/ipmi_password now hold it: drop the pending copy.
        self._update(lambda info: [info.pop(k, None) for k in (PENDING_USER, PENDING_PASSWORD)])

    def mark_failed(self, entry: str, reason: str) -> None:
        # Kept, not dropped: the other BMC slot may hold it if the agent died mid-write.
        def f(info: Dict[str, Any]) -> None:
            if PENDING_PASSWORD in info:
                info[FAILED_USER] = info.pop(PENDING_USER, None)
                info[FAILED_PASSWORD] = info.pop(PENDING_PASSWORD)
        self._update(f)

    def delete_superseded(self, keep: int) -> int:
        info = self.node.driver_info or {}
        if FAILED_PASSWORD not in info:
            return 0
        self._update(lambda i: [i.pop(k, None) for k in (FAILED_USER, FAILED_PASSWORD)])
        return 1


class BarbicanStore:
    """Secrets in Barbican (`adapter`: a keystoneauth Adapter for key-manager)."""

    kind = 'barbican'

    def __init__(self, node: Any, adapter: Any, headers: Optional[Dict[str, str]] = None) -> None:
        self.node = node
        self.adapter = adapter
        self.headers = dict(headers or {})

    def _entries(self) -> List[Dict[str, Any]]:
        return [dict(e) for e in (self.node.driver_internal_info or {}).get(SECRETS_KEY, [])]

    def _save(self, entries: List[Dict[str, Any]]) -> None:
        self.node.set_driver_internal_info(SECRETS_KEY, entries)
        self.node.save()

    def _call(self, method: str, url: str, **kw: Any) -> Any:
        r = self.adapter.request(url, method, raise_exc=False, headers=self.headers, **kw)
        if r.status_code >= 400:
            raise StoreError('Barbican answered %s to %s %s' % (r.status_code, method, url.split('?')[0]))
        return r

    def put_pending(self, username: str, password: str) -> str:
        body = {'name': '%s-%s-bmc-password' % (self.node.uuid, username), 'payload': password,
                'payload_content_type': 'text/plain', 'secret_type': 'passphrase'}
        ref = self._call('POST', '/v1/secrets', json=body).json()['secret_ref']
        entries = self._entries()
        entries.append({'id': ref, 'username': username, 'state': 'pending'})
        self._save(entries)
        return ref

    def _set_state(self, entry: str, state: str) -> None:
        entries = self._entries()
        for e in entries:
            if e['id'] == entry:
                e['state'] = state
            elif state == 'current' and e['state'] == 'current':
                e['state'] = 'superseded'
        self._save(entries)

    def mark_current(self, entry: str) -> None:
        self._set_state(entry, 'current')

    def mark_failed(self, entry: str, reason: str) -> None:
        self._set_state(entry, 'failed')

    def delete_superseded(self, keep: int) -> int:
        entries = self._entries()
        gone = [e for e in entries if e['state'] == 'failed']
        superseded = [e for e in entries if e['state'] == 'superseded']
        gone += superseded[:max(0, len(superseded) - keep)]
        for e in gone:
            self._call('DELETE', e['id'])
        self._save([e for e in entries if e not in gone])
        return len(gone)
