"""db_client_history against history files written by the real clients.

A test user types into interactive psql and mysql on a pty; the clients
write ~/.psql_history and ~/.mysql_history themselves (in whatever format
their line-editing library uses), and the table must read them back.
"""

from __future__ import annotations

import contextlib
import os

import pytest

from dbservers import (
    DB_NAME,
    MY_PASSWORDS,
    PG_PASSWORDS,
    MariaServer,
    PgServer,
    REDIS_PASSWORD,
    RedisServer,
    assert_no_secret,
    rows_where,
    wait_until,
)

pytestmark = pytest.mark.integration


def _fresh(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _one(rows: list[dict[str, str]], needle: str) -> dict[str, str]:
    found = [r for r in rows if needle in r["command"]]
    assert len(found) == 1, f"{len(found)} history rows contain {needle!r}: {[r['command'] for r in rows]}"
    return found[0]


def test_psql_history_written_by_psql(pty_shell, pg_server: PgServer, dump_dir: str, test_users,
                                      osquery_core) -> None:
    user = test_users["dbw_alice"]
    history = os.path.join(user.pw_dir, ".psql_history")
    _fresh(history)
    secret = "Hist0ry-PgSekr1t"
    out = os.path.join(dump_dir, "hist.csv")
    shell = pty_shell("dbw_alice", env={"PGPASSWORD": PG_PASSWORDS["dbw_alice"]})
    shell.run(f"psql -h 127.0.0.1 -p {pg_server.port} -U dbw_alice {DB_NAME}")
    shell.expect(rf"{DB_NAME}=>")
    shell.run("SELECT count(*) FROM items;")
    shell.expect(r"\(1 row\)")
    shell.run(f"\\copy items to '{out}' csv header")
    shell.expect(r"COPY 50")
    shell.run(f"ALTER USER dbw_nobody PASSWORD '{secret}';")
    shell.expect(r"ERROR")
    shell.run("\\q")
    shell.expect_prompt()
    wait_until(lambda: os.path.exists(history), 10, "psql to write its history")

    rows = rows_where(osquery_core, "db_client_history", "file", history)
    assert rows, f"no rows for {history}: {open(history, 'rb').read()!r}"
    for row in rows:
        assert row["user"] == "dbw_alice" and row["uid"] == str(user.pw_uid), row
        assert row["engine"] == "postgres", row
    select = _one(rows, "SELECT count(*) FROM items;")
    assert select["dump_like"] == "0", select
    copy = _one(rows, "\\copy items to")
    assert copy["dump_like"] == "1", copy
    assert copy["output_path"] == out, copy
    assert "copy" in copy["intent"].lower(), copy
    alter = _one(rows, "ALTER USER dbw_nobody")
    assert int(select["line"]) < int(copy["line"]) < int(alter["line"])
    assert_no_secret(osquery_core.generate("db_client_history"), secret)


def test_mysql_history_with_escaped_space(pty_shell, mariadb_server: MariaServer, test_users,
                                          osquery_core) -> None:
    user = test_users["dbw_mallory"]
    history = os.path.join(user.pw_dir, ".mysql_history")
    _fresh(history)
    secret = "Hist0ry-MySekr1t"
    out = os.path.join(mariadb_server.files_dir, f"my out-{os.getpid()}.csv")
    _fresh(out)
    shell = pty_shell("dbw_mallory")
    shell.run(f"mysql -h 127.0.0.1 -P {mariadb_server.port} -u dbw_mallory "
              f"-p{MY_PASSWORDS['dbw_mallory']} {DB_NAME}")
    shell.expect(rf"\[{DB_NAME}\]>")
    shell.run(f"SELECT id, card FROM items INTO OUTFILE '{out}';")
    shell.expect(r"50 rows affected")
    shell.run(f"ALTER USER 'dbw_nobody'@'localhost' IDENTIFIED BY '{secret}';")
    shell.expect(r"ERROR")
    shell.run("quit")
    shell.expect_prompt()
    wait_until(lambda: os.path.exists(history), 10, "mysql to write its history")
    with open(history, "rb") as f:
        raw = f.read()
    assert b"my\\040out" in raw, raw  # the client escapes the space: the table must decode it

    rows = rows_where(osquery_core, "db_client_history", "file", history)
    for row in rows:
        assert row["user"] == "dbw_mallory" and row["uid"] == str(user.pw_uid), row
        assert row["engine"] == "mysql", row
    outfile = _one(rows, "INTO OUTFILE")
    assert outfile["command"] == f"SELECT id, card FROM items INTO OUTFILE '{out}';", outfile
    assert outfile["dump_like"] == "1", outfile
    assert outfile["output_path"] == out, outfile
    assert "OUTFILE" in outfile["intent"].upper(), outfile
    assert secret.encode() in raw  # the client keeps the statement: the table must redact it
    alter = _one(rows, "ALTER USER 'dbw_nobody'")
    assert "IDENTIFIED BY" in alter["command"], alter
    assert_no_secret(osquery_core.generate("db_client_history"), secret, MY_PASSWORDS["dbw_mallory"])


def test_redis_cli_history(pty_shell, redis_server: RedisServer, dump_dir: str, test_users, osquery_core) -> None:
    user = test_users["dbw_alice"]
    history = os.path.join(user.pw_dir, ".rediscli_history")
    _fresh(history)
    shell = pty_shell("dbw_alice")
    shell.run(f"redis-cli -h 127.0.0.1 -p {redis_server.port}")
    prompt = rf"127\.0\.0\.1:{redis_server.port}>"
    shell.expect(prompt)
    # linenoise discards typed-ahead input (TCSAFLUSH) before each prompt:
    # type a line only once the reply and the next prompt are out.
    shell.run(f"AUTH {REDIS_PASSWORD}")
    shell.expect(r"\bOK\b")
    shell.expect(prompt)
    shell.run("GET customer:3")
    shell.expect(r"4000-0000-0000-0003")
    shell.expect(prompt)
    shell.run(f"CONFIG SET dir {dump_dir}")
    shell.expect(r"protected config|\bOK\b")  # redis 7 protects `dir`; history has it either way
    shell.expect(prompt)
    shell.run("quit")
    shell.expect_prompt()
    wait_until(lambda: os.path.exists(history), 10, "redis-cli to write its history")
    with open(history, "rb") as f:
        raw = f.read()

    rows = rows_where(osquery_core, "db_client_history", "file", history)
    for row in rows:
        assert row["user"] == "dbw_alice" and row["engine"] == "redis", row
    get = _one(rows, "GET customer:3")
    assert get["dump_like"] == "0", get
    config = _one(rows, "CONFIG SET dir")
    assert config["dump_like"] == "1", config
    if REDIS_PASSWORD.encode() in raw:  # redis-cli 7 leaves AUTH out of its history; older ones did not
        _one(rows, "AUTH")
    assert_no_secret(osquery_core.generate("db_client_history"), REDIS_PASSWORD)
