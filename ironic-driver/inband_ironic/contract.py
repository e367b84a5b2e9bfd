"""The credential contract, read from the shared floor's
credential-contract.json (generated from service/credential-contract.ts):
the same rules, and the same checks, as the TypeScript side. Nothing here
re-types a limit: user names, passwords, privileges and the request's fields
are checked by interpreting the contract's JSON-schema fragments (the keywords
service/credential-contract.ts `checkValue` interprets), its per-version
password sizes (IPMI v2.0 section 22.30) and its privilege levels (6.8).
Errors name the field, say what it must be (the contract's `rule`) and never
hold the value."""

import re
from typing import Any, Dict, List, Optional, Pattern, Tuple

from inband_ironic import shared_data

SHARED: Dict[str, Any] = shared_data.load('credential-contract')
CONTRACT: Dict[str, Any] = SHARED['contract']
FIELDS: Dict[str, Dict[str, Any]] = {f['wire']: f for f in CONTRACT['fields']}
#: Bytes a password may have, by the BMC's IPMI version (22.30).
PASSWORD_BYTES: Dict[str, int] = {k: int(v) for k, v in CONTRACT['passwordBytesByIpmiVersion'].items()}
SECOND_USER_SUFFIX: str = SHARED['secondUserSuffix']
#: The levels a credential request may grant, name -> level, as the contract lists them.
PRIVILEGES: Dict[str, int] = {p['name']: p['level'] for p in SHARED['privileges'] if p['grantable']}
#: Shared cases every implementation answers the same way (test_contract.py runs them).
EXAMPLES: Dict[str, List[Any]] = SHARED['examples']


def _compile(pattern: str) -> Pattern[str]:
    # JSON-schema patterns are ECMA-262. The contract's are anchored ^...$, which
    # re.fullmatch reads as JavaScript's test() does (in Python a bare $ would
    # also match before a final newline).
    if not (pattern.startswith('^') and pattern.endswith('$')):
        raise ValueError('contract pattern %r is not anchored ^...$' % pattern)
    return re.compile(pattern)


_PATTERNS: Dict[str, Pattern[str]] = {}


class ContractError(ValueError):
    """A value the credential contract refuses; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__('%s: %s' % (field, message))
        self.field = field


def _kind(v: object) -> str:
    if v is None:
        return 'null'
    if isinstance(v, bool):
        return 'a boolean'
    if isinstance(v, (int, float)):
        return 'a number'
    if isinstance(v, str):
        return 'a string'
    if isinstance(v, list):
        return 'an array'
    return 'an object'


def _describe(s: str) -> str:
    """Secret-free facts about a string that broke its rule (as the TypeScript side says them)."""
    n = len(s.encode('utf-8', 'surrogatepass'))
    facts = ['got %d byte%s in UTF-8' % (n, '' if n == 1 else 's')]
    codes = [ord(c) for c in s]
    if 0 in codes:
        facts.append('a NUL')
    if any(0 < c < 0x20 or c == 0x7f for c in codes):
        facts.append('control characters')
    if any(c > 0x7f for c in codes):
        facts.append('non-ASCII characters')
    return ', '.join(facts)


def _same(a: object, b: object) -> bool:
    # JSON equality: True is not 1.
    return type(a) is type(b) and a == b


def check_value(schema: Dict[str, Any], value: object, rule: str) -> Optional[str]:
    """The problem with `value` under a contract schema fragment, or None."""
    def bad(fact: Optional[str] = None) -> str:
        return 'must be %s%s' % (rule, ' (%s)' % fact if fact else '')

    if 'enum' in schema and not any(_same(e, value) for e in schema['enum']):
        return bad()
    t = schema.get('type')
    if t is None:
        return None
    if t == 'string':
        if not isinstance(value, str):
            return bad('got %s' % _kind(value))
        if ('minLength' in schema and len(value) < schema['minLength']) or \
                ('maxLength' in schema and len(value) > schema['maxLength']):
            return bad(_describe(value))
        if 'pattern' in schema:
            p = _PATTERNS.get(schema['pattern']) or _PATTERNS.setdefault(schema['pattern'], _compile(schema['pattern']))
            if not p.fullmatch(value):
                return bad(_describe(value))
        return None
    if t == 'integer':
        if isinstance(value, bool) or not isinstance(value, int):
            return bad('got %s' % ('a non-integer number' if isinstance(value, float) else _kind(value)))
        if ('minimum' in schema and value < schema['minimum']) or ('maximum' in schema and value > schema['maximum']):
            return bad('got %d' % value)
        return None
    if t == 'boolean':
        return None if isinstance(value, bool) else bad('got %s' % _kind(value))
    if t == 'object':
        return None if isinstance(value, dict) else bad('got %s' % _kind(value))
    if t == 'array':
        if not isinstance(value, list):
            return bad('got %s' % _kind(value))
        if 'minItems' in schema and len(value) < schema['minItems']:
            return bad('got %d item%s' % (len(value), '' if len(value) == 1 else 's'))
        if 'maxItems' in schema and len(value) > schema['maxItems']:
            return bad('got %d items' % len(value))
        for i, item in enumerate(value):
            if 'items' in schema and check_value(schema['items'], item, rule) is not None:
                return bad('item %d is %s' % (i, item if isinstance(item, int) and not isinstance(item, bool)
                                               else _kind(item)))
        if schema.get('uniqueItems') and len({repr((type(v), v)) for v in value}) != len(value):
            return bad('an item is repeated')
        return None
    raise ValueError('contract schema type %r is not one this checker interprets' % t)


def check_field(wire: str, value: object, field: Optional[str] = None) -> None:
    """Raises ContractError (named `field`, default the wire name) when the contract refuses `value`."""
    f = FIELDS[wire]
    problem = check_value(f['schema'], value, f['rule'])
    if problem:
        raise ContractError(field or wire, problem)


def check_wire_params(params: Dict[str, Any]) -> None:
    """A request in its wire form (what bmc.set_credentials takes): no unknown
    field, every field's rule, exactly one password source."""
    for key in params:
        if key not in FIELDS:
            raise ContractError(key, 'unknown field')
    for wire, f in FIELDS.items():
        if wire not in params:
            if f['required']:
                raise ContractError(wire, 'required field missing')
            continue
        check_field(wire, params[wire])
    given = [k for k in CONTRACT['onePasswordSourceOf']
             if (params.get(k) is True if k == 'generate' else k in params)]
    if len(given) != 1:
        raise ContractError('password_sealed' if 'password_sealed' in given else 'password',
                            'required field missing (give password, password_sealed, or generate=true)' if not given
                            else 'give either password, password_sealed or generate=true, not more than one')


def check_username(name: object, field: str = 'username') -> str:
    check_field('username', name, field)
    return name  # type: ignore[return-value]


def max_password_bytes(ipmi_version: str = '2.0') -> int:
    if ipmi_version not in PASSWORD_BYTES:
        raise ContractError('ipmi_version', 'must be one of %s' % ', '.join(sorted(PASSWORD_BYTES)))
    return PASSWORD_BYTES[ipmi_version]


def check_password(password: object, ipmi_version: str = '2.0', field: str = 'password') -> None:
    """Refuses a password the BMC cannot take; the message never holds it."""
    hi = max_password_bytes(ipmi_version)
    check_field('password', password, field)
    n = len(password.encode('ascii'))  # type: ignore[union-attr]  # printable ASCII: checked above
    if n > hi:
        raise ContractError(field, 'must be at most %d bytes on an IPMI %s BMC (22.30), got %d' % (hi, ipmi_version, n))


def check_privilege(value: object, field: str = 'privilege') -> str:
    """The contract's name of the level `value` names: a name, a level, or a level's digits
    (passthru args arrive as text, as the CLI's flags do in TypeScript)."""
    if isinstance(value, str) and re.fullmatch(r'[0-9]{1,4}', value):
        value = int(value)
    check_field('privilege', value, field)
    for name, level in PRIVILEGES.items():
        if value == name or _same(value, level):
            return name
    raise ContractError(field, 'must be %s' % FIELDS['privilege']['rule'])


def user_pair(base: str, second: Optional[str] = None) -> Tuple[str, str]:
    """The two users a node alternates between: `base` and `base` + the second-user suffix (or `second`)."""
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
