"""dump_like_files against dumps written by the real dump tools.

Dumps land in a fresh directory under /tmp (a default dump root), written
by a test user on a pty. A dump tool held on a table lock keeps its output
file open for writing, so the table must name it as the writer.
"""

from __future__ import annotations

import os

import pytest

from dbservers import (
    DB_NAME,
    MY_PASSWORDS,
    PG_PASSWORDS,
    REDIS_PASSWORD,
    MariaServer,
    PgServer,
    RedisServer,
    rows_where,
    wait_until,
)

pytestmark = pytest.mark.integration

LIKE = 65  # osquery's ConstraintOperator LIKE


def file_row(core, path: str) -> dict[str, str]:
    rows = rows_where(core, "dump_like_files", "path", path)
    assert len(rows) == 1, f"dump_like_files has {len(rows)} rows for {path}: {rows}"
    return rows[0]


def assert_file_facts(row: dict[str, str], path: str, owner: str) -> None:
    st = os.stat(path)
    assert row["root"] == "/tmp", row
    assert row["size"] == str(st.st_size) and row["inode"] == str(st.st_ino), row
    assert row["mtime"] == str(int(st.st_mtime)), row
    assert row["uid"] == str(st.st_uid) and row["owner"] == owner, row
    assert row["kind_by_name"] == "strong", row


def test_pg_dump_plain_found_by_path_and_by_scan(pty_shell, pg_server: PgServer, dump_dir: str,
                                                 osquery_core) -> None:
    out = os.path.join(dump_dir, "app.sql")
    shell = pty_shell("dbw_alice", env={"PGPASSWORD": PG_PASSWORDS["dbw_alice"]})
    shell.run(f"pg_dump -h 127.0.0.1 -p {pg_server.port} -U dbw_alice -f {out} {DB_NAME}; echo done-$?")
    shell.expect(r"done-0")
    row = file_row(osquery_core, out)
    assert_file_facts(row, out, "dbw_alice")
    assert row["kind_by_content"] == "pg_dump_plain", row
    assert row.get("writer_pid", "") in ("", "0"), row  # pg_dump has exited
    # Without the exact path: the recency scan of the root, narrowed by LIKE.
    scanned = osquery_core.generate("dump_like_files", {"path": [(LIKE, dump_dir + "/%")]})
    assert out in {r["path"] for r in scanned}, scanned


def test_pg_dump_custom_writer_while_open(pty_shell, pg_server: PgServer, dump_dir: str, osquery_core) -> None:
    out = os.path.join(dump_dir, "app.dump")
    shell = pty_shell("dbw_alice", env={"PGPASSWORD": PG_PASSWORDS["dbw_alice"]})
    with pg_server.table_locked():
        # The custom format opens its file first, then waits for the lock.
        shell.run(f"pg_dump -h 127.0.0.1 -p {pg_server.port} -U dbw_alice -Fc -f {out} {DB_NAME}")
        proc = shell.wait_for_process("pg_dump")
        wait_until(lambda: os.path.exists(out), 10, "pg_dump's output file")
        row = file_row(osquery_core, out)
        assert row["writer_pid"] == str(proc.pid), row
        assert row["writer_name"] == "pg_dump", row
        assert row["owner"] == "dbw_alice", row
    shell.wait_gone(proc)
    row = file_row(osquery_core, out)
    assert_file_facts(row, out, "dbw_alice")
    assert row["kind_by_content"] == "pg_dump_custom", row
    assert row.get("writer_pid", "") in ("", "0"), row


def test_mysqldump_writer_and_header(pty_shell, mariadb_server: MariaServer, dump_dir: str, osquery_core) -> None:
    out = os.path.join(dump_dir, "app-my.sql")
    shell = pty_shell("dbw_mallory")
    with mariadb_server.table_locked():
        shell.run(f"mysqldump -h 127.0.0.1 -P {mariadb_server.port} -u dbw_mallory "
                  f"-p{MY_PASSWORDS['dbw_mallory']} --no-tablespaces --result-file={out} {DB_NAME}")
        proc = shell.wait_for_process("mysqldump")
        wait_until(lambda: os.path.exists(out), 10, "mysqldump's result file")
        row = file_row(osquery_core, out)
        assert row["writer_pid"] == str(proc.pid), row
        assert row["writer_name"] in ("mysqldump", "mariadb-dump"), row
        # stdio still buffers the header here: nothing to sniff until it exits.
        assert row["size"] == "0", row
    shell.wait_gone(proc)
    row = file_row(osquery_core, out)
    assert_file_facts(row, out, "dbw_mallory")
    assert row["kind_by_content"] == "mysqldump", row


def test_redis_cli_rdb_magic(pty_shell, redis_server: RedisServer, dump_dir: str, osquery_core) -> None:
    out = os.path.join(dump_dir, "cache.rdb")
    shell = pty_shell("dbw_mallory")
    shell.run(f"redis-cli -h 127.0.0.1 -p {redis_server.port} --no-auth-warning -a {REDIS_PASSWORD} "
              f"--rdb {out}; echo done-$?")
    shell.expect(r"done-0", timeout=30)
    row = file_row(osquery_core, out)
    assert_file_facts(row, out, "dbw_mallory")
    assert row["kind_by_content"] == "redis_rdb", row


def test_pg_dump_piped_to_gzip_names_gzip_as_writer(pty_shell, pg_server: PgServer, dump_dir: str,
                                                     osquery_core) -> None:
    """`pg_dump | gzip > file`: the shell opened the file for gzip, which holds it."""
    out = os.path.join(dump_dir, "app.sql.gz")
    shell = pty_shell("dbw_alice", env={"PGPASSWORD": PG_PASSWORDS["dbw_alice"]})
    with pg_server.table_locked():
        shell.run(f"pg_dump -h 127.0.0.1 -p {pg_server.port} -U dbw_alice {DB_NAME} | gzip > {out}")
        gzip = shell.wait_for_process("gzip")
        dump = shell.wait_for_process("pg_dump")
        wait_until(lambda: os.path.exists(out), 10, "the shell to create the file")
        row = file_row(osquery_core, out)
        assert row["writer_pid"] == str(gzip.pid) and row["writer_name"] == "gzip", row
        session = rows_where(osquery_core, "db_cli_sessions", "pid", str(dump.pid))
        assert len(session) == 1 and session[0]["tool_kind"] == "dump", session
        assert session[0]["output_path"] == "", session  # stdout: the file is the shell's doing
    shell.wait_gone(gzip)
    row = file_row(osquery_core, out)
    assert_file_facts(row, out, "dbw_alice")
    assert row["kind_by_content"] == "gzip", row
    assert row.get("writer_pid", "") in ("", "0"), row


def test_psql_output_redirect_holds_the_file(pty_shell, pg_server: PgServer, dump_dir: str, osquery_core) -> None:
    """Interactive `\\o FILE`: psql keeps the file open for writing until `\\o` is reset."""
    out = os.path.join(dump_dir, "cards.csv")
    shell = pty_shell("dbw_mallory", env={"PGPASSWORD": PG_PASSWORDS["dbw_mallory"]})
    shell.run(f"psql -h 127.0.0.1 -p {pg_server.port} -U dbw_mallory {DB_NAME}")
    shell.expect(rf"{DB_NAME}=>")
    shell.run("\\pset format csv")
    shell.expect(rf"{DB_NAME}=>")
    shell.run(f"\\o {out}")
    shell.expect(rf"{DB_NAME}=>")
    shell.run("SELECT id, name, card FROM items;")
    shell.expect(rf"{DB_NAME}=>")
    psql = shell.wait_for_process("psql")
    wait_until(lambda: os.path.getsize(out) > 0, 10, "psql to write the query result")
    row = file_row(osquery_core, out)
    assert row["writer_pid"] == str(psql.pid) and row["writer_name"] == "psql", row
    assert row["owner"] == "dbw_mallory" and row["kind_by_content"] == "csv", row
    shell.run("\\o")
    shell.expect(rf"{DB_NAME}=>")
    wait_until(lambda: not any(f.path == out for f in psql.open_files()), 10, "psql to close the file")
    row = file_row(osquery_core, out)
    assert row.get("writer_pid", "") in ("", "0"), row
