"""`osq-dbwatch correlate`: the I/O around the pure engine (contract section 2).

    osq-dbwatch correlate [--config FILE] [--state FILE|none] [--format ocsf|ecs]
                          [--output FILE] [--follow] [--reset] [--wait]
                          [--min-severity LEVEL] [LOG ...]

Reads lines in batches, hands each host's rows to the engine, writes the
findings, then commits offsets and host states in one SQLite transaction.
Every run ends with a one-line summary on standard error.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

from ..cli import DbwatchError
from ..config import load_config
from ..progress import Progress
from .empty import check_shared
from .engine import Engine, HostState
from .fastpath import OTHER, FastPath
from .findings import SEVERITY_NAMES, Finding, to_ecs, to_ocsf
from .jsonlib import dumps
from .logread import Batch, FileSource, InputError, Source, StreamSource, open_sources
from .residents import ADMIN_GRACE, Residents
from .rows import QUERIES, BadLine
from .state import NONE, StateStore, check_directory, decode_host, default_state_path, open_private


def _line(obj: dict[str, Any]) -> bytes:
    return dumps(obj) + b"\n"


DEFAULT_BATCH_LINES = 1_000_000  # findings come out per batch; a batch ends at a fixed line count (exact restarts)
MAX_BAD_LINE_MESSAGES = 200
# Memory (issue 12). correlator.memory_mb less BASE_MB (what the process needs besides host states: 71 MB
# peak RSS measured at 500 hosts) holds host states in two forms: live (the engine's objects, HOST_BYTES each:
# the peak RSS per host over 500 hosts measured at 100,000 hosts with all of them live, so with their
# entries in the runner's tables; bench/bench_correlate.py --sweep, docs/benchmarks-hosts.md) and packed:
# hosts with nothing pending, least recently seen first, in their binary form (hoststate.encode_host, a few
# hundred bytes) until they are needed again. Over the budget the least recently seen idle live host is
# packed (down to a quarter of the live maximum); then the oldest packed hosts leave memory, written to the
# state file first (inside the open transaction) when they changed since the last commit. Empty tables and
# admin groups are shared between hosts (correlate/empty.py), so the default 256 MB holds 103,953 live hosts
# of the sweep's fleet and nothing is packed there.
BASE_MB = 72
HOST_BYTES = 1856
MIN_RESIDENT = 1024
# Commit cadence: at a batch's end, once COMMIT_SECONDS have passed since the last commit or the states
# waiting to be written hold about COMMIT_BYTES; and always at the end of the input. Only hosts changed
# since the last commit are written.
COMMIT_SECONDS = 5.0
COMMIT_BYTES = 64 << 20


def resident_budget(memory_mb: int) -> int:
    """Live host states that fit in `memory_mb` with nothing packed (OSQ_DBWATCH_RESIDENT_HOSTS overrides it:
    tests use small budgets); the budget in bytes is this many HOST_BYTES."""
    override = os.environ.get("OSQ_DBWATCH_RESIDENT_HOSTS", "")
    if override.isdigit() and int(override) > 0:
        return int(override)
    return max(MIN_RESIDENT, (memory_mb - BASE_MB) * (1 << 20) // HOST_BYTES)


POLL_SECONDS = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="policy config (default /etc/osq-dbwatch/config.yml when present)")
    parser.add_argument("--state", metavar="FILE",
                        help=f"state file (default {default_state_path()}); `none`: a throw-away run that keeps no state")
    parser.add_argument("--format", choices=("ocsf", "ecs"), default="ocsf", help="finding format (default ocsf)")
    parser.add_argument("--output", metavar="FILE", help="append findings to FILE (default standard output)")
    parser.add_argument("--follow", action="store_true", help="keep reading as the logs grow, across rotation")
    parser.add_argument("--reset", action="store_true",
                        help="forget what the state holds (positions, chains, baselines, emitted findings) and read afresh")
    parser.add_argument("--wait", action="store_true", help="wait for another run holding the state, instead of failing")
    parser.add_argument("--min-severity", metavar="LEVEL", type=_severity, default=1,
                        help="write only findings of this severity or above: " + ", ".join(
                            n.lower() for n in SEVERITY_NAMES.values()) + " (default informational: all)")
    parser.add_argument("logs", nargs="*", metavar="LOG", help="osquery results logs; none or - reads standard input")


def _severity(text: str) -> int:
    names = {name.lower(): number for number, name in SEVERITY_NAMES.items()}
    value = text.strip().lower()
    if value in names:
        return names[value]
    if value.isdigit() and int(value) in SEVERITY_NAMES:
        return int(value)
    raise argparse.ArgumentTypeError(f"{text!r} is not a severity ({', '.join(names)} or 1-5)")


OUTPUT_BUFFER = 1 << 20


class _Output:
    """Findings out: a file we can roll back to the last commit, or stdout.

    Written with os.write on our own descriptor (no Python buffer left to
    flush at exit), so a full disk or a closed pipe is one clear error.
    """

    def __init__(self, path: str | None, store: StateStore) -> None:
        self.path = os.path.abspath(path) if path else None
        self.label = path or "standard output"
        self.store = store
        self.pending = bytearray()
        self.fd: int | None = None
        self.stream = None
        if self.path is None:
            try:
                sys.stdout.flush()
                self.fd = sys.stdout.fileno()
            except (AttributeError, OSError, ValueError):
                self.stream = sys.stdout.buffer  # an in-process caller's stand-in for stdout
            return
        check_directory(os.path.dirname(self.path), "the output")
        fd, _ = open_private(self.path, os.O_WRONLY | os.O_APPEND)
        self.fd = fd
        committed = store.output_size(self.path)
        size = os.fstat(fd).st_size
        if committed is not None and size > committed:
            # Findings of a batch whose state never committed: they come again.
            os.ftruncate(fd, committed)
        elif committed is None or size < committed:
            # First use of this output (what is there is not ours), or rotated by someone.
            store.put_output_size(self.path, size)

    def write(self, data: bytes) -> None:
        self.pending += data
        if len(self.pending) >= OUTPUT_BUFFER:
            self.flush()

    def flush(self) -> None:
        data = memoryview(self.pending)
        try:
            if self.fd is None:
                assert self.stream is not None
                self.stream.write(data)
                self.stream.flush()
            else:
                while data:
                    data = data[os.write(self.fd, data):]
        except OSError as exc:
            if self.path is None:
                _quiet_stdout()
            if isinstance(exc, BrokenPipeError):
                raise
            raise DbwatchError(f"{self.label}: cannot write findings: {exc.strerror or exc}; the state was not "
                               f"advanced, so a run after fixing it writes them again") from None
        finally:
            data.release()
            self.pending.clear()

    def record(self) -> None:
        if self.path is not None and self.fd is not None:
            self.store.put_output_size(self.path, os.fstat(self.fd).st_size)

    def close(self) -> None:
        if self.path is not None and self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _quiet_stdout() -> None:
    """After a failed write to stdout: nothing more may reach it (the interpreter's exit flush would fail again)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class Counts:
    """Rows per recognised query and lines of other queries, for the summary.

    Counted where each line is read anyway, with no pass of its own: the fast path's route
    (FastPath.line, one row an event line, one a member of an admin_accounts snapshot) and the
    general path's parse (FastPath.general). Bad lines count as skipped, not here.
    """

    def __init__(self) -> None:
        self.rows: list[int] = [0] * (OTHER + 1)  # FastPath.counts: rows.QUERIES' positions, then OTHER

    def per_query(self) -> tuple[dict[str, int], int]:
        """(rows per recognised query in the contract's order, lines of other queries)."""
        rows = self.rows
        return {q: rows[i] for i, q in enumerate(QUERIES) if rows[i] > 0}, rows[OTHER]


class Runner:
    def __init__(self, engine: Engine, store: StateStore, output: _Output, render: Callable[[Finding], dict[str, Any]],
                 min_severity: int = 1, counts: Counts | None = None, resident: int = 0) -> None:
        self.engine = engine
        self.memory_mb = engine.settings.memory_mb
        self.min_severity = min_severity
        self.below = 0  # findings under --min-severity, not written
        self.counts = counts or Counts()
        self.store = store
        self.output = output
        self.render = render
        # The host states in memory (residents.py); this runner does their I/O.
        self.hosts = Residents(resident or resident_budget(self.memory_mb), HOST_BYTES, store.host_names(),
                               store.load_host, self._unpack, self._spill)
        self.hosts.watermark = store.watermark()
        self.hosts.check_admins = bool(engine.config.admin_groups)
        self.positions: list[Any] = []  # input positions reached since the last commit
        self.last_commit = time.monotonic()
        self.commit_seconds = _commit_seconds()
        self.lines = 0
        self.bad = 0
        self.findings = 0
        self.committed_findings = 0
        self.messages = 0
        self.fast = FastPath(engine)
        self.fast.counts = self.counts.rows
        self.label = ""  # the batch's input, for messages
        self.fast.open_host = self.hosts.open
        engine.sink = self._early  # findings of a host's many closing chains, before its flush

    @property
    def evictions(self) -> int:
        """Pending chains evicted in this run (correlator.max_pending_per_host)."""
        return self.engine.evicted

    def _bad(self, label: str, line: int, reason: str) -> None:
        self.bad += 1
        if self.messages < MAX_BAD_LINE_MESSAGES:
            self.messages += 1
            print(f"osq-dbwatch correlate: {label}:{line}: skipped: {reason}", file=sys.stderr)
        elif self.messages == MAX_BAD_LINE_MESSAGES:
            self.messages += 1
            print("osq-dbwatch correlate: further skipped lines are only counted", file=sys.stderr)

    @staticmethod
    def _unpack(blob: bytes) -> HostState:
        return decode_host(blob, ours=True)  # packed by this run: no shape check

    def _spill(self, host: str, watermark: int, blob: bytes) -> None:
        """A packed host leaves memory: written now, inside the transaction the next commit ends."""
        self.store.put_packed(host, watermark, 0, blob)

    def _early(self, state: HostState, findings: list[Finding]) -> None:
        """Findings the engine hands over before the host's flush (a flood of closing chains on one host)."""
        self.findings += self._write(findings)

    def _write(self, findings: list[Finding]) -> int:
        """Render and write findings at or above --min-severity; returns how many were written."""
        write = self.output.write
        written = 0
        for finding in findings:
            if finding.severity_id < self.min_severity:
                self.below += 1
                continue
            write(_line(self.render(finding)))
            written += 1
        return written

    def _full_path(self, number: int, data: bytes | None) -> None:
        """A line the fast path declined: the general path, or skipped and counted with the reason."""
        if data is None:
            self._bad(self.label, number, "line longer than 1 MiB")
            return
        try:
            parsed = self.fast.general(data)
        except BadLine as exc:
            if data.strip():
                self._bad(self.label, number, str(exc))
            return
        for problem in parsed.problems:
            self._bad(self.label, number, problem)

    def batch(self, batch: Batch) -> None:
        # Rows go to their host's engine state line by line (no batch of rows is
        # held in memory); findings come out per host at the end of the batch.
        # The common lines take the fast path (fastpath.py); the rest, and
        # every bad line, the full one.
        hosts = self.hosts
        dirty: dict[str, HostState] = {}
        hosts.dirty = dirty
        self.fast.dirty = dirty
        self.label = batch.label
        # A batch ends after its lines (a fixed count: a run restarted from a commit cuts the same batches), or
        # early when hosts with pending chains fill twice the live budget (then the commit stops the run).
        self.lines += self.fast.feed(batch.lines, self._full_path, 2 * hosts.resident)
        self.findings += hosts.end_batch(self.engine, self._write, self._no_admin_rows)
        self.output.flush()
        position = batch.where()
        if position is not None:
            self.positions.append(position)
        if (time.monotonic() - self.last_commit >= self.commit_seconds
                or len(hosts.unsaved) * HOST_BYTES >= COMMIT_BYTES):
            self.commit()
        else:
            self._check_pending()

    @property
    def unsaved(self) -> bool:
        """Hosts changed since the last commit."""
        return bool(self.hosts.unsaved)

    def commit(self) -> None:
        """One transaction: the hosts changed since the last commit, the input positions, the output size."""
        check_shared()
        self.store.put_many(self.hosts.unsaved_rows())
        for position in self.positions:
            self.store.put_position(position)
        self.positions.clear()
        self.output.record()
        self.store.put_watermark(self.hosts.watermark)
        self.store.add_findings(self.findings - self.committed_findings)
        self.committed_findings = self.findings
        self.store.commit()
        self.last_commit = time.monotonic()
        self._check_pending()

    @staticmethod
    def _no_admin_rows(host: str) -> None:
        """Warned once per host and run: its rows span ADMIN_GRACE of event time without an admin_accounts row."""
        print(f"osq-dbwatch correlate: host {host!r}: admins.groups is set, but no admin_accounts row arrived "
              f"in {ADMIN_GRACE // 3600} hours of its rows: its admins' database work is judged unusual "
              "(is the pack's admin_accounts query scheduled there?)", file=sys.stderr)

    def _check_pending(self) -> None:
        """Hosts with pending chains must fit the live budget: when they do not, commit and stop with one line
        (a run with a larger correlator.memory_mb carries on from the commit)."""
        hosts = self.hosts
        if len(hosts.cache) <= hosts.resident:
            return
        pending = hosts.pending_hosts()
        if pending <= hosts.resident:
            return
        if hosts.unsaved or self.positions:
            self.commit()
        need = BASE_MB + -(-5 * pending * HOST_BYTES // (4 << 20))  # the pending hosts and a quarter more
        raise DbwatchError(f"correlator.memory_mb {self.memory_mb} holds {hosts.resident} live host states, but "
                           f"{pending} hosts have pending chains; raise "
                           f"correlator.memory_mb to at least {max(need, self.memory_mb + 1)} "
                           f"(the state is saved up to here)")


def _commit_seconds() -> float:
    """COMMIT_SECONDS; OSQ_DBWATCH_COMMIT_SECONDS overrides it, and tests that set small batches
    (OSQ_DBWATCH_BATCH_LINES) to kill a run between many commits get a commit after every batch."""
    value = os.environ.get("OSQ_DBWATCH_COMMIT_SECONDS")
    if value is None:
        return 0.0 if os.environ.get("OSQ_DBWATCH_BATCH_LINES") else COMMIT_SECONDS
    try:
        return max(0.0, float(value))
    except ValueError:
        return COMMIT_SECONDS


def _batch_lines() -> int:
    # Tests use small batches to kill a run between many commits.
    try:
        value = int(os.environ.get("OSQ_DBWATCH_BATCH_LINES", DEFAULT_BATCH_LINES))
    except ValueError:
        value = DEFAULT_BATCH_LINES
    return max(1, value)


def run(args: argparse.Namespace) -> int:
    state = args.state or default_state_path()
    try:
        return _run(args, state)
    except sqlite3.Error as exc:  # e.g. another program holds the state file, or the disk is full
        raise DbwatchError(f"{state}: state: {exc}") from None


def _logs(args: argparse.Namespace) -> list[str]:
    logs: list[str] = []
    for log in args.logs or ["-"]:
        if log == "-" or os.path.abspath(log) not in (os.path.abspath(x) for x in logs if x != "-"):
            logs.append(log)  # a file named twice is read once
    if logs.count("-") > 1:
        raise DbwatchError("standard input given more than once")
    return logs


def _run(args: argparse.Namespace, state_path: str) -> int:
    config = load_config(args.config)
    # Host states are trees of dicts, lists and tuples without cycles: the young generation is
    # swept (short-lived cycles go there), the older ones practically never (each sweep of them
    # would re-scan every host state).
    gc.set_threshold(1_000_000, 1000, 1000)
    logs = _logs(args)
    store = StateStore(state_path, lock=True, wait=args.wait, reset=args.reset)
    try:
        counts = Counts()
        sources = open_sources(logs, store, args.follow)
    except InputError as exc:
        store.close()
        raise DbwatchError(str(exc)) from None
    for source in sources:
        _say(source)
    try:
        output = _Output(args.output, store)
    except BaseException:
        for source in sources:
            source.close()
        store.close()
        raise
    # Hosts silent for five state_expiry periods (event time) are forgotten:
    # by then their chains, findings and baseline entries have all expired.
    store.expire_hosts(store.watermark() - 5 * config.correlator.state_expiry_seconds)
    store.commit()
    earlier = store.findings()
    start_watermark = store.watermark()
    starts = {id(s): s.position() for s in sources if not isinstance(s, StreamSource)}
    runner = Runner(Engine(config), store, output, to_ecs if args.format == "ecs" else to_ocsf, args.min_severity, counts)
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
                    runner.batch(progress.batch(batch))
        else:
            _follow(sources, runner, batch_lines, lambda: stop, progress)
        runner.commit()
    except InputError as exc:
        raise DbwatchError(str(exc)) from None
    finally:
        progress.close()
        for source in sources:
            source.close()
        output.close()
        store.close()
    print(f"osq-dbwatch correlate: {_summary(runner, sources, earlier, state_path)}", file=sys.stderr)
    hint = _already_read(runner, sources, starts, earlier, start_watermark, state_path)
    if hint:
        print(f"osq-dbwatch correlate: {hint}", file=sys.stderr)
    return 0


def _say(source: Source) -> None:
    """What a source did that a user should know (rotation, truncation, streams), on stderr."""
    for note in source.notes:
        print(f"osq-dbwatch correlate: {note}", file=sys.stderr, flush=True)
    source.notes.clear()


def _follow(sources: list[Source], runner: Runner, batch_lines: int, stopped: Callable[[], bool],
            progress: Progress) -> None:
    while not stopped():
        progressed = False
        for source in sources:
            if stopped():
                break
            batch = source.next_batch(batch_lines)
            if batch is None:
                batch = source.check_rotation()
            _say(source)
            if batch is not None:
                runner.batch(progress.batch(batch))
                progressed = True
        if not progressed:
            if all(isinstance(s, StreamSource) and s.eof for s in sources):
                break
            if runner.unsaved or runner.positions:
                runner.commit()  # nothing new arrived: what was read is committed now, not at the next batch
            time.sleep(POLL_SECONDS)


def _summary(runner: Runner, sources: list[Source], earlier: int, state_path: str) -> str:
    """The run in one line: what was read, skipped and emitted, and where the state is."""
    rows, other = runner.counts.per_query()
    read = ", ".join(f"{query} {count}" for query, count in rows.items()) or "none of the pack's queries"
    if other:
        read += f"; {other} lines of other queries"
    read = f"{runner.lines} lines read" + (f" (rows: {read})" if runner.lines else "")
    findings = f"{runner.findings} finding{'s' if runner.findings != 1 else ''} emitted"
    if runner.below:
        findings += f" ({runner.below} below --min-severity not written)"
    parts = [read, f"{runner.bad} skipped", findings,
             f"{earlier} emitted earlier"]
    if runner.hosts.no_admin_rows:
        count = len(runner.hosts.no_admin_rows)
        parts.append(f"{count} host{'s' if count != 1 else ''} sent no admin_accounts rows (admins.groups is set)")
    if runner.evictions:
        parts.append(f"{runner.evictions} pending chains evicted (correlator.max_pending_per_host)")
    dropped = runner.engine.dropped
    if any(dropped.values()):
        parts.append(f"{sum(dropped.values())} entries dropped at per-host caps ("
                     + ", ".join(f"{table} {n}" for table, n in sorted(dropped.items()) if n) + ")")
    streams = [("standard input" if s.label == "-" else s.label) for s in sources if isinstance(s, StreamSource)]
    if streams:
        parts.append(f"{' and '.join(streams)} read as a stream (no position kept)")
    parts.append("state: none (--state none)" if state_path == NONE else f"state {state_path}")
    return ", ".join(parts)


def _already_read(runner: Runner, sources: list[Source], starts: dict[int, Any], earlier: int, start_watermark: int,
                  state_path: str) -> str:
    """When a run emitted nothing because its input was read before: say so, and how to read it again."""
    if runner.findings or runner.below:
        return ""
    rows, other = runner.counts.per_query()
    if other and not rows:
        return (f"none of the {other} lines is a result of the pack's queries (names ending in "
                f"{', '.join(QUERIES[:4])}, ...): check the query names the pack was installed with")
    if state_path == NONE:
        return ""
    again = "to read it again use --state none (a throw-away run) or --reset (forget the state)"
    resumed = [s.label for s in sources if id(s) in starts and (starts[id(s)].offset or starts[id(s)].line)]
    if resumed and runner.lines == 0:
        return f"{', '.join(resumed)}: already read up to its end with state {state_path}; {again}"
    if runner.lines and earlier and start_watermark and runner.hosts.watermark <= start_watermark:
        return (f"the input's events are no newer than those state {state_path} has seen: it was probably read "
                f"before and its findings emitted then; {again}")
    return ""
