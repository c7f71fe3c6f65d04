"""The report as plain text for a terminal: the same per-chain timelines as the page.

Every value was made displayable by model.display (control and bidi
characters escaped), so a command line cannot move the cursor, recolour the
terminal or reorder what is shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from ..correlate.findings import SEVERITY_NAMES
from ..progress import human_bytes
from .model import Chain, Event, Loaded


def when(ms: int, with_date: bool = True) -> str:
    try:
        dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return "?"
    return dt.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def event_time(ev: Event, with_date: bool = False) -> str:
    if ev.lo_ms == ev.hi_ms:
        return when(ev.lo_ms, with_date)
    return f"{when(ev.lo_ms, with_date)}..{when(ev.hi_ms, False)}"


def size_text(size: int | None) -> str:
    if size is None:
        return ""
    return f"{human_bytes(size)} ({size:,} bytes)" if size >= 1000 else f"{size} bytes"


def process_text(pid: int | None, exe: str, user: str = "", cwd: str = "") -> str:
    bits = [f"pid {pid}" if pid is not None else "", exe, f"user {user}" if user else "", f"cwd {cwd}" if cwd else ""]
    return ", ".join(b for b in bits if b)


def event_lines(ev: Event) -> Iterator[str]:
    """The detail lines of one event (without its time and stage)."""
    if ev.cmdline:
        yield f"$ {ev.cmdline}"
    elif ev.command:
        yield f"> {ev.command}"
    if ev.file_path:
        bits = [ev.file_path, size_text(ev.file_size), f"owner {ev.file_owner}" if ev.file_owner else "",
                ev.file_kind, f"({ev.file_action})" if ev.file_action else ""]
        yield "file " + "  ".join(b for b in bits if b)
    if ev.dst_address:
        port = f":{ev.dst_port}" if ev.dst_port is not None else ""
        bits = [f"to {ev.dst_address}{port}", f"by {ev.tool}" if ev.tool else "", ev.dst_status]
        yield "  ".join(b for b in bits if b)
    proc = process_text(ev.pid, ev.exe, ev.user, ev.cwd)
    if proc:
        yield proc
    if ev.parent_cmdline or ev.parent_exe or ev.parent_pid is not None:
        parent = process_text(ev.parent_pid, ev.parent_exe)
        yield "parent: " + (f"{ev.parent_cmdline}  ({parent})" if ev.parent_cmdline and parent else ev.parent_cmdline or parent)
    db = ", ".join(x for x in (f"database {ev.database}" if ev.database else "", f"server {ev.db_host}" if ev.db_host else "",
                               f"as {ev.db_user}" if ev.db_user else "") if x)
    if db:
        yield db
    if ev.history_file:
        yield f"history file {ev.history_file}"


def chain_lines(c: Chain) -> Iterator[str]:
    score = f" score {c.score}" if c.score is not None else ""
    yield f"{c.severity.upper()}{score}  {c.title or c.message}"
    yield f"  chain {c.uid}  host {c.host or '-'}  user {c.user or '-'}"
    yield f"  {when(c.first_ms)} .. {when(c.last_ms)} UTC  stages {' > '.join(c.stages) or '-'}" + (
        f"  ({c.versions} versions)" if c.versions > 1 else "")
    if c.message and c.message != c.title:
        yield f"  {c.message}"
    same_day = when(c.first_ms)[:10] == when(c.last_ms)[:10]
    for ev in c.events:
        head = f"  | {event_time(ev, with_date=not same_day):<19} {ev.stage:<8}"
        details = list(event_lines(ev))
        yield head + (details[0] if details else (ev.tool or ""))
        for line in details[1:]:
            yield "  | " + " " * 28 + line
    if c.reasons:
        yield "  reasons: " + ", ".join(f"{r.code} {r.delta:+d}" if r.delta is not None else r.code for r in c.reasons)
    if c.techniques:
        yield "  ATT&CK: " + "; ".join(f"{t.uid} {t.name}" + (f" ({t.tactic})" if t.tactic else "") for t in c.techniques)


def render_text(chains: list[Chain], loaded: Loaded) -> str:
    counts: dict[int, int] = {}
    for c in chains:
        counts[c.severity_id] = counts.get(c.severity_id, 0) + 1
    by_sev = ", ".join(f"{counts[s]} {SEVERITY_NAMES.get(s, 'unknown').lower()}" for s in sorted(counts, reverse=True))
    out = [f"{len(chains)} chains" + (f" ({by_sev})" if by_sev else "") +
           f" from {loaded.findings} findings" + (f", {loaded.skipped} lines skipped" if loaded.skipped else ""), ""]
    for c in chains:
        out.extend(chain_lines(c))
        out.append("")
    return "\n".join(out)
