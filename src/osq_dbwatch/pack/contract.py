"""The query contract, in one place: every query the pack schedules and the correlator reads.

For each query: its name (osquery logs it as `pack_dbwatch_<name>`), its kind,
its output columns, the column that carries a row's own event time, and the
columns the correlator reads. The pack renderer (render.py: columns, kinds,
names), the source loader (sources.py: a source's kind), the correlator's row
readers (correlate/rows.py: names, kinds, time columns) and its decoder
(correlate/jsonlib.py: the typed fields of the fast path, and so
correlate/fastpath.py's positions) all read it from here.

Kinds:
- event: an evented table; every row is new activity (`removed: false`);
- state: a differential query over a snapshot table: the first run's rows
  (counter 0) are what was already there, a baseline;
- snapshot: the whole result every run (`snapshot: true`).

Adding a correlated query is one entry here, one SQL source under queries/
and one row reader in correlate/rows.py (its handler in the engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["event", "state", "snapshot"]


@dataclass(frozen=True)
class Query:
    name: str
    kind: Kind
    # Output columns in order: a native query's are fixed here (contract section 1); None for an
    # extension query, which selects its table's columns (osq_dbwatch.tables, where they are defined).
    columns: tuple[str, ...] | None
    time_column: str  # the row's own event time; "" when the line's unixTime is the time
    # The columns the correlator's reader asks for (besides time_column), some of them other tables' names
    # for the same value (`ppid`, `path`); () when it does not correlate the query.
    reads: tuple[str, ...]
    newer_agent_columns: frozenset[str] = frozenset()  # output columns agents before osquery 5.x cannot log

    @property
    def correlated(self) -> bool:
        return bool(self.reads)


_EXEC_COLUMNS: Final = ("time", "pid", "parent", "path", "cmdline", "cwd", "uid", "euid", "auid", "username",
                        "login_user", "parent_path", "parent_cmdline")
# An exec row as correlate/rows.py reads it (`ppid`: the parent's pid where a table names it so).
_EXEC_READS: Final = ("pid", "parent", "ppid", "path", "cmdline", "cwd", "uid", "auid", "username", "login_user",
                      "parent_path", "parent_cmdline")
_FILE_READS: Final = ("target_path", "path", "action", "inode", "owner", "size", "sha256", "writer_pid")

QUERIES: Final[tuple[Query, ...]] = (
    Query("db_cli_exec", "event", _EXEC_COLUMNS, "time", _EXEC_READS),
    Query("transfer_exec", "event", _EXEC_COLUMNS, "time", _EXEC_READS),
    Query("dump_file_events", "event", ("time", "target_path", "action", "inode", "uid", "size", "sha256", "owner"),
          "time", _FILE_READS),
    Query("db_egress", "event",
          ("time", "pid", "path", "auid", "family", "remote_address", "remote_port", "success", "status", "login_user"),
          "time", ("pid", "path", "auid", "login_user", "remote_address", "remote_port", "success", "status"),
          frozenset({"status"})),
    # Added 2026-12 (issue 13): connects to database ports and sockets by processes that are not known clients
    # or servers. An addition: the contract's queries above keep their columns.
    Query("db_connect", "event",
          ("time", "pid", "path", "auid", "family", "remote_address", "remote_port", "socket", "success", "status",
           "login_user"),
          "time", ("pid", "path", "auid", "login_user", "remote_address", "remote_port", "socket", "success", "status"),
          frozenset({"status"})),
    Query("admin_accounts", "snapshot", ("uid", "username", "groupname"), "", ("username", "groupname")),
    Query("db_cli_sessions", "state", None, "start_time",
          (*_EXEC_READS, "interactive", "ancestry", "ancestry_paths", "parent_name", "tty", "systemd_unit")),
    Query("dump_like_files", "state", None, "mtime", _FILE_READS),
    Query("db_client_history", "state", None, "file_mtime",
          ("command", "user", "username", "uid", "engine", "intent", "output_path", "file")),
    Query("dbwatch_coverage", "snapshot", None, "", ()),
)
BY_NAME: Final = {q.name: q for q in QUERIES}
# Queries added after the interface contract (../shared/contract.md section 1), which fixes the others' names
# and columns: additions, documented in docs/tables.md.
ADDITIONS: Final = frozenset({"db_connect"})
NAMES: Final = tuple(q.name for q in QUERIES)


def native_columns() -> dict[str, tuple[str, ...]]:
    """Native queries -> their output columns, in contract order."""
    return {q.name: q.columns for q in QUERIES if q.columns is not None}


def newer_agent_columns() -> dict[str, set[str]]:
    """Native queries -> output columns that rows of older agents lack (contract 2026-12-06: db_egress.status)."""
    return {q.name: set(q.newer_agent_columns) for q in QUERIES if q.newer_agent_columns}


def extension_queries() -> tuple[str, ...]:
    """Queries that select an extension table of their own name."""
    return tuple(q.name for q in QUERIES if q.columns is None)


def event_reads() -> tuple[str, ...]:
    """Every column the correlator reads of the event queries, sorted as osquery writes a row's columns.

    The fast path's typed decoder (correlate/jsonlib.EventColumns) has exactly these fields.
    """
    names = {q.time_column for q in QUERIES if q.kind == "event"}
    for q in QUERIES:
        if q.kind == "event":
            names.update(q.reads)
    return tuple(sorted(names))
