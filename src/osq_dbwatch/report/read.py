"""Findings lines from files and standard input (the I/O edge of the report).

Files are opened without following a symlink and must be regular files or
pipes; a line longer than MAX_LINE_BYTES is skipped unread. Bad lines are
counted and the first few reported with file and line number, as the
correlator does.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..correlate.jsonlib import JSONError, loads_line
from ..progress import Progress
from .model import Latest, Loaded, NotAFinding

MAX_LINE_BYTES = 16 << 20
MAX_MESSAGES = 20


class ReadError(Exception):
    """An input that cannot be read; str() is one line."""


def _open(path: str) -> BinaryIO:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise ReadError(f"{path}: is a symbolic link (not followed)") from None
        raise ReadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        os.close(fd)
        raise ReadError(f"{path}: not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _lines(handle: BinaryIO) -> Iterator[bytes | None]:
    """Lines without their newline; None for one over the size bound (skipped unread)."""
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = handle.readline(MAX_LINE_BYTES)
            yield None
            continue
        yield line.rstrip(b"\r\n")


def read_findings(inputs: list[str], latest: Latest, warn: Callable[[str], None] | None = None,
                  progress: Progress | None = None) -> Loaded:
    """Every finding in `inputs` ("-" is standard input) into `latest`; counts of what was read."""
    loaded = Loaded()
    messages = 0
    say = warn or (lambda text: print(f"osq-dbwatch report: {text}", file=sys.stderr))

    def bad(label: str, number: int, why: str) -> None:
        nonlocal messages
        loaded.skipped += 1
        messages += 1
        if messages <= MAX_MESSAGES:
            say(f"{label}:{number}: skipped: {why}")
        elif messages == MAX_MESSAGES + 1:
            say("further skipped lines are only counted")

    handles: list[tuple[str, BinaryIO]] = []
    try:
        for path in inputs:
            handles.append(("-", sys.stdin.buffer) if path == "-" else (path, _open(path)))
        if progress is not None:
            sizes: list[int | None] = []
            for _, handle in handles:
                st = os.fstat(handle.fileno())
                sizes.append(st.st_size if stat.S_ISREG(st.st_mode) else None)
            progress.total_bytes = sum(s for s in sizes if s is not None) if None not in sizes else None
        for label, handle in handles:
            lines = _lines(handle)
            number = 0
            for line in (progress.lines(lines) if progress is not None else lines):
                number += 1
                loaded.lines += 1
                if line is None:
                    bad(label, number, f"line longer than {MAX_LINE_BYTES >> 20} MiB")
                    continue
                if not line.strip():
                    continue
                try:
                    obj = loads_line(line)
                except JSONError:
                    bad(label, number, "not JSON")
                    continue
                except RecursionError:
                    bad(label, number, "not JSON (nested too deep)")
                    continue
                try:
                    latest.add(obj)
                except NotAFinding as exc:
                    bad(label, number, str(exc))
                    continue
                loaded.findings += 1
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        for label, handle in handles:
            if label != "-":
                handle.close()
    return loaded
