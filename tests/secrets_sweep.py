"""A planted-secret sweep any test can run over any output.

Plant the secrets of PLANTED_SECRETS in inputs (command lines, history files,
scenario logs) with the forms of SECRET_FORMS, run the program, then
`assert_no_secret(output)` on every output it wrote: stdout, stderr, findings,
table rows, state files, reports. Each secret is a distinct, unlikely token,
so a hit names the form that leaked.

    from secrets_sweep import PLANTED_SECRETS, SECRET_FORMS, assert_no_secret
"""

from __future__ import annotations

import os
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
