"""The correlator's hot path: the common event lines straight into the engine.

Nearly every line of a fleet's results log is one event-format row
(`"columns"`, `"action": "added"`) of db_cli_exec, transfer_exec,
dump_file_events or db_egress, and nearly all of them are benign noise that
only updates the pid, recent-file and baseline tables. The full path
(rows.parse_line, then Engine.step) decodes the whole line, builds a typed
row and judges it from scratch. Here msgspec's typed decoder reads only the
fields the correlator uses (decorations, calendarTime and unknown columns are
skipped unbuilt, and a value of the wrong type fails the decode), and the
judgement of a run's invariant columns (path, command line, cwd, users,
parents) comes from a memo of the engine's classes, so a benign line costs
a few dictionary operations.

The full path stays the definition. A line is taken here only when it is
exactly the common shape with the expected value types; anything else
(other shapes and queries, batch format, numbers where text belongs, floats,
booleans, missing columns) returns False before touching any state and goes
the full way. A run that opens or joins a chain is handed to the same engine
methods with a row built by rows.py. tests/test_correlate_fastpath.py checks
that both paths give identical findings and state.
"""

from __future__ import annotations

from typing import Any, Callable, Final, Iterable

from .engine import SWEEP, Engine, HostState
from .jsonlib import EVENT_FIELDS, line_decoder, not_utf8, struct_values
from .jsonlib import UNSET as _JSON_UNSET
from .rows import (
    _FUTURE_SLACK,
    MAX_TIME,
    _exec_row,
    _session,
    decimal,
    int_or_zero,
    recognise,
    time_or_zero,
    to_int,
)

MAX_NAMES: Final = 4096
MAX_KEYS: Final = 32768  # memoised exec column combinations (then the memo starts afresh)
MAX_VARIANTS: Final = 16  # memoised combinations of one command line (the oldest goes first)
MAX_KEY_TEXT: Final = 4096  # characters of text columns above which a combination is not memoised
UNSET: Final[Any] = _JSON_UNSET  # a field absent from the line (Final: compiled code keeps it in a C static)
_MISS: Final = object()  # not in a memo
_DECLINE: Final = object()  # the full path must take the line


# Positions in jsonlib.EventColumns' values (struct_values); checked against its fields below.
ACTION: Final = 0
AUID: Final = 1
CMDLINE: Final = 2
CWD: Final = 3
INODE: Final = 4
LOGIN_USER: Final = 5
OWNER: Final = 6
PARENT_CMDLINE: Final = 8
PARENT_PATH: Final = 9
PATH: Final = 10
PID: Final = 11
REMOTE_ADDRESS: Final = 13
REMOTE_PORT: Final = 14
SHA256: Final = 15
SIZE: Final = 16
SUCCESS: Final = 17
TARGET_PATH: Final = 18
TIME: Final = 19
UID: Final = 20
USERNAME: Final = 21
WRITER_PID: Final = 22
_POSITIONS = {"action": ACTION, "auid": AUID, "cmdline": CMDLINE, "cwd": CWD, "inode": INODE, "login_user": LOGIN_USER,
              "owner": OWNER, "parent_cmdline": PARENT_CMDLINE, "parent_path": PARENT_PATH, "path": PATH, "pid": PID,
              "remote_address": REMOTE_ADDRESS, "remote_port": REMOTE_PORT, "sha256": SHA256, "size": SIZE,
              "success": SUCCESS, "target_path": TARGET_PATH, "time": TIME, "uid": UID, "username": USERNAME,
              "writer_pid": WRITER_PID}
if EVENT_FIELDS and any(EVENT_FIELDS[i] != name for name, i in _POSITIONS.items()):  # pragma: no cover
    raise ImportError("fastpath positions do not match jsonlib.EventColumns")


def _columns(v: tuple[Any, ...]) -> dict[str, Any]:
    """The decoded columns as the dict rows.py reads (absent and null are alike there)."""
    return dict(zip(EVENT_FIELDS, v))


def _pid_key(value: Any) -> str:
    """str(to_int(value) or 0), the key of st.pids; the common decimal text is already that."""
    if type(value) is str and decimal(value) > 0 and value[0] != "0":
        return value
    return str(to_int(value) or 0)


# Routes of a result name: the query it is, when this path takes its lines.
_NOT_OURS: Final = 0
_ADMIN: Final = 1
_DB_CLI_EXEC: Final = 2
_TRANSFER_EXEC: Final = 3
_DUMP_FILE: Final = 4
_DB_EGRESS: Final = 5
_ROUTES = {"admin_accounts": _ADMIN, "db_cli_exec": _DB_CLI_EXEC, "transfer_exec": _TRANSFER_EXEC,
           "dump_file_events": _DUMP_FILE, "db_egress": _DB_EGRESS}


def _no_decoder(data: bytes | str) -> Any:
    raise ValueError("msgspec is not installed")


class _MemoisedRun:
    """A memoised exec run: the invariant columns besides the command line, and their class."""

    def __init__(self, c: tuple[Any, ...], cls: Any) -> None:
        self.path: Any = c[PATH]
        self.cwd: Any = c[CWD]
        self.username: Any = c[USERNAME]
        self.login_user: Any = c[LOGIN_USER]
        self.parent_path: Any = c[PARENT_PATH]
        self.parent_cmdline: Any = c[PARENT_CMDLINE]
        self.auid: Any = c[AUID]
        self.uid: Any = c[UID]
        self.cls: Any = cls

    def matches(self, c: tuple[Any, ...]) -> bool:
        return (self.path == c[PATH] and self.username == c[USERNAME] and self.cwd == c[CWD]
                and self.parent_cmdline == c[PARENT_CMDLINE] and self.parent_path == c[PARENT_PATH]
                and self.login_user == c[LOGIN_USER] and self.uid == c[UID] and self.auid == c[AUID])


class _ExecMemo:
    """Exec column values -> class, keyed by the command line first.

    Hashing one string and comparing the rest costs less than hashing a tuple of
    nine fresh strings; the command line tells nearly every run apart.
    """

    def __init__(self) -> None:
        self.by_cmdline: dict[Any, list[_MemoisedRun]] = {}
        self.size = 0

    def get(self, c: tuple[Any, ...]) -> Any:
        """The memoised class of these columns, or _MISS."""
        seen = self.by_cmdline.get(c[CMDLINE])
        if seen is not None:
            for entry in seen:
                if entry.matches(c):
                    return entry.cls
        return _MISS

    def put(self, c: tuple[Any, ...], cls: Any) -> None:
        if self.size >= MAX_KEYS:
            self.by_cmdline.clear()
            self.size = 0
        seen = self.by_cmdline.get(c[CMDLINE])
        if seen is None:
            self.by_cmdline[c[CMDLINE]] = [_MemoisedRun(c, cls)]
        else:
            if len(seen) >= MAX_VARIANTS:
                del seen[0]
                self.size -= 1
            seen.append(_MemoisedRun(c, cls))
        self.size += 1


class FastPath:
    """Takes the common lines of one batch; the runner sets `dirty` and `open_host` per batch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dirty: dict[str, HostState] = {}
        self.open_host: Callable[[str], HostState] = lambda host: HostState(host)
        self._names: dict[str, int] = {}  # result name -> route (below)
        # Memos of exec runs, by command line: the engine's class of each run seen, or None (not a command of its kind)
        self._access = _ExecMemo()
        self._transfers = _ExecMemo()
        self._external: dict[str, bool] = {}  # remote address -> outside internal_networks (Engine._external)
        decode, values = line_decoder(), struct_values()
        self.available = decode is not None  # False without msgspec: line() declines every line
        self._decode: Callable[[bytes | str], Any] = decode or _no_decoder
        self._values: Callable[[Any], tuple[Any, ...]] = values or tuple

    def feed(self, lines: Iterable[tuple[int, bytes | None]], full_path: Callable[[int, bytes | None], None],
             max_hosts: int) -> int:
        """Apply numbered lines, handing the ones line() declines (and over-long ones, None) to `full_path`.

        Stops after the line that makes `dirty` hold `max_hosts` hosts; returns the lines taken.
        """
        count = 0
        dirty = self.dirty
        for number, data in lines:
            count += 1
            if data is None or not self.line(data):
                full_path(number, data)
            if len(dirty) >= max_hosts:
                break
        return count

    def line(self, data: bytes) -> bool:
        """Apply one raw line; False (and no state touched) when the full path must take it."""
        try:
            obj = self._decode(data)
        except Exception:  # noqa: BLE001 - malformed, wrong types, too deep: the full path says why
            # Bytes that are not UTF-8 are read as U+FFFD, as the full path reads them (jsonlib.loads_line),
            # whatever error type this msgspec release gives them.
            text = not_utf8(data)
            if text is None:
                return False
            try:
                obj = self._decode(text)
            except Exception:  # noqa: BLE001
                return False
        name, host, value, columns, snapshot, action, diff = self._values(obj)  # ResultLine's fields
        if type(name) is not str:
            return False
        route = self._names.get(name)
        if route is None:
            route = self._route(name)
        if route == _NOT_OURS or diff is not UNSET or type(host) is not str or not host:
            return False
        if columns is UNSET:
            return route == _ADMIN and self._admin_snapshot(snapshot, value, host)
        if columns is None or route == _ADMIN or action != "added":
            return False
        c = self._values(columns)
        # Event time as rows.parse_obj takes it.
        unix_time: int = value if type(value) is int and 0 < value < MAX_TIME else time_or_zero(value)
        t = time_or_zero(c[TIME])
        if not t:
            t = unix_time
            if not t:
                return False
        elif unix_time and t > unix_time + _FUTURE_SLACK:
            t = unix_time  # a row from after it was logged
        if route == _DB_CLI_EXEC:
            return self._db_cli_exec(c, host, t)
        if route == _DUMP_FILE:
            return self._dump_file(c, host, t)
        if route == _DB_EGRESS:
            return self._db_egress(c, host, t)
        return self._transfer_exec(c, host, t)

    def _route(self, name: str) -> int:
        route = _ROUTES.get(recognise(name) or "", _NOT_OURS)
        if len(self._names) < MAX_NAMES:
            self._names[name] = route
        return route

    def _admin_snapshot(self, items: Any, unix_time: Any, host: str) -> bool:
        """An admin_accounts snapshot line (a list of rows) as parse_obj and Engine.step take it."""
        if type(items) is not list or not items:
            return False
        members: list[tuple[str, str]] = []
        for item in items:
            groupname, username = self._values(item)  # AdminMember's fields
            if type(username) is not str or not username:
                return False
            if groupname is None:
                groupname = ""
            elif type(groupname) is not str:
                return False
            members.append((username, groupname))
        t = time_or_zero(unix_time)
        st = self._state(host, t)
        self.engine.admin_snapshot(st, t, members)
        return self._swept(st)  # once after all members: expiry never reads admins

    def _classify(self, memo: _ExecMemo, query: str, c: tuple[Any, ...]) -> Any:
        """The engine's class of an exec row not yet memoised; _DECLINE when the full path must see it.

        The columns are read as rows._exec_row reads them; the memo is the cache,
        so the engine's own (which the full path uses) is not consulted.
        """
        key = (c[PATH], c[CMDLINE], c[CWD], c[USERNAME], c[LOGIN_USER], c[PARENT_PATH], c[PARENT_CMDLINE], c[AUID],
               c[UID])
        size = 0
        for value in key[:7]:  # the text columns: text or absent (a number goes the full way)
            if value is None:
                continue
            if type(value) is not str:
                return _DECLINE
            size += len(value)
        path, cmdline, cwd, username, login_user, parent_path, parent_cmdline, auid, uid = (
            "" if v is None else v for v in key)
        if not path and not cmdline:
            return _DECLINE  # rows._exec_row: "row has neither path nor cmdline"
        engine = self.engine
        cls: Any
        if query == "db_cli_exec":
            cls = engine._access_class_uncached(path, cmdline, cwd, to_int(uid), username, _session(auid), login_user,
                                                parent_path, parent_cmdline, (), "", "")
        else:
            cls = engine._transfer_class_uncached(path, cmdline, cwd, to_int(uid), username, _session(auid),
                                                  login_user)
        if size <= MAX_KEY_TEXT:  # hostile multi-kilobyte command lines are judged, not remembered
            memo.put(c, cls)
        return cls

    def _state(self, host: str, t: int) -> HostState:
        """The host's state for a row of time t, entered in the batch, its watermark moved on."""
        st = self.dirty.get(host) or self.open_host(host)
        if t > st.watermark:
            st.watermark = t
        return st

    def _swept(self, st: HostState) -> bool:
        """After each row, as Engine.step does: the periodic expiry sweep when it is due. True: the line was taken."""
        if st.watermark - st.last_expiry >= SWEEP:
            self.engine._expire(st)
        return True

    def _exec_class(self, memo: _ExecMemo, query: str, c: tuple[Any, ...]) -> Any:
        """The class of an exec row from the memo (None: not a command of its kind); _DECLINE: the full path's."""
        cls = memo.get(c)
        if cls is _MISS:
            cls = self._classify(memo, query, c)
        return cls

    def _db_cli_exec(self, c: tuple[Any, ...], host: str, t: int) -> bool:
        cls = self._exec_class(self._access, "db_cli_exec", c)
        if cls is _DECLINE:
            return False
        st = self._state(host, t)
        if cls is not None:
            codes = self.engine.access_gate(st, cls, _pid_key(c[PID]), t)
            if codes is not None:
                self.engine.access_chain(st, _exec_row("db_cli_exec", host, t, _columns(c), False), cls, codes)
        return self._swept(st)

    def _transfer_exec(self, c: tuple[Any, ...], host: str, t: int) -> bool:
        cls = self._exec_class(self._transfers, "transfer_exec", c)
        if cls is _DECLINE:
            return False
        st = self._state(host, t)
        if cls is not None:
            engine = self.engine
            if engine.transfer_gate(st, cls, _pid_key(c[PID]), t):
                engine.transfer_link(st, _exec_row("transfer_exec", host, t, _columns(c), False), cls)
        return self._swept(st)

    def _dump_file(self, c: tuple[Any, ...], host: str, t: int) -> bool:
        # The columns as rows._file_row reads them; anything but text where text belongs goes the full way.
        path = c[TARGET_PATH] or c[PATH]
        action = c[ACTION]
        owner = c[OWNER]
        sha256 = c[SHA256]
        if type(path) is not str or not path or type(action) is not str or not action:
            return False
        if owner is None:
            owner = ""
        elif type(owner) is not str:
            return False
        if sha256 is None:
            sha256 = ""
        elif type(sha256) is not str:
            return False
        st = self._state(host, t)
        self.engine.file_event(st, "dump_file_events", t, path, action, to_int(c[INODE]), owner, to_int(c[SIZE]),
                               sha256, int_or_zero(c[WRITER_PID]))
        return self._swept(st)

    def _db_egress(self, c: tuple[Any, ...], host: str, t: int) -> bool:
        # The columns as rows._egress_row reads them.
        address = c[REMOTE_ADDRESS]
        path = c[PATH]
        login_user = c[LOGIN_USER]
        if type(address) is not str or not address or type(path) is not str or type(login_user) is not str:
            return False
        success = to_int(c[SUCCESS])
        st = self._state(host, t)
        if success is None or success != 0:
            external = self._external.get(address)
            if external is None:
                external = self.engine._external(address)
                if len(self._external) >= MAX_KEYS:
                    self._external.clear()
                self._external[address] = external
            if external:
                self.engine.socket_egress(st, "db_egress", t, int_or_zero(c[PID]), path, _session(c[AUID]), login_user,
                                          address, to_int(c[REMOTE_PORT]))
        return self._swept(st)
