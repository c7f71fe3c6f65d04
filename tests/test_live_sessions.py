"""db_cli_sessions against real clients, real servers, real users on a real pty.

Each test types a client command into a test user's login shell on a
pseudo-terminal, holds the client open (at its prompt, in a sleeping query,
or blocked on a table lock), and reads the extension's table through the
osquery core stand-in over Thrift, exactly as osqueryd would.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import psutil

import pytest

from dbservers import (
    DB_NAME,
    MY_PASSWORDS,
    PG_PASSWORDS,
    REDIS_PASSWORD,
    MariaServer,
    PgServer,
    RedisServer,
    SilentListener,
    assert_no_secret,
    assert_peer,
    assert_seen_in_session,
    session_row,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_interactive_psql_at_its_prompt(pty_shell, pg_server: PgServer, osquery_core) -> None:
    secret = PG_PASSWORDS["dbw_alice"]
    shell = pty_shell("dbw_alice", env={"PGPASSWORD": secret})
    shell.run(f"psql -h 127.0.0.1 -p {pg_server.port} -U dbw_alice -d {DB_NAME}")
    shell.expect(rf"{DB_NAME}=>")
    proc = shell.wait_for_process("psql")
    row = session_row(osquery_core, proc.pid)
    assert_seen_in_session(row, shell, proc, tool="psql", engine="postgres", kind="client")
    assert (row["target_host"], row["target_port"], row["target_database"], row["target_user"]) == (
        "127.0.0.1", str(pg_server.port), DB_NAME, "dbw_alice")
    assert row["dump_intent"] == "" and row["output_path"] == "", row
    assert_peer(row, pg_server.port)
    assert_no_secret([row], secret)
    # The unconstrained scan finds the same session.
    assert str(proc.pid) in {r["pid"] for r in osquery_core.generate("db_cli_sessions")}


def test_psql_uri_password_never_shown(pty_shell, pg_server: PgServer, osquery_core) -> None:
    secret = PG_PASSWORDS["dbw_mallory"]
    shell = pty_shell("dbw_mallory")
    uri = f"postgresql://dbw_mallory:{secret}@127.0.0.1:{pg_server.port}/{DB_NAME}"
    shell.run(f"psql '{uri}' -c 'SELECT pg_sleep(30)'")
    proc = shell.wait_for_process("psql")
    assert secret in " ".join(proc.cmdline())  # psql leaves it in /proc: the table must not
    wait_until(lambda: any(c.status == "ESTABLISHED" for c in proc.net_connections("tcp")), 10, "psql's connection")
    row = session_row(osquery_core, proc.pid)
    assert_seen_in_session(row, shell, proc, tool="psql", engine="postgres", kind="client")
    assert (row["target_host"], row["target_port"], row["target_database"], row["target_user"]) == (
        "127.0.0.1", str(pg_server.port), DB_NAME, "dbw_mallory")
    assert_peer(row, pg_server.port)
    assert_no_secret(osquery_core.generate("db_cli_sessions"), secret)


def test_psql_as_postgres_from_another_login(pty_shell, pg_server: PgServer, osquery_core) -> None:
    """`sudo -u postgres psql` after logging in as mallory: uid postgres, login user mallory."""
    shell = pty_shell("postgres", login_user="dbw_mallory")
    shell.run(f"psql -h {pg_server.socket_dir} -p {pg_server.port} -d {DB_NAME} -c 'SELECT pg_sleep(30)'")
    proc = shell.wait_for_process("psql")
    row = session_row(osquery_core, proc.pid)
    assert_seen_in_session(row, shell, proc, tool="psql", engine="postgres", kind="client")
    assert row["username"] == "postgres"
    if not shell.loginuid_refused:
        assert row["login_user"] == "dbw_mallory", row
    assert row["target_database"] == DB_NAME
    assert row["remote_peers"] == ""  # a Unix socket is no TCP peer


def test_psql_copy_to_file_is_a_dump(pty_shell, pg_server: PgServer, dump_dir: str, osquery_core) -> None:
    shell = pty_shell("dbw_alice", env={"PGPASSWORD": PG_PASSWORDS["dbw_alice"]}, cwd=dump_dir)
    # The sleep keeps psql alive with the \copy still ahead of it; relative path on purpose.
    shell.run(f"psql -h 127.0.0.1 -p {pg_server.port} -U dbw_alice {DB_NAME} "
              "-c 'SELECT pg_sleep(30)' -c \"\\copy items to 'cards.csv' csv header\"")
    proc = shell.wait_for_process("psql")
    row = session_row(osquery_core, proc.pid)
    assert_seen_in_session(row, shell, proc, tool="psql", engine="postgres", kind="client")
    assert "copy" in row["dump_intent"].lower(), row
    assert row["output_path"] == os.path.join(dump_dir, "cards.csv"), row
    assert row["cwd"] == dump_dir
    assert "dump" in row["reasons"], row


def test_pg_dump_to_file_while_it_runs(pty_shell, pg_server: PgServer, dump_dir: str, osquery_core) -> None:
    out = os.path.join(dump_dir, "app.sql")
    shell = pty_shell("dbw_alice", env={"PGPASSWORD": PG_PASSWORDS["dbw_alice"]})
    with pg_server.table_locked():  # pg_dump waits for its ACCESS SHARE lock
        shell.run(f"pg_dump -h 127.0.0.1 -p {pg_server.port} -U dbw_alice -f {out} {DB_NAME}")
        proc = shell.wait_for_process("pg_dump")
        wait_until(lambda: any(c.status == "ESTABLISHED" for c in proc.net_connections("tcp")), 10,
                   "pg_dump's connection")
        row = session_row(osquery_core, proc.pid)
        assert_seen_in_session(row, shell, proc, tool="pg_dump", engine="postgres", kind="dump")
        assert (row["target_host"], row["target_port"], row["target_database"], row["target_user"]) == (
            "127.0.0.1", str(pg_server.port), DB_NAME, "dbw_alice")
        assert row["dump_intent"] != "" and row["output_path"] == out, row
        assert_peer(row, pg_server.port)
    shell.wait_gone(proc)
    with open(out, encoding="utf-8") as f:
        assert "PostgreSQL database dump" in f.read(4096)


def test_interactive_mysql_password_never_shown(pty_shell, mariadb_server: MariaServer, osquery_core) -> None:
    secret = MY_PASSWORDS["dbw_mallory"]
    shell = pty_shell("dbw_mallory")
    shell.run(f"mysql -h 127.0.0.1 -P {mariadb_server.port} -u dbw_mallory -p{secret} {DB_NAME}")
    shell.expect(rf"\[{DB_NAME}\]>")
    proc = shell.wait_for_process("mysql")
    assert os.path.basename(proc.exe()) == "mariadb"  # Debian: mysql -> mariadb
    row = session_row(osquery_core, proc.pid)
    assert_seen_in_session(row, shell, proc, tool=("mysql", "mariadb"), engine="mysql", kind="client")
    assert (row["target_host"], row["target_port"], row["target_database"], row["target_user"]) == (
        "127.0.0.1", str(mariadb_server.port), DB_NAME, "dbw_mallory")
    assert row["dump_intent"] == "", row
    assert_peer(row, mariadb_server.port)
    assert_no_secret(osquery_core.generate("db_cli_sessions"), secret)


def test_mysql_into_outfile_is_a_dump(pty_shell, mariadb_server: MariaServer, osquery_core) -> None:
    secret = MY_PASSWORDS["dbw_alice"]
    out = os.path.join(mariadb_server.files_dir, f"cards-{os.getpid()}.csv")
    shell = pty_shell("dbw_alice")
    # SLEEP holds the statement (and the client) before anything is written.
    shell.run(f"mysql -h 127.0.0.1 -P {mariadb_server.port} -u dbw_alice --password={secret} {DB_NAME} "
              f"-e \"SELECT id, card, SLEEP(20) FROM items WHERE id = 1 INTO OUTFILE '{out}'\"")
    proc = shell.wait_for_process("mysql")
    row = session_row(osquery_core, proc.pid)
    assert_seen_in_session(row, shell, proc, tool=("mysql", "mariadb"), engine="mysql", kind="client")
    assert "OUTFILE" in row["dump_intent"].upper(), row
    assert row["output_path"] == out, row
    assert_no_secret([row], secret)
    mariadb_server.admin_sql("KILL QUERY USER dbw_alice")  # no file is left behind


def test_mysqldump_result_file_while_it_runs(pty_shell, mariadb_server: MariaServer, dump_dir: str,
                                            osquery_core) -> None:
    secret = MY_PASSWORDS["dbw_alice"]
    out = os.path.join(dump_dir, "app.sql")
    shell = pty_shell("dbw_alice")
    with mariadb_server.table_locked():  # mysqldump waits on LOCK TABLES ... READ
        shell.run(f"mysqldump -h 127.0.0.1 -P {mariadb_server.port} -u dbw_alice -p{secret} "
                  f"--no-tablespaces --result-file={out} {DB_NAME}")
        proc = shell.wait_for_process("mysqldump")
        wait_until(lambda: os.path.exists(out), 10, "mysqldump's result file")
        # mysqldump opens its result file before it connects: wait for the connection as well.
        wait_until(lambda: f":{mariadb_server.port}" in session_row(osquery_core, proc.pid)["remote_peers"], 10,
                   "mysqldump's connection in db_cli_sessions")
        row = session_row(osquery_core, proc.pid)
        assert_seen_in_session(row, shell, proc, tool=("mysqldump", "mariadb-dump"), engine="mysql", kind="dump")
        assert (row["target_host"], row["target_port"], row["target_database"], row["target_user"]) == (
            "127.0.0.1", str(mariadb_server.port), DB_NAME, "dbw_alice")
        assert row["dump_intent"] != "" and row["output_path"] == out, row
        assert_peer(row, mariadb_server.port)
        assert_no_secret([row], secret)
    shell.wait_gone(proc)


def test_interactive_redis_cli_password_never_shown(pty_shell, redis_server: RedisServer, osquery_core) -> None:
    shell = pty_shell("dbw_mallory")
    shell.run(f"redis-cli -h 127.0.0.1 -p {redis_server.port} -a {REDIS_PASSWORD}")
    shell.expect(rf"127\.0\.0\.1:{redis_server.port}>")
    proc = shell.wait_for_process("redis-cli")
    row = session_row(osquery_core, proc.pid)
    assert_seen_in_session(row, shell, proc, tool="redis-cli", engine="redis", kind="client")
    assert (row["target_host"], row["target_port"]) == ("127.0.0.1", str(redis_server.port)), row
    assert row["dump_intent"] == "", row
    assert_peer(row, redis_server.port)
    assert_no_secret(osquery_core.generate("db_cli_sessions"), REDIS_PASSWORD)


def test_redis_cli_rdb_is_a_dump(pty_shell, redis_server: RedisServer, dump_dir: str, osquery_core) -> None:
    out = os.path.join(dump_dir, "cache.rdb")
    shell = pty_shell("dbw_mallory")
    # While clients are paused, redis-cli waits for the server's snapshot. The
    # pause just ends (CLIENT UNPAUSE would itself wait for it as a paused command).
    redis_server.cli("CLIENT", "PAUSE", "8000", "ALL")
    shell.run(f"redis-cli -h 127.0.0.1 -p {redis_server.port} -a {REDIS_PASSWORD} --rdb {out}")
    proc = shell.wait_for_process("redis-cli")
    wait_until(lambda: any(c.status == "ESTABLISHED" for c in proc.net_connections("tcp")), 10,
               "redis-cli's connection")
    row = session_row(osquery_core, proc.pid)
    # --rdb turns the client into a dump tool for this run.
    assert_seen_in_session(row, shell, proc, tool="redis-cli", engine="redis", kind="dump")
    assert row["dump_intent"] != "" and row["output_path"] == out, row
    assert_peer(row, redis_server.port)
    assert_no_secret([row], REDIS_PASSWORD)
    shell.wait_gone(proc)
    with open(out, "rb") as f:
        assert f.read(5) == b"REDIS"


def test_mongosh_session(pty_shell, mongo_listener: SilentListener, osquery_core) -> None:
    assert shutil.which("mongosh"), "mongosh is not installed (tests/install-deps.sh installs it from npm)"
    secret = "MongoSekr1t-3141"
    shell = pty_shell("dbw_mallory")
    before = mongo_listener.accepted
    shell.run(f"mongosh 'mongodb://dbw_mallory:{secret}@127.0.0.1:{mongo_listener.port}/{DB_NAME}"
              "?serverSelectionTimeoutMS=60000'")
    proc = shell.wait_for_process("mongosh", timeout=30)
    wait_until(lambda: mongo_listener.accepted > before, 20, "mongosh to connect")
    row = session_row(osquery_core, proc.pid)
    assert_seen_in_session(row, shell, proc, tool="mongosh", engine="mongo", kind="client")
    assert (row["target_host"], row["target_port"], row["target_database"]) == (
        "127.0.0.1", str(mongo_listener.port), DB_NAME), row
    assert row["target_user"] in ("", "dbw_mallory"), row  # mongosh hides it from its own title
    assert_peer(row, mongo_listener.port)
    assert_no_secret(osquery_core.generate("db_cli_sessions"), secret)


def test_psql_without_terminal_is_not_interactive(pg_server: PgServer, test_users, osquery_core) -> None:
    """The contrast case: a client started by a daemon, no tty, no new login."""

    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": PG_PASSWORDS["dbw_alice"], "HOME": test_users["dbw_alice"].pw_dir}
    proc = subprocess.Popen(
        ["psql", "-X", "-h", "127.0.0.1", "-p", str(pg_server.port), "-U", "dbw_alice", "-d", DB_NAME,
         "-c", "SELECT pg_sleep(30)"],
        user="dbw_alice", env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        ps = psutil.Process(proc.pid)
        # /proc/PID/exe, not psutil's exe() (cached from pg_wrapper's perl phase).
        wait_until(lambda: os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) == "psql"
                   and any(c.status == "ESTABLISHED" for c in ps.net_connections("tcp")), 10, "psql to connect")
        row = session_row(osquery_core, proc.pid)
        with open("/proc/self/loginuid", encoding="ascii") as f:
            own_auid = f.read().strip()
        assert row["username"] == "dbw_alice" and row["ppid"] == str(os.getpid()), row
        assert row["tty"] == "" and row["interactive"] == "0", row
        assert row["auid"] == own_auid, row
        assert_peer(row, pg_server.port)
    finally:
        proc.kill()
        proc.wait(10)


def test_mongosh_at_its_prompt_without_server(pty_shell, osquery_core) -> None:
    """mongosh rewrites its own process title ("mongosh " + padding): still a mongo client."""
    assert shutil.which("mongosh"), "mongosh is not installed (tests/install-deps.sh installs it from npm)"
    shell = pty_shell("dbw_alice")
    shell.run("mongosh --nodb --norc")
    shell.expect(r"(?:\n|\x1b\[0J)> ", timeout=30)
    proc = shell.wait_for_process("mongosh", timeout=30)
    row = session_row(osquery_core, proc.pid)
    assert_seen_in_session(row, shell, proc, tool="mongosh", engine="mongo", kind="client")
    assert row["target_host"] == "" and row["remote_peers"] == "", row


def test_sudo_to_postgres_keeps_the_login_user(pty_shell, pg_server: PgServer, test_users, osquery_core) -> None:
    """mallory logs in, becomes root, then `sudo -u postgres psql`: real sudo in the chain."""
    shell = pty_shell("root", login_user="dbw_mallory")
    shell.run(f"sudo -u postgres psql -h {pg_server.socket_dir} -p {pg_server.port} -d {DB_NAME} "
              "-c 'SELECT pg_sleep(30)'")
    proc = shell.wait_for_process("psql")
    row = session_row(osquery_core, proc.pid)
    assert row["username"] == "postgres" and row["uid"] == str(proc.uids().real), row
    assert row["auid"] == str(shell.auid) and row["login_user"] == shell.expected_login_user, row
    if not shell.loginuid_refused:
        assert row["login_user"] == "dbw_mallory", row
    names = row["ancestry"].split(" < ")
    pids = row["ancestry_pids"].split(" < ")
    assert row["parent_name"] == "sudo" and names[0] == "sudo", row
    assert str(shell.pid) in pids and names[pids.index(str(shell.pid))] == "bash", row
    # Debian's sudoers has use_pty: the command may get a pty of its own.
    assert row["tty"].removeprefix("/dev/").startswith("pts/") and row["interactive"] == "1", row
    assert (row["tool"], row["engine"], row["tool_kind"]) == ("psql", "postgres", "client"), row


def test_concurrent_sessions_each_with_their_own_user_and_tty(
    pty_shell, pg_server: PgServer, mariadb_server: MariaServer, redis_server: RedisServer, osquery_core
) -> None:
    """Three users' clients at once; one unconstrained scan attributes each correctly."""
    alice = pty_shell("dbw_alice", env={"PGPASSWORD": PG_PASSWORDS["dbw_alice"]})
    mallory = pty_shell("dbw_mallory")
    admin = pty_shell("root", login_user="dbw_alice")
    alice.run(f"psql -h 127.0.0.1 -p {pg_server.port} -U dbw_alice -d {DB_NAME}")
    alice.expect(rf"{DB_NAME}=>")
    mallory.run(f"mysql -h 127.0.0.1 -P {mariadb_server.port} -u dbw_mallory "
                f"-p{MY_PASSWORDS['dbw_mallory']} {DB_NAME}")
    mallory.expect(rf"\[{DB_NAME}\]>")
    admin.run(f"redis-cli -h 127.0.0.1 -p {redis_server.port} --no-auth-warning -a {REDIS_PASSWORD}")
    admin.expect(rf"127\.0\.0\.1:{redis_server.port}>")
    procs = {
        "psql": (alice, alice.wait_for_process("psql")),
        "mysql": (mallory, mallory.wait_for_process("mysql")),
        "redis-cli": (admin, admin.wait_for_process("redis-cli")),
    }
    rows = {r["pid"]: r for r in osquery_core.generate("db_cli_sessions")}
    assert len({shell.tty for shell, _ in procs.values()}) == 3
    for tool, (shell, proc) in procs.items():
        row = rows.get(str(proc.pid))
        assert row is not None, f"{tool} ({proc.pid}) missing from the scan: {sorted(rows)}"
        engine = {"psql": "postgres", "mysql": "mysql", "redis-cli": "redis"}[tool]
        assert_seen_in_session(row, shell, proc, tool=tool, engine=engine, kind="client")
    assert_no_secret(list(rows.values()), MY_PASSWORDS["dbw_mallory"], REDIS_PASSWORD, PG_PASSWORDS["dbw_alice"])
