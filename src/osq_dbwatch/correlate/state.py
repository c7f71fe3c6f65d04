"""The correlator's state: one SQLite file (stdlib sqlite3, WAL).

Tables:
- positions: per input file, the offset and line number to resume from and
  the file's first bytes (to notice rotation or replacement);
- hosts: per host, the engine's HostState as JSON (pending chains, recent
  files, connections and pids, admins, baseline, emitted finding severities);
- outputs: per --output file, its size after the last committed batch.

The runner writes everything a batch changed in ONE transaction after the
batch's findings were written and flushed. A run killed before the commit
restarts from the previous commit, truncates the --output file back to the
committed size and produces the same batch again, so the output equals one
uninterrupted run's output exactly.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Iterator

from ..cli import DbwatchError
from .engine import HostState
from .jsonlib import dumps as _dumps
from .jsonlib import loads as _loads
from .logread import Position

SCHEMA_VERSION = "1"


def default_state_path() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "osq-dbwatch", "state.sqlite")


class StateStore:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(
                """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS positions (source TEXT PRIMARY KEY, offset INTEGER NOT NULL,
                    line INTEGER NOT NULL, head BLOB NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS hosts (host TEXT PRIMARY KEY, watermark INTEGER NOT NULL, state BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS outputs (path TEXT PRIMARY KEY, size INTEGER NOT NULL);
                """
            )
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise DbwatchError(f"{path}: state schema {row[0]} is not {SCHEMA_VERSION}; move the file away to start afresh")
        except (sqlite3.Error, OSError) as exc:
            raise DbwatchError(f"{path}: cannot open state: {exc}") from None
        self._in_tx = False

    # -- reads ----------------------------------------------------------------

    def position(self, source: str) -> Position | None:
        row = self.db.execute("SELECT offset, line, head, dev, ino FROM positions WHERE source = ?", (source,)).fetchone()
        if row is None:
            return None
        return Position(row[0], row[1], bytes(row[2]), row[3], row[4])

    def load_host(self, host: str) -> HostState | None:
        row = self.db.execute("SELECT state FROM hosts WHERE host = ?", (host,)).fetchone()
        if row is None:
            return None
        try:
            return HostState.from_json(_loads(row[0]))
        except (ValueError, KeyError, TypeError):
            return None  # a damaged row: start that host afresh rather than stop the run

    def hosts(self) -> Iterator[HostState]:
        for (blob,) in self.db.execute("SELECT state FROM hosts ORDER BY host"):
            try:
                yield HostState.from_json(_loads(blob))
            except (ValueError, KeyError, TypeError):
                continue

    def watermark(self) -> int:
        """The newest event time seen over all hosts."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'watermark'").fetchone()
        return int(row[0]) if row else 0

    def put_watermark(self, value: int) -> None:
        self.begin()
        self.db.execute("INSERT INTO meta VALUES ('watermark', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (str(value),))

    def output_size(self, path: str) -> int | None:
        row = self.db.execute("SELECT size FROM outputs WHERE path = ?", (path,)).fetchone()
        return None if row is None else int(row[0])

    # -- the batch transaction ----------------------------------------------------

    def begin(self) -> None:
        if not self._in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def put_host(self, state: HostState) -> None:
        self.begin()
        self.db.execute(
            "INSERT INTO hosts (host, watermark, state) VALUES (?, ?, ?) "
            "ON CONFLICT(host) DO UPDATE SET watermark = excluded.watermark, state = excluded.state",
            (state.host, state.watermark, _dumps(state.to_json())),
        )

    def put_position(self, source: str, pos: Position) -> None:
        self.begin()
        self.db.execute(
            "INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET "
            "offset = excluded.offset, line = excluded.line, head = excluded.head, dev = excluded.dev, ino = excluded.ino",
            (source, pos.offset, pos.line, pos.head, pos.dev, pos.ino),
        )

    def put_output_size(self, path: str, size: int) -> None:
        self.begin()
        self.db.execute("INSERT INTO outputs VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET size = excluded.size", (path, size))

    def expire_hosts(self, before: int) -> int:
        """Forget hosts silent since `before` (event time); returns how many."""
        self.begin()
        cursor = self.db.execute("DELETE FROM hosts WHERE watermark < ?", (before,))
        return cursor.rowcount

    def commit(self) -> None:
        if self._in_tx:
            self.db.execute("COMMIT")
            self._in_tx = False

    def close(self) -> None:
        try:
            if self._in_tx:
                self._in_tx = False
                self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # closing after a failed transaction: nothing to keep
        self.db.close()
