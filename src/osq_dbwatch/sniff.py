"""Dump content signatures from at most the first 4 KiB of a file, read safely.

The extension runs as root in directories attackers write to, so a file is
opened only if it is a regular file reached without following a symlink:
O_NOFOLLOW | O_NONBLOCK (a FIFO never blocks the open), then fstat must say
S_ISREG before a single byte is read. Devices, sockets and FIFOs are never
read; an lstat before the open keeps us from even opening a device node.
"""

from __future__ import annotations

import errno
import os
import re
import stat as stat_mod
import struct

HEAD_BYTES = 4096

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_NOATIME = getattr(os, "O_NOATIME", 0)  # leave atime alone for the forensics that may follow


def open_regular(path: str, dir_fd: int | None = None) -> tuple[int, os.stat_result] | None:
    """An fd on `path` when it is a regular file and not a symlink; None otherwise."""
    try:
        before = os.lstat(path, dir_fd=dir_fd)
    except OSError:
        return None
    if not stat_mod.S_ISREG(before.st_mode):
        return None
    fd = -1
    for flags in (_OPEN_FLAGS | _NOATIME, _OPEN_FLAGS):
        try:
            fd = os.open(path, flags, dir_fd=dir_fd)
            break
        except OSError as exc:
            if exc.errno == errno.EPERM and flags & _NOATIME:
                continue  # O_NOATIME needs ownership or CAP_FOWNER
            return None
    if fd < 0:
        return None
    try:
        after = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    # Swapped between lstat and open (for a FIFO, a device, another file): refuse.
    if not stat_mod.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        return None
    return fd, after


def read_head_as(path: str, expected: os.stat_result, limit: int = HEAD_BYTES, dir_fd: int | None = None) -> bytes | None:
    """read_head for a file already lstat'ed as regular (a directory walk's entry).

    Saves the second lstat; the fstat after the open must still show the same
    regular file, so a swap for a FIFO, device or symlink in between is refused.
    """
    fd = -1
    for flags in (_OPEN_FLAGS | _NOATIME, _OPEN_FLAGS):
        try:
            fd = os.open(path, flags, dir_fd=dir_fd)
            break
        except OSError as exc:
            if exc.errno == errno.EPERM and flags & _NOATIME:
                continue
            return None
    if fd < 0:
        return None
    try:
        after = os.fstat(fd)
        if not stat_mod.S_ISREG(after.st_mode) or after.st_ino != expected.st_ino or after.st_dev != expected.st_dev:
            return None
        return os.pread(fd, limit, 0)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_head(path: str, limit: int = HEAD_BYTES, dir_fd: int | None = None) -> bytes | None:
    """The first `limit` bytes of a regular file, or None (not regular, symlink, unreadable)."""
    opened = open_regular(path, dir_fd)
    if opened is None:
        return None
    fd, _ = opened
    try:
        return os.pread(fd, limit, 0)
    except OSError:
        return None
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# Signatures (pure)

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PGDMP", "pg_dump_custom"),
    (b"REDIS", "redis_rdb"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"PK\x03\x04", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x04\x22\x4d\x18", "lz4"),
)
# Indexed by first byte: one dict probe decides whether any magic can apply.
_MAGIC_BY_FIRST: dict[int, tuple[tuple[bytes, str], ...]] = {}
for _magic, _kind in _MAGIC:
    _MAGIC_BY_FIRST[_magic[0]] = (*_MAGIC_BY_FIRST.get(_magic[0], ()), (_magic, _kind))

# Text signatures as one bytes regex (no decoding); the earliest match names the kind.
_TEXT = re.compile(
    rb"""^(?:
        (?P<pg_dumpall>--\s*PostgreSQL\ database\ cluster\ dump)
      | (?P<pg_dump_plain>--\s*PostgreSQL\ database\ dump)
      | (?P<mysqldump>--\s*(?:MySQL|MariaDB)\ dump\ \d|/\*M?!\d{5}\s+SET\s)
      | (?P<pg_copy>COPY\s+[\w."]+(?:\s*\([^)\n]*\))?\s+FROM\s+stdin;)
      | (?P<sql_create_table>\s*CREATE\s+TABLE\s)
      | (?P<sql_insert>\s*INSERT\s+INTO\s)
      | (?P<mongo_json>\{\s*"_id"\s*:\s*\{\s*"\$oid")
    )""",
    re.MULTILINE | re.IGNORECASE | re.VERBOSE,
)

_BSON_TYPES = frozenset(range(0x01, 0x14)) | {0x7F, 0xFF}


def _looks_bson(head: bytes) -> bool:
    """A BSON document: int32 length, then a typed element with a C-string name."""
    if len(head) < 8:
        return False
    length: int = struct.unpack_from("<i", head, 0)[0]
    if not 5 <= length <= 16 * 1024 * 1024 or head[4] not in _BSON_TYPES:
        return False
    end = head.find(b"\x00", 5, 5 + 128)
    if end <= 5:
        return False
    name = head[5:end]
    if not all(32 < ch < 127 for ch in name):
        return False
    return length > len(head) or head[length - 1] == 0


_DELIMITERS = (b",", b"\t", b";", b"|")
# A CSV/TSV header names columns; a line of data or JSON does not look like this.
_HEADER_CELL = re.compile(rb"[A-Za-z_][\w .()#/-]{0,63}")


def _looks_csv(head: bytes) -> bool:
    """A header line and at least one record with the same number of delimiters."""
    lines = [line for line in head.split(b"\n", 6)[:6] if line.strip()]
    if len(lines) < 2 or len(lines[0]) > 2000:
        return False
    for delim in _DELIMITERS:
        count = lines[0].count(delim)
        if count < 1:
            continue
        # the last line may be cut by the 4 KiB bound
        body = lines[1:-1] if len(lines) > 2 else lines[1:]
        if body and all(line.count(delim) == count for line in body):
            header = [cell.strip().strip(b'"') for cell in lines[0].split(delim)]
            if all(_HEADER_CELL.fullmatch(cell) for cell in header):
                return True
    return False


# Kinds that show database content (not just compression or packing).
DUMP_KINDS = frozenset({
    "pg_dump_custom", "pg_dump_plain", "pg_dumpall", "mysqldump", "pg_copy", "sql_create_table",
    "sql_insert", "mongo_json", "bson", "redis_rdb", "sqlite", "csv",
})


def sniff_bytes(head: bytes) -> str:
    """The dump/archive kind the first bytes show, or "" when none."""
    if not head:
        return ""
    for magic, kind in _MAGIC_BY_FIRST.get(head[0], ()):
        if head.startswith(magic):
            return kind
    if head[257:262] == b"ustar":
        return "tar"
    if b"\x00" in head:
        return "bson" if _looks_bson(head) else ""
    match = _TEXT.search(head)
    if match is not None and match.lastgroup:
        return match.lastgroup
    if _looks_csv(head):
        return "csv"
    return ""


# A file of read-only SQL statements: a query someone keeps (a pack's queries, a report script), no data.
_SQL_COMMENTS = re.compile(rb"--[^\n]*|/\*.*?\*/", re.DOTALL)
_QUERY_VERBS = frozenset({b"select", b"with", b"explain", b"show", b"describe", b"desc", b"pragma"})
_TEMPLATE_LEAD = re.compile(rb"\{\{[\w:.-]{1,64}\}\}")  # a query template's placeholder for its SELECT part


def _first_word(statement: bytes) -> bytes:
    lead = _TEMPLATE_LEAD.match(statement)
    return b"select" if lead else statement.split(None, 1)[0].lower()


def is_query_file(head: bytes, size: int) -> bool:
    """True when the whole file (`size` bytes, all of them in `head`) is read-only SQL queries.

    Only a file read to its end qualifies, so a dump cannot hide behind a
    query at its top; and a file whose every statement starts with SELECT
    (or WITH, EXPLAIN, SHOW, ..., or a template's `{{placeholder}}` for one)
    carries no table data. Text only: NUL
    bytes, psql meta-commands and data statements all say "not a query file".
    """
    if not head or size != len(head) or size > HEAD_BYTES or b"\x00" in head:
        return False
    statements = [part.strip() for part in _SQL_COMMENTS.sub(b" ", head).split(b";")]
    statements = [part for part in statements if part]
    return bool(statements) and all(_first_word(part) in _QUERY_VERBS for part in statements)


def sniff_file(path: str, dir_fd: int | None = None) -> str:
    """Kind by content of a regular file ("" when none, or when it is not safely readable)."""
    head = read_head(path, HEAD_BYTES, dir_fd)
    return sniff_bytes(head) if head else ""
