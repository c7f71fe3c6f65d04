"""The report as one self-contained HTML file.

Security model (docs/report.md):
- The page is a jinja2 template with autoescaping on: every value placed in
  markup is escaped.
- The chains travel as one JSON data block (`<script type="application/json">`,
  never executed) written by jinja2's `tojson`, which escapes `<`, `>`, `&`
  and `'`, so no value can close the block. The page's script builds the
  chain list with createElement and textContent only, never innerHTML.
- A Content-Security-Policy in the page allows nothing from anywhere
  (`default-src 'none'`), runs only the one script and the one style sheet
  whose SHA-256 hashes it names (no inline event handler can run, injected or
  not), and requires Trusted Types for script sinks, so even a future
  `innerHTML` slip throws instead of parsing data as markup.

The chains are encoded compactly (strings interned in one table, chains as
arrays) so 10,000 of them stay well under 10 MB.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from importlib import resources
from operator import attrgetter
from typing import Any

import jinja2
from markupsafe import Markup

from .. import __version__
from ..correlate.findings import SEVERITY_NAMES
from .model import Chain, Event, Loaded

# The page's data travels as arrays, not objects (keys would be half of it),
# and every string once, in one table "S" whose entry 0 is "" (absent).
# The field lists go with the data, so the script looks each field up by name.
CHAIN_FIELDS = ("uid", "host", "user", "sev", "score", "first", "last", "title", "msg", "stages", "reasons",
                "attack", "events", "versions")
# Event: stage, times (ms after the chain's first, "hi" null when exact), then
# strings (S indices) and numbers (null when absent); trailing absent ones are dropped.
EVENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("stage", "stage"), ("lo", "lo_ms"), ("hi", "hi_ms"), ("own", "time_ms"),
    ("tool", "tool"), ("query", "query"), ("cmd", "cmdline"), ("exe", "exe"), ("user", "user"), ("cwd", "cwd"),
    ("pcmd", "parent_cmdline"), ("pexe", "parent_exe"), ("db", "database"), ("dbh", "db_host"), ("dbu", "db_user"),
    ("hist", "history_file"), ("sql", "command"), ("path", "file_path"), ("owner", "file_owner"),
    ("kind", "file_kind"), ("act", "file_action"), ("addr", "dst_address"), ("status", "dst_status"),
    ("pid", "pid"), ("ppid", "parent_pid"), ("size", "file_size"), ("port", "dst_port"),
)
_TIMES = 4  # stage, lo, hi, own: the rest are strings, then numbers
_NUMBERS = ("pid", "ppid", "size", "port")
_STRING_ATTRS = attrgetter(*(attr for name, attr in EVENT_FIELDS[_TIMES:] if name not in _NUMBERS))
_NUMBER_ATTRS = attrgetter(*(attr for name, attr in EVENT_FIELDS if name in _NUMBERS))
_FIRST_NUMBER = len(EVENT_FIELDS) - len(_NUMBERS)
assert all(name in _NUMBERS for name, _ in EVENT_FIELDS[_FIRST_NUMBER:])


class _Table:
    """Values interned in a list: each is stored once and referred to by its index."""

    def __init__(self, first: Any = None) -> None:
        self.items: list[Any] = []
        self.index: dict[Any, int] = {}
        if first is not None:
            self(first)

    def __call__(self, value: Any) -> int:
        i = self.index.get(value)
        if i is None:
            i = self.index[value] = len(self.items)
            self.items.append(value)
        return i


def _event(ev: Event, first: int, s: _Table) -> list[Any]:
    out: list[Any] = [s(ev.stage), ev.lo_ms - first, None if ev.hi_ms == ev.lo_ms else ev.hi_ms - first,
                      0 if ev.time_ms is None else 1]
    out.extend(s(value) for value in _STRING_ATTRS(ev))
    out.extend(_NUMBER_ATTRS(ev))
    # Absent: "" (index 0) for a string, None for a number; a number 0 (a 0-byte file) is kept.
    while len(out) > 2 and (out[-1] is None or (out[-1] == 0 and _TIMES <= len(out) - 1 < _FIRST_NUMBER)):
        out.pop()
    return out


def encode(chains: list[Chain]) -> dict[str, Any]:
    """The page's data: field lists, string, reason and technique tables, and one array per chain."""
    s = _Table("")
    reasons = _Table()
    attacks = _Table()
    rows = []
    for c in chains:
        rows.append([
            c.uid, s(c.host), s(c.user), c.severity_id, c.score, c.first_ms, c.last_ms - c.first_ms, s(c.title),
            s(c.message),
            [s(x) for x in c.stages],
            [reasons((s(r.code), r.delta, s(r.why))) for r in c.reasons],
            [attacks((s(t.uid), s(t.name), s(t.tactic))) for t in c.techniques],
            [_event(e, c.first_ms, s) for e in c.events],
            c.versions,
        ])
    return {"CF": CHAIN_FIELDS, "EF": [name for name, _ in EVENT_FIELDS], "S": s.items, "R": reasons.items,
            "T": attacks.items, "C": rows}


def _asset(name: str) -> str:
    return (resources.files(__package__) / "assets" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    # tojson still escapes < > & ' ; compact separators keep 10,000 chains small.
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "sort_keys": False}
    return env


def csp(script: str, style: str) -> str:
    return ("default-src 'none'; "
            f"script-src {_sha256(script)}; style-src {_sha256(style)}; img-src data:; "
            "base-uri 'none'; form-action 'none'; "
            "require-trusted-types-for 'script'; trusted-types 'none'")


def render_html(chains: list[Chain], loaded: Loaded, title: str = "osq-dbwatch report",
                generated: datetime | None = None) -> str:
    script = _asset("report.js")
    style = _asset("report.css")
    generated = generated or datetime.now(UTC)
    counts = {sid: 0 for sid in sorted(SEVERITY_NAMES, reverse=True)}
    for c in chains:
        counts[c.severity_id] = counts.get(c.severity_id, 0) + 1
    hosts = sorted({c.host for c in chains if c.host})
    users = sorted({c.user for c in chains if c.user})
    template = _environment().from_string(_asset("report.html.j2"))
    return template.render(
        title=title,
        csp=csp(script, style),
        script=Markup(script),  # our own files, inserted verbatim: the CSP hashes are of these exact texts
        style=Markup(style),
        data=encode(chains),
        counts=[(sid, SEVERITY_NAMES.get(sid, "Unknown"), n) for sid, n in counts.items()],
        total=len(chains),
        hosts=hosts,
        users=users,
        loaded=loaded,
        generated=generated.strftime("%Y-%m-%d %H:%M:%S UTC"),
        version=__version__,
    )
