"""The peer for the correlator benchmark: the `eql` package's Python engine.

Runs the EQL equivalent of the correlator's core rule over the same osquery
results lines, parsed with the same JSON library:

    sequence by host, user with maxspan=30m
      [process where <a DB client run that is not expected>]
      [file where <a dump-like file name>]
      [network where <a connect outside loopback and internal networks>]

What is the same as the correlator: admins (config users plus the `dba`
group's members, which the generator puts on every host), service accounts,
cron and automation-agent parents, the allow rule, dump-like suffixes from
the catalog (strong ones, with compression suffixes peeled once), internal
networks from the config, the login user as the chain's user (the auid's
name, else the uid's; a file's owner; for a connect without a login session,
the user of the transfer_exec row with the same host and pid).

What EQL cannot say, so the peer does less work than the correlator:
automation windows by time of day (the generated backups all run inside their
window, so the match count is unaffected), web/database-server parents and
severities, the separate 15-minute windows per step (one 30-minute span
instead), restart-safe state, findings. The match count is therefore only
comparable for full access -> dump -> egress chains.

    python bench/eql_peer.py LOG [--config bench/config.yml] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import eql
from eql.events import Event

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

from osq_dbwatch import catalog  # noqa: E402
from osq_dbwatch.config import Config, load_config  # noqa: E402
from osq_dbwatch.correlate.rows import recognise  # noqa: E402

from osq_dbwatch.correlate import jsonlib  # noqa: E402 - the correlator's own JSON library

loads: Callable[[bytes], Any] = jsonlib.loads
JSON_LIBRARY = jsonlib.NAME

QUERY_TYPES = {
    "db_cli_exec": "process",
    "transfer_exec": "process",
    "dump_file_events": "file",
    "db_egress": "network",
}
# dba members the generator puts in every host's admin_accounts snapshot
GROUP_ADMINS = ("alice", "grace")


def _quoted(values: Iterable[str]) -> str:
    return ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)


def build_query(config: Config, group_admins: Iterable[str] = GROUP_ADMINS) -> str:
    """The EQL sequence equivalent to the correlator's access -> dump -> egress rule."""
    expected_users = sorted(set(config.admin_users) | set(group_admins) | set(config.service_accounts))
    service_parents = sorted(set(catalog.CRON_DAEMONS) | set(catalog.AUTOMATION_AGENTS) | set(catalog.WAL_ARCHIVERS) | {"CRON"})
    parent_globs = [f"*/{name}" for name in service_parents]
    allow_terms = []
    for rule in config.allow:
        parts = []
        if rule.user:
            parts.append(f'user == "{rule.user}"')
        if rule.parent:
            parts.append(f'parent_path == "{rule.parent}"')
        if rule.host:
            parts.append(f'host == "{rule.host}"')
        if parts:
            allow_terms.append("(" + " and ".join(parts) + ")")
    dump_globs = [f"*{s}" for s in catalog.DUMP_SUFFIXES_STRONG]
    dump_globs += [f"*{s}{c}" for s in catalog.DUMP_SUFFIXES_STRONG for c in catalog.COMPRESSION_SUFFIXES]
    internal = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/32"]
    internal += [str(n) for n in config.internal_networks]
    process = (
        'query == "db_cli_exec"'
        f" and not user in ({_quoted(expected_users)})"
        f" and not wildcard(parent_path, {_quoted(parent_globs)})"
    )
    if allow_terms:
        process += " and not (" + " or ".join(allow_terms) + ")"
    return (
        "sequence by host, user with maxspan=30m\n"
        f"  [process where {process}]\n"
        f"  [file where wildcard(target_path, {_quoted(dump_globs)})]\n"
        f"  [network where remote_address != null and not cidrMatch(remote_address, {_quoted(internal)})]\n"
    )


def _rows(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    columns = doc.get("columns")
    if isinstance(columns, dict):
        if doc.get("action") != "removed":
            yield columns
        return
    diff = doc.get("diffResults")
    if isinstance(diff, dict):
        for row in diff.get("added") or ():
            if isinstance(row, dict):
                yield row
        return
    for row in doc.get("snapshot") or ():
        if isinstance(row, dict):
            yield row


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def events_from_lines(lines: Iterable[bytes], stats: dict[str, int]) -> Iterator[Event]:
    """osquery result lines -> flat EQL events with host, user and time."""
    pid_user: dict[tuple[str, str], str] = {}  # (host, pid) of transfer_exec rows -> user
    for line in lines:
        stats["lines"] += 1
        try:
            doc = loads(line)
        except ValueError:
            stats["bad"] += 1
            continue
        if not isinstance(doc, dict):
            stats["bad"] += 1
            continue
        name = doc.get("name")
        query = recognise(name) if isinstance(name, str) else None  # the correlator's reading of the name
        kind = QUERY_TYPES.get(query or "")
        if kind is None:
            continue
        host = doc.get("hostIdentifier") or ""
        for row in _rows(doc):
            data = row  # the parsed row is ours: annotate it in place rather than copy
            data["query"] = query
            data["host"] = host
            if kind == "process":
                user = row.get("login_user") or row.get("username") or ""
                if query == "transfer_exec":
                    if len(pid_user) > 200_000:
                        pid_user.clear()  # bounded like the correlator; pids recycle anyway
                    pid_user[(host, str(row.get("pid")))] = user
            elif kind == "file":
                user = row.get("owner") or ""
            else:
                user = row.get("login_user") or pid_user.get((host, str(row.get("pid"))), "")
            data["user"] = user
            stats["events"] += 1
            yield Event(kind, _int(row.get("time") or doc.get("unixTime")), data)


@dataclass
class PeerResult:
    lines: int
    events: int
    matches: int
    seconds: float  # wall clock
    match_keys: list[tuple[str, str]]
    cpu: float = 0.0  # CPU seconds of this process


def run_peer(lines: Iterable[bytes], config: Config) -> PeerResult:
    """Stream the lines through eql's PythonEngine; count sequence matches."""
    cpu = time.process_time()
    started = time.perf_counter()
    query = eql.parse_query(build_query(config))
    engine = eql.PythonEngine({"time_unit": 1})  # event times are epoch seconds
    keys: list[tuple[str, str]] = []

    def on_match(output: Any) -> None:
        first = output.events[0].data
        keys.append((first["host"], first["user"]))

    engine.add_output_hook(on_match)
    engine.add_query(query)
    stats = {"lines": 0, "events": 0, "bad": 0}
    stream = engine.stream_event
    for event in events_from_lines(lines, stats):
        stream(event)
    engine.finalize()
    return PeerResult(stats["lines"], stats["events"], len(keys), time.perf_counter() - started, keys,
                      time.process_time() - cpu)


def read_lines(path: str, limit: int | None = None) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle):
            if limit is not None and number >= limit:
                return
            yield line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--config", default=os.path.join(HERE, "config.yml"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N lines")
    parser.add_argument("--show-query", action="store_true")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.show_query:
        print(build_query(config))
    result = run_peer(read_lines(args.log, args.limit), config)
    print(f"eql {eql.__version__} ({JSON_LIBRARY}): {result.lines} lines, {result.events} events, "
          f"{result.matches} sequences in {result.seconds:.2f}s ({result.lines / result.seconds:,.0f} lines/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
