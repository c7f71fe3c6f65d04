"""The extension as osquery core sees it: launcher, registration, Thrift calls, errors.

Everything here runs the real extension/osq_dbwatch.ext under the core
stand-in (tests/core_standin.py), which serves osquery's own Thrift interface.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from core_standin import LAUNCHER, REPO, CoreStandin, CoreStandinError

from osq_dbwatch.tables import TABLES

BIGINT_COLUMNS = {"pid", "ppid", "start_time", "uid", "euid", "auid", "size", "mtime", "ctime", "inode",
                  "writer_pid", "line", "file_mtime"}


def test_launcher_is_an_executable_script_osquery_can_exec() -> None:
    st = os.stat(LAUNCHER)
    assert st.st_mode & 0o100, "owner-executable"
    assert not st.st_mode & 0o002, "not world-writable"
    with open(LAUNCHER, "rb") as handle:
        assert handle.read(2) == b"#!"
    assert LAUNCHER.endswith(".ext")


def test_registration_lists_every_table_with_its_columns(osquery_core: CoreStandin) -> None:
    registry = osquery_core.registry
    assert set(registry) == {"table"}
    assert set(registry["table"]) == set(TABLES)
    for name, cls in TABLES.items():
        routes = registry["table"][name]
        assert [(r["name"], r["type"]) for r in routes] == cls.columns()
        assert all(r["id"] == "column" for r in routes)
    info = next(iter(osquery_core.registered.values()))[0]
    assert info.name == "osq_dbwatch"
    # The extension reports itself in osquery_extensions like any other.
    assert any(r["name"] == "osq_dbwatch" for r in osquery_core.core_query("SELECT name FROM osquery_extensions"))


def test_columns_over_thrift_match_the_registry_and_use_bigint(osquery_core: CoreStandin) -> None:
    for name, cls in TABLES.items():
        columns = osquery_core.columns(name)
        assert columns == cls.columns()
        for column, kind in columns:
            if column in BIGINT_COLUMNS:
                assert kind == "BIGINT", f"{name}.{column} must be BIGINT (core casts INTEGER through 32 bits)"
            assert kind in ("TEXT", "INTEGER", "BIGINT")


def test_generate_every_table_returns_text_cells_never_none(tmp_path) -> None:
    root = tmp_path / "dumps"
    root.mkdir()
    (root / "a.sql").write_text("-- PostgreSQL database dump\n")
    config = tmp_path / "config.yml"
    config.write_text(f"dump_roots: [{root}]\n")
    with CoreStandin(env={"OSQ_DBWATCH_PYTHON": sys.executable, "OSQ_DBWATCH_CONFIG": str(config)}) as core:
        _check_text_cells(core)


def _check_text_cells(osquery_core: CoreStandin) -> None:
    for name, cls in TABLES.items():
        rows = osquery_core.generate(name)
        assert isinstance(rows, list)
        names = set(cls.column_names())
        for row in rows:
            assert set(row) <= names
            for value in row.values():
                assert isinstance(value, str)
                assert value != "None"
    # dbwatch_coverage always answers one row per check
    assert len(osquery_core.generate("dbwatch_coverage")) == 6


def test_unknown_table_and_action_are_error_statuses(osquery_core: CoreStandin) -> None:
    response = osquery_core.call("no_such_table", {"action": "generate"})
    assert response.status.code == 1
    response = osquery_core.call("dbwatch_coverage", {"action": "explode"})
    assert response.status.code == 1
    # ... and the extension still answers
    assert osquery_core.ping().code == 0
    assert osquery_core.generate("dbwatch_coverage")


def test_malformed_context_is_treated_as_no_constraints(osquery_core: CoreStandin) -> None:
    for context in ("{not json", "[]", '{"constraints": [{"name": 5}, {"name": "pid", "list": "x"}]}', "null"):
        response = osquery_core.call("db_cli_sessions", {"action": "generate", "context": context})
        assert response.status.code == 0, context


def test_launcher_passes_osquery_argv_and_env_and_ignores_unknown_arguments() -> None:
    # osqueryd execs with argv[0] "osquery extension: PATH" and OSQUERY_EXTENSION;
    # extra arguments (a future osquery flag) must not kill the extension.
    with CoreStandin(ext_argv=[LAUNCHER, "--some-future-flag", "x", "--other=1"],
                     env={"OSQ_DBWATCH_PYTHON": sys.executable}, verbose=True) as core:
        assert set(core.registry["table"]) == set(TABLES)
        environ = open(f"/proc/{core.proc.pid}/environ", "rb").read().split(b"\0")
        assert f"OSQUERY_EXTENSION={os.getpid()}".encode() in environ
        argv = open(f"/proc/{core.proc.pid}/cmdline", "rb").read().split(b"\0")
        assert b"--socket" in argv and core.socket_path.encode() in argv
        core.generate("dbwatch_coverage")
        # --verbose logs each generate to stderr
        deadline = time.monotonic() + 5
        while "dbwatch_coverage:" not in core.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "dbwatch_coverage:" in core.stderr_text()


def test_launcher_falls_back_to_the_repo_without_python_override() -> None:
    # No OSQ_DBWATCH_PYTHON and no osq-dbwatch on PATH: <repo>/.venv or python3 + <repo>/src.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OSQ_DBWATCH_PYTHON": ""}
    with CoreStandin(env=env) as core:
        assert set(core.registry["table"]) == set(TABLES)


def test_launcher_prefers_the_installed_package_on_path(tmp_path) -> None:
    # An `osq-dbwatch` console script on PATH: its shebang's interpreter runs the server.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "osq-dbwatch"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom osq_dbwatch.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "OSQ_DBWATCH_PYTHON": "", "py": "/nonexistent"}
    with CoreStandin(env=env) as core:
        assert set(core.registry["table"]) == set(TABLES)
        argv = open(f"/proc/{core.proc.pid}/cmdline", "rb").read().split(b"\0")
        assert argv[0] == sys.executable.encode() and argv[1] == b"-c"


def test_socket_that_never_answers_exits_nonzero_with_one_stderr_line(tmp_path) -> None:
    socket_path = tmp_path / "nobody.em"
    env = dict(os.environ, OSQUERY_EXTENSION=str(os.getpid()), OSQ_DBWATCH_PYTHON=sys.executable)
    started = time.monotonic()
    proc = subprocess.run(
        [LAUNCHER, "--socket", str(socket_path), "--timeout", "1", "--interval", "1"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(socket_path) in lines[0] and "did not answer" in lines[0]
    assert elapsed < 10


def test_a_socket_file_nobody_listens_on_also_fails_cleanly(tmp_path) -> None:
    import socket as socket_mod

    path = str(tmp_path / "dead.em")
    sock = socket_mod.socket(socket_mod.AF_UNIX)
    sock.bind(path)
    sock.close()  # the file stays, nobody accepts
    proc = subprocess.run([LAUNCHER, "--socket", path, "--timeout", "1"], capture_output=True, text=True,
                          timeout=30, env=dict(os.environ, OSQ_DBWATCH_PYTHON=sys.executable))
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1


def test_extension_exits_when_core_goes_away() -> None:
    with CoreStandin(env={"OSQ_DBWATCH_PYTHON": sys.executable}, interval=1) as core:
        proc = core.proc
        core.vanish()
        proc.wait(timeout=15)  # the watcher's next ping fails
        assert proc.returncode == 1
        assert "stopped answering" in core.stderr_text()


def test_duplicate_extension_is_refused_and_says_so() -> None:
    with CoreStandin(env={"OSQ_DBWATCH_PYTHON": sys.executable}) as core:
        second = core.spawn(core.socket_path)
        assert second.wait(timeout=15) != 0
        assert "refused" in core.stderr_text()
        assert core.generate("dbwatch_coverage")


FAILING_EXTENSION = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {src!r})
    from osq_dbwatch.tables import TABLES, server
    from osq_dbwatch.tables.base import TEXT, Table

    class Boom(Table):
        name = "dbwatch_test_boom"
        COLUMNS = (("x", TEXT, "x"),)
        def generate(self, ctx):
            raise RuntimeError("table exploded")

    class Slow(Table):
        name = "dbwatch_test_slow"
        COLUMNS = (("x", TEXT, "x"),)
        def generate(self, ctx):
            time.sleep(3)
            return [{{"x": "done"}}]

    TABLES[Boom.name] = Boom
    TABLES[Slow.name] = Slow
    sys.exit(server.main(sys.argv[1:]))
    """
)


@pytest.fixture
def core_with_bad_tables(tmp_path):
    script = tmp_path / "bad_tables.ext"
    script.write_text(f"#!{sys.executable}\n" + FAILING_EXTENSION.format(src=os.path.join(REPO, "src")))
    script.chmod(0o755)
    with CoreStandin(ext_argv=[str(script)], interval=1) as core:
        yield core


def test_failing_table_returns_error_status_and_extension_keeps_serving(core_with_bad_tables) -> None:
    core = core_with_bad_tables
    response = core.generate_raw("dbwatch_test_boom")
    assert response.status.code != 0
    assert "table exploded" in response.status.message
    with pytest.raises(CoreStandinError):
        core.generate("dbwatch_test_boom")
    assert core.proc.poll() is None
    assert core.ping().code == 0
    assert core.generate("dbwatch_coverage")
    assert "table exploded" in core.stderr_text()


def test_slow_generate_does_not_kill_the_extension(core_with_bad_tables) -> None:
    core = core_with_bad_tables
    # 3 s of generate spans several --interval 1 pings of core by the watcher.
    assert core.generate("dbwatch_test_slow") == [{"x": "done"}]
    assert core.proc.poll() is None
    assert core.ping().code == 0


def test_hand_encoded_call_reply_decodes_with_the_generated_reader() -> None:
    from osquery.extensions.Extension import call_result
    from osquery.extensions.ttypes import ExtensionResponse, ExtensionStatus
    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TMessageType
    from thrift.transport import TTransport

    from osq_dbwatch.tables.server import encode_call_reply

    for response in (
        ExtensionResponse(status=ExtensionStatus(code=0, message="OK"),
                          response=[{"path": "/tmp/caf\u00e9.sql", "size": "12"}, {}, {"x": ""}]),
        ExtensionResponse(status=ExtensionStatus(code=1, message="boom", uuid=7), response=[]),
        ExtensionResponse(status=ExtensionStatus(code=0, message="OK"), response=None),
    ):
        data = encode_call_reply(42, response)
        protocol = TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(data))
        assert protocol.readMessageBegin() == ("call", TMessageType.REPLY, 42)
        result = call_result()
        result.read(protocol)
        assert result.success == response
