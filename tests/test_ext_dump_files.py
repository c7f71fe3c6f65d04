"""dump_like_files: through the real extension with temp dump roots, and its bounds in-process."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from core_standin import EQUALS, GREATER_THAN, GREATER_THAN_OR_EQUALS, LIKE, CoreStandin

from osq_dbwatch.config import Config
from osq_dbwatch.tables import TABLES
from osq_dbwatch.tables.base import QueryContext
from osq_dbwatch.tables.dump_like_files import ScanLimits
from osq_dbwatch.tables.env import ConfigHolder, ConfigState, TableEnv

PG_PLAIN = b"--\n-- PostgreSQL database dump\n--\n"
DAY = 86400


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def core(tmp_path: Path, root: Path):
    config = tmp_path / "config.yml"
    config.write_text(f"dump_roots: [{root}]\n")
    with CoreStandin(env={"OSQ_DBWATCH_PYTHON": sys.executable, "OSQ_DBWATCH_CONFIG": str(config)},
                     call_timeout=20) as standin:
        yield standin


def _paths(rows: list[dict[str, str]]) -> set[str]:
    return {r["path"] for r in rows if r.get("truncated") != "1"}


def test_names_and_contents(core: CoreStandin, root: Path) -> None:
    (root / "shop.sql").write_text(" id | email\n----+-------\n  1 | a@b.c\n")  # strong name, no signature (psql -o)
    (root / "report.sql").write_text("-- monthly report\nselect count(*) from orders;\n")  # a query file: no data
    (root / "sub").mkdir()
    (root / "sub" / "x").write_bytes(PG_PLAIN)  # no suffix, dump content
    (root / "users.txt").write_text("id,email\n1,a@b.c\n2,c@d.e\n")  # weak name + csv content
    (root / "notes.txt").write_text("remember the milk\n")  # weak name, no signature
    (root / "backup.sql.gz").write_bytes(gzip.compress(PG_PLAIN))  # strong after peeling .gz
    (root / "cache").write_bytes(gzip.compress(b"npm cache"))  # gzip alone is not a dump
    (root / "app.log").write_bytes(PG_PLAIN)  # a .log is never opened
    rows = {r["path"]: r for r in core.generate("dump_like_files")}
    assert set(rows) == {f"{root}/shop.sql", f"{root}/sub/x", f"{root}/users.txt", f"{root}/backup.sql.gz"}
    assert rows[f"{root}/shop.sql"]["kind_by_name"] == "strong"
    assert rows[f"{root}/shop.sql"]["kind_by_content"] == ""
    assert rows[f"{root}/sub/x"]["kind_by_content"] == "pg_dump_plain"
    assert rows[f"{root}/users.txt"]["kind_by_name"] == "weak"
    assert rows[f"{root}/users.txt"]["kind_by_content"] == "csv"
    assert rows[f"{root}/backup.sql.gz"]["kind_by_content"] == "gzip"
    row = rows[f"{root}/sub/x"]
    st = os.stat(root / "sub" / "x")
    assert row["size"] == str(st.st_size) and row["mtime"] == str(int(st.st_mtime))
    assert row["inode"] == str(st.st_ino) and row["uid"] == "0" and row["owner"] == "root"
    assert row["root"] == str(root) and row["truncated"] == "0"
    assert "writer_pid" not in row  # NULL, never "None"


def test_the_packs_own_query_files_are_not_dumps(core: CoreStandin, root: Path) -> None:
    """A checkout of this project (or any small file of SELECTs) is named like a dump but holds no data."""
    import shutil

    import osq_dbwatch.pack

    queries = Path(osq_dbwatch.pack.__file__).parent / "queries"
    shutil.copytree(queries, root / "queries")
    assert len(list((root / "queries").glob("*.sql"))) >= 10
    big_query = "select 1;\n" + "-- padding\n" * 500  # past the 4 KiB head: cannot be judged whole
    (root / "big.sql").write_text(big_query)
    (root / "mixed.sql").write_text("select 1;\ncopy users to stdout;\n")  # not read-only
    (root / "meta.sql").write_text("\\copy users to '/tmp/u.csv' csv\n")  # psql meta-command
    rows = core.generate("dump_like_files")
    assert _paths(rows) == {f"{root}/big.sql", f"{root}/mixed.sql", f"{root}/meta.sql"}


def test_writer_pid_of_a_file_still_being_written(core: CoreStandin, root: Path) -> None:
    path = root / "live.sql"
    with open(path, "w") as out:
        writer = subprocess.Popen(["sleep", "30"], stdout=out)
    reader_path = root / "read.sql"
    reader_path.write_text("x")
    with open(reader_path) as handle:
        reader = subprocess.Popen(["sleep", "30"], stdin=handle)
    try:
        rows = {r["path"]: r for r in core.generate("dump_like_files")}
        assert rows[str(path)]["writer_pid"] == str(writer.pid)
        assert rows[str(path)]["writer_name"] == "sleep"
        assert "writer_pid" not in rows[str(reader_path)]  # open for reading only
    finally:
        for proc in (writer, reader):
            proc.kill()
            proc.wait()


def test_recency_window_and_mtime_constraint(core: CoreStandin, root: Path) -> None:
    old = root / "old.sql"
    old.write_text("x")
    os.utime(old, (time.time() - 3 * DAY, time.time() - 3 * DAY))
    new = root / "new.sql"
    new.write_text("x")
    assert _paths(core.generate("dump_like_files")) == {str(new)}  # default window: 24 h
    since = str(int(time.time() - 5 * DAY))
    assert _paths(core.generate("dump_like_files", {"mtime": [(GREATER_THAN, since)]})) == {str(old), str(new)}
    recent = str(int(time.time() - 60))
    assert _paths(core.generate("dump_like_files", {"mtime": [(GREATER_THAN_OR_EQUALS, recent)]})) == {str(new)}


def test_path_constraints_narrow_the_scan(core: CoreStandin, root: Path) -> None:
    (root / "a").mkdir()
    (root / "b").mkdir()
    (root / "a" / "one.sql").write_text("x")
    (root / "b" / "two.sql").write_text("x")
    old = root / "b" / "old.sql"
    old.write_text("x")
    os.utime(old, (time.time() - 10 * DAY, time.time() - 10 * DAY))
    assert _paths(core.generate("dump_like_files", {"path": [(LIKE, f"{root}/a/%")]})) == {f"{root}/a/one.sql"}
    # LIKE is case-insensitive in SQLite: the narrowing must be too
    assert _paths(core.generate("dump_like_files", {"path": [(LIKE, f"{root}/A/%")]})) == {f"{root}/a/one.sql"}
    # `path =` looks at that file alone, whatever its age
    assert _paths(core.generate("dump_like_files", {"path": [(EQUALS, str(old))]})) == {str(old)}
    # ... but never outside the dump roots, not even through a symlinked directory
    assert core.generate("dump_like_files", {"path": [(EQUALS, "/etc/passwd")]}) == []
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.sql").write_bytes(PG_PLAIN)
    os.symlink(elsewhere, root / "link")
    assert core.generate("dump_like_files", {"path": [(EQUALS, f"{root}/link/secret.sql")]}) == []


def test_fifo_named_like_a_dump_does_not_block(core: CoreStandin, root: Path) -> None:
    os.mkfifo(root / "x.sql")
    (root / "real.sql").write_text("x")
    started = time.monotonic()
    rows = core.generate("dump_like_files")  # the stand-in's call times out (20 s) if it blocks
    assert time.monotonic() - started < 5
    assert _paths(rows) == {f"{root}/real.sql"}
    # and by name too
    assert core.generate("dump_like_files", {"path": [(EQUALS, f"{root}/x.sql")]}) == []


def test_symlinks_devices_and_sockets_are_not_followed_or_listed(core: CoreStandin, root: Path, tmp_path: Path) -> None:
    os.symlink("/etc/shadow", root / "shadow.sql")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "hidden.sql").write_text("x")
    os.symlink(outside, root / "linkdir")  # a symlinked directory is not entered
    os.mknod(root / "null.sql", 0o600 | 0o020000, os.makedev(1, 3))  # a character device
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "s.sql"))
    try:
        rows = core.generate("dump_like_files")
        assert _paths(rows) == set()
        assert core.generate("dump_like_files", {"path": [(EQUALS, f"{root}/shadow.sql")]}) == []
    finally:
        server.close()


def test_non_utf8_file_names(core: CoreStandin, root: Path) -> None:
    name = os.fsencode(root) + b"/caf\xe9\xff.sql"
    with open(name, "wb") as handle:
        handle.write(PG_PLAIN)
    rows = core.generate("dump_like_files")
    assert [r["path"] for r in rows] == [f"{root}/caf\\xe9\\xff.sql"]
    assert rows[0]["kind_by_content"] == "pg_dump_plain"


# -- bounds, in-process (small limits, same code)


def _table(root: Path, limits: ScanLimits):
    class Fixed(ConfigHolder):
        def get(self) -> ConfigState:
            return ConfigState(Config(dump_roots=(str(root),)), "", "")

    table = TABLES["dump_like_files"](TableEnv(Fixed()))
    table.limits = limits
    return table


def test_entry_bound_adds_a_truncation_marker(root: Path) -> None:
    for index in range(200):
        (root / f"f{index}.sql").write_text("x")
    rows = _table(root, ScanLimits(max_entries=50)).rows()
    markers = [r for r in rows if r["truncated"] == "1"]
    assert len(markers) == 1
    assert markers[0]["path"] == str(root) and "max_entries 50" in markers[0]["note"]
    assert 0 < len(rows) - 1 <= 50


def test_row_depth_and_time_bounds(root: Path) -> None:
    deep = root
    for level in range(6):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    (deep / "deep.sql").write_text("x")
    for index in range(20):
        (root / f"f{index}.sql").write_text("x")
    rows = _table(root, ScanLimits(max_depth=3)).rows()
    assert str(deep / "deep.sql") not in _paths(rows)
    assert any(r["truncated"] == "1" and "max_depth 3" in r["note"] for r in rows)
    rows = _table(root, ScanLimits(max_rows=5)).rows()
    assert len(_paths(rows)) == 5 and any("max_rows 5" in r.get("note", "") for r in rows)
    rows = _table(root, ScanLimits(time_budget_s=0.0)).rows()
    assert any("time budget" in r.get("note", "") for r in rows) or len(_paths(rows)) <= 21
    rows = _table(root, ScanLimits()).rows()
    assert len(_paths(rows)) == 21 and not any(r["truncated"] == "1" for r in rows)


def test_constraint_parsing_from_osquery_context() -> None:
    ctx = QueryContext.from_json(
        '{"constraints":[{"name":"mtime","list":[{"op":4,"expr":"100"},{"op":32,"expr":"200"}],"affinity":"BIGINT"},'
        '{"name":"path","list":[{"op":65,"expr":"/tmp/%"}],"affinity":"TEXT"}],"colsUsed":["path"],"colsUsedBitset":1}'
    )
    assert ctx.lower_bound("mtime") == 200
    assert ctx.values("path", 65) == ["/tmp/%"]
    assert ctx.cols_used == ("path",)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from osq_dbwatch import catalog  # noqa: E402
from osq_dbwatch.tables.dump_like_files import name_strength  # noqa: E402

_PARTS = st.sampled_from(["sql", "SQL", "csv", "gz", "tar", "json", "db", "txt", "log", "x", "", "bak", "zst", "7z"])


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab.-_", max_size=6), st.lists(_PARTS, max_size=4))
def test_fast_name_filter_agrees_with_the_catalog(stem: str, suffixes: list[str]) -> None:
    name = stem + "".join("." + s for s in suffixes)
    assert name_strength(name) == catalog.dump_suffix_strength(name)
