"""Retiring the previous BMC user over lanplus, logged in as the new one, with
the rule of the TypeScript engine (service/user-admin.ts UserAdmin.setEnabled
and conductor/fleet-bmc.ts retireUser), so `conductor rotate` and the passthru
call the same thing retired:

- the user is disabled with Set User Password operation 0 (IPMI v2.0 §22.30,
  ipmitool `user disable`) and then read back with Get User Access (§22.27,
  `channel getaccess`) on every LAN channel; `ok` only when the BMC says it is
  disabled. `user disable`'s exit status is not that proof: an answer lost to
  a timeout reads as a failure, a write the BMC dropped as a success;
- the read-back is §22.27 response byte 3 bits 7:6, the user ID enable status
  (ipmitool 1.8.19 prints "Enable Status: enabled|disabled", and "unknown" for
  00b, "unspecified", which is what ipmi_sim always answers). Where no LAN
  channel reports a status, the user counts as enabled while IPMI messaging
  (§22.27 byte 5 bit 4) is on for it on some LAN channel, as the engine's
  enabledOf() reads it: BMCs without the status bits (ipmi_sim, IPMI 1.5 ones)
  tie messaging to §22.30 enable/disable. Nothing else is written to make the
  read-back pass;
- the user this session is logged in as (§22.20 Get Session Info, byte 5 of
  the response) is never disabled, nor the last enabled administrator (an
  enabled user with IPMI messaging at ADMINISTRATOR on some LAN channel): the
  never-lock-out rule. Nothing is written when either refuses.

`transient` says whether waiting may change the answer (the BMC busy or
silent, a read-back still enabled): the rotation tries again with back-off
then; not for no such user, two of that name, the session's own user, the last
administrator or a BMC with no LAN channel.

`run(commands)` runs ipmitool commands in one lanplus session (`ipmitool
exec`) and returns what they printed; three sessions are used, since which
user to disable is known only after reading the table.
"""

import re
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

Run = Callable[[Sequence[str]], str]

# §6.3: channel numbers 1-11 are implementation specific (0 is IPMB, 0Eh the
# current channel, 0Fh the system interface); the engine scans the same range.
CHANNELS = range(1, 12)
# §6.5 channel medium types 802.3 LAN (04h) and Other LAN (06h), as ipmitool names them.
LAN_MEDIA = ('802.3 LAN', 'Other LAN')
ADMINISTRATOR = 'ADMINISTRATOR'


class Result(NamedTuple):
    ok: bool
    transient: bool
    detail: str
    user_id: Optional[int] = None


class Refused(Exception):
    """An answer waiting will not change."""


class Access(NamedTuple):
    """One user's §22.27 Get User Access on one channel, as `channel getaccess` prints it."""
    user_id: int
    name: str
    ipmi_messaging: bool
    privilege: str
    # §22.27 byte 3 bits 7:6: 'enabled' (01b), 'disabled' (10b), None (00b unspecified, 11b reserved).
    enable_status: Optional[str]


def session_user(out: str) -> Optional[int]:
    """The user id of §22.20 Get Session Info for the current session (`raw 0x06 0x3d 0x00`):
    response data byte 4 (after the completion code) bits 5:0, as the engine reads it."""
    for line in out.splitlines():
        if re.fullmatch(r'\s*[0-9a-fA-F]{2}(\s+[0-9a-fA-F]{2}){3,}\s*', line):
            uid = int(line.split()[3], 16) & 0x3f
            return uid if uid >= 1 else None
    return None


def lan_channels(out: str) -> List[int]:
    """The LAN channels among `channel info N` blocks (§22.24 Get Channel Info)."""
    found: List[int] = []
    channel = None
    for line in out.splitlines():
        m = re.match(r'^Channel 0x([0-9a-fA-F]+) info:', line)
        if m:
            channel = int(m.group(1), 16)
            continue
        m = re.match(r'^\s*Channel Medium Type\s*:\s*(.*?)\s*$', line)
        if m and channel is not None:
            if m.group(1) in LAN_MEDIA and channel in CHANNELS and channel not in found:
                found.append(channel)
            channel = None
    return found


def access_blocks(out: str) -> List[Dict[int, Access]]:
    """One table per `channel getaccess` command, in order (each starts with "Maximum User IDs")."""
    tables: List[Dict[int, Access]] = []
    fields: Dict[str, str] = {}

    def flush() -> None:
        if tables and 'User ID' in fields:
            status = fields.get('Enable Status', '').lower()
            a = Access(int(fields['User ID']), fields.get('User Name', ''),
                       fields.get('IPMI Messaging', '').lower() == 'enabled',
                       fields.get('Privilege Level', ''),
                       status if status in ('enabled', 'disabled') else None)
            tables[-1][a.user_id] = a
        fields.clear()

    for line in out.splitlines():
        m = re.match(r'^([A-Za-z][A-Za-z ()]*?)\s*:\s?(.*?)\s*$', line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if key == 'Maximum User IDs':
            flush()
            tables.append({})
        elif key == 'User ID':
            flush()
        if key == 'User ID' and not value.isdigit():
            continue
        fields[key] = value
    flush()
    return tables


def enabled_of(access: Sequence[Access]) -> Tuple[bool, str]:
    """The engine's enabledOf(): the first LAN channel's enable status, else IPMI messaging on any."""
    for a in access:
        if a.enable_status is not None:
            return a.enable_status == 'enabled', 'enable status'
    return any(a.ipmi_messaging for a in access), 'IPMI messaging'


def is_admin_on(access: Sequence[Access]) -> bool:
    return any(a.ipmi_messaging and a.privilege == ADMINISTRATOR for a in access)


def retire_user(run: Run, username: str) -> Result:
    """Disables `username` and reads it back (see the module doc)."""
    user_id: Optional[int] = None
    try:
        out = run(['raw 0x06 0x3d 0x00'] + ['channel info %d' % c for c in CHANNELS])
        me = session_user(out)
        if me is None:
            raise RuntimeError('Get Session Info (IPMI §22.20) did not answer: cannot tell which user this '
                               'session is logged in as, so nothing is disabled')
        lan = lan_channels(out)
        if not lan:
            raise Refused('the BMC reports no LAN channel on 1-11')

        tables = access_blocks(run(['channel getaccess %d' % c for c in lan]))
        if len(tables) != len(lan) or not tables[0]:
            raise RuntimeError('Get User Access (IPMI §22.27) answered for %d of %d LAN channel(s)'
                               % (len(tables), len(lan)))
        # §22.28: a user name is one per user id, whatever the channel.
        ids = sorted(uid for uid, a in tables[0].items() if a.name == username)
        if len(ids) != 1:
            raise Refused('%d users are named %s' % (len(ids), username) if ids else 'no user named %s' % username)
        user_id = ids[0]
        if user_id == me:
            raise Refused("%s is user %d, the user this session (Ironic's credential) is logged in as"
                          % (username, user_id))
        mine = [t[user_id] for t in tables if user_id in t]
        if enabled_of(mine)[0] and is_admin_on(mine):
            others = set().union(*(t.keys() for t in tables)) - {user_id}
            if not any(enabled_of(a)[0] and is_admin_on(a)
                       for a in ([t[o] for t in tables if o in t] for o in sorted(others))):
                raise Refused('user %d ("%s") is the last enabled administrator; disabling it could lock '
                              'everyone out. Nothing was written' % (user_id, username))

        after = access_blocks(run(['user disable %d' % user_id] +
                                  ['channel getaccess %d %d' % (c, user_id) for c in lan]))
        back = [t[user_id] for t in after if user_id in t]
        if len(back) != len(lan):
            return Result(False, True, 'user %d (%s) disabled, but Get User Access (IPMI §22.27) read it back on '
                          '%d of %d LAN channel(s)' % (user_id, username, len(back), len(lan)), user_id)
        enabled, source = enabled_of(back)
        if enabled:
            return Result(False, True, 'user %d (%s) disabled, but user %d reads back enabled (%s)'
                          % (user_id, username, user_id, source), user_id)
        return Result(True, False, 'user %d (%s) disabled, reads back disabled (%s)' % (
            user_id, username, 'enable status' if source == 'enable status' else 'IPMI messaging off'), user_id)
    except Refused as e:
        return Result(False, False, str(e), user_id)
    except Exception as e:  # the BMC busy, silent, or a session that did not open: may pass
        # An ipmitool failure (processutils.ProcessExecutionError) is told by its stderr.
        stderr = getattr(e, 'stderr', None)
        text = 'ipmitool: %s' % stderr if isinstance(stderr, str) and stderr.strip() else str(e) or e.__class__.__name__
        return Result(False, True, re.sub(r'\s+', ' ', text).strip()[:300], user_id)
