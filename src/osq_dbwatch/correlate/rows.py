"""One osquery results line -> typed rows, one record type per contract query.

Accepted shapes (contract section 2): event format (`columns` + `action`),
batch format (`diffResults`), snapshot (`snapshot` list, or one row a line
with `"action": "snapshot"`), with or without `decorations`, numerics on or
off. The query is recognised by the last `/` segment of `name` ending in a
contract query name, so osquery (`pack_dbwatch_db_cli_exec`), Fleet
(`pack/Global/dbwatch_db_cli_exec`, `pack/team-3/...`) and bare names match.

Counter 0 (decided here, documented in the README): the first run of a
differential query logs every current row as `added` with counter 0.
- `db_client_history` and `dump_like_files` baselines are old content: they
  teach the baseline (history) or are dropped (files), never start a chain.
- `db_cli_sessions` baselines are sessions running right now: they carry
  information and are treated as accesses at their `start_time` (a resend
  after an osquery restart is de-duplicated by pid and start time).
- `admin_accounts` rows are membership whatever their counter.
Event tables (`db_cli_exec`, `transfer_exec`, `dump_file_events`,
`db_egress`) have no baseline: every row is new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # fixed-width ints for mypyc; annotations only, so no runtime dependency
    from mypy_extensions import i64

from ..pack import contract
from .jsonlib import JSONError as _JSONError
from .jsonlib import loads_line as _loads_line

# The query contract (pack/contract.py): the queries, and which are differential over snapshot tables
# (counter 0 is their baseline).
QUERIES: tuple[str, ...] = contract.NAMES
_DIFFERENTIAL: Final = frozenset(q.name for q in contract.QUERIES if q.kind != "event")
NO_SESSION_AUIDS: Final = frozenset({4294967295, -1})


class BadLine(Exception):
    """A line that cannot be used; str() is the short reason."""


@dataclass(slots=True)
class ExecRow:
    """A DB client / dump tool run (db_cli_exec, db_cli_sessions) or a transfer tool run."""

    query: str
    host: str
    time: int
    pid: int
    path: str
    cmdline: str
    cwd: str
    uid: int | None
    username: str
    has_session: bool
    login_user: str
    parent_pid: int
    parent_path: str
    parent_cmdline: str
    ancestors: tuple[tuple[str, str], ...] = ()  # (name, path) nearest first, beyond the parent
    tty: str = ""
    interactive: bool | None = None
    systemd_unit: str = ""
    baseline: bool = False

    @property
    def user(self) -> str:
        """The login user (auid's name), else the uid's user."""
        if self.has_session and self.login_user:
            return self.login_user
        return self.username or (str(self.uid) if self.uid is not None else "")


class FileRow:
    """A dump-like file written (dump_file_events) or found (dump_like_files).

    A plain class, not a dataclass: compiled, its constructor is native (a dataclass's __init__ is
    generated Python), and the fast path builds one for every file row. `__slots__`: interpreted, its attribute
    stores cost half (compiled, a native class has its own layout).
    """

    __slots__ = ("action", "baseline", "host", "inode", "owner", "path", "query", "sha256", "size", "time",
                  "writer_pid")

    def __init__(self, query: str, host: str, time: int, path: str, action: str, inode: int | None, owner: str,
                 size: int | None, sha256: str, writer_pid: int = 0, baseline: bool = False) -> None:
        self.query = query
        self.host = host
        self.time = time
        self.path = path
        self.action = action
        self.inode = inode
        self.owner = owner
        self.size = size
        self.sha256 = sha256
        self.writer_pid = writer_pid
        self.baseline = baseline


class EgressRow:
    """A connect (db_egress); a plain class for a native constructor, and `__slots__`, as FileRow."""

    __slots__ = ("address", "has_session", "host", "login_user", "path", "pid", "port", "query", "status", "success",
                  "time")

    def __init__(self, query: str, host: str, time: int, pid: int, path: str, has_session: bool, login_user: str,
                 address: str, port: int | None, success: bool, status: str = "") -> None:
        self.query = query
        self.host = host
        self.time = time
        self.pid = pid
        self.path = path
        self.has_session = has_session
        self.login_user = login_user
        self.address = address
        self.port = port
        self.success = success
        self.status = status  # osquery's socket status (in_progress, succeeded, failed); "" from older agents


@dataclass(slots=True)
class AdminRow:
    """A member of an admin group; `snapshot` rows replace the host's set per snapshot."""

    host: str
    time: int
    mode: str  # "snapshot", "added" or "removed"
    snapshot_id: int  # unixTime of the snapshot the row belongs to
    username: str
    groupname: str


@dataclass(slots=True)
class HistoryRow:
    query: str
    host: str
    time: int
    user: str
    uid: int | None
    engine: str
    command: str
    intent: str
    output_path: str
    file: str
    baseline: bool = False


Row = ExecRow | FileRow | EgressRow | AdminRow | HistoryRow


# ---------------------------------------------------------------------------
# Values: strings unless --logger_numerics; "" is NULL.


# Final: compiled code reads them as constants, not from the module's dict.
_INT_MIN: Final = -9_223_372_036_854_775_808  # -(2**63)
_INT_MAX: Final = 9_223_372_036_854_775_807
FUTURE_SLACK: Final = 3600  # a row's time may lead the line's unixTime by clock skew, not more
MAX_TIME: Final = 100_000_000_000  # seconds; beyond year 5000 a "time" is garbage, not a date


# True when this module runs as mypyc's C extension rather than as its source (.py, or .pyc in a bundle).
# Only speed depends on it: both branches that test it compute the same values.
COMPILED: Final = not __file__.endswith((".py", ".pyc"))


def decimal(text: str) -> int:
    """The value of 1 to 18 ASCII digits, -1 for any other text.

    osquery's numbers in text form. Compiled, a digit loop reads them without
    int()'s general parser (signs, spaces, underscores, other scripts' digits),
    which costs a conversion to ASCII and an allocation per call; interpreted,
    that loop would be the slower way, so the source runs the builtins.
    """
    if not COMPILED:
        return int(text) if text.isdigit() and text.isascii() and len(text) <= 18 else -1
    size: i64 = len(text)
    if size == 0 or size > 18:
        return -1
    result: i64 = 0
    i: i64 = 0
    while i < size:
        digit: i64 = ord(text[i]) - 48
        if digit < 0 or digit > 9:
            return -1
        result = result * 10 + digit
        i += 1
    return result


def text_to_int(text: str) -> int | None:
    """to_int() of text in general: int()'s syntax, then float()'s, then the 64-bit range."""
    if not text:
        return None
    try:
        result = int(text)
    except ValueError:
        try:
            result = int(float(text))
        except (ValueError, OverflowError):
            return None
    return result if _INT_MIN <= result <= _INT_MAX else None


def to_int(value: Any) -> int | None:
    """An integer column (strings unless --logger_numerics); None when absent or not a 64-bit integer.

    BadLine for a list, an object or a boolean.
    """
    if type(value) is int:
        result: int = value
    elif type(value) is str:
        if not COMPILED:  # decimal()'s builtins inline: a call less for every number column read, interpreted
            return int(value) if value.isdigit() and value.isascii() and len(value) <= 18 else text_to_int(value)
        result = decimal(value)
        return result if result >= 0 else text_to_int(value)  # the digits-only text first
    elif type(value) is float:
        try:
            result = int(value)
        except (ValueError, OverflowError):
            return None
    elif value is None:
        return None
    else:  # a list, an object or a boolean is no number osquery writes: the line is bad, not 0
        raise BadLine(f"value of type {type(value).__name__} where a number was expected")
    return result if _INT_MIN <= result <= _INT_MAX else None


def to_time(value: Any) -> int | None:
    t = to_int(value)
    return t if t is not None and 0 < t < MAX_TIME else None


# The hot path's forms of to_int and to_time: an int result, never a boxed one, for the common decimal text.
def int_or_zero(value: Any) -> int:
    """to_int(value) or 0."""
    if type(value) is str:
        if not COMPILED:  # decimal()'s builtins inline, as in to_int
            if value.isdigit() and value.isascii() and len(value) <= 18:
                return int(value)
        else:
            n = decimal(value)
            if n >= 0:
                return n
    return to_int(value) or 0


def time_or_zero(value: Any) -> int:
    """to_time(value) or 0."""
    if type(value) is str:
        t = decimal(value)
        if t >= 0:
            return t if 0 < t < MAX_TIME else 0
    elif type(value) is int:  # unixTime, and times with --logger_numerics
        n: int = value
        return n if 0 < n < MAX_TIME else 0
    return to_time(value) or 0


def to_str(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if type(value) in (int, float):
        return str(value)
    raise BadLine(f"value of type {type(value).__name__} where text was expected")


_NAME_CACHE: dict[str, str | None] = {}


def recognise(name: str) -> str | None:
    """The contract query a result name stands for, or None."""
    cached = _NAME_CACHE.get(name, "?")
    if cached != "?":
        return cached
    last = name.rsplit("/", 1)[-1]
    found = None
    for query in QUERIES:
        if (last == query or last.endswith("_" + query)) and (found is None or len(query) > len(found)):
            found = query
    if len(_NAME_CACHE) < 4096:
        _NAME_CACHE[name] = found
    return found


def session(auid: Any) -> bool:
    """Whether an auid column names a login session (audit's unset auid is 4294967295, or -1)."""
    if type(auid) is str:
        n = decimal(auid)
        if n >= 0:
            return n != 4294967295  # the common decimal text
    if auid == "" or auid is None:
        return False
    value = to_int(auid)
    return value is not None and value not in NO_SESSION_AUIDS


def text(value: Any) -> str:
    """A text column: "" when absent; numbers as their text (--logger_numerics); BadLine for anything else."""
    return value if type(value) is str else to_str(value)


def pid_key(value: Any) -> str:
    """A pid column as the host state's pid table keys it: str(to_int(value) or 0); the common decimal text is that."""
    if type(value) is str:
        if not COMPILED:  # the builtins, as decimal() says
            if value.isdigit() and value[0] != "0" and value.isascii() and len(value) <= 18:
                return value
        elif decimal(value) > 0 and value[0] != "0":
            return value
    return str(to_int(value) or 0)


def succeeded(value: Any) -> bool:
    """A success column: absent or not 0."""
    success = to_int(value)
    return success is None or success != 0


def row_time(value: Any, unix_time: int) -> int:
    """A row's event time: its time column, else the line's unixTime (0: neither).

    A time after the line was logged (beyond clock skew) is garbage: the line's time counts.
    """
    # time_or_zero(value) of the common text in one step; interpreted, decimal()'s builtins inline (a call less
    # on nearly every line)
    if type(value) is not str:
        t = -1
    elif COMPILED:
        t = decimal(value)
    else:
        t = int(value) if value.isdigit() and value.isascii() and len(value) <= 18 else -1
    if not 0 < t < MAX_TIME:
        t = time_or_zero(value)
        if not t:
            return unix_time
    if unix_time and t > unix_time + FUTURE_SLACK:
        return unix_time
    return t


def check_exec(path: str, cmdline: str) -> None:
    if not path and not cmdline:
        raise BadLine("row has neither path nor cmdline")


def _split_ancestry(names: str, paths: str) -> tuple[tuple[str, str], ...]:
    name_list = [n.strip() for n in names.split(" < ")] if names else []
    path_list = [p.strip() for p in paths.split(" < ")] if paths else []
    size = max(len(name_list), len(path_list))
    out = []
    for i in range(size):
        n = name_list[i] if i < len(name_list) else ""
        p = path_list[i] if i < len(path_list) else ""
        out.append((n, p))
    return tuple(out)


def _text(c: dict[str, Any], key: str) -> str:
    return text(c.get(key))


def exec_row(query: str, host: str, t: int, c: dict[str, Any], baseline: bool) -> ExecRow:
    path = _text(c, "path")
    cmdline = _text(c, "cmdline")
    check_exec(path, cmdline)
    parent_path = _text(c, "parent_path")
    ancestors: tuple[tuple[str, str], ...] = ()
    interactive: bool | None = None
    tty = unit = ""
    if query == "db_cli_sessions":
        value = to_int(c.get("interactive"))
        interactive = None if value is None else bool(value)
        chain = _split_ancestry(_text(c, "ancestry"), _text(c, "ancestry_paths"))
        if chain:
            if not parent_path:
                parent_path = chain[0][1]
            ancestors = chain[1:]
        parent_name = _text(c, "parent_name")
        if parent_name and not parent_path:
            parent_path = parent_name
        tty = _text(c, "tty")
        unit = _text(c, "systemd_unit")
    auid = c.get("auid")
    return ExecRow(
        query,
        host,
        t,
        to_int(c.get("pid")) or 0,
        path,
        cmdline,
        _text(c, "cwd"),
        to_int(c.get("uid")),
        _text(c, "username"),
        session(auid),
        _text(c, "login_user"),
        to_int(c.get("parent")) or to_int(c.get("ppid")) or 0,
        parent_path,
        _text(c, "parent_cmdline"),
        ancestors,
        tty,
        interactive,
        unit,
        baseline,
    )


def file_row(query: str, host: str, t: int, target_path: Any, path: Any, action: Any, inode: Any, owner: Any,
             size: Any, sha256: Any, writer_pid: Any, baseline: bool) -> FileRow:
    """A dump_file_events or dump_like_files row from its column values."""
    name = target_path or path
    if type(name) is not str:
        name = to_str(name)
    if not name:
        raise BadLine("file row without target_path")
    # text() of each text column, the common str inline (nearly every file row comes through here)
    if type(action) is not str:
        action = to_str(action)
    if type(owner) is not str:
        owner = to_str(owner)
    if type(sha256) is not str:
        sha256 = to_str(sha256)
    return FileRow(query, host, t, name, action or "FOUND", to_int(inode), owner, to_int(size), sha256,
                   int_or_zero(writer_pid), baseline)


def _file_row(query: str, host: str, t: int, c: dict[str, Any], baseline: bool) -> FileRow:
    return file_row(query, host, t, c.get("target_path"), c.get("path"), c.get("action"), c.get("inode"), c.get("owner"),
                    c.get("size"), c.get("sha256"), c.get("writer_pid"), baseline)


def egress_row(query: str, host: str, t: int, pid: Any, path: Any, auid: Any, login_user: Any, remote_address: Any,
               remote_port: Any, success: Any, status: Any = None) -> EgressRow:
    """A db_egress row from its column values."""
    return EgressRow(query, host, t, int_or_zero(pid), text(path), session(auid), text(login_user),
                     egress_address(remote_address), to_int(remote_port), succeeded(success), socket_status(status))


def socket_status(value: Any) -> str:
    """osquery's socket_events status, lower case ("" when absent: agents before the column only say success)."""
    if value is None:
        return ""
    status = value if type(value) is str else to_str(value)
    return status.strip().lower()[:32]


def egress_address(remote_address: Any) -> str:
    """A db_egress row's remote address; a row without one is bad."""
    address = remote_address if type(remote_address) is str else to_str(remote_address)
    if not address:
        raise BadLine("db_egress row without remote_address")
    return address


def _egress_row(query: str, host: str, t: int, c: dict[str, Any], baseline: bool) -> EgressRow:
    return egress_row(query, host, t, c.get("pid"), c.get("path"), c.get("auid"), c.get("login_user"),
                      c.get("remote_address"), c.get("remote_port"), c.get("success"), c.get("status"))


def _connect_row(query: str, host: str, t: int, c: dict[str, Any], baseline: bool) -> EgressRow:
    """A db_connect row: a TCP connect (remote address and port) or, for a Unix socket, its path as the address."""
    address = c.get("remote_address")
    sock = c.get("socket")
    if not text(address) and text(sock):
        address = sock
    return egress_row(query, host, t, c.get("pid"), c.get("path"), c.get("auid"), c.get("login_user"),
                      address, c.get("remote_port"), c.get("success"), c.get("status"))


def _history_row(query: str, host: str, t: int, c: dict[str, Any], baseline: bool) -> HistoryRow:
    command = to_str(c.get("command"))
    user = to_str(c.get("user") or c.get("username"))
    if not user:
        raise BadLine("db_client_history row without user")
    return HistoryRow(
        query=query,
        host=host,
        time=t,
        user=user,
        uid=to_int(c.get("uid")),
        engine=to_str(c.get("engine")),
        command=command,
        intent=to_str(c.get("intent")),
        output_path=to_str(c.get("output_path")),
        file=to_str(c.get("file")),
        baseline=baseline,
    )


# The column that carries a row's own event time, per query (the contract's).
_TIME_COLUMN: Final = {q.name: q.time_column for q in contract.QUERIES if q.time_column}
# The reader of each correlated query but admin_accounts (read in parse_obj): what it reads is the contract's `reads`.
_BUILDERS: dict[str, Callable[[str, str, int, dict[str, Any], bool], Row]] = {
    "db_cli_exec": exec_row,
    "transfer_exec": exec_row,
    "db_cli_sessions": exec_row,
    "dump_file_events": _file_row,
    "dump_like_files": _file_row,
    "db_egress": _egress_row,
    "db_connect": _connect_row,
    "db_client_history": _history_row,
}


@dataclass(slots=True)
class Parsed:
    rows: list[Row]
    problems: list[str]  # rows skipped inside an otherwise good line
    query: str = ""  # the contract query of the line; "" for other queries (and dbwatch_coverage)
    host_uuid: str = ""  # the line's host_uuid decoration ("" when it has none)


def parse_line(line: bytes) -> Parsed:
    """Typed rows of one results line; raises BadLine when nothing in it is usable.

    Lines of queries outside the contract, and `removed` rows (never new
    activity), give no rows and no problem.
    """
    try:
        obj = _loads_line(line)  # bytes that are not UTF-8 become U+FFFD
    except _JSONError as exc:
        raise BadLine(f"not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    except RecursionError:
        raise BadLine("JSON nested too deep") from None
    return parse_obj(obj)


def parse_obj(obj: Any) -> Parsed:
    """parse_line() after the JSON parse (the caller already holds the parsed line)."""
    if type(obj) is not dict:
        raise BadLine(f"a JSON {type(obj).__name__}, not an object")
    name = obj.get("name")
    if type(name) is not str:
        raise BadLine("missing or non-text 'name'")
    query = recognise(name)
    if query is None or query == "dbwatch_coverage":
        return Parsed([], [])
    host = obj.get("hostIdentifier")
    decorations = obj.get("decorations")
    if type(decorations) is not dict:
        decorations = {}
    if type(host) is not str or not host:
        host = decorations.get("hostname")
        if type(host) is not str or not host:
            raise BadLine("missing 'hostIdentifier'")
    host_uuid = decorations.get("host_uuid")
    if type(host_uuid) is not str:
        host_uuid = ""
    unix_time = time_or_zero(obj.get("unixTime"))
    counter = to_int(obj.get("counter"))
    action = obj.get("action")

    groups: list[tuple[str, Any]]
    if "columns" in obj:
        columns = obj["columns"]
        if type(columns) is not dict:
            raise BadLine("'columns' is not an object")
        if action not in ("added", "removed", "snapshot"):
            raise BadLine(f"unknown action {action!r}" if action is not None else "event line without 'action'")
        groups = [(action, [columns])]
    elif "diffResults" in obj:
        diff = obj["diffResults"]
        if type(diff) is not dict:
            raise BadLine("'diffResults' is not an object")
        groups = [("removed", diff.get("removed") or []), ("added", diff.get("added") or [])]
    elif "snapshot" in obj:
        groups = [("snapshot", obj["snapshot"])]
    else:
        raise BadLine("no 'columns', 'diffResults' or 'snapshot'")

    rows: list[Row] = []
    problems: list[str] = []
    baseline = counter == 0 and query in _DIFFERENTIAL
    for mode, items in groups:
        if type(items) is not list:
            raise BadLine(f"'{mode}' rows are not a list")
        if mode == "removed" and query != "admin_accounts":
            continue
        for index, columns in enumerate(items):
            if type(columns) is not dict:
                problems.append(f"row {index + 1} is not an object")
                continue
            try:
                if query == "admin_accounts":
                    user = to_str(columns.get("username"))
                    if not user:
                        raise BadLine("admin_accounts row without username")
                    rows.append(AdminRow(host, unix_time, mode, unix_time, user, to_str(columns.get("groupname"))))
                    continue
                t = row_time(columns.get(_TIME_COLUMN[query]), unix_time)
                if not t:
                    raise BadLine("row has no time and the line no unixTime")
                rows.append(_BUILDERS[query](query, host, t, columns, baseline and mode != "snapshot"))
            except BadLine as exc:
                problems.append(f"row {index + 1}: {exc}" if len(items) > 1 else str(exc))
    if problems and not rows:
        raise BadLine("; ".join(problems[:3]))
    return Parsed(rows, problems, query, host_uuid)
