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
import json
from datetime import datetime, timezone
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from .. import __version__
from ..correlate.findings import SEVERITY_NAMES
from .model import Chain, Event, Loaded

# Event fields carried to the page: JSON key -> Event attribute. Strings are
# interned (their index in the string table), numbers kept as they are.
_EVENT_STRINGS = {
    "tool": "tool", "query": "query", "cmd": "cmdline", "exe": "exe", "user": "user", "cwd": "cwd",
    "pcmd": "parent_cmdline", "pexe": "parent_exe", "db": "database", "dbh": "db_host", "dbu": "db_user",
    "hist": "history_file", "sql": "command", "path": "file_path", "owner": "file_owner", "kind": "file_kind",
    "act": "file_action", "addr": "dst_address", "status": "dst_status",
}
_EVENT_NUMBERS = {"pid": "pid", "ppid": "parent_pid", "size": "file_size", "port": "dst_port"}


class _Strings:
    def __init__(self) -> None:
        self.table: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, value: str) -> int:
        i = self.index.get(value)
        if i is None:
            i = self.index[value] = len(self.table)
            self.table.append(value)
        return i


def _event(ev: Event, s: _Strings) -> dict[str, Any]:
    out: dict[str, Any] = {"s": s(ev.stage), "lo": ev.lo_ms}
    if ev.hi_ms != ev.lo_ms:
        out["hi"] = ev.hi_ms
    if ev.time_ms is not None:
        out["own"] = 1  # the event's own time, not one bounded by its neighbours
    for key, attr in _EVENT_STRINGS.items():
        value = getattr(ev, attr)
        if value:
            out[key] = s(value)
    for key, attr in _EVENT_NUMBERS.items():
        value = getattr(ev, attr)
        if value is not None:
            out[key] = value
    return out


def encode(chains: list[Chain]) -> dict[str, Any]:
    """The page's data: {"S": strings, "C": chains}; see CHAIN_FIELDS in report.js for the array layout."""
    s = _Strings()
    rows = []
    for c in chains:
        rows.append([
            c.uid, s(c.host), s(c.user), c.severity_id, c.score, c.first_ms, c.last_ms, s(c.title), s(c.message),
            [s(x) for x in c.stages],
            [[s(r.code), r.delta, s(r.why)] for r in c.reasons],
            [[s(t.uid), s(t.name), s(t.tactic)] for t in c.techniques],
            [_event(e, s) for e in c.events],
            c.versions,
        ])
    return {"S": s.table, "C": rows}


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
    generated = generated or datetime.now(timezone.utc)
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


def data_size(chains: list[Chain]) -> int:
    """Bytes of the data block alone (for measurements)."""
    return len(json.dumps(encode(chains), separators=(",", ":")))
