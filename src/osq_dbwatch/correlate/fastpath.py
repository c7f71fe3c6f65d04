"""The correlator's hot path: it only decodes the common lines, and calls the engine's API.

Nearly every line of a fleet's results log is one event-format row
(`"columns"`, `"action": "added"`) of db_cli_exec, transfer_exec,
dump_file_events or db_egress, or an admin_accounts snapshot. The general
path (rows.parse_line, then Engine.step) decodes the whole line into dicts
and builds a typed row of each. Here msgspec's typed decoder reads only the
fields the correlator uses (decorations, calendarTime and unknown columns are
skipped unbuilt, and a value of the wrong type fails the decode: the exec
rows' text columns must be text); the column
values go through rows.py's readers (the same functions the general path
reads them with) and into the same Engine calls (see engine.py's API). No
rule of the correlator lives here: a line this path cannot read the way the
general path would returns False before touching any state, and goes the
general way (other shapes and queries, batch format, floats, booleans,
a column rows.py rejects). FastPath.apply_line is the one entry for a line:
this path, else the general one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from .engine import Engine, HostState
from .jsonlib import ADMIN_FIELDS, EVENT_FIELDS, decorations_decoder, line_decoder, not_utf8, struct_values
from .jsonlib import UNSET as _JSON_UNSET
from .rows import (
    MAX_TIME,
    QUERIES,
    BadLine,
    Parsed,
    check_exec,
    egress_address,
    egress_row,
    exec_row,
    file_row,
    parse_line,
    pid_key,
    recognise,
    row_time,
    time_or_zero,
)

MAX_NAMES: Final = 4096
UNSET: Final[Any] = _JSON_UNSET  # a field absent from the line (Final: compiled code keeps it in a C static)


def _position(name: str, fields: tuple[str, ...] = EVENT_FIELDS) -> int:
    """Where a column is in a decoded row's values (struct_values of jsonlib.EventColumns, or AdminMember)."""
    return fields.index(name)


# Positions in jsonlib.EventColumns' values, read from its fields (the query contract's).
ACTION: Final = _position("action")
AUID: Final = _position("auid")
CMDLINE: Final = _position("cmdline")
CWD: Final = _position("cwd")
INODE: Final = _position("inode")
LOGIN_USER: Final = _position("login_user")
OWNER: Final = _position("owner")
PARENT_CMDLINE: Final = _position("parent_cmdline")
PARENT_PATH: Final = _position("parent_path")
PATH: Final = _position("path")
PID: Final = _position("pid")
REMOTE_ADDRESS: Final = _position("remote_address")
REMOTE_PORT: Final = _position("remote_port")
SHA256: Final = _position("sha256")
SIZE: Final = _position("size")
SUCCESS: Final = _position("success")
STATUS: Final = _position("status")
TARGET_PATH: Final = _position("target_path")
TIME: Final = _position("time")
UID: Final = _position("uid")
USERNAME: Final = _position("username")
WRITER_PID: Final = _position("writer_pid")
MEMBER_GROUPNAME: Final = _position("groupname", ADMIN_FIELDS)
MEMBER_USERNAME: Final = _position("username", ADMIN_FIELDS)


def _columns(v: tuple[Any, ...]) -> dict[str, Any]:
    """The decoded columns as the dict rows.py reads (absent and null are alike there)."""
    return dict(zip(EVENT_FIELDS, v))


# Routes of a result name: the query it is (its position in rows.QUERIES, which also indexes the counts of
# rows per query), when this path takes its lines.
_NOT_OURS: Final = -1
_ADMIN: Final = QUERIES.index("admin_accounts")
_DB_CLI_EXEC: Final = QUERIES.index("db_cli_exec")
_TRANSFER_EXEC: Final = QUERIES.index("transfer_exec")
_DUMP_FILE: Final = QUERIES.index("dump_file_events")
_DB_EGRESS: Final = QUERIES.index("db_egress")
_ROUTES: Final = {"admin_accounts": _ADMIN, "db_cli_exec": _DB_CLI_EXEC, "transfer_exec": _TRANSFER_EXEC,
                  "dump_file_events": _DUMP_FILE, "db_egress": _DB_EGRESS}
_INDEX: Final = {q: i for i, q in enumerate(QUERIES)}
OTHER: Final = len(QUERIES)  # counts[OTHER]: lines of other queries (good JSON, no contract query)


def _no_decoder(data: bytes | str) -> Any:
    raise ValueError("msgspec is not installed")


class FastPath:
    """The engine's line reader: apply_line() applies one results-log line to its host's state.

    The runner sets `dirty` and `open_host` per batch (Spark's operator per host); `counts` holds the rows
    per query (rows.QUERIES' positions) and, at OTHER, the lines of other queries, for the run's summary.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dirty: dict[str, HostState] = {}
        # Enters a host's state in `dirty` (line() reads it back from there).
        self.open_host: Callable[[str], HostState] = lambda host: self.dirty.setdefault(host, HostState(host))
        self.counts: list[int] = [0] * (OTHER + 1)
        self._names: dict[str, int] = {}  # result name -> route (above)
        self._decorations_decode: Callable[[Any], Any] = decorations_decoder() or _no_decoder
        decode, values = line_decoder(), struct_values()
        self.available = decode is not None  # False without msgspec: line() declines every line
        self._decode: Callable[[bytes | str], Any] = decode or _no_decoder
        self._values: Callable[[Any], tuple[Any, ...]] = values or tuple

    def apply_line(self, data: bytes) -> Parsed | None:
        """Apply one results-log line to its host's state: the fast path, else rows.parse_line and Engine.step.

        None when the fast path took it, else what the general path parsed (its rows, and the problems of
        rows it skipped). Raises BadLine, with no state touched, for a line nothing in which is usable.
        """
        if self.line(data):
            return None
        return self.general(data)

    def feed(self, lines: Iterable[tuple[int, bytes | None]], general: Callable[[int, bytes | None], None],
             max_hosts: int) -> int:
        """apply_line() over numbered lines, where `general` takes the lines line() declines (and over-long ones,
        None), so the caller can report bad lines (it calls self.general()).

        Stops after the line that makes `dirty` hold `max_hosts` hosts; returns the lines taken.
        """
        count = 0
        dirty = self.dirty
        line = self.line
        for number, data in lines:
            count += 1
            if data is None or not line(data):
                general(number, data)
            if len(dirty) >= max_hosts:
                break
        return count

    def general(self, data: bytes) -> Parsed:
        """The general path of apply_line(): rows.parse_line, then Engine.step on the host's state; counted."""
        parsed = parse_line(data)
        rows = parsed.rows
        if rows:
            st = self._state(rows[0].host)
            self.engine.step(st, rows)
            self.counts[_INDEX[parsed.query]] += len(rows)
            if parsed.host_uuid and st.host_uuid != parsed.host_uuid:
                self.engine.on_host_uuid(st, parsed.host_uuid)
        elif not parsed.query:
            self.counts[OTHER] += 1
        return parsed

    def line(self, data: bytes) -> bool:
        """The fast path: apply one raw line; False (and no state touched) when the general path must take it."""
        try:
            obj = self._decode(data)
        except Exception:  # noqa: BLE001 - malformed, wrong types, too deep: the full path says why
            # Bytes that are not UTF-8 are read as U+FFFD, as the full path reads them (jsonlib.loads_line),
            # whatever error type this msgspec release gives them.
            as_text = not_utf8(data)
            if as_text is None:
                return False
            try:
                obj = self._decode(as_text)
            except Exception:  # noqa: BLE001
                return False
        name, host, value, decorations, columns, snapshot, action, diff = self._values(obj)  # ResultLine's fields
        if type(name) is not str:
            return False
        route = self._names.get(name)
        if route is None:
            route = self._route(name)
        if route == _NOT_OURS or diff is not UNSET or type(host) is not str or not host:
            return False
        unix_time: int = value if type(value) is int and 0 < value < MAX_TIME else time_or_zero(value)  # osquery's int
        st: HostState
        if columns is UNSET:
            if route != _ADMIN or not self._admin_snapshot(snapshot, unix_time, host):
                return False
            st = self.dirty[host]
        else:
            if columns is None or route == _ADMIN or action != "added":
                return False
            c = self._values(columns)
            t = row_time(c[TIME], unix_time)
            if not t:
                return False
            try:
                if route == _DB_CLI_EXEC or route == _TRANSFER_EXEC:
                    # A db_cli_exec or transfer_exec row (inline: nearly every line is one); the full row is built
                    # only for a run the engine asks it of. Its text columns are str here: the decoder declines a
                    # line where one is not (jsonlib.TEXT_FIELDS).
                    path = c[PATH]
                    cmdline = c[CMDLINE]
                    if not path and not cmdline:
                        check_exec(path, cmdline)  # raises: the rows.py reader says why
                    engine = self.engine
                    # The memo's key in its fast form (classify.RunKey): the uid and auid columns as logged, read
                    # only when the memo has no class for the run.
                    cls = engine.classes.exec_class(route == _TRANSFER_EXEC, (path, cmdline, c[CWD], c[UID], c[USERNAME],
                                                    c[AUID], c[LOGIN_USER], c[PARENT_PATH], c[PARENT_CMDLINE]))
                    st = self.dirty.get(host) or self.open_host(host)
                    codes = engine.on_exec(st, t, pid_key(c[PID]), cls)
                    if codes is not None and cls is not None:
                        engine.on_exec_row(st, exec_row(QUERIES[route], host, t, _columns(c), False), cls, codes)
                elif route == _DUMP_FILE:
                    row = file_row("dump_file_events", host, t, c[TARGET_PATH], c[PATH], c[ACTION], c[INODE], c[OWNER],
                                   c[SIZE], c[SHA256], c[WRITER_PID], False)
                    st = self.dirty.get(host) or self.open_host(host)  # _state() inline, as for exec rows
                    self.engine.on_file(st, row)
                else:
                    # Most connects are internal: the full row is built only for one that may be egress, and
                    # on_egress decides (egress_wanted).
                    engine = self.engine
                    address = c[REMOTE_ADDRESS]
                    if type(address) is not str or not address:
                        address = egress_address(address)  # the rows.py reader: text of a number, or BadLine
                    possible = engine.egress_possible(address)
                    st = self.dirty.get(host) or self.open_host(host)
                    if possible:
                        engine.on_egress(st, egress_row("db_egress", host, t, c[PID], c[PATH], c[AUID], c[LOGIN_USER],
                                                        c[REMOTE_ADDRESS], c[REMOTE_PORT], c[SUCCESS], c[STATUS]))
                    else:
                        engine.on_row(st, t)
            except BadLine:
                return False  # the full path reports it
            self.counts[route] += 1
        if decorations is not UNSET:
            # A host's lines repeat the same decorations: they are read when their bytes change (kept on the
            # state, so a state opened afresh reads them again). Their host_uuid is remembered with them and
            # given back when the state's differs (a full-path line in between set another).
            if st.decorations is None or decorations != st.decorations:
                self._decorated(st, decorations)
            elif st.host_uuid != st.decorations_uuid and st.decorations_uuid:
                self.engine.on_host_uuid(st, st.decorations_uuid)
        return True

    def _decorated(self, st: HostState, raw: Any) -> None:
        """A line's decorations (raw JSON) unlike the host's last ones: its host_uuid to the engine."""
        try:
            host_uuid = self._decorations_decode(raw).host_uuid
        except Exception:  # noqa: BLE001 - not an object, or a host_uuid of no scalar type: none, as rows.py reads it
            host_uuid = None
        if type(host_uuid) is not str:
            host_uuid = ""
        st.decorations = raw.copy()  # the bytes: not a view of the line
        st.decorations_uuid = host_uuid
        if host_uuid and st.host_uuid != host_uuid:
            self.engine.on_host_uuid(st, host_uuid)

    def _route(self, name: str) -> int:
        route = _ROUTES.get(recognise(name) or "", _NOT_OURS)
        if len(self._names) < MAX_NAMES:
            self._names[name] = route
        return route

    def _state(self, host: str) -> HostState:
        """The host's state, entered in the batch."""
        return self.dirty.get(host) or self.open_host(host)

    def _admin_snapshot(self, items: Any, t: int, host: str) -> bool:
        """An admin_accounts snapshot line (a list of rows); the full path reads one AdminRow per member."""
        if type(items) is not list or not items:
            return False
        members: list[tuple[str, str]] = []
        for item in items:
            member = self._values(item)  # AdminMember's fields
            username = member[MEMBER_USERNAME]
            groupname = member[MEMBER_GROUPNAME]
            if type(username) is not str or not username:
                return False
            if groupname is None:
                groupname = ""
            elif type(groupname) is not str:
                return False
            members.append((username, groupname))
        self.engine.on_admin_snapshot(self._state(host), t, members)
        self.counts[_ADMIN] += len(members)
        return True
