"""The correlator's hot path: the common event lines straight into the engine.

Nearly every line of a fleet's results log is one event-format row
(`"columns"`, `"action": "added"`) of db_cli_exec, transfer_exec,
dump_file_events or db_egress, and nearly all of them are benign noise that
only updates the dedup, pid, recent-file and baseline tables. The full path
(rows.parse_line, then Engine.step) builds a typed row per line and judges
it from scratch. Here a line is read from the parsed JSON directly and the
judgement of a run's invariant columns (path, command line, cwd, users,
parents) comes from the engine's memoised classes, so a benign line costs a
few dictionary operations.

The full path stays the definition. A line is taken here only when it is
exactly the common shape with the expected value types; anything else
(other shapes and queries, numbers where text belongs, missing columns)
returns False before touching any state and goes the full way. A run that
opens or joins a chain is handed to the same engine methods with a row built
by rows.py. tests/test_correlate_fastpath.py checks that both paths give
identical findings and state.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable

from .engine import SWEEP, Engine, HostState
from .rows import (
    _FUTURE_SLACK,
    MAX_TIME,
    AdminRow,
    BadLine,
    _egress_row,
    _exec_row,
    recognise,
    to_int,
    to_time,
)

# The columns of an exec row that decide its class (everything but pid, parent and time).
_EXEC_TEXT = itemgetter("path", "cmdline", "cwd", "username", "login_user", "parent_path", "parent_cmdline")
_LINE = itemgetter("name", "action", "columns", "hostIdentifier", "unixTime")
_STR_OR_INT = frozenset({str, int})
_NOT_OURS = None  # a query name this path does not take
MAX_NAMES = 4096
MAX_KEYS = 32768  # memoised exec column combinations (then the memo starts afresh)
MAX_KEY_TEXT = 4096  # characters of text columns above which a combination is not memoised


def _pid(value: Any) -> int:
    """to_int(value) or 0, with the common string form inline."""
    if type(value) is str and len(value) < 19 and value.isdecimal():
        return int(value)
    return to_int(value) or 0


def _int(value: Any) -> int | None:
    """to_int(value), with the common string form inline."""
    if type(value) is str and len(value) < 19 and value.isdecimal():
        return int(value)
    return to_int(value)


class FastPath:
    """Takes the common lines of one batch; the runner sets `dirty` and `open_host` per batch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dirty: dict[str, HostState] = {}
        self.open_host: Callable[[str], HostState] = lambda host: HostState(host)
        self._by_query: dict[str, Callable[[str, dict[str, Any], str, int], bool]] = {
            "db_cli_exec": self._db_cli_exec,
            "transfer_exec": self._transfer_exec,
            "dump_file_events": self._dump_file,
            "db_egress": self._db_egress,
            "admin_accounts": self._not_an_event,  # its snapshot lines: _admin_snapshot()
        }
        self._names: dict[str, tuple[str, Callable[[str, dict[str, Any], str, int], bool]] | None] = {}
        # (query, text columns, auid, uid) -> the engine's class of that run, or None (not a command of its kind)
        self._classes: dict[tuple[Any, ...], Any] = {}
        self._access_gate = engine.access_gate

    def line(self, obj: Any) -> bool:
        """Apply one parsed line; False (and no state touched) when the full path must take it."""
        try:
            name, action, columns, host, value = _LINE(obj)
            route = self._names.get(name, False)
        except KeyError:  # a key missing: admin_accounts snapshots have no "columns"
            return self._admin_snapshot(obj)
        except TypeError:  # not an object, an unhashable name
            return False
        if route is False:
            if type(name) is not str:
                return False
            route = self._route(name)
        if route is None or action != "added" or type(columns) is not dict or type(host) is not str or not host:
            return False
        # Event time as rows.parse_obj takes it, with the common forms inline.
        unix_time = value if type(value) is int and 0 < value < MAX_TIME else to_time(value) or 0
        value = columns.get("time")
        t = int(value) if type(value) is str and len(value) < 12 and value.isdecimal() else to_time(value)
        if not t:
            t = unix_time
            if not t:
                return False
        elif unix_time and t > unix_time + _FUTURE_SLACK:
            t = unix_time  # a row from after it was logged
        return route[1](route[0], columns, host, t)

    @staticmethod
    def _not_an_event(query: str, c: dict[str, Any], host: str, t: int) -> bool:
        return False

    def _route(self, name: str) -> tuple[str, Callable[[str, dict[str, Any], str, int], bool]] | None:
        query = recognise(name)
        handler = self._by_query.get(query) if query is not None else None
        route = (query, handler) if query is not None and handler is not None else _NOT_OURS
        if len(self._names) < MAX_NAMES:
            self._names[name] = route
        return route

    def _admin_snapshot(self, obj: dict[str, Any]) -> bool:
        """An admin_accounts snapshot line (a list of rows) as parse_obj and Engine.step take it."""
        name = obj.get("name")
        if type(name) is not str or "columns" in obj or "diffResults" in obj:
            return False
        route = self._names.get(name, False)
        if route is False:
            route = self._route(name)
        items = obj.get("snapshot")
        host = obj.get("hostIdentifier")
        if route is None or route[0] != "admin_accounts" or type(items) is not list or not items or type(host) is not str \
                or not host:
            return False
        members: list[tuple[str, str]] = []
        for item in items:
            if type(item) is not dict:
                return False
            username = item.get("username")
            groupname = item.get("groupname", "")
            if type(username) is not str or not username or type(groupname) is not str:
                return False
            members.append((username, groupname))
        t = to_time(obj.get("unixTime")) or 0
        st = self.dirty.get(host) or self.open_host(host)
        engine = self.engine
        for username, groupname in members:
            if t > st.watermark:
                st.watermark = t
            engine._admin(st, AdminRow(host, t, "snapshot", t, username, groupname))
            if st.watermark - st.last_expiry >= SWEEP:
                engine._expire(st)
        return True

    def _exec_class(self, query: str, c: dict[str, Any], host: str, t: int) -> Any:
        """The memoised class of an exec row, None when not a command of its kind, False when the full path must see it."""
        try:
            text = _EXEC_TEXT(c)
            auid, uid = c["auid"], c["uid"]
        except KeyError:
            return False
        if type(auid) not in _STR_OR_INT or type(uid) not in _STR_OR_INT:
            return False  # 1 == 1.0 == True as dict keys: only str and int keep keys exact
        key = (query, text, auid, uid)
        try:
            cls = self._classes.get(key, False)
        except TypeError:  # an unhashable value
            return False
        if cls is False:
            # Only all-text columns are memoised (a number where text belongs goes the full way),
            # so a later hit is all text too: a str never equals anything else.
            try:
                size = len("".join(text))
            except TypeError:
                return False
            try:
                row = _exec_row(query, host, t, c, False)
            except BadLine:
                return False
            engine = self.engine
            cls = engine.access_class(row) if query == "db_cli_exec" else engine.transfer_class(row)
            if size <= MAX_KEY_TEXT:  # hostile multi-kilobyte command lines are judged, not remembered
                if len(self._classes) >= MAX_KEYS:
                    self._classes.clear()
                self._classes[key] = cls
        return cls

    def _db_cli_exec(self, query: str, c: dict[str, Any], host: str, t: int) -> bool:
        cls = self._exec_class(query, c, host, t)
        if cls is False:
            return False
        st = self.dirty.get(host) or self.open_host(host)
        if t > st.watermark:
            st.watermark = t
        if cls is not None:
            value = c.get("pid")  # _pid(), inlined: every DB client run passes here
            pid = int(value) if type(value) is str and len(value) < 19 and value.isdecimal() else to_int(value) or 0
            codes = self._access_gate(st, cls, pid, t)
            if codes is not None:
                self.engine.access_chain(st, _exec_row(query, host, t, c, False), cls, codes)
        if st.watermark - st.last_expiry >= SWEEP:
            self.engine._expire(st)  # as Engine.step does after each row
        return True

    def _transfer_exec(self, query: str, c: dict[str, Any], host: str, t: int) -> bool:
        cls = self._exec_class(query, c, host, t)
        if cls is False:
            return False
        st = self.dirty.get(host) or self.open_host(host)
        if t > st.watermark:
            st.watermark = t
        if cls is not None:
            pid = _pid(c.get("pid"))
            if self.engine.transfer_gate(st, cls, pid, t):
                self.engine.transfer_link(st, _exec_row(query, host, t, c, False), cls)
        if st.watermark - st.last_expiry >= SWEEP:
            self.engine._expire(st)  # as Engine.step does after each row
        return True

    def _dump_file(self, query: str, c: dict[str, Any], host: str, t: int) -> bool:
        # The columns as rows._file_row reads them; anything but text where text belongs goes the full way.
        path = c.get("target_path") or c.get("path")
        action = c.get("action")
        owner = c.get("owner", "")
        sha256 = c.get("sha256", "")
        if (type(path) is not str or not path or type(action) is not str or not action or type(owner) is not str
                or type(sha256) is not str):
            return False
        st = self.dirty.get(host) or self.open_host(host)
        if t > st.watermark:
            st.watermark = t
        self.engine.file_event(st, query, t, path, action, _int(c.get("inode")), owner, _int(c.get("size")), sha256,
                               _pid(c.get("writer_pid")))
        if st.watermark - st.last_expiry >= SWEEP:
            self.engine._expire(st)  # as Engine.step does after each row
        return True

    def _db_egress(self, query: str, c: dict[str, Any], host: str, t: int) -> bool:
        address = c.get("remote_address")
        path = c.get("path")
        login_user = c.get("login_user")
        if type(address) is not str or not address or type(path) is not str or type(login_user) is not str:
            return False
        success = to_int(c.get("success"))
        st = self.dirty.get(host) or self.open_host(host)
        if t > st.watermark:
            st.watermark = t
        if (success is None or success != 0) and self.engine._external(address):
            self.engine._db_egress(st, _egress_row(query, host, t, c, False))
        if st.watermark - st.last_expiry >= SWEEP:
            self.engine._expire(st)  # as Engine.step does after each row
        return True

