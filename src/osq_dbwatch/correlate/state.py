"""The correlator's state: one SQLite file (stdlib sqlite3, WAL).

Tables:
- positions: per input file, known by its identity (device, inode), the
  offset and line number to resume from, fingerprints of the file (its first
  bytes and the bytes before the offset, as SHA-256), the log it was read as
  and when (logread.py decides from these what to read after a rotation);
- hosts: per host, the engine's HostState in a compact binary form (MessagePack
  of HostState.to_row(), with msgspec: a list, no field names), the host's
  watermark and its number of pending chains; rows written by earlier releases
  (schema 2: JSON, schema 3: MessagePack of to_json()) are read as they are
  and written back in today's form when their host changes;
- outputs: per --output file, its size after the last committed batch;
- meta: schema version, watermark (newest event time), findings emitted.

The runner writes everything a batch changed in ONE transaction after the
batch's findings were written and flushed. A run killed before the commit
restarts from the previous commit, truncates the --output file back to the
committed size and produces the same batch again, so the output equals one
uninterrupted run's output exactly.

The file and its -wal and -shm companions are opened without following
symbolic links, created 0600 and exclusively, and refused when someone other
than the user or root owns them or others can write them. A correlator holds
an exclusive lock (flock) on the file for its whole run.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import sqlite3
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

try:  # a core dependency; the correlator still runs on the stdlib alone (jsonlib.py), with JSON host rows
    import msgspec
except ImportError:
    msgspec = None  # type: ignore[assignment]

from ..cli import DbwatchError
from .engine import HostState
from .hoststate import encode_host, row_json
from .jsonlib import loads as _loads
from .logread import Position

SCHEMA_VERSION = "4"  # 4: host rows as lists (3: binary host rows of to_json() and hosts.pending; 2: JSON host rows)
MAX_POSITIONS = 10_000  # files remembered; the oldest are forgotten first
NONE = "none"  # --state none: a throw-away run, state in memory only
_MIGRATED_SEEN_AT = 1e18  # positions from schema 1 have no save time: no sibling counts as written since


_TABLES = (
    ("CREATE TABLE IF NOT EXISTS positions (dev INTEGER NOT NULL, ino INTEGER NOT NULL, path TEXT NOT NULL,"
     " offset INTEGER NOT NULL, line INTEGER NOT NULL, head BLOB NOT NULL, head_len INTEGER NOT NULL,"
     " mark BLOB NOT NULL, mark_len INTEGER NOT NULL, seen_at REAL NOT NULL, seq INTEGER NOT NULL,"
     " PRIMARY KEY (dev, ino))"),
    "CREATE INDEX IF NOT EXISTS positions_by_path ON positions (path, seq)",
    ("CREATE TABLE IF NOT EXISTS hosts (host TEXT PRIMARY KEY, watermark INTEGER NOT NULL, state BLOB NOT NULL,"
     " pending INTEGER NOT NULL DEFAULT 0)"),
    "CREATE TABLE IF NOT EXISTS outputs (path TEXT PRIMARY KEY, size INTEGER NOT NULL)",
)


_DECODE: Any = msgspec.msgpack.Decoder().decode if msgspec is not None else None
_UNPACK_ERRORS: tuple[type[Exception], ...] = (msgspec.DecodeError,) if msgspec is not None else ()


def decode_host(blob: bytes, ours: bool = False) -> HostState:
    """encode_host() undone; JSON rows of schema 2 too (they start with `{`, a MessagePack map never does),
    and MessagePack maps of to_json() (schema 3).

    Raises ValueError (or KeyError, TypeError, AttributeError) for a damaged row. `ours`: a blob this process
    packed itself (the runner's packed hosts): its shape is not checked again.
    """
    if blob[:1] == b"{":
        data = _loads(blob)
    elif _DECODE is None:
        raise ValueError("a binary row, and msgspec (which reads it) is not installed")
    else:
        try:
            data = _DECODE(blob)
        except _UNPACK_ERRORS as exc:
            raise ValueError(str(exc)) from None
        if type(data) is list:
            data = row_json(data)
    if not ours:
        problem = _shape_problem(data)
        if problem:
            raise ValueError(problem)
    return HostState.from_json(data)


def _blob(value: object) -> bytes:
    """A host row's state column as bytes (a TEXT value from an older or hand-edited file too)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise ValueError(f"a state column of type {type(value).__name__}")


def default_state_path() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "osq-dbwatch", "state.sqlite")


# -- private files --------------------------------------------------------------------


def check_private(fd: int, path: str) -> None:
    """Refuse (one line) a file that is not ours to trust: DbwatchError."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise DbwatchError(f"{path}: not a regular file")
    if st.st_uid not in (os.geteuid(), 0):
        raise DbwatchError(f"{path}: owned by uid {st.st_uid}, neither you nor root; refusing it")
    if st.st_mode & 0o022:
        raise DbwatchError(f"{path}: group or others can write it (mode {stat.S_IMODE(st.st_mode):04o}); "
                           f"refusing it (chmod go-w, or remove it)")
    if st.st_nlink > 1:
        raise DbwatchError(f"{path}: has {st.st_nlink} hard links; refusing it")


def check_directory(directory: str, what: str) -> None:
    """Refuse a directory where others could swap our files."""
    try:
        st = os.stat(directory)
    except OSError as exc:
        raise DbwatchError(f"{directory}: cannot use for {what}: {exc.strerror or exc}") from None
    if st.st_uid not in (os.geteuid(), 0) and st.st_mode & 0o022:
        raise DbwatchError(f"{directory}: owned by uid {st.st_uid} and writable by others; refusing it for {what}")
    if st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:
        raise DbwatchError(f"{directory}: anyone can write it and it has no sticky bit; refusing it for {what}")


def open_private(path: str, flags: int) -> tuple[int, bool]:
    """(fd, created): open `path` without following a symlink, or create it 0600 and exclusively.

    Refuses with one line a symlink, a file of someone else, or one others can write.
    """
    base = flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    created = False
    try:
        fd = os.open(path, base | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
    except FileExistsError:
        try:
            fd = os.open(path, base | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DbwatchError(f"{path}: is a symbolic link; refusing to follow it") from None
            raise DbwatchError(f"{path}: cannot open: {exc.strerror or exc}") from None
    except OSError as exc:
        raise DbwatchError(f"{path}: cannot create: {exc.strerror or exc}") from None
    try:
        check_private(fd, path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, created


def lock_holder(st: os.stat_result) -> int | None:
    """The pid holding a flock on this file, from /proc/locks (Linux); None when unknown."""
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            for row in handle:
                parts = row.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF" (blocked waiters have "->" after the number)
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == ident and parts[4].isdigit():
                    return int(parts[4])
    except OSError:
        pass
    return None


def _shape_problem(data: object) -> str:
    """What is wrong with the top level of a host row ('' when nothing): its fields' JSON types.

    Compiled, HostState.from_json checks types itself; pure Python would take a list for a
    dict and fail later, in the middle of a batch.
    """
    if type(data) is not dict:
        return f"a JSON {type(data).__name__}, not an object"
    for key, want in _field_types().items():
        if key in data and type(data[key]) is not want:
            return f"{key} is a JSON {type(data[key]).__name__}, not a {want.__name__}"
    return ""


_FIELD_TYPES: dict[str, type] = {}


def _field_types() -> dict[str, type]:
    """The JSON type of each top-level field of the state form (from an empty state, once)."""
    if not _FIELD_TYPES:
        _FIELD_TYPES.update({key: type(value) for key, value in HostState("").to_json().items()})
    return _FIELD_TYPES


class StateStore:
    def __init__(self, path: str, lock: bool = False, wait: bool = False, reset: bool = False) -> None:
        self.path = path
        self.lock_fd: int | None = None
        self.memory = path == NONE
        try:
            if self.memory:
                self.db = sqlite3.connect(":memory:", isolation_level=None)
            else:
                self._open_file(lock, wait)
            self._in_tx = False
            self._schema(reset)
            if not self.memory:
                self.validate()
        except sqlite3.Error as exc:
            self.close()
            raise DbwatchError(f"{path}: cannot open state: {exc}") from None
        except BaseException:
            self.close()
            raise

    def _open_file(self, lock: bool, wait: bool) -> None:
        path = self.path
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise DbwatchError(f"{directory}: cannot create state directory: {exc.strerror or exc}") from None
        check_directory(directory, "the state")
        fd, _ = open_private(path, os.O_RDWR)
        self.lock_fd = fd
        if lock:
            self._lock(fd, wait)
        # SQLite opens its companions itself (following links): have them exist as ours first.
        for suffix in ("-wal", "-shm", "-journal"):
            if suffix == "-journal" and not os.path.lexists(path + suffix):
                continue
            companion, _ = open_private(path + suffix, os.O_RDWR)
            os.close(companion)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
        # The path must still name the file we checked (no swap between the check and SQLite's open).
        now = os.stat(path)
        mine = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
            raise DbwatchError(f"{path}: replaced while being opened; refusing it")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")

    def _lock(self, fd: int, wait: bool) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = lock_holder(os.fstat(fd))
        who = f"process {holder}" if holder is not None else "another process"
        if not wait:
            raise DbwatchError(f"in use by {who} (another correlate run); use --wait to wait for it, "
                               f"or another --state")
        print(f"osq-dbwatch correlate: {self.path}: in use by {who}; waiting (--wait)", file=sys.stderr, flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _schema(self, reset: bool) -> None:
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        version = None if row is None else row[0]
        if version not in (None, "1", "2", "3", SCHEMA_VERSION):
            raise DbwatchError(f"state schema {version} is not {SCHEMA_VERSION}; move the file away to start afresh")
        db.execute("BEGIN IMMEDIATE")
        try:
            if version == "1":
                self._migrate_1(db)
            for statement in _TABLES:
                db.execute(statement)
            if version in ("1", "2"):
                self._migrate_2(db)
            db.execute("INSERT INTO meta VALUES ('schema', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       (SCHEMA_VERSION,))
            if reset:
                for table in ("positions", "hosts", "outputs"):
                    db.execute(f"DELETE FROM {table}")
                db.execute("DELETE FROM meta WHERE key != 'schema'")
            # Remember the newest files only.
            db.execute("DELETE FROM positions WHERE seq <= (SELECT max(seq) FROM positions) - ?", (MAX_POSITIONS,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @staticmethod
    def _migrate_1(db: sqlite3.Connection) -> None:
        """Schema 1 kept positions by path with the raw first 64 bytes: keep them, as fingerprints."""
        columns = [r[1] for r in db.execute("PRAGMA table_info(positions)")]
        if "source" not in columns:
            return
        old = db.execute("SELECT source, offset, line, head, dev, ino FROM positions ORDER BY rowid").fetchall()
        db.execute("DROP TABLE positions")
        db.execute(_TABLES[0])
        for seq, (source, offset, line, head, dev, ino) in enumerate(old, 1):
            head = bytes(head)
            db.execute("INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                       (dev, ino, source, offset, line, hashlib.sha256(head).digest(), len(head), b"",
                        _MIGRATED_SEEN_AT, seq))

    @staticmethod
    def _migrate_2(db: sqlite3.Connection) -> None:
        """Schema 2 rows are JSON and have no pending column: add it (the rows themselves stay as they are,
        decode_host() reads them, and a host is written back binary when it changes)."""
        columns = [r[1] for r in db.execute("PRAGMA table_info(hosts)")]
        if "pending" not in columns:
            db.execute("ALTER TABLE hosts ADD COLUMN pending INTEGER NOT NULL DEFAULT 0")
            db.execute("UPDATE hosts SET pending = 1 WHERE json_valid(CAST(state AS TEXT)) AND "
                       "json_extract(CAST(state AS TEXT), '$.chains') NOT IN ('{}', '[]')")

    def validate(self) -> None:
        """Refuse a damaged state with one line rather than misread it (and emit findings again)."""
        db = self.db

        def damaged(what: str) -> DbwatchError:
            return DbwatchError(f"{self.path}: damaged state ({what}); move it away, or start afresh with --reset "
                                f"(findings already emitted would then be emitted again)")

        for key in ("watermark", "findings"):
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None and not (isinstance(row[0], str) and row[0].isdigit()):
                raise damaged(f"{key} {str(row[0])[:40]!r} is not a number")
        bad = db.execute(
            "SELECT path FROM positions WHERE typeof(offset) != 'integer' OR offset < 0 OR typeof(line) != 'integer'"
            " OR line < 0 OR line > offset OR typeof(dev) != 'integer' OR typeof(ino) != 'integer'"
            " OR typeof(head_len) != 'integer' OR head_len < 0 OR typeof(mark_len) != 'integer' OR mark_len < 0"
            " OR mark_len > offset OR typeof(seen_at) NOT IN ('real', 'integer') LIMIT 1").fetchone()
        if bad is not None:
            raise damaged(f"position of {str(bad[0])[:200]!r}")
        bad = db.execute(
            "SELECT host FROM hosts WHERE typeof(host) != 'text' OR typeof(watermark) != 'integer' OR watermark < 0"
            " OR typeof(state) NOT IN ('blob', 'text') OR typeof(pending) != 'integer' OR length(state) = 0"
            " OR (substr(CAST(state AS BLOB), 1, 1) = X'7B' AND NOT json_valid(CAST(state AS TEXT)))"
            " LIMIT 1").fetchone()
        if bad is not None:
            raise damaged(f"host row {str(bad[0])[:100]!r}")
        bad = db.execute("SELECT path FROM outputs WHERE typeof(size) != 'integer' OR size < 0 LIMIT 1").fetchone()
        if bad is not None:
            raise damaged(f"output size of {str(bad[0])[:200]!r}")

    # -- reads ----------------------------------------------------------------

    def _position(self, row: tuple[Any, ...] | None) -> Position | None:
        # The column types were checked when the state was opened (check_state); the conversions stay as a guard.
        if row is None:
            return None
        dev, ino, path, offset, line, head, head_len, mark, mark_len, seen_at = row
        return Position(int(offset), int(line), int(dev), int(ino), bytes(head), int(head_len),
                        bytes(mark), int(mark_len), str(path), float(seen_at))

    _COLUMNS = "dev, ino, path, offset, line, head, head_len, mark, mark_len, seen_at"

    def position_of(self, dev: int, ino: int) -> Position | None:
        return self._position(self.db.execute(f"SELECT {self._COLUMNS} FROM positions WHERE dev = ? AND ino = ?",
                                              (dev, ino)).fetchone())

    def last_at(self, path: str) -> Position | None:
        """The file last read as the log `path`."""
        return self._position(self.db.execute(
            f"SELECT {self._COLUMNS} FROM positions WHERE path = ? ORDER BY seq DESC LIMIT 1", (path,)).fetchone())

    def load_host(self, host: str) -> HostState | None:
        row = self.db.execute("SELECT state FROM hosts WHERE host = ?", (host,)).fetchone()
        if row is None:
            return None
        return self.decode(host, row[0])

    def decode(self, host: str, blob: object) -> HostState:
        """A host row's state (bytes; a column value); one line naming the host when it is damaged."""
        try:
            state = decode_host(_blob(blob))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Starting the host afresh would emit its findings again: stop instead.
            raise DbwatchError(f"{self.path}: damaged state (host row {host[:100]!r}: {str(exc)[:100]}); move it away, "
                               f"or start afresh with --reset (findings already emitted would then be emitted again)") from None
        if state.host != host:
            raise DbwatchError(f"{self.path}: damaged state (host row {host[:100]!r} holds another host); move it away, "
                               f"or start afresh with --reset")
        return state

    def hosts(self) -> Iterator[HostState]:
        for (blob,) in self.db.execute("SELECT state FROM hosts ORDER BY host"):
            try:
                yield decode_host(_blob(blob))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue

    def _meta_int(self, key: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def watermark(self) -> int:
        """The newest event time seen over all hosts."""
        return self._meta_int("watermark")

    def findings(self) -> int:
        """Findings emitted with this state so far."""
        return self._meta_int("findings")

    def put_watermark(self, value: int) -> None:
        self._put_meta("watermark", value)

    def add_findings(self, count: int) -> None:
        if count:
            self._put_meta("findings", self.findings() + count)

    def _put_meta(self, key: str, value: int) -> None:
        self.begin()
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (key, str(value)))

    def output_size(self, path: str) -> int | None:
        row = self.db.execute("SELECT size FROM outputs WHERE path = ?", (path,)).fetchone()
        return None if row is None else int(row[0])

    # -- the batch transaction ----------------------------------------------------

    def begin(self) -> None:
        if not self._in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def put_host(self, state: HostState) -> None:
        self.put_packed(state.host, state.watermark, len(state.chains), encode_host(state))

    def put_packed(self, host: str, watermark: int, pending: int, blob: bytes) -> None:
        """A host's state already in its binary form (encode_host)."""
        self.begin()
        self.db.execute(
            "INSERT INTO hosts (host, watermark, state, pending) VALUES (?, ?, ?, ?) ON CONFLICT(host) DO UPDATE"
            " SET watermark = excluded.watermark, state = excluded.state, pending = excluded.pending",
            (host, watermark, blob, pending),
        )

    def put_many(self, rows: Iterable[tuple[str, int, int, bytes | bytearray]]) -> None:
        """put_packed() for many hosts in one statement: (host, watermark, pending, binary state)."""
        self.begin()
        self.db.executemany(
            "INSERT INTO hosts (host, watermark, pending, state) VALUES (?, ?, ?, ?) ON CONFLICT(host) DO UPDATE"
            " SET watermark = excluded.watermark, state = excluded.state, pending = excluded.pending", rows)

    def host_names(self) -> set[str]:
        """The hosts the state file holds (the runner asks the file only for these)."""
        return {name for (name,) in self.db.execute("SELECT host FROM hosts")}

    def bytes_on_disk(self) -> int:
        """The state file and its write-ahead log, in bytes (the bench's and the docs' figure)."""
        if self.memory:
            return 0
        return sum(os.path.getsize(self.path + s) for s in ("", "-wal") if os.path.exists(self.path + s))

    def put_position(self, pos: Position) -> None:
        self.begin()
        self.db.execute(
            f"INSERT INTO positions ({self._COLUMNS}, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " (SELECT coalesce(max(seq), 0) + 1 FROM positions)) ON CONFLICT(dev, ino) DO UPDATE SET"
            " path = excluded.path, offset = excluded.offset, line = excluded.line, head = excluded.head,"
            " head_len = excluded.head_len, mark = excluded.mark, mark_len = excluded.mark_len,"
            " seen_at = excluded.seen_at, seq = excluded.seq",
            (pos.dev, pos.ino, pos.path, pos.offset, pos.line, pos.head, pos.head_len, pos.mark, pos.mark_len,
             pos.seen_at or time.time()),
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
        db = getattr(self, "db", None)
        if db is not None:
            try:
                if getattr(self, "_in_tx", False):
                    self._in_tx = False
                    db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # closing after a failed transaction: nothing to keep
            db.close()
            self.db = None  # type: ignore[assignment]
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # releases the lock
            self.lock_fd = None
