"""Replay a recording of real commands as osquery 5.23.1 would log it through the shipped pack.

A recording (tests/recordings/<name>/, made by a script beside it, as root, on
this machine) holds what the kernel and inotify said while real commands ran:

- audit.log: raw kernel audit records (`ausearch --raw`) of execve and connect;
- inotify.log: `inotifywait --format '%T|%e|%w%f|%c'` lines;
- stat.log: `stat` of the watched files right after each step (what osquery's
  inotify handler reads when it handles an event: inode, size, owner);
- marks.log: phase boundaries and the login shell (pid, path, cmdline).

This module turns them into the rows of osquery's event tables the way its
5.23.1 sources do (see ../shared/reference/osquery-notes.md): process_events
joins EXECVE arguments in std::map key order (a0 a1 a10 a11 ... a2), a
non-blocking connect is `in_progress` with success 1, failed connects are not
logged, Unix-socket connects only with --audit_allow_unix (the path in
`socket`); file_events maps inotify masks to CREATED / UPDATED / MOVED_FROM /
MOVED_TO and stats the path (a moved-away path stats to nothing). Then the
shipped pack's own SQL (packs/dbwatch.conf) runs over those tables in SQLite (osquery_sqlite) and
the rows are written as osquery's filesystem logger writes event lines.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from osquery_sqlite import OsqueryDB
from osq_dbwatch.pack import contract

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RECORDINGS = os.path.join(HERE, "recordings")
_SERIAL = re.compile(r"msg=audit\((\d+)\.(\d+):(\d+)\)")
_FIELD = re.compile(r'(\w+)=("(?:[^"]*)"|\S+)')
# osquery's inotify masks -> file_events.action (inotify.cpp kMaskActions); CLOSE_WRITE is an UPDATED row too.
_ACTIONS = {"CREATE": "CREATED", "MODIFY": "UPDATED", "CLOSE_WRITE": "UPDATED", "MOVED_FROM": "MOVED_FROM",
            "MOVED_TO": "MOVED_TO", "DELETE": "DELETED", "ATTRIB": "ATTRIBUTES_MODIFIED"}
NO_AUID = 4294967295


def decode_value(raw: str) -> str:
    """An audit field's value: quoted text as is, else hex-encoded text (audit encodes odd bytes so), else raw."""
    if raw.startswith('"') and raw.endswith('"'):
        return raw[1:-1]
    if re.fullmatch(r"(?:[0-9A-F]{2})+", raw):
        try:
            return bytes.fromhex(raw).decode("utf-8", "replace")
        except ValueError:
            return raw
    return raw


@dataclass
class AuditEvent:
    time: int
    serial: int
    records: dict[str, dict[str, str]] = field(default_factory=dict)  # record type -> raw fields


def read_audit(path: str) -> list[AuditEvent]:
    events: dict[int, AuditEvent] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.split("\x1d", 1)[0]  # ausearch's enriched part
            m = _SERIAL.search(line)
            kind = line.split(" ", 1)[0].removeprefix("type=")
            if not m:
                continue
            serial = int(m.group(3))
            event = events.setdefault(serial, AuditEvent(int(m.group(1)), serial))
            event.records[kind] = {k: v for k, v in _FIELD.findall(line[m.end():])}
    return sorted(events.values(), key=lambda e: e.serial)


def osquery_cmdline(execve: dict[str, str]) -> str:
    """osquery's cmdline: the EXECVE record's a<N> fields in std::map (string) key order, joined by spaces."""
    args = {k: decode_value(v) for k, v in execve.items() if re.fullmatch(r"a\d+", k)}
    return " ".join(args[k] for k in sorted(args))


def process_events(events: list[AuditEvent]) -> list[dict[str, Any]]:
    rows = []
    for e in events:
        sc = e.records.get("SYSCALL", {})
        if sc.get("syscall") != "59" or sc.get("success") != "yes" or "EXECVE" not in e.records:
            continue  # failed execs are not logged (osquery-notes)
        rows.append({"time": e.time, "pid": int(sc["pid"]), "parent": int(sc["ppid"]), "path": decode_value(sc["exe"]),
                     "cmdline": osquery_cmdline(e.records["EXECVE"]), "cwd": decode_value(e.records.get("CWD", {}).get("cwd", "")),
                     "uid": int(sc["uid"]), "euid": int(sc["euid"]), "auid": int(sc["auid"]), "eid": str(e.serial)})
    return rows


def _sockaddr(saddr: str) -> dict[str, Any] | None:
    """socket_events.cpp parseSockAddr: family, remote address and port, or a Unix socket's path."""
    if saddr.startswith("0200") and len(saddr) >= 16:
        ip = ".".join(str(int(saddr[i:i + 2], 16)) for i in range(8, 16, 2))
        return {"family": 2, "remote_port": int(saddr[4:8], 16), "remote_address": ip, "socket": ""}
    if saddr.startswith("0A00") and len(saddr) >= 48:
        groups = [saddr[16 + i * 4:20 + i * 4].lower() for i in range(8)]
        return {"family": 10, "remote_port": int(saddr[4:8], 16), "remote_address": ":".join(groups), "socket": ""}
    if saddr.startswith("0100") and len(saddr) > 6:
        raw = bytes.fromhex(saddr[4:])
        name = raw.split(b"\0", 1)[0].decode("utf-8", "replace") if raw[:1] != b"\0" else ""
        return {"family": 1, "remote_port": 0, "remote_address": "", "socket": name}
    return None


def socket_events(events: list[AuditEvent], allow_unix: bool) -> list[dict[str, Any]]:
    rows = []
    for e in events:
        sc = e.records.get("SYSCALL", {})
        addr = e.records.get("SOCKADDR")
        if sc.get("syscall") != "42" or addr is None:
            continue
        parsed = _sockaddr(addr.get("saddr", ""))
        if parsed is None or (parsed["family"] == 1 and not allow_unix):
            continue
        exit_code = sc.get("exit", "")
        if sc.get("success") == "yes":
            status = "succeeded"
        elif exit_code == "-115":
            status = "in_progress"  # EINPROGRESS: a non-blocking connect the kernel took
        else:
            continue  # failed: not logged without --audit_allow_failed_socket_events
        rows.append({"action": "connect", "time": e.time, "pid": int(sc["pid"]), "path": decode_value(sc["exe"]),
                     "auid": int(sc["auid"]), "success": 1, "status": status, "local_address": "", "local_port": 0,
                     "eid": str(e.serial), **parsed})
    return rows


def file_events(inotify_log: str, stat_log: str) -> list[dict[str, Any]]:
    """One row per inotify event osquery's default mask reports, stat'ed at the next stat after it."""
    stats: list[tuple[int, str, int, int, int]] = []
    with open(stat_log, encoding="utf-8") as handle:
        for line in handle:
            t, inode, size, uid, path = line.rstrip("\n").split("|", 4)
            stats.append((int(t), path, int(inode), int(size), int(uid)))
    rows = []
    with open(inotify_log, encoding="utf-8") as handle:
        for line in handle:
            t_text, masks, path, _cookie = line.rstrip("\n").split("|", 3)
            t = int(t_text)
            for mask in masks.split(","):
                action = _ACTIONS.get(mask)
                if action is None:
                    continue
                row: dict[str, Any] = {"time": t, "target_path": path, "action": action, "sha256": "",
                                       "category": "dbwatch_dumps"}
                seen = [s for s in stats if s[1] == path and s[0] >= t]
                if seen and action != "MOVED_FROM":  # the old name of a move stats to nothing
                    _, _, inode, size, uid = seen[0]
                    row.update(inode=inode, size=size, uid=uid)
                rows.append(row)
    return rows


@dataclass
class Recording:
    name: str
    marks: dict[str, int]
    shell: dict[str, Any]
    audit: list[AuditEvent]
    path: str

    def between(self, begin: str, end: str) -> list[AuditEvent]:
        return [e for e in self.audit if self.marks[begin] <= e.time <= self.marks[end]]


def load(name: str) -> Recording:
    path = os.path.join(RECORDINGS, name)
    marks: dict[str, int] = {}
    shell: dict[str, Any] = {}
    with open(os.path.join(path, "marks.log"), encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("|")
            if len(parts) >= 2 and parts[0].isdigit():
                marks[parts[1]] = int(parts[0])
                if parts[1] == "shell":
                    shell = {"pid": int(parts[2]), "path": parts[3], "cmdline": parts[4].strip(),
                             "start_time": int(parts[0])}
    return Recording(name, marks, shell, read_audit(os.path.join(path, "audit.log")), path)


def pack_queries() -> dict[str, tuple[str, bool]]:
    """The shipped audit pack's correlated queries (packs/dbwatch.conf, rendered from defaults): SQL, snapshot."""
    with open(os.path.join(REPO, "packs", "dbwatch.conf"), encoding="utf-8") as handle:
        pack = json.load(handle)
    return {name: (q["query"], bool(q.get("snapshot"))) for name, q in pack["queries"].items()
            if name in contract.BY_NAME and contract.BY_NAME[name].correlated}


def result_line(host: str, query: str, row: dict[str, Any] | list[dict[str, Any]], unix_time: int) -> str:
    """One line as osquery's filesystem logger writes it (strings, NULL as ""): an event-format row, or a
    whole snapshot (a list of rows)."""
    def strings(r: dict[str, Any]) -> dict[str, str]:
        return {k: "" if v is None else str(v) for k, v in r.items()}

    line: dict[str, Any] = {
        "name": f"pack_dbwatch_{query}", "hostIdentifier": host,
        "calendarTime": time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(unix_time)),
        "unixTime": unix_time, "epoch": 0, "counter": 1, "numerics": False,
        "decorations": {"host_uuid": "REC00000-0000-0000-0000-000000000013", "hostname": host}}
    if isinstance(row, list):
        line.update(snapshot=[strings(r) for r in row], action="snapshot")
    else:
        line.update(columns=strings(row), action="added")
    return json.dumps(line)


def replay(host: str, events: list[AuditEvent], files: list[dict[str, Any]], users: dict[int, str], processes: list[dict[str, Any]], allow_unix: bool,
           groups: dict[str, list[str]] | None = None) -> list[str]:
    """The pack's SQL over the event tables these records fill; its rows as osquery result lines."""
    db = OsqueryDB()
    try:
        db.insert("users", [{"uid": uid, "username": name, "gid": uid} for uid, name in users.items()])
        gids = {}
        for index, (group, members) in enumerate(sorted((groups or {}).items())):
            gids[group] = 2000 + index
            db.insert("groups", [{"gid": gids[group], "groupname": group}])
            by_name = {name: uid for uid, name in users.items()}
            db.insert("user_groups", [{"uid": by_name[m], "gid": gids[group]} for m in members])
        db.insert("processes", processes)
        db.insert("process_events", process_events(events))
        db.insert("socket_events", socket_events(events, allow_unix))
        db.insert("file_events", files)
        when = max([e.time for e in events] + [f["time"] for f in files]) + 30  # the minute's query run
        lines = []
        for name, (sql, snapshot) in sorted(pack_queries().items()):
            rows = sorted(db.query(sql), key=lambda r: (r.get("time") or 0, r.get("pid") or 0))
            if snapshot:
                # A snapshot query runs at the start too: its line comes before the minute's events.
                lines.insert(0, result_line(host, name, rows, min(e.time for e in events) - 60))
                continue
            lines += [result_line(host, name, row, when) for row in rows]
        return lines
    finally:
        db.close()
