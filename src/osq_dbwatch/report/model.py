"""Findings in, one record per chain out: what the HTML and text views show.

Pure functions over already-parsed JSON. Every value comes from a findings
file that an attacker's activity shaped (command lines, paths, user and host
names), so each field is read by type (a wrong type reads as absent, never
raises) and every string is made displayable once here: lone surrogates
become U+FFFD and control or bidi-formatting characters become visible
escapes (`\\x1b`, `\\u202e`), so neither a terminal nor a page can be
steered by them. Escaping for HTML is the renderer's job (jinja2
autoescaping, and textContent in the page's script).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import catalog
from ..correlate.findings import SEVERITY_NAMES, TECHNIQUES
from ..correlate.reasons import REASONS

MAX_TEXT = 8192  # characters of one displayed value; a longer one is cut with a marker

# C0, DEL, C1, line/paragraph separators and the bidi formatting characters
# (Trojan Source): shown as escapes, never passed through.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def display(value: str) -> str:
    """A string safe to print or place as text: valid Unicode, no control or bidi characters, bounded."""
    if value.isascii():
        if value.isprintable() and len(value) <= MAX_TEXT:
            return value  # the common case, at the cost of two scans in C
    else:
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    if len(value) > MAX_TEXT:
        value = value[:MAX_TEXT] + f"... [{len(value) - MAX_TEXT} more characters]"
    return _CONTROL.sub(_escape_char, value)


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if type(obj) is not dict:  # parsed JSON: exactly dict, never a subclass
            return None
        obj = obj.get(key)
    return obj


def _str(obj: Any, *keys: str) -> str:
    value = _get(obj, *keys)
    if isinstance(value, str):
        return display(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return display(str(value))
    return ""


def _int(obj: Any, *keys: str) -> int | None:
    value = _get(obj, *keys)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    return None


def _list(obj: Any, *keys: str) -> list[Any]:
    value = _get(obj, *keys)
    return value if isinstance(value, list) else []


@dataclass
class Event:
    """One evidence of a chain, in the order the finding lists them (event time order)."""

    stage: str  # access, dump, staging, egress (or whatever the finding says)
    time_ms: int | None  # the event's own time, when the evidence carries one
    lo_ms: int  # earliest and latest time it can have (bounds from its neighbours and the chain)
    hi_ms: int
    tool: str = ""
    query: str = ""
    # process
    pid: int | None = None
    cmdline: str = ""
    exe: str = ""
    user: str = ""
    cwd: str = ""
    parent_pid: int | None = None
    parent_cmdline: str = ""
    parent_exe: str = ""
    # access details (client command or history entry)
    database: str = ""
    db_host: str = ""
    db_user: str = ""
    history_file: str = ""
    command: str = ""
    # file
    file_path: str = ""
    file_size: int | None = None
    file_owner: str = ""
    file_kind: str = ""
    file_action: str = ""
    # destination
    dst_address: str = ""
    dst_port: int | None = None
    dst_status: str = ""


@dataclass
class Reason:
    code: str
    delta: int | None
    why: str


@dataclass
class Technique:
    uid: str
    name: str
    tactic: str


@dataclass
class Chain:
    uid: str
    host: str
    user: str
    severity_id: int
    score: int | None
    time_ms: int
    first_ms: int
    last_ms: int
    title: str
    message: str
    stages: list[str]
    reasons: list[Reason]
    techniques: list[Technique]
    events: list[Event]
    versions: int = 1  # finding lines seen for this chain (a raised severity is a new line)

    @property
    def severity(self) -> str:
        return SEVERITY_NAMES.get(self.severity_id, "Unknown")


@dataclass
class Loaded:
    """What reading the findings came to (the chains themselves are in a Latest)."""

    lines: int = 0
    findings: int = 0
    skipped: int = 0


class NotAFinding(ValueError):
    """A JSON object that is not an OCSF Detection Finding with a chain uid."""


def _kind_by_name(path: str) -> str:
    """The content kind a file name suggests: its dump-like suffix and any compression around it."""
    name = path.rsplit("/", 1)[-1].lower()
    wrappers: list[str] = []
    peeled = True
    while peeled:
        peeled = False
        for suffix in catalog.COMPRESSION_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                wrappers.append(suffix[1:])
                name = name[: -len(suffix)]
                peeled = True
                break
    base = next((s[1:] for s in catalog.DUMP_SUFFIXES_STRONG + catalog.DUMP_SUFFIXES_WEAK if name.endswith(s)), "")
    parts = ([base] if base else []) + wrappers[::-1]
    return "+".join(parts) + " (by name)" if parts else ""


def _reason(label: str) -> Reason:
    code, sep, delta = label.rpartition(":")
    if not sep or not re.fullmatch(r"[+-]\d{1,4}", delta):
        code, delta_value = label, None
    else:
        delta_value = int(delta)
    known = REASONS.get(code)
    return Reason(display(code), delta_value, known.why if known else "")


def _technique(attack: Any) -> Technique | None:
    uid = _str(attack, "sub_technique", "uid") or _str(attack, "technique", "uid")
    if not uid:
        return None
    known = TECHNIQUES.get(uid)
    name = _str(attack, "technique", "name") or (known[0] if known else "")
    tactic = _str(attack, "tactic", "name") or (known[2] if known else "")
    return Technique(uid, name, tactic)


def _event(evidence: Any) -> Event:
    ev = Event(stage=_str(evidence, "data", "stage") or "event", time_ms=None, lo_ms=0, hi_ms=0)
    data = _get(evidence, "data")
    ev.tool = _str(data, "tool")
    ev.query = _str(data, "query")
    ev.database = _str(data, "database")
    ev.db_host = _str(data, "db_host")
    ev.db_user = _str(data, "db_user")
    ev.history_file = _str(data, "history_file")
    ev.command = _str(data, "command")
    process = _get(evidence, "process")
    if isinstance(process, dict):
        ev.pid = _int(process, "pid")
        ev.cmdline = _str(process, "cmd_line")
        ev.exe = _str(process, "file", "path")
        ev.user = _str(process, "user", "name")
        ev.cwd = _str(process, "working_directory")
        ev.time_ms = _int(process, "created_time")
        parent = _get(process, "parent_process")
        if isinstance(parent, dict):
            ev.parent_pid = _int(parent, "pid")
            ev.parent_cmdline = _str(parent, "cmd_line")
            ev.parent_exe = _str(parent, "file", "path")
    if not ev.user:
        ev.user = _str(evidence, "actor", "user", "name")
    f = _get(evidence, "file")
    if isinstance(f, dict):
        ev.file_path = _str(f, "path")
        ev.file_size = _int(f, "size")
        ev.file_owner = _str(f, "owner", "name")
        ev.file_kind = _str(data, "kind_by_content") or _str(f, "mime_type") or _kind_by_name(ev.file_path)
        ev.file_action = _str(data, "action")
    dst = _get(evidence, "dst_endpoint")
    if isinstance(dst, dict):
        ev.dst_address = _str(dst, "ip") or _str(dst, "hostname")
        ev.dst_port = _int(dst, "port")
        # osquery 5.x: a non-blocking connect is `in_progress`; older agents only say success.
        ev.dst_status = _str(data, "connect_status")  # evidence.linked_egress writes it
        if not ev.dst_status:
            success = _get(data, "success")
            if success in (1, "1", True):
                ev.dst_status = "succeeded"
    if not ev.tool and ev.exe:
        ev.tool = ev.exe.rsplit("/", 1)[-1]
    return ev


def _bound_times(events: list[Event], first: int, last: int) -> None:
    """Each event's [lo, hi]: its own time where it has one, else between its neighbours' times.

    Only process evidences carry a time (created_time); the finding lists its
    evidences in event time order and its first and last seen times are the
    first and last evidence's, which bounds every other one.
    """
    lo = first
    for ev in events:
        if ev.time_ms is not None:
            lo = max(lo, ev.time_ms)
        ev.lo_ms = ev.time_ms if ev.time_ms is not None else lo
    hi = last
    for ev in reversed(events):
        if ev.time_ms is not None:
            hi = min(hi, ev.time_ms)
        ev.hi_ms = ev.time_ms if ev.time_ms is not None else max(hi, ev.lo_ms)
    if events and events[0].time_ms is None:
        events[0].lo_ms = events[0].hi_ms = min(first, events[0].hi_ms)
    if len(events) > 1 and events[-1].time_ms is None:
        events[-1].lo_ms = events[-1].hi_ms = max(last, events[-1].lo_ms)


def version_key(obj: Any) -> tuple[str, tuple[int, int, int]]:
    """A finding's chain uid and the key that orders its versions; NotAFinding when it is not one of ours.

    A later version has a newer newest evidence, else a higher severity, else more evidence.
    """
    if not isinstance(obj, dict):
        raise NotAFinding("not a JSON object")
    if _int(obj, "class_uid") != 2004:
        if _get(obj, "event", "kind") == "alert":
            raise NotAFinding("an ECS alert: the report reads OCSF findings (correlate --format ocsf, the default)")
        raise NotAFinding("not an OCSF Detection Finding (class_uid 2004)")
    uid = _str(obj, "finding_info", "uid")
    if not uid:
        raise NotAFinding("no finding_info.uid")
    severity = _int(obj, "severity_id")
    if severity is None or not 0 <= severity <= 6:
        raise NotAFinding("no valid severity_id")
    return uid, (_int(obj, "time") or 0, severity, len(_list(obj, "evidences")))


def chain_of(obj: Any) -> Chain:
    """The chain a finding describes; NotAFinding when it is not one of ours."""
    uid, (time_ms, severity, _) = version_key(obj)
    first = _int(obj, "finding_info", "first_seen_time") or time_ms
    last = _int(obj, "finding_info", "last_seen_time") or time_ms
    events = [_event(e) for e in _list(obj, "evidences") if isinstance(e, dict)]
    _bound_times(events, first, last)
    reasons = [_reason(r) for r in _list(obj, "unmapped", "reasons") if isinstance(r, str)]
    techniques = [t for t in (_technique(a) for a in _list(obj, "finding_info", "attacks")) if t is not None]
    stages = [display(s) for s in _list(obj, "unmapped", "stages") if isinstance(s, str)]
    score = _int(obj, "risk_score")
    return Chain(
        uid=uid,
        host=_str(obj, "device", "hostname") or _str(obj, "device", "name"),
        user=_str(obj, "actor", "user", "name"),
        severity_id=severity,
        score=score if score is not None else _int(obj, "unmapped", "score"),
        time_ms=time_ms,
        first_ms=first,
        last_ms=last,
        title=_str(obj, "finding_info", "title"),
        message=_str(obj, "message"),
        stages=stages,
        reasons=reasons,
        techniques=techniques,
        events=events,
    )


class Latest:
    """Keeps the latest version of each chain while findings stream in (ties: the later line).

    Only the kept version of a chain is ever turned into a Chain record.
    """

    def __init__(self) -> None:
        self.by_uid: dict[str, tuple[tuple[int, int, int], Any, int]] = {}  # uid -> (key, finding, versions)

    def add(self, obj: Any) -> None:
        """Take one parsed finding; NotAFinding when it is not one."""
        uid, key = version_key(obj)
        old = self.by_uid.get(uid)
        if old is None:
            self.by_uid[uid] = (key, obj, 1)
        elif key >= old[0]:
            self.by_uid[uid] = (key, obj, old[2] + 1)
        else:
            self.by_uid[uid] = (old[0], old[1], old[2] + 1)

    def __len__(self) -> int:
        return len(self.by_uid)

    def chains(self) -> list[Chain]:
        """Most severe first, then the most recent."""
        out = []
        for _, obj, versions in self.by_uid.values():
            chain = chain_of(obj)
            chain.versions = versions
            out.append(chain)
        return sorted(out, key=lambda c: (-c.severity_id, -c.last_ms, c.uid))


def select(chains: Iterable[Chain], host: str = "", user: str = "", min_severity: int = 0) -> list[Chain]:
    """The chains a command line's filters keep (exact host and user names)."""
    return [c for c in chains if (not host or c.host == host) and (not user or c.user == user)
            and c.severity_id >= min_severity]
