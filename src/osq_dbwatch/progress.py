"""One self-redrawing status line on standard error for long runs.

    progress = Progress("correlate", total_bytes=size, counter=lambda: runner.findings)  # size: int or a callable
    batch = progress.batch(batch)        # or: for item in progress.lines(iterable)
    ...
    progress.close()

It speaks only when standard error is a terminal: piped or redirected runs
(cron, CI, a SIEM shipper) see nothing, and their stderr stays the one-line
messages it always was. Nor when standard output is that same terminal: the
output itself shows the run going, and its lines would run into the status
line. When quiet it costs one attribute test per batch:
`batch()` and `lines()` hand back what they were given untouched.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self, TextIO, TypeVar

T = TypeVar("T")
REDRAW_SECONDS = 0.25
CHECK_EVERY = 4096  # lines between two looks at the clock


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover - the loop returns


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


def _same_terminal(a: object, b: object) -> bool:
    """Both streams write to one terminal: output lines would run into the status line, and show progress anyway."""
    if not (_is_terminal(a) and _is_terminal(b)):
        return False
    try:
        sa, sb = os.fstat(a.fileno()), os.fstat(b.fileno())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False
    return (sa.st_rdev, sa.st_ino) == (sb.st_rdev, sb.st_ino)


class Progress:
    """Bytes and lines read, lines per second and a counter (findings, chains ...) so far."""

    def __init__(self, command: str, *, total_bytes: int | Callable[[], int | None] | None = None,
                 counter: Callable[[], int] | None = None,
                 counter_name: str = "findings", unit: str = "lines", stream: TextIO | None = None,
                 enabled: bool | None = None, check_every: int = CHECK_EVERY) -> None:
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = _is_terminal(self.stream) and not _same_terminal(sys.stdout, self.stream)
        self.active = bool(enabled)
        self.command = command
        if callable(total_bytes):  # worked out only when there is a terminal to show it
            try:
                total_bytes = total_bytes() if self.active else None
            except (OSError, ValueError):
                total_bytes = None
        self.total_bytes: int | None = total_bytes or None
        self.counter = counter
        self.counter_name = counter_name
        self.unit = unit
        self.check_every = check_every
        self.bytes = 0
        self.count = 0
        self.start = time.monotonic()
        self.last_draw = self.start
        self.drawn = False
        self._above: _Above | None = None
        if self.active and stream is None:
            # A message printed meanwhile (a skipped line) clears the status line first
            # and stands above it; the status is drawn again at the next redraw.
            self._above = _Above(self, sys.stderr)
            sys.stderr = self._above

    # -- hooks ---------------------------------------------------------------

    def add(self, items: int = 1, nbytes: int = 0) -> None:
        """Count items (and bytes) read; redraw when it is time."""
        if not self.active:
            return
        self.count += items
        self.bytes += nbytes
        now = time.monotonic()
        if now - self.last_draw >= REDRAW_SECONDS:
            self.draw(now)

    def lines(self, items: Iterable[T]) -> Iterator[T] | Iterable[T]:
        """`items` counted as they pass: lines as bytes, or (number, bytes) pairs as the log reader yields them."""
        if not self.active:
            return items
        return self._counted(items)

    def _counted(self, items: Iterable[T]) -> Iterator[T]:
        pending_lines = pending_bytes = 0
        check_every = self.check_every
        try:
            for item in items:
                data: Any = item[1] if isinstance(item, tuple) else item
                pending_lines += 1
                pending_bytes += len(data) + 1 if isinstance(data, (bytes, str)) else 0
                if pending_lines >= check_every:
                    self.add(pending_lines, pending_bytes)
                    pending_lines = pending_bytes = 0
                yield item
        finally:  # also when the consumer stops early (the correlator ends a batch at its host limit)
            self.add(pending_lines, pending_bytes)

    def batch(self, batch: Any) -> Any:
        """A log reader batch (a dataclass with a `lines` iterator) whose lines are counted."""
        if not self.active:
            return batch
        return dataclasses.replace(batch, lines=self._counted(batch.lines))

    # -- output ----------------------------------------------------------------

    def status(self, now: float | None = None) -> str:
        elapsed = max((now if now is not None else time.monotonic()) - self.start, 1e-6)
        parts = []
        if self.total_bytes:
            pct = min(100.0, 100.0 * self.bytes / self.total_bytes)
            parts.append(f"{pct:.0f}% of {human_bytes(self.total_bytes)}")
        elif self.bytes:
            parts.append(human_bytes(self.bytes))
        parts.append(f"{self.count:,} {self.unit}")
        parts.append(f"{self.count / elapsed:,.0f}/s")
        if self.counter is not None:
            parts.append(f"{self.counter():,} {self.counter_name}")
        return f"{self.command}: " + ", ".join(parts)

    def draw(self, now: float | None = None) -> None:
        if not self.active:
            return
        self.last_draw = time.monotonic() if now is None else now
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns or 80  # a new pty says 0
        except (AttributeError, ValueError, OSError):
            width = 80
        # \r and erase-to-end-of-line redraw in place; never wider than the terminal (no wrapping).
        self.stream.write("\r" + self.status(now)[: max(10, width - 1)] + "\x1b[K")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """The final figures stay on their own line."""
        if not self.active:
            return
        self.draw()
        self.stream.write("\n")
        self.stream.flush()
        self.active = False
        if self._above is not None and sys.stderr is self._above:
            sys.stderr = self.stream
        self._above = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Above:
    """Standard error while a status line is shown: writes clear the status line first."""

    def __init__(self, progress: Progress, real: TextIO) -> None:
        self._progress = progress
        self._real = real

    def write(self, text: str) -> int:
        if self._progress.drawn and text:
            self._real.write("\r\x1b[K")
            self._progress.drawn = False
        return self._real.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)
