"""db_cli_sessions through the real extension and the core stand-in.

Real processes: sqlite3 (a real DB client that stays up reading stdin) and,
for tools that need a server to stay up, the shape Debian itself gives them:
`/usr/bin/perl /usr/bin/psql ...` (psql, pg_dump are Perl wrappers), here a
Perl script of that name that just waits. Real servers and clients are
exercised by the integration tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from core_standin import EQUALS, CoreStandin

from osq_dbwatch import procfs
from osq_dbwatch.tables import TABLES
from osq_dbwatch.tables.base import QueryContext
from osq_dbwatch.tables.env import TableEnv

SQLITE = "/usr/bin/sqlite3"


def _spawn(argv: list, **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    _wait_exec(proc.pid, os.path.basename(os.fsdecode(argv[0]))[:15])
    return proc


def _wait_exec(pid: int, comm: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        st = procfs.stat(pid)
        if st is not None and st.comm == comm:
            return
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} never became {comm}")


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def perl_tool(tmp_path):
    """A waiting Perl script named like a DB tool: argv is `/usr/bin/perl PATH ARGS`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()

    def make(name: str, body: str = "sleep 60;") -> str:
        path = bindir / name
        path.write_text(f"#!/usr/bin/perl\n{body}\n")
        path.chmod(0o755)
        return str(path)

    return make


def _core(tmp_path: Path, config: str = "") -> CoreStandin:
    env = {"OSQ_DBWATCH_PYTHON": sys.executable}
    if config:
        path = tmp_path / "config.yml"
        path.write_text(config)
        env["OSQ_DBWATCH_CONFIG"] = str(path)
    return CoreStandin(env=env)


def _by_pid(rows: list[dict[str, str]]) -> dict[int, dict[str, str]]:
    return {int(r["pid"]): r for r in rows}


def test_real_sqlite3_client_with_output_intent(osquery_core, procs, tmp_path) -> None:
    db = tmp_path / "app.db"
    proc = _spawn([SQLITE, "-cmd", f".output {tmp_path}/x.csv", str(db)], cwd=tmp_path)
    procs.append(proc)
    row = _by_pid(osquery_core.generate("db_cli_sessions"))[proc.pid]
    assert row["tool"] == "sqlite3" and row["engine"] == "sqlite" and row["tool_kind"] == "client"
    assert row["path"] == os.path.realpath(SQLITE)
    assert row["ppid"] == str(os.getpid())
    assert row["uid"] == str(os.getuid()) and row["username"] == "root"
    assert row["dump_intent"] == ".output"
    assert row["output_path"] == f"{tmp_path}/x.csv"
    assert row["cwd"] == str(tmp_path)
    assert "dump-intent" in row["reasons"].split(",")
    assert abs(int(row["start_time"]) - time.time()) < 60
    # the ancestry goes up to pid 1, nearest first
    pids = row["ancestry_pids"].split(" < ")
    assert pids[0] == str(os.getpid()) and pids[-1] == "1"
    assert len(row["ancestry"].split(" < ")) == len(pids)
    assert row["parent_name"] == procfs.stat(os.getpid()).comm
    auid = procfs.loginuid(os.getpid())
    assert row["auid"] == str(auid)
    if auid == procfs.NO_LOGINUID:
        assert row["login_user"] == "" and "no-login-session" in row["reasons"]
    for value in row.values():
        assert value != "None"


def test_pid_constraint_reads_only_that_process(osquery_core, procs, tmp_path) -> None:
    one = _spawn([SQLITE, str(tmp_path / "a.db")])
    two = _spawn([SQLITE, str(tmp_path / "b.db")])
    procs += [one, two]
    rows = osquery_core.generate("db_cli_sessions", {"pid": [(EQUALS, str(one.pid))]})
    assert [r["pid"] for r in rows] == [str(one.pid)]
    both = osquery_core.generate("db_cli_sessions", {"pid": [(EQUALS, str(one.pid)), (EQUALS, str(two.pid))]})
    assert {r["pid"] for r in both} == {str(one.pid), str(two.pid)}
    sleeper = subprocess.Popen(["sleep", "30"])
    procs.append(sleeper)
    assert osquery_core.generate("db_cli_sessions", {"pid": [(EQUALS, str(sleeper.pid))]}) == []
    assert osquery_core.generate("db_cli_sessions", {"pid": [(EQUALS, "999999999")]}) == []
    # a constraint we cannot narrow by is ignored, never an error
    rows = osquery_core.generate("db_cli_sessions", {"pid": [(EQUALS, "abc")]})
    assert str(one.pid) in {r["pid"] for r in rows}


def test_perl_wrapped_dump_tool_is_parsed_and_redacted(osquery_core, procs, perl_tool, tmp_path) -> None:
    mysqldump = perl_tool("mysqldump")
    proc = _spawn([mysqldump, "-h", "db.internal", "-u", "app", "-pS3cretPass", "--result-file=out.sql", "shop"],
                  cwd=tmp_path)
    procs.append(proc)
    row = _by_pid(osquery_core.generate("db_cli_sessions"))[proc.pid]
    assert row["tool"] == "mysqldump" and row["tool_kind"] == "dump" and row["engine"] == "mysql"
    assert row["path"] == os.path.realpath("/usr/bin/perl")
    assert "S3cretPass" not in row["cmdline"]
    assert "-p****" in row["cmdline"]
    assert (row["target_host"], row["target_user"], row["target_database"]) == ("db.internal", "app", "shop")
    assert row["output_path"] == f"{tmp_path}/out.sql"
    assert row["reasons"].split(",")[0] == "dump-tool"


def test_remote_peers_of_open_tcp_sockets(osquery_core, procs, perl_tool) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    psql = perl_tool("psql", f"use IO::Socket::INET; my $s = IO::Socket::INET->new('127.0.0.1:{port}') or die; sleep 60;")
    proc = _spawn([psql, "-h", "127.0.0.1", "-p", str(port), "shop"])
    procs.append(proc)
    accepted, _ = server.accept()
    try:
        row = _by_pid(osquery_core.generate("db_cli_sessions"))[proc.pid]
        assert row["remote_peers"] == f"127.0.0.1:{port}"
        assert row["target_port"] == str(port)
        assert "external-peer" not in row["reasons"]  # loopback
    finally:
        accepted.close()
        server.close()


def test_user_admin_service_account_window_and_allow_from_config(tmp_path, procs) -> None:
    config = """
admins:
  groups: [root]
service_accounts: [nobody]
automation_windows:
  - days: [mon, tue, wed, thu, fri, sat, sun]
    start: "00:00"
    end: "24:00"
    users: [root]
allow:
  - user: root
    tool: sqlite3
    cmdline: "*allowed.db"
"""
    with _core(tmp_path, config) as core:
        as_root = _spawn([SQLITE, str(tmp_path / "allowed.db")])
        as_nobody = _spawn([SQLITE, "/tmp/nobody-x.db"], user=65534, group=65534, cwd="/")
        procs += [as_root, as_nobody]
        rows = _by_pid(core.generate("db_cli_sessions"))
        root_row, nobody_row = rows[as_root.pid], rows[as_nobody.pid]
        # root is an admin through its primary group (resolved from /etc/group)
        assert root_row["is_admin"] == "1" and "admin" in root_row["reasons"].split(",")
        assert root_row["in_automation_window"] == "1"
        assert "in-automation-window" in root_row["reasons"].split(",")
        assert root_row["allowed"] == "1"
        assert nobody_row["username"] == "nobody" and nobody_row["uid"] == "65534"
        assert nobody_row["is_service_account"] == "1"
        assert nobody_row["service_context"] == "service-account:nobody"
        assert nobody_row["allowed"] == "0"
        assert "web-account" in nobody_row["reasons"].split(",")


def test_non_utf8_argv_is_escaped_not_fatal(osquery_core, procs, tmp_path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9-\xff.db"
    proc = _spawn([SQLITE.encode(), name])
    procs.append(proc)
    row = _by_pid(osquery_core.generate("db_cli_sessions"))[proc.pid]
    assert "\\xe9-\\xff.db" in row["cmdline"]
    assert row["target_database"].endswith("\\xe9-\\xff.db")


def test_100kb_command_line_is_bounded(osquery_core, procs, tmp_path) -> None:
    statement = "select '" + "A" * 100_000 + "';"
    proc = _spawn([SQLITE, "-cmd", statement, str(tmp_path / "big.db")])
    procs.append(proc)
    started = time.monotonic()
    row = _by_pid(osquery_core.generate("db_cli_sessions"))[proc.pid]
    assert time.monotonic() - started < 5
    assert len(row["cmdline"]) <= 8192
    assert row["tool"] == "sqlite3"
    assert "long-cmdline" in row["reasons"].split(",") and row["allowed"] == "0"


def test_processes_vanishing_mid_scan_are_skipped(osquery_core, tmp_path) -> None:
    stop = threading.Event()
    spawned = [0]

    def churn() -> None:
        while not stop.is_set():
            # real sqlite3 clients that exit at once (stdin is empty)
            procs = [subprocess.Popen([SQLITE, str(tmp_path / "v.db")], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(10)]
            for proc in procs:
                proc.wait()
            spawned[0] += len(procs)

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    try:
        for _ in range(30):
            response = osquery_core.generate_raw("db_cli_sessions")
            assert response.status.code == 0, response.status.message
    finally:
        stop.set()
        worker.join(10)
    assert spawned[0] > 0
    assert osquery_core.proc.poll() is None


def test_session_of_a_process_that_exited_is_none(tmp_path) -> None:
    # deterministic version of the race: stat read, then the process is gone
    from osq_dbwatch.tables.db_cli_sessions import _Scan

    proc = _spawn([SQLITE, str(tmp_path / "gone.db")])
    st = procfs.stat(proc.pid)
    proc.kill()
    proc.wait()
    env = TableEnv()
    table = TABLES["db_cli_sessions"](env)
    scan = _Scan(stats={}, boot=procfs.boot_time(), accounts=env.accounts())
    from osq_dbwatch import catalog

    assert table._session(proc.pid, st, catalog.DB_TOOLS_BY_NAME, scan, env.config, time.time()) is None
    assert table.rows(QueryContext.from_dict({"constraints": [{"name": "pid", "list": [{"op": 2, "expr": str(proc.pid)}]}]})) == []


def test_client_that_rewrote_its_process_title(osquery_core, procs) -> None:
    # mongosh (Node) replaces its argv with the title "mongosh " and pads the
    # rest with NULs; Perl's $0 does the same kind of rewrite.
    proc = subprocess.Popen(["perl", "-e", '$0 = "mongosh "; sleep 60', "--", "--host", "db.example"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(proc)
    _wait_exec(proc.pid, "mongosh ")
    row = _by_pid(osquery_core.generate("db_cli_sessions"))[proc.pid]
    assert (row["tool"], row["engine"], row["cmdline"]) == ("mongosh", "mongo", "mongosh")
    # with a connection string the title fills comm's 15 bytes: "mongosh mongodb"
    title = "mongosh mongodb://<credentials>@127.0.0.1:27017/shop?directConnection=true"
    proc = subprocess.Popen(["perl", "-e", f'$0 = q{{{title}}}; sleep 60'], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    procs.append(proc)
    _wait_exec(proc.pid, "mongosh mongodb")
    row = _by_pid(osquery_core.generate("db_cli_sessions"))[proc.pid]
    assert (row["tool"], row["target_host"], row["target_port"], row["target_database"]) == (
        "mongosh", "127.0.0.1", "27017", "shop")
