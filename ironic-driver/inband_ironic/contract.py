"""The credential contract (data/credential_contract.json), the same rules the
TypeScript side applies: what a BMC user name and password may be. Errors name
the field and never hold the password."""

import re
from typing import Optional, Tuple

from inband_ironic import shared_data

CONTRACT = shared_data.load('credential_contract')
_USER = CONTRACT['username']
_USER_RE = re.compile(_USER['pattern'])
_PW = CONTRACT['password']
SECOND_USER_SUFFIX: str = CONTRACT['second_user_suffix']
PRIVILEGES = dict(CONTRACT['privilege']['names'])


class ContractError(ValueError):
    """A value the credential contract refuses; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__('%s: %s' % (field, message))
        self.field = field


def check_username(name: object, field: str = 'username') -> str:
    if not isinstance(name, str):
        raise ContractError(field, 'must be a string')
    raw = name.encode('utf-8')
    if not _USER['min_bytes'] <= len(raw) <= _USER['max_bytes']:
        raise ContractError(field, 'must be %d-%d bytes (IPMI 22.28), got %d'
                            % (_USER['min_bytes'], _USER['max_bytes'], len(raw)))
    if not _USER_RE.match(name):
        raise ContractError(field, 'must match %s (printable ASCII letters, digits, _ . -; '
                            'not starting with - or .)' % _USER['pattern'])
    return name


def max_password_bytes(ipmi_version: str = '2.0') -> int:
    table = _PW['max_bytes_by_ipmi_version']
    if ipmi_version not in table:
        raise ContractError('ipmi_version', 'must be one of %s' % ', '.join(sorted(table)))
    return int(table[ipmi_version])


def check_password(password: object, ipmi_version: str = '2.0', field: str = 'password') -> None:
    """Refuses a password the BMC cannot take; the message never holds it."""
    if not isinstance(password, str):
        raise ContractError(field, 'must be a string')
    try:
        raw = password.encode('ascii')
    except UnicodeEncodeError:
        raise ContractError(field, 'must be printable ASCII (0x20-0x7E)') from None
    hi = max_password_bytes(ipmi_version)
    if not _PW['min_bytes'] <= len(raw) <= hi:
        raise ContractError(field, 'must be %d-%d bytes on IPMI %s (22.30), got %d'
                            % (_PW['min_bytes'], hi, ipmi_version, len(raw)))
    lo_c, hi_c = _PW['printable_ascii']
    if any(b < lo_c or b > hi_c for b in raw):
        raise ContractError(field, 'must be printable ASCII (0x20-0x7E)')


def check_privilege(value: object, field: str = 'privilege') -> str:
    if isinstance(value, str) and value in PRIVILEGES:
        return value
    for name, level in PRIVILEGES.items():
        if str(value) == str(level):
            return name
    raise ContractError(field, 'must be one of %s or their levels %s'
                        % (', '.join(PRIVILEGES), ', '.join(str(v) for v in PRIVILEGES.values())))


def user_pair(base: str, second: Optional[str] = None) -> Tuple[str, str]:
    """The two users a node alternates between: `base` and `base_b` (or `second`)."""
    first = check_username(base, 'username')
    other = check_username(second if second is not None else base + SECOND_USER_SUFFIX,
                           'username_b' if second is not None
                           else 'username (its pair %s%s, the second BMC user)' % (base, SECOND_USER_SUFFIX))
    if first == other:
        raise ContractError('username_b', 'the two BMC users must differ')
    return first, other


def next_username(pair: Tuple[str, str], held: Optional[str]) -> str:
    """The user of the pair Ironic does not hold now (as conductor rotate)."""
    return pair[1] if held == pair[0] else pair[0]
