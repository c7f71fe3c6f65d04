"""One self-redrawing status line on standard error for long runs.

    progress = Progress("correlate", total_bytes=size, counter=lambda: runner.findings)
    batch = progress.batch(batch)        # or: for item in progress.lines(iterable)
    ...
    progress.close()

It speaks only when standard error is a terminal: piped or redirected runs
(cron, CI, a SIEM shipper) see nothing, and their stderr stays the one-line
messages it always was. When quiet it costs one attribute test per batch:
`batch()` and `lines()` hand back what they were given untouched.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, Callable, Iterable, Iterator, TextIO, TypeVar

T = TypeVar("T")
REDRAW_SECONDS = 0.25
CHECK_EVERY = 4096  # lines between two looks at the clock


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover - the loop returns


class Progress:
    """Bytes and lines read, lines per second and a counter (findings, chains ...) so far."""

    def __init__(self, command: str, *, total_bytes: int | None = None, counter: Callable[[], int] | None = None,
                 counter_name: str = "findings", unit: str = "lines", stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError, OSError):
                enabled = False
        self.active = bool(enabled)
        self.command = command
        self.total_bytes = total_bytes
        self.counter = counter
        self.counter_name = counter_name
        self.unit = unit
        self.bytes = 0
        self.count = 0
        self.start = time.monotonic()
        self.last_draw = self.start
        self.drawn = False

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
        try:
            for item in items:
                data: Any = item[1] if isinstance(item, tuple) else item
                pending_lines += 1
                pending_bytes += len(data) + 1 if isinstance(data, (bytes, str)) else 0
                if pending_lines >= CHECK_EVERY:
                    self.add(pending_lines, pending_bytes)
                    pending_lines = pending_bytes = 0
                yield item
        finally:  # also when the consumer stops early (the correlator ends a batch at its host limit)
            self.add(pending_lines, pending_bytes)

    def batch(self, batch: T) -> T:
        """A log reader batch (a dataclass with a `lines` iterator) whose lines are counted."""
        if not self.active:
            return batch
        return dataclasses.replace(batch, lines=self._counted(batch.lines))  # type: ignore[type-var]

    # -- output ----------------------------------------------------------------

    def status(self, now: float | None = None) -> str:
        elapsed = max((now if now is not None else time.monotonic()) - self.start, 1e-6)
        parts = []
        if self.bytes or self.total_bytes:
            read = human_bytes(self.bytes)
            if self.total_bytes:
                pct = min(100.0, 100.0 * self.bytes / self.total_bytes)
                read += f" of {human_bytes(self.total_bytes)} ({pct:.0f}%)"
            parts.append(read)
        parts.append(f"{self.count:,} {self.unit}")
        parts.append(f"{self.count / elapsed:,.0f} {self.unit}/s")
        if self.counter is not None:
            parts.append(f"{self.counter():,} {self.counter_name}")
        return f"osq-dbwatch {self.command}: " + ", ".join(parts)

    def draw(self, now: float | None = None) -> None:
        if not self.active:
            return
        self.last_draw = time.monotonic() if now is None else now
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns
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

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
