"""The per-host step that runs inside Spark's stateful operator; no Spark import here.

Spark hands the operator one host's new lines of a micro-batch (in no
particular order) and the host's saved state. This module puts the lines in
event-time order and feeds them, one line at a time, through the same two
readers `osq-dbwatch correlate` uses (the fast path, else rows.parse_line and
Engine.step), then flushes: the rules, the linking and the scoring are the
engine's, untouched. The state Spark stores is the engine's own JSON form
(HostState.to_json) as text.

Time:
- order: a host's lines of one micro-batch are applied by event time (the
  row's time column, else unixTime: rows.row_time), ties by the line's text,
  so that the answer does not depend on how Spark split or shuffled them.
  Lines arriving in a later batch with an older time are applied then, as the
  single process applies them on arrival: the engine links evidence that
  arrives in any order within its windows (engine.py).
- idle hosts: the correlator forgets a host silent for five state_expiry
  periods of event time (correlate/cli.py); here the host's event-time
  timeout is set to the same instant, so Spark drops the state when the
  stream's watermark passes it.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from ..config import Config
from ..correlate.engine import Engine, HostState
from ..correlate.fastpath import FastPath
from ..correlate.findings import Finding, record_id, revision, to_ecs, to_ocsf
from ..correlate.jsonlib import dumps, loads
from ..correlate.logread import MAX_LINE_BYTES
from ..correlate.rows import BadLine, parse_line

STATE_VERSION: Final = 1
# correlate/cli.py forgets a host silent for this many state_expiry periods of event time.
IDLE_EXPIRY_PERIODS: Final = 5


@dataclass(frozen=True)
class Keyed:
    """What the operator is keyed and ordered by: the line's host and its earliest row time."""

    host: str
    time: int


def key_line(line: str) -> Keyed | None:
    """Host and event time of one results line, read by rows.parse_line; None: no row of ours (or unusable).

    The single process skips the same lines (bad JSON, other queries, lines over 1 MiB).
    """
    data = line.encode("utf-8", "surrogatepass")
    if len(data) > MAX_LINE_BYTES:
        return None
    try:
        parsed = parse_line(data)
    except BadLine:
        return None
    if not parsed.rows:
        return None
    return Keyed(parsed.rows[0].host, min(row.time for row in parsed.rows))


@dataclass(frozen=True)
class Settings:
    format: str = "ocsf"  # or "ecs"
    late_seconds: int = 7 * 86400  # the stream's watermark delay (job.py)


@dataclass
class Output:
    """A finding as the sink stores it: its stable key and the rendered record."""

    record_id: str  # chain id and revision: findings.record_id
    chain_uid: str
    revision: int
    record: str  # the OCSF or ECS object as one JSON line


@dataclass
class StepResult:
    state: str | None  # the host's state to store; None: remove it
    outputs: list[Output]
    timeout_ms: int  # event time (ms) at which the idle host times out (0 when removed)
    lines: int  # lines applied


class HostOperator:
    """One engine per Python worker (its caches are per process); one call per host and micro-batch."""

    def __init__(self, config: Config, settings: Settings) -> None:
        self.engine = Engine(config)
        self.fast = FastPath(self.engine)
        self.settings = settings
        self.render = to_ecs if settings.format == "ecs" else to_ocsf
        self.idle_seconds = IDLE_EXPIRY_PERIODS * config.correlator.state_expiry_seconds

    def step(self, host: str, saved: str | None, lines: Iterable[tuple[int, str]], timed_out: bool,
             watermark_ms: int) -> StepResult:
        """Apply a host's lines (event time, line) to its saved state; findings due, the state, its timeout."""
        state = load_state(host, saved)
        applied = 0
        for _, line in sorted(lines):
            self._apply(state, line.encode("utf-8", "surrogatepass"))
            applied += 1
        outputs = [self._output(f) for f in self.engine.flush(state)]
        if timed_out:
            return StepResult(None, outputs, 0, applied)
        # The correlator's host expiry instant, seen through the watermark's delay; Spark refuses a
        # timeout at or before the current watermark.
        due = (state.watermark + self.idle_seconds - self.settings.late_seconds) * 1000
        return StepResult(save_state(state), outputs, max(due, watermark_ms + 1), applied)

    def _apply(self, state: HostState, data: bytes) -> None:
        """One line, as correlate's Runner applies it (FastPath.apply_line); a bad line is skipped."""
        fast = self.fast
        fast.dirty = {state.host: state}
        fast.open_host = _other_host
        try:
            fast.apply_line(data)
        except BadLine:
            pass

    def _output(self, finding: Finding) -> Output:
        return Output(record_id(finding), finding.uid, revision(finding), dumps(self.render(finding)).decode())


def _other_host(host: str) -> HostState:
    # Lines are keyed by the host rows.parse_line reads, the same host the fast path reads.
    raise RuntimeError(f"a line of host {host!r} reached another host's state")


def load_state(host: str, saved: str | None) -> HostState:
    if not saved:
        return HostState(host)
    data = loads(saved)
    if type(data) is not dict or data.get("v") != STATE_VERSION:
        raise ValueError(f"host {host!r}: saved state of an unknown version")
    return HostState.from_json(data["engine"])


def save_state(state: HostState) -> str:
    return dumps({"v": STATE_VERSION, "engine": state.to_json()}).decode()


# -- one operator per worker process --------------------------------------------

_OPERATORS: dict[str, HostOperator] = {}


def operator_for(blob: bytes) -> HostOperator:
    """The worker's operator for a pickled (Config, Settings); built once per process."""
    digest = hashlib.sha256(blob).hexdigest()
    op = _OPERATORS.get(digest)
    if op is None:
        config, settings = pickle.loads(blob)  # our own driver pickled it
        op = _OPERATORS[digest] = HostOperator(config, settings)
    return op


def pack(config: Config, settings: Settings) -> bytes:
    return pickle.dumps((config, settings))


def outputs_rows(outputs: list[Output]) -> list[dict[str, Any]]:
    return [{"record_id": o.record_id, "chain_uid": o.chain_uid, "revision": o.revision, "record": o.record}
            for o in outputs]
