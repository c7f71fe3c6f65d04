"""Lines from results logs and standard input, with resumable positions.

A position is (offset, line number, head): `head` is the file's first bytes
(up to 64) when we last read it. On resume, a file whose head no longer
matches, or that is now shorter than the offset, is a different file (rotated,
truncated or replaced) and is read from the start.

Batches end at a multiple of `batch_lines` or when no more data is available
right now. For a file that is not growing the boundaries therefore depend on
the file alone, which is what makes a killed-and-restarted run emit exactly
what one uninterrupted run emits.

`--follow` keeps reading as the file grows and survives rotation:
- by rename (logrotate's default): the open handle is read to its end, then
  the new file at the path is opened from offset 0;
- by copytruncate: when the file shrinks, the rotated copy (`PATH.1`,
  `PATH-*`, ...) whose head matches is read from our offset first, so lines
  written between our last read and the truncation are not lost.
"""

from __future__ import annotations

import glob
import itertools
import os
import time
from dataclasses import dataclass
from typing import BinaryIO, Iterator

MAX_LINE_BYTES = 1 << 20
HEAD_BYTES = 64
ROTATE_GRACE = 1.0  # seconds the old file must be quiet after a rename before we switch
_BLOCK = 1 << 20


class InputError(Exception):
    """An input that cannot be read; str() is one line."""


@dataclass(frozen=True)
class Position:
    offset: int = 0
    line: int = 0
    head: bytes = b""
    dev: int = 0
    ino: int = 0


@dataclass
class Batch:
    """Lines up to the next boundary, read lazily (a batch is never held whole in memory).

    After `lines` is exhausted, the source's position() is where the next batch starts.
    """

    label: str  # file name as given, or "-" for standard input
    lines: Iterator[tuple[int, bytes | None]]  # (line number, bytes); None = over the size bound


def _primed(label: str, gen: Iterator[tuple[int, bytes | None]]) -> Batch | None:
    first = next(gen, None)
    if first is None:
        return None
    return Batch(label, itertools.chain((first,), gen))


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
                yield self.line, buf[start:end]

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


def _read_head(handle: BinaryIO) -> bytes:
    here = handle.tell()
    handle.seek(0)
    head = handle.read(HEAD_BYTES)
    handle.seek(here)
    return head


class FileSource:
    """One results log file, read from a saved position."""

    def __init__(self, path: str, start: Position | None, follow: bool) -> None:
        self.label = path
        self.path = path
        self.follow = follow
        try:
            self.handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - kept open while following
            st = os.fstat(self.handle.fileno())
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if not _is_regular_or_fifo(st.st_mode):
            self.handle.close()
            raise InputError(f"{path}: not a regular file")
        self.dev, self.ino = st.st_dev, st.st_ino
        self.head = _read_head(self.handle)
        offset, line = 0, 0
        if start is not None and start.offset <= st.st_size and start.head and self.head.startswith(start.head[: len(self.head)]) and (
            len(start.head) <= len(self.head)
        ):
            offset, line = start.offset, start.line
        self.handle.seek(offset)
        self.split = _Splitter(offset, line)
        self.eof = False
        self.closed = False
        self.rotated_at: float | None = None

    def position(self) -> Position:
        return Position(self.split.buffer_offset, self.split.line, self.head, self.dev, self.ino)

    def _fill(self) -> bool:
        data = self.handle.read(_BLOCK)
        if len(self.head) < HEAD_BYTES and (data or self.split.buffer_offset == 0):
            self.head = _read_head(self.handle)
        if not data:
            return False
        self.split.feed(data)
        return True

    def next_batch(self, batch_lines: int) -> Batch | None:
        """The next batch, or None when nothing new is available now."""
        return _primed(self.label, self._batch_lines(batch_lines))

    def _batch_lines(self, batch_lines: int) -> Iterator[tuple[int, bytes | None]]:
        any_line = False
        while True:
            want = batch_lines - (self.split.line % batch_lines)  # lines up to the next boundary
            for item in self.split.lines(want):
                any_line = True
                yield item
            if any_line and self.split.line % batch_lines == 0:
                return
            if not self._fill():
                if not self.follow:
                    tail = self.split.tail()
                    if tail is not None:
                        yield tail
                    self.eof = True
                return

    def check_rotation(self) -> Batch | None:
        """In follow mode, after EOF: notice rename or copytruncate rotation.

        Returns lines recovered from the rotated file, if any.
        """
        try:
            st = os.stat(self.path)
        except OSError:
            return None  # rotated away and not recreated yet: keep waiting
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            # Renamed away. The writer may still append to the old file until it
            # reopens the path: keep reading the old handle until it has been
            # quiet for ROTATE_GRACE seconds, then switch.
            rest = self.next_batch(1 << 30)
            if rest is not None or self.rotated_at is None:
                self.rotated_at = time.monotonic()
                return rest
            if time.monotonic() - self.rotated_at < ROTATE_GRACE:
                return None
            self.rotated_at = None
            tail = self.split.tail()  # the old file is finished: a last line without newline counts
            if tail is not None:
                return Batch(self.label, iter([tail]))
            self._reopen(0, 0)
            return None
        if st.st_size < self.split.buffer_offset or (st.st_size and not self._head_matches()):
            recovered = self._read_rotated_copy()
            self._reopen(0, 0 if recovered is None else recovered[1])
            if recovered is not None:
                return recovered[0]
        return None

    def _head_matches(self) -> bool:
        try:
            with open(self.path, "rb") as handle:
                now = handle.read(len(self.head))
        except OSError:
            return True
        return now == self.head[: len(now)] or len(now) < len(self.head) and self.head.startswith(now)

    def _read_rotated_copy(self) -> tuple[Batch, int] | None:
        """Lines past our offset in the copy logrotate made before truncating."""
        candidates = [p for p in glob.glob(glob.escape(self.path) + ".*") + glob.glob(glob.escape(self.path) + "-*")
                      if not p.endswith((".gz", ".zst", ".xz", ".bz2"))]
        candidates.sort(key=lambda p: os.path.getmtime(p) if os.path.exists(p) else 0, reverse=True)
        offset = self.split.buffer_offset
        for candidate in candidates[:4]:
            try:
                with open(candidate, "rb") as handle:
                    if handle.read(len(self.head)) != self.head:
                        continue
                    handle.seek(offset)
                    data = handle.read()
            except OSError:
                continue
            split = _Splitter(offset, self.split.line)
            split.feed(data)
            lines = list(split.lines(1 << 30))
            tail = split.tail()
            if tail is not None:
                lines.append(tail)
            self.split = split
            return Batch(self.label, iter(lines)), split.line
        return None

    def _reopen(self, offset: int, line: int) -> None:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115
        except OSError:
            return
        self.handle.close()
        self.handle = handle
        st = os.fstat(handle.fileno())
        self.dev, self.ino = st.st_dev, st.st_ino
        self.head = _read_head(handle)
        handle.seek(offset)
        self.split = _Splitter(offset, line)

    def close(self) -> None:
        if not self.closed:
            self.handle.close()
            self.closed = True


class StdinSource:
    """Standard input: no position is saved (a pipe cannot be resumed)."""

    def __init__(self, fd: int = 0, follow: bool = False) -> None:
        self.label = "-"
        self.fd = fd
        self.split = _Splitter(0, 0)
        self.eof = False
        self.follow = follow  # live pipe: end a batch as soon as the buffered lines are used

    def next_batch(self, batch_lines: int) -> Batch | None:
        return _primed(self.label, self._batch_lines(batch_lines))

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
                raise InputError(f"standard input: cannot read: {exc.strerror or exc}") from None
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
        pass


def _is_regular_or_fifo(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)
