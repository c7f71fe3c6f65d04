"""Lines from results logs, FIFOs and standard input, with resumable positions.

A file is known by its identity: device and inode, and two fingerprints
(SHA-256 of its first bytes, and of the bytes just before the offset read so
far). A saved position is resumed only on the same file, and only while both
fingerprints still hold: a different file is never resumed at an old offset.

When the file at a path is not the one read before (renamed away by
logrotate, truncated by copytruncate, replaced), the old one is looked for
among the log's rotated siblings (`NAME.1`, `NAME.2`, `NAME-20261207`, ...)
and the other logs on the command line: by identity, or for a copytruncate
copy by its fingerprints. Its rest is read first, then any sibling written
since that was never read (a second rotation in between), then the new file
from the start. What was done is said on standard error.

Batches end at a multiple of `batch_lines` or when no more data is available
right now. For a file that is not growing the boundaries therefore depend on
the file alone, which is what makes a killed-and-restarted run emit exactly
what one uninterrupted run emits.

`--follow` keeps reading as the file grows and survives rotation: each new
file seen at the path is opened at once and queued behind the current one,
so any number of rotations within ROTATE_GRACE lose nothing; a renamed file
is read until it has been quiet for ROTATE_GRACE seconds (the writer may
still append to it until it reopens the path).

FIFOs and standard input are streams: read once, no position is kept.
Gzip-compressed logs (by their magic bytes) are read decompressed; their
position is an offset into the decompressed text. Character and block
devices are refused.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import re
import stat
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

MAX_LINE_BYTES = 1 << 20
FINGERPRINT_BYTES = 4096
ROTATE_GRACE = 1.0  # seconds a renamed file must be quiet before we leave it
_BLOCK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_SIBLING = re.compile(r"^(?:\.\d+|-[^/]+)$")  # NAME.1, NAME-20261207; compressed ones are skipped below
_SIBLING_GZ = re.compile(r"^(?:\.\d+|-[^/]+)\.gz$")  # NAME.1.gz: logrotate's compress
_COMPRESSED = (".gz", ".zst", ".xz", ".bz2", ".lz4", ".z")


class InputError(Exception):
    """An input that cannot be read; str() is one line."""


@dataclass(frozen=True)
class Position:
    """Where to resume one file, and how to know it is still that file."""

    offset: int = 0
    line: int = 0
    dev: int = 0
    ino: int = 0
    head: bytes = b""  # SHA-256 of the file's first head_len bytes
    head_len: int = 0
    mark: bytes = b""  # SHA-256 of the mark_len bytes before offset (empty for gzip)
    mark_len: int = 0
    path: str = ""  # the log (absolute path as named) this file was read as
    seen_at: float = 0.0  # wall time of the save


class PositionBook(Protocol):
    """Saved positions (the state store), looked up by identity or by the log's path."""

    def position_of(self, dev: int, ino: int) -> Position | None: ...

    def last_at(self, path: str) -> Position | None: ...


class _NoBook:
    def position_of(self, dev: int, ino: int) -> Position | None:
        return None

    def last_at(self, path: str) -> Position | None:
        return None


@dataclass
class Batch:
    """Lines up to the next boundary, read lazily (a batch is never held whole in memory).

    After `lines` is exhausted, `where()` is the position the next batch starts
    from (None for a stream).
    """

    label: str  # file name as given, or "-" for standard input
    lines: Iterator[tuple[int, bytes | None]]  # (line number, bytes); None = over the size bound
    where: Callable[[], Position | None] = field(default=lambda: None)


def _primed(label: str, gen: Iterator[tuple[int, bytes | None]], where: Callable[[], Position | None]) -> Batch | None:
    first = next(gen, None)
    if first is None:
        return None
    return Batch(label, itertools.chain((first,), gen), where)


class _Splitter:
    """Cuts a byte stream into lines, bounding line length.

    `pos` is how far into `buffer` lines were handed out, updated line by
    line, so a consumer may stop at any line and position() stays exact.
    """

    def __init__(self, offset: int, line: int) -> None:
        self.buffer = b""
        self.pos = 0
        self.buffer_offset = offset  # file offset of buffer[pos]
        self.line = line
        self.skipping = False  # inside an over-long line

    def feed(self, data: bytes) -> None:
        self.buffer = self.buffer[self.pos:] + data
        self.pos = 0

    def pending(self) -> int:
        return len(self.buffer) - self.pos

    def lines(self, budget: int) -> Iterator[tuple[int, bytes | None]]:
        """Complete lines in the buffer, at most `budget` of them."""
        buf = self.buffer
        while budget > 0:
            start = self.pos
            end = buf.find(b"\n", start)
            if end < 0:
                rest = len(buf) - start
                if self.skipping or rest > MAX_LINE_BYTES:
                    # Drop what we hold of an over-long line; its end is not a new line.
                    self.buffer, self.pos, buf = b"", 0, b""
                    self.buffer_offset += rest
                    if not self.skipping:
                        self.skipping = True
                        self.line += 1
                        yield self.line, None
                return
            self.pos = end + 1
            self.buffer_offset += end + 1 - start
            if self.skipping:
                self.skipping = False
                continue
            self.line += 1
            budget -= 1
            if end - start > MAX_LINE_BYTES:
                yield self.line, None
            else:
                line = buf[start:end]
                yield self.line, line

    def tail(self) -> tuple[int, bytes | None] | None:
        """The last line when it has no newline (end of a finished input)."""
        piece = self.buffer[self.pos:]
        self.buffer, self.pos = b"", 0
        self.buffer_offset += len(piece)
        if self.skipping:
            self.skipping = False
            return None
        if not piece:
            return None
        self.line += 1
        return self.line, piece if len(piece) <= MAX_LINE_BYTES else None


# -- fingerprints -----------------------------------------------------------------


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _pread(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size > 0:
        data = os.pread(fd, size, offset)
        if not data:
            break
        parts.append(data)
        size -= len(data)
        offset += len(data)
    return b"".join(parts)


def fingerprint(fd: int, offset: int, compressed: bool) -> tuple[bytes, int, bytes, int]:
    """(head hash, head length, mark hash, mark length) of a file read up to `offset`.

    The head covers what was read (for gzip: of the compressed bytes); the mark
    the bytes just before the offset, so a file that only shares its first
    line with the one read before does not pass.
    """
    head_len = FINGERPRINT_BYTES if compressed else min(FINGERPRINT_BYTES, offset)
    head = _pread(fd, head_len, 0)
    if compressed:
        return _hash(head), len(head), b"", 0
    mark_len = min(FINGERPRINT_BYTES, offset)
    return _hash(head), len(head), _hash(_pread(fd, mark_len, offset - mark_len)), mark_len


def verifies(fd: int, pos: Position, size: int, compressed: bool) -> bool:
    """Whether the open file still is the one `pos` was saved for (its identity aside)."""
    if pos.offset < 0 or pos.line < 0 or (not compressed and size < pos.offset):
        return False
    if pos.head_len and _hash(_pread(fd, pos.head_len, 0)) != pos.head:
        return False
    return not pos.mark_len or (
        pos.mark_len <= pos.offset and _hash(_pread(fd, pos.mark_len, pos.offset - pos.mark_len)) == pos.mark
    )


# -- one open file ------------------------------------------------------------------


class _Segment:
    """One open log file read from an offset: plain, or gzip-decompressed."""

    def __init__(self, label: str, handle: BinaryIO, st: os.stat_result, offset: int, line: int, logical: str) -> None:
        self.label = label
        self.handle = handle
        self.fd = handle.fileno()
        self.dev, self.ino = st.st_dev, st.st_ino
        self.logical = logical
        self.compressed = _pread(self.fd, 2, 0) == _GZIP_MAGIC
        self.reader: BinaryIO = handle
        if self.compressed:
            self.reader = gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[assignment]
        self.split = _Splitter(0, 0)
        self._seek(offset, line)
        self.done = False  # read to its end and left (or a file that will not grow)
        self.last_data = time.monotonic()
        self.superseded = False  # a newer file is at the log's path
        self.last_position: Position | None = None  # as of the last commit: what a truncation is noticed against

    def _seek(self, offset: int, line: int) -> None:
        try:
            self.reader.seek(offset)  # gzip: decompresses up to the offset
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{self.label}: damaged gzip data: {exc}") from None
        self.split = _Splitter(offset, line)

    def restart(self) -> None:
        """Read the file again from its start (it was truncated)."""
        self._seek(0, 0)
        self.last_data = time.monotonic()

    def identity(self) -> tuple[int, int]:
        return self.dev, self.ino

    def position(self) -> Position:
        offset = self.split.buffer_offset
        head, head_len, mark, mark_len = fingerprint(self.fd, offset, self.compressed)
        pos = Position(offset, self.split.line, self.dev, self.ino, head, head_len, mark, mark_len, self.logical, time.time())
        self.last_position = pos
        return pos

    def fill(self) -> bool:
        try:
            data = self.reader.read(_BLOCK)
        except (OSError, EOFError, zlib.error) as exc:
            if self.compressed:
                raise InputError(f"{self.label}: damaged gzip data: {exc}") from None
            # not compressed: only OSError (EOFError, zlib.error come from gzip)
            raise InputError(f"{self.label}: cannot read: {(exc.strerror if isinstance(exc, OSError) else None) or exc}") from None
        if not data:
            return False
        self.last_data = time.monotonic()
        self.split.feed(data)
        return True

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        if self.reader is not self.handle:
            self.reader.close()
        self.handle.close()


def _open_regular(path: str) -> tuple[BinaryIO, os.stat_result]:
    """A regular file opened for reading; InputError (one line) for anything else."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: cannot read: Is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: {_kind(st.st_mode)}, not a log file")
    try:
        # O_NONBLOCK: a FIFO swapped in after the stat must not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InputError(f"{path}: {_kind(st.st_mode)}, not a log file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb"), st


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "not a regular file"


def siblings(path: str, compressed: bool = False) -> list[str]:
    """The log's rotated siblings beside it: NAME.1, NAME.2, NAME-20261207, ... (or NAME.1.gz, ...)."""
    directory, name = os.path.split(path)
    try:
        entries = os.listdir(directory or ".")
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.startswith(name):
            continue
        rest = entry[len(name):]
        if (compressed and _SIBLING_GZ.match(rest)) or (
            not compressed and _SIBLING.match(rest) and not entry.lower().endswith(_COMPRESSED)
        ):
            found.append(os.path.join(directory, entry))
    return sorted(found)


def _gzip_verifies(handle: BinaryIO, pos: Position) -> bool:
    """Whether the text inside a gzip file is the file `pos` was saved for (decompresses up to its offset)."""
    if pos.mark_len == 0 and pos.head_len == 0:
        return False
    try:
        with gzip.GzipFile(fileobj=handle, mode="rb") as text:
            head = text.read(pos.head_len)
            if _hash(head) != pos.head:
                return False
            text.seek(pos.offset - pos.mark_len)
            return _hash(text.read(pos.mark_len)) == pos.mark
    except (OSError, EOFError, zlib.error, ValueError):
        return False
    finally:
        handle.seek(0)


@dataclass
class _Candidate:
    """A file that may hold lines of the log's past: a sibling or another named log."""

    path: str
    handle: BinaryIO | None
    st: os.stat_result
    named: bool  # given on the command line

    def verifies(self, pos: Position) -> bool:
        assert self.handle is not None
        compressed = _pread(self.handle.fileno(), 2, 0) == _GZIP_MAGIC
        return verifies(self.handle.fileno(), pos, self.st.st_size, compressed)


class FileSource:
    """One results log: the files that hold its lines, oldest first, read in turn.

    `plan()` (or a saved position given as `start`, the bench's form) decides
    where reading starts; `notes` holds what a user should be told about it.
    """

    def __init__(self, path: str, start: Position | None, follow: bool, book: PositionBook | None = None,
                 opened: tuple[BinaryIO, os.stat_result] | None = None) -> None:
        self.label = path
        self.path = path
        self.logical = os.path.abspath(path)
        self.follow = follow
        self.book: PositionBook = book or _NoBook()
        self.notes: list[str] = []
        self.closed = False
        handle, st = opened or _open_regular(path)
        offset, line = 0, 0
        if start is not None and (start.dev, start.ino) == (st.st_dev, st.st_ino) and verifies(
                handle.fileno(), start, st.st_size, _pread(handle.fileno(), 2, 0) == _GZIP_MAGIC):
            offset, line = start.offset, start.line
        self.segments: list[_Segment] = [self._segment(path, handle, st, offset, line)]
        self.seen_at_path = time.time()  # when the newest segment was last seen at the path

    def _segment(self, label: str, handle: BinaryIO, st: os.stat_result, offset: int, line: int) -> _Segment:
        try:
            return _Segment(label, handle, st, offset, line, self.logical)
        except InputError:
            handle.close()
            raise

    @property
    def current(self) -> _Segment:
        return self.segments[0]

    @property
    def newest(self) -> _Segment:
        return self.segments[-1]

    @property
    def handle(self) -> BinaryIO:  # the bench closes it
        return self.current.handle

    def position(self) -> Position:
        return self.current.position()

    # -- where to start: resume, or finish the old file first --------------------

    def plan(self, others: list[_Candidate]) -> list[str]:
        """Decide the files to read, oldest first, from the saved positions.

        `others` are the other logs on the command line; those taken into this
        log's past lose their handle to this source. Returns the paths taken.
        """
        seg = self.current
        saved = self.book.position_of(seg.dev, seg.ino)
        if saved is not None and verifies(seg.fd, saved, seg.size(), seg.compressed):
            if saved.offset or saved.line:
                seg._seek(saved.offset, saved.line)
                if saved.path and saved.path != self.logical:
                    self.notes.append(f"{self.path}: the file read before as {saved.path}: resuming after line {saved.line}")
            return []  # the same file: resume it
        last = self.book.last_at(self.logical)
        if last is None:
            return []  # a log not read before: nothing of its past to find
        taken: list[str] = []
        found = self._sibling_candidates(others)
        try:
            return self._plan_past(seg, last, [c for c in others if c.handle is not None] + found, taken)
        finally:
            for cand in found:
                if cand.handle is not None:
                    cand.handle.close()

    def _plan_past(self, seg: _Segment, last: Position, pool: list[_Candidate], taken: list[str]) -> list[str]:
        truncated = (last.dev, last.ino) == seg.identity()  # same inode, other content: copytruncate or rewrite
        old = next((c for c in pool if (c.st.st_dev, c.st.st_ino) == (last.dev, last.ino) and c.verifies(last)), None)
        if old is None and last.offset:
            # A copy of it (copytruncate's), known by its fingerprints.
            old = next((c for c in pool if (c.st.st_dev, c.st.st_ino) != seg.identity() and c.verifies(last)), None)
        if old is None and last.offset and last.mark_len:
            # Compressed by logrotate (a new inode): known by the fingerprints of the text inside.
            old = self._compressed_old(last)
        past: list[tuple[float, _Segment, str]] = []
        for cand in pool:
            ident = (cand.st.st_dev, cand.st.st_ino)
            if cand is old or ident == seg.identity():
                continue
            own = self.book.position_of(*ident)
            if own is not None and own.path == self.logical and cand.verifies(own):
                if cand.st.st_size > own.offset:  # read as this log before, not to its end
                    past.append((cand.st.st_mtime, self._take(cand, own.offset, own.line, taken), f"from line {own.line + 1}"))
            elif not cand.named and (own is None or not cand.verifies(own)) and cand.st.st_size and cand.st.st_mtime > last.seen_at:
                # Written since our last read and never read: a rotation in between.
                past.append((cand.st.st_mtime, self._take(cand, 0, 0, taken), "not read before"))
        past.sort(key=lambda item: item[0])
        parts = []
        first: list[_Segment] = []
        if old is not None:
            first.append(self._take(old, last.offset, last.line, taken))
            parts.append(f"the rest of {old.path} after line {last.line}")
        parts += [f"{segment.label} ({how})" for _, segment, how in past]
        parts.append(f"{self.path} from the start")
        what = "was truncated or rewritten since the last run" if truncated else "is not the file read before (rotated or replaced)"
        lost = ""
        if old is None and last.offset:
            lost = f"the old file was not found beside it, its lines after line {last.line} are not read; "
        self.notes.append(f"{self.path} {what}: {lost}reading {', then '.join(parts)}")
        self.segments = first + [segment for _, segment, _ in past] + [seg]
        return taken

    def _compressed_old(self, last: Position) -> _Candidate | None:
        for sib in siblings(self.path, compressed=True):
            try:
                handle, st = _open_regular(sib)
            except InputError:
                continue
            if _pread(handle.fileno(), 2, 0) == _GZIP_MAGIC and _gzip_verifies(handle, last):
                return _Candidate(sib, handle, st, False)
            handle.close()
        return None

    def _take(self, cand: _Candidate, offset: int, line: int, taken: list[str]) -> _Segment:
        handle = cand.handle
        assert handle is not None
        cand.handle = None  # moved into this log's files
        taken.append(cand.path)
        segment = self._segment(cand.path, handle, cand.st, offset, line)
        segment.superseded = True
        return segment

    def _sibling_candidates(self, others: list[_Candidate]) -> list[_Candidate]:
        known = {(c.st.st_dev, c.st.st_ino) for c in others}
        known.update(s.identity() for s in self.segments)
        found = []
        for sib in siblings(self.path):
            try:
                handle, st = _open_regular(sib)
            except InputError:
                continue
            if (st.st_dev, st.st_ino) in known:
                handle.close()
                continue
            known.add((st.st_dev, st.st_ino))
            found.append(_Candidate(sib, handle, st, False))
        return found

    # -- reading ----------------------------------------------------------------------

    def next_batch(self, batch_lines: int) -> Batch | None:
        """The next batch, or None when nothing new is available now."""
        if self.follow and len(self.segments) == 1:
            self._check_truncated()
        while True:
            seg = self.current
            batch = _primed(seg.label, self._batch_lines(seg, batch_lines), seg.position)
            if batch is not None:
                return batch
            if len(self.segments) > 1 and (not self.follow or self._quiet(seg)):
                self._drop_current()
                continue
            return None

    def _quiet(self, seg: _Segment) -> bool:
        # A file renamed away may still be written until its writer reopens the path.
        return seg.compressed or time.monotonic() - seg.last_data >= ROTATE_GRACE

    def _drop_current(self) -> None:
        self.segments.pop(0).close()

    def _batch_lines(self, seg: _Segment, batch_lines: int) -> Iterator[tuple[int, bytes | None]]:
        any_line = False
        split = seg.split
        finished = not self.follow or (len(self.segments) > 1 and seg is self.current) or seg.compressed
        while True:
            want = batch_lines - (split.line % batch_lines)  # lines up to the next boundary
            for item in split.lines(want):
                any_line = True
                yield item
            if any_line and split.line % batch_lines == 0:
                return
            if not seg.fill():
                if finished and (not self.follow or seg.compressed or self._quiet(seg)):
                    tail = split.tail()  # a finished file: its last line without newline counts
                    if tail is not None:
                        yield tail
                return

    def check_rotation(self) -> Batch | None:
        """In follow mode, after EOF: notice new files at the path and truncation.

        A new file at the path is opened at once and queued; lines it holds are
        read when the files before it are finished.
        """
        newest = self.newest
        try:
            st = os.stat(self.path)
        except OSError:
            return None  # rotated away and not recreated yet: keep reading the old file
        if (st.st_dev, st.st_ino) != newest.identity():
            try:
                handle, st = _open_regular(self.path)
            except InputError:
                return None
            if (st.st_dev, st.st_ino) == newest.identity():
                handle.close()
                return None
            known = {s.identity() for s in self.segments}
            between = []
            for cand in self._sibling_candidates([]):
                ident = (cand.st.st_dev, cand.st.st_ino)
                assert cand.handle is not None
                # A file written after we last saw ours at the path, not read before: a rotation we did not see.
                if ident not in known and cand.st.st_mtime > self.seen_at_path and self.book.position_of(*ident) is None:
                    between.append(cand)
                else:
                    cand.handle.close()
            between.sort(key=lambda c: c.st.st_mtime)
            for seg in self.segments:
                seg.superseded = True
            for cand in between:
                self.segments.append(self._take(cand, 0, 0, []))
            self.segments.append(self._segment(self.path, handle, st, 0, 0))
            extra = "".join(f", then {c.path} (not read before)" for c in between)
            self.notes.append(f"{self.path} was rotated: reading the old file to its end{extra}, then the new {self.path}")
            self.seen_at_path = time.time()
            return None
        self.seen_at_path = time.time()
        return None

    def _check_truncated(self) -> None:
        """Follow mode: the file at the path truncated in place (copytruncate) -> our rest from the copy, then it anew."""
        seg = self.current
        pos = seg.last_position
        if seg.compressed or pos is None or not pos.offset:
            return
        size = seg.size()
        if size >= pos.offset and verifies(seg.fd, pos, size, False):
            return
        copy = None
        for cand in self._sibling_candidates([]):
            assert cand.handle is not None
            if copy is None and cand.verifies(pos):
                copy = cand
            else:
                cand.handle.close()
        seg.restart()
        seg.last_position = None
        if copy is not None:
            self.segments.insert(0, self._take(copy, pos.offset, pos.line, []))
            self.notes.append(f"{self.path} was truncated (copytruncate): reading the rest of its copy {copy.path} "
                              f"after line {pos.line}, then {self.path} from the start")
        else:
            self.notes.append(f"{self.path} was truncated and no copy of it is beside it: reading it from the start "
                              f"(lines written after line {pos.line} before the truncation are not read)")

    def close(self) -> None:
        if not self.closed:
            for seg in self.segments:
                seg.close()
            self.closed = True


class StreamSource:
    """Standard input or a FIFO: read once, no position is saved (a pipe cannot be resumed)."""

    def __init__(self, fd: int = 0, follow: bool = False, label: str = "-") -> None:
        self.label = label
        self.fd = fd
        self.split = _Splitter(0, 0)
        self.eof = False
        self.follow = follow  # live pipe: end a batch as soon as the buffered lines are used
        self.notes: list[str] = []

    @classmethod
    def open_fifo(cls, path: str, follow: bool) -> StreamSource:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))  # waits for a writer, as `cat FIFO` does
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            raise InputError(f"{path}: changed while being opened")
        source = cls(fd, follow, path)
        source.notes.append(f"{path}: a FIFO, read as a stream: no position is kept, a later run reads what is written then")
        return source

    def next_batch(self, batch_lines: int) -> Batch | None:
        return _primed(self.label, self._batch_lines(batch_lines), lambda: None)

    def _batch_lines(self, batch_lines: int) -> Iterator[tuple[int, bytes | None]]:
        count = 0
        while count < batch_lines:
            for item in self.split.lines(batch_lines - count):
                count += 1
                yield item
            if count >= batch_lines or self.eof or (self.follow and count and not self.split.pending()):
                return
            try:
                data = os.read(self.fd, _BLOCK)
            except OSError as exc:
                name = "standard input" if self.label == "-" else self.label
                raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
            if not data:
                self.eof = True
                tail = self.split.tail()
                if tail is not None:
                    yield tail
                return
            self.split.feed(data)

    def check_rotation(self) -> Batch | None:
        return None

    def close(self) -> None:
        if self.label != "-":
            try:
                os.close(self.fd)
            except OSError:
                pass


StdinSource = StreamSource  # the name earlier code and tests use

Source = FileSource | StreamSource


def open_sources(paths: list[str], book: PositionBook, follow: bool) -> list[Source]:
    """The inputs, each a source; a log's rotated past taken into its source.

    Raises InputError (one line) for an input that cannot be read; sources
    opened so far are closed then.
    """
    opened: list[tuple[str, BinaryIO | None, os.stat_result | None]] = []
    try:
        for path in paths:
            if path == "-":
                opened.append((path, None, None))
                continue
            try:
                st = os.stat(path)
            except OSError as exc:
                raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
            if stat.S_ISFIFO(st.st_mode):
                opened.append((path, None, st))
                continue
            handle, st = _open_regular(path)
            if any(s is not None and h is not None and (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino) for _, h, s in opened):
                handle.close()  # the same file named twice (or by a link): read once
                continue
            opened.append((path, handle, st))
    except BaseException:
        for _, opened_handle, _ in opened:
            if opened_handle is not None:
                opened_handle.close()
        raise
    candidates = [_Candidate(p, h, s, True) for p, h, s in opened if h is not None and s is not None]
    by_path = {c.path: c for c in candidates}
    sources: list[Source] = []
    try:
        for path, opened_handle, opened_st in opened:
            if path == "-":
                sources.append(StreamSource(0, follow, "-"))
                continue
            if opened_handle is None:
                sources.append(StreamSource.open_fifo(path, follow))
                continue
            cand = by_path[path]
            if cand.handle is None:
                continue  # taken into another log's past
            cand.handle = None
            assert opened_st is not None
            file_source = FileSource(path, None, follow, book, (opened_handle, opened_st))
            sources.append(file_source)
            file_source.plan([c for c in candidates if c.handle is not None])
    except BaseException:
        for source in sources:
            source.close()
        for c in candidates:
            if c.handle is not None:
                c.handle.close()
        raise
    return sources
