"""db_client_history: entries of database client history files of local users.

Every home from /etc/passwd (deduplicated) is opened as a directory and each
history file relative to it with O_NOFOLLOW, then checked to be a regular
file (sniff.open_regular): a `~/.psql_history` symlinked to /etc/shadow
yields nothing. Only the last MAX_FILE_BYTES of a file are read and each
entry is cut to MAX_LINE_CHARS before redaction.
"""

from __future__ import annotations

import os
import re
import stat as stat_mod
from collections.abc import Iterable, Iterator

from .. import catalog, sniff
from ..catalog import HistorySource
from ..cmdline import redact_cmdline, sql_dump_intent
from .base import BIGINT, INTEGER, TEXT, Deadline, QueryContext, Row, Table

MAX_FILE_BYTES = 1 << 20
MAX_LINE_CHARS = 16384  # read per entry before redaction
MAX_COMMAND_OUT = 4096
MAX_ROWS = 200_000
TIME_BUDGET_S = 5.0
LIBEDIT_HEADER = "_HiStOrY_V2_"


# The history files of every engine's clients, from the catalog (the correlator
# names a file's client with catalog.history_source_for, from the same records).
HISTORY_SOURCES: tuple[HistorySource, ...] = catalog.HISTORY_SOURCES

_OCTAL = re.compile(r"\\([0-7]{3})")


def decode_octal(line: str) -> str:
    """libedit's history escapes: \\040 is a space, \\134 a backslash."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), line) if "\\" in line else line


def read_tail(fd: int, size: int, limit: int = MAX_FILE_BYTES) -> tuple[bytes, bool]:
    """The last `limit` bytes from a whole line on, and whether the start was cut."""
    if size <= limit:
        return os.pread(fd, limit, 0), False
    data = os.pread(fd, limit, size - limit)
    cut = data.find(b"\n")
    return (data[cut + 1 :] if cut >= 0 else b""), True


def parse_history(data: bytes, octal: bool) -> Iterator[tuple[int, str]]:
    """(line number, entry) for each non-empty entry."""
    text = data.decode("utf-8", "surrogateescape")
    for number, line in enumerate(text.split("\n"), start=1):
        if number == 1 and line.strip() == LIBEDIT_HEADER:
            octal = True
            continue
        line = line.rstrip("\r")
        if not line.strip():
            continue
        line = line[:MAX_LINE_CHARS]
        yield number, decode_octal(line) if octal else line


def _open_dir(name: str, dir_fd: int | None) -> int | None:
    # The home itself and everything inside it are opened without following a
    # final symlink (a home or ~/.mongosh linked elsewhere yields nothing).
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError:
        return None


class DbClientHistory(Table):
    name = "db_client_history"
    description = "Database client history entries (psql, mysql, mongosh, redis-cli, sqlite3) of every local user."
    COLUMNS = (
        ("uid", BIGINT, "uid of the home's user"),
        ("user", TEXT, "user name"),
        ("file", TEXT, "history file"),
        ("file_mtime", BIGINT, "history file's last modification, seconds since the epoch"),
        ("line", BIGINT, "line number (from the start of the read tail when from_tail = 1)"),
        ("from_tail", INTEGER, "1 when the file exceeded the read bound and only its tail was read"),
        ("command", TEXT, "history entry, secrets redacted, at most 4 KiB"),
        ("engine", TEXT, "engine of the client that wrote the file"),
        ("dump_like", INTEGER, "1 when the entry writes data out (\\copy to, INTO OUTFILE, mongoexport-like, SAVE ...)"),
        ("intent", TEXT, "the dump intent found"),
        ("output_path", TEXT, "output file the entry names"),
    )

    def generate(self, ctx: QueryContext) -> Iterable[Row]:
        accounts = self.env.accounts()
        want_uids = ctx.int_equals("uid")
        want_users = set(ctx.equals("user"))
        deadline = Deadline(TIME_BUDGET_S)
        rows: list[Row] = []
        seen_homes: set[tuple[int, int]] = set()
        for user in accounts.users:
            if want_uids is not None and user.uid not in want_uids:
                continue
            if want_users and user.name not in want_users:
                continue
            if not user.home.startswith("/") or deadline.expired() or len(rows) >= MAX_ROWS:
                continue
            home_fd = _open_dir(user.home, None)
            if home_fd is None:
                continue
            try:
                st = os.fstat(home_fd)
                if (st.st_dev, st.st_ino) in seen_homes:
                    continue
                seen_homes.add((st.st_dev, st.st_ino))
                for source in HISTORY_SOURCES:
                    for path, entry_rows in self._source(home_fd, user.home, source, deadline):
                        for row in entry_rows:
                            row.update(uid=user.uid, user=user.name, file=path)
                            rows.append(row)
                            if len(rows) >= MAX_ROWS:
                                break
            finally:
                os.close(home_fd)
        return rows

    def _source(self, home_fd: int, home: str, source: HistorySource,
                deadline: Deadline) -> Iterator[tuple[str, list[Row]]]:
        base = home.rstrip("/")
        if deadline.expired():
            return
        if not source.suffix:
            rows = self._file(source.path, home_fd, source, deadline)
            if rows is not None:
                yield f"{base}/{source.path}", rows
            return
        dir_fd = home_fd
        opened: list[int] = []
        try:
            for part in source.path.split("/"):
                fd = _open_dir(part, dir_fd)
                if fd is None:
                    return
                opened.append(fd)
                dir_fd = fd
            try:
                names = sorted(n for n in os.listdir(dir_fd) if n.endswith(source.suffix))
            except OSError:
                return
            for name in names[:64]:
                rows = self._file(name, dir_fd, source, deadline)
                if rows is not None:
                    yield f"{base}/{source.path}/{name}", rows
        finally:
            for fd in opened:
                os.close(fd)

    @staticmethod
    def _file(name: str, dir_fd: int, source: HistorySource, deadline: Deadline) -> list[Row] | None:
        opened = sniff.open_regular(name, dir_fd=dir_fd)
        if opened is None:
            return None  # absent, a symlink, a FIFO, a device: nothing of it
        fd, st = opened
        try:
            if not stat_mod.S_ISREG(st.st_mode):
                return None
            data, from_tail = read_tail(fd, st.st_size)
        except OSError:
            return None
        finally:
            os.close(fd)
        rows: list[Row] = []
        for number, entry in parse_history(data, source.octal):
            if deadline.expired():
                break  # a file of huge hostile lines must not hold osquery past its patience
            intent = sql_dump_intent(entry)
            rows.append({
                "file_mtime": int(st.st_mtime),
                "line": number,
                "from_tail": from_tail,
                # as a command line: a client's shell escape (psql `\\! mysqldump -pX`, mysql
                # `system ...`) carries a command, and redact_cmdline applies redact_text too
                "command": redact_cmdline(entry)[:MAX_COMMAND_OUT],
                "engine": source.engine,
                "dump_like": intent is not None,
                "intent": intent.intent if intent else "",
                "output_path": intent.path if intent else "",
            })
        return rows
