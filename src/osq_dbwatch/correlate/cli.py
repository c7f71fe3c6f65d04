"""`osq-dbwatch correlate`: the I/O around the pure engine (contract section 2).

    osq-dbwatch correlate [--config FILE] [--state FILE] [--format ocsf|ecs]
                          [--output FILE] [--follow] [LOG ...]

Reads lines in batches, hands each host's rows to the engine, writes the
findings, then commits offsets and host states in one SQLite transaction.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sqlite3
import sys
import time
from collections import OrderedDict
from typing import Any, BinaryIO, Callable

from ..cli import DbwatchError
from ..config import load_config
from ..progress import Progress
from .engine import Engine, HostState
from .findings import Finding, to_ecs, to_ocsf
from .logread import Batch, FileSource, InputError, StdinSource
from .fastpath import FastPath
from .jsonlib import dumps
from .rows import BadLine, parse_line
from .state import StateStore, default_state_path


def _line(obj: dict[str, Any]) -> bytes:
    return dumps(obj) + b"\n"


DEFAULT_BATCH_LINES = 1_000_000  # a commit saves every host the batch touched: fewer, larger batches cost less
MAX_BAD_LINE_MESSAGES = 200
HOST_CACHE = 4096  # host states kept in memory (and at most this many touched per batch); the rest live in SQLite
POLL_SECONDS = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="policy config (default /etc/osq-dbwatch/config.yml when present)")
    parser.add_argument("--state", metavar="FILE", help=f"state file (default {default_state_path()})")
    parser.add_argument("--format", choices=("ocsf", "ecs"), default="ocsf", help="finding format (default ocsf)")
    parser.add_argument("--output", metavar="FILE", help="append findings to FILE (default standard output)")
    parser.add_argument("--follow", action="store_true", help="keep reading as the logs grow, across rotation")
    parser.add_argument("logs", nargs="*", metavar="LOG", help="osquery results logs; none or - reads standard input")


class _Output:
    """Findings out: a file we can roll back to the last commit, or stdout."""

    def __init__(self, path: str | None, store: StateStore) -> None:
        self.path = os.path.abspath(path) if path else None
        self.store = store
        if self.path is None:
            self.handle: BinaryIO = sys.stdout.buffer
            return
        try:
            self.handle = open(self.path, "ab")  # noqa: SIM115
        except OSError as exc:
            raise DbwatchError(f"{path}: cannot write output: {exc.strerror or exc}") from None
        committed = store.output_size(self.path)
        size = os.fstat(self.handle.fileno()).st_size
        if committed is not None and size > committed:
            # Findings of a batch whose state never committed: they come again.
            self.handle.truncate(committed)
        elif committed is None or size < committed:
            # First use of this output (what is there is not ours), or rotated by someone.
            store.put_output_size(self.path, size)

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()

    def record(self) -> None:
        if self.path is not None:
            self.store.put_output_size(self.path, self.handle.tell())

    def close(self) -> None:
        if self.path is not None:
            self.handle.close()


class Runner:
    def __init__(self, engine: Engine, store: StateStore, output: _Output, render: Callable[[Finding], dict[str, Any]]) -> None:
        self.engine = engine
        self.store = store
        self.output = output
        self.render = render
        self.cache: OrderedDict[str, HostState] = OrderedDict()
        self.lines = 0
        self.bad = 0
        self.findings = 0
        self.evictions = 0
        self.messages = 0
        self.watermark = store.watermark()
        self.dirty: dict[str, HostState] = {}
        self.evictions_before: dict[str, int] = {}
        self.fast = FastPath(engine)
        self.label = ""  # the batch's input, for messages
        self.fast.open_host = self._open_host

    def _bad(self, label: str, line: int, reason: str) -> None:
        self.bad += 1
        if self.messages < MAX_BAD_LINE_MESSAGES:
            self.messages += 1
            print(f"osq-dbwatch correlate: {label}:{line}: skipped: {reason}", file=sys.stderr)
        elif self.messages == MAX_BAD_LINE_MESSAGES:
            self.messages += 1
            print("osq-dbwatch correlate: further skipped lines are only counted", file=sys.stderr)

    def _host(self, host: str) -> HostState:
        state = self.cache.get(host)
        if state is not None:
            self.cache.move_to_end(host)
            return state
        state = self.store.load_host(host) or HostState(host)
        self.cache[host] = state
        return state

    def _open_host(self, host: str) -> HostState:
        """A host's state, entered in this batch's dirty set."""
        self.dirty[host] = state = self._host(host)
        self.evictions_before[host] = state.evictions
        return state

    def _full_path(self, number: int, data: bytes | None) -> None:
        """A line the fast path declined: parsed in full, or skipped and counted with the reason."""
        if data is None:
            self._bad(self.label, number, "line longer than 1 MiB")
            return
        try:
            parsed = parse_line(data)
        except BadLine as exc:
            if data.strip():
                self._bad(self.label, number, str(exc))
            return
        for problem in parsed.problems:
            self._bad(self.label, number, problem)
        rows = parsed.rows
        if rows:
            host = rows[0].host
            self.engine.step(self.dirty.get(host) or self._open_host(host), rows)

    def batch(self, batch: Batch, source: FileSource | StdinSource) -> None:
        # Rows go to their host's engine state line by line (no batch of rows is
        # held in memory); findings come out per host at the end of the batch.
        # The common lines take the fast path (fastpath.py); the rest, and
        # every bad line, the full one.
        dirty: dict[str, HostState] = {}
        self.dirty = dirty
        self.evictions_before = {}
        self.fast.dirty = dirty
        self.label = batch.label
        # A flood of host names ends the batch early (deterministically): at most HOST_CACHE hosts a commit.
        count = self.fast.feed(batch.lines, self._full_path, HOST_CACHE)
        self.lines += count
        evictions_before = self.evictions_before
        write = self.output.write
        for host, state in dirty.items():
            findings = self.engine.flush(state)
            self.evictions += state.evictions - evictions_before[host]
            for finding in findings:
                write(_line(self.render(finding)))
            self.findings += len(findings)
            if state.watermark > self.watermark:
                self.watermark = state.watermark
        self.output.flush()
        # One transaction: host states, the input position, the output size.
        for state in dirty.values():
            self.store.put_host(state)
        if isinstance(source, FileSource):
            self.store.put_position(os.path.abspath(source.path), source.position())
        self.output.record()
        self.store.put_watermark(self.watermark)
        self.store.commit()
        while len(self.cache) > HOST_CACHE:
            self.cache.popitem(last=False)


def _batch_lines() -> int:
    # Tests use small batches to kill a run between many commits.
    try:
        value = int(os.environ.get("OSQ_DBWATCH_BATCH_LINES", DEFAULT_BATCH_LINES))
    except ValueError:
        value = DEFAULT_BATCH_LINES
    return max(1, value)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except sqlite3.Error as exc:  # e.g. another correlator holds the state file
        raise DbwatchError(f"{args.state or default_state_path()}: state: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    # Host states are trees of dicts, lists and tuples without cycles: the young generation is
    # swept (short-lived cycles go there), the older ones practically never (each sweep of them
    # would re-scan every host state).
    gc.set_threshold(1_000_000, 1000, 1000)
    logs: list[str] = []
    for log in args.logs or ["-"]:
        if log == "-" or os.path.abspath(log) not in (os.path.abspath(x) for x in logs if x != "-"):
            logs.append(log)  # a file named twice is read once
    if logs.count("-") > 1:
        raise DbwatchError("standard input given more than once")
    store = StateStore(args.state or default_state_path())
    sources: list[FileSource | StdinSource] = []
    try:
        for log in logs:
            if log == "-":
                sources.append(StdinSource(follow=args.follow))
            else:
                sources.append(FileSource(log, store.position(os.path.abspath(log)), args.follow))
    except InputError as exc:
        for source in sources:
            source.close()
        store.close()
        raise DbwatchError(str(exc)) from None
    output = _Output(args.output, store)
    # Hosts silent for five state_expiry periods (event time) are forgotten:
    # by then their chains, findings and baseline entries have all expired.
    store.expire_hosts(store.watermark() - 5 * config.correlator.state_expiry_seconds)
    store.commit()
    runner = Runner(Engine(config), store, output, to_ecs if args.format == "ecs" else to_ocsf)
    progress = Progress("correlate", counter=lambda: runner.findings, total_bytes=lambda: None if args.follow else sum(
        os.fstat(s.handle.fileno()).st_size - s.position().offset for s in sources if isinstance(s, FileSource)))
    batch_lines = _batch_lines()
    stop = False

    def _stop(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    if args.follow:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    try:
        if not args.follow:
            for source in sources:
                while (batch := source.next_batch(batch_lines)) is not None:
                    runner.batch(progress.batch(batch), source)
        else:
            while not stop:
                progressed = False
                for source in sources:
                    if stop:
                        break
                    batch = source.next_batch(batch_lines)
                    if batch is None:
                        batch = source.check_rotation()
                    if batch is not None:
                        runner.batch(progress.batch(batch), source)
                        progressed = True
                if not progressed:
                    if all(isinstance(s, StdinSource) and s.eof for s in sources):
                        break
                    time.sleep(POLL_SECONDS)
    except InputError as exc:
        raise DbwatchError(str(exc)) from None
    finally:
        progress.close()
        for source in sources:
            source.close()
        output.close()
        store.close()
    if runner.bad or runner.evictions:
        print(
            f"osq-dbwatch correlate: {runner.lines} lines, {runner.bad} skipped, {runner.findings} findings, "
            f"{runner.evictions} pending chains evicted (correlator.max_pending_per_host)",
            file=sys.stderr,
        )
    return 0
