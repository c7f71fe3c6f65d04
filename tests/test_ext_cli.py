"""`osq-dbwatch tables` and `osq-dbwatch extension` on this host, no osquery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from osq_dbwatch.tables import TABLES

CLI = [sys.executable, "-m", "osq_dbwatch"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


def _config(tmp_path: Path) -> str:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "dump.sql").write_text("-- MySQL dump 10.13\n")
    path = tmp_path / "config.yml"
    path.write_text(f"dump_roots: [{root}]\n")
    return str(path)


def test_tables_prints_every_table(tmp_path: Path) -> None:
    proc = _run("tables", "--config", _config(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for name in TABLES:
        assert f"{name}: " in proc.stdout
    assert "dump.sql" in proc.stdout
    assert "check_name" in proc.stdout  # narrow tables print as aligned columns


def test_tables_json_for_one_table(tmp_path: Path) -> None:
    proc = _run("tables", "dump_like_files", "--json", "--config", _config(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["kind_by_content"] for r in rows] == ["mysqldump"]
    proc = _run("tables", "--json", "--config", _config(tmp_path))
    assert set(json.loads(proc.stdout)) == set(TABLES)


def test_tables_config_from_env(tmp_path: Path) -> None:
    proc = _run("tables", "dump_like_files", "--json", env={"OSQ_DBWATCH_CONFIG": _config(tmp_path)})
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 1


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("dump_roots: 5\n")
    proc = _run("tables", "--config", str(bad))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "bad.yml" in proc.stderr


def test_unknown_table_is_an_error() -> None:
    proc = _run("tables", "no_such_table")
    assert proc.returncode == 2


def test_hostile_file_names_are_terminal_safe(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "evil\x1b[2J\n.sql").write_text("x")
    config = tmp_path / "c.yml"
    config.write_text(f"dump_roots: [{root}]\n")
    proc = _run("tables", "dump_like_files", "--config", str(config))
    assert proc.returncode == 0
    assert "\x1b" not in proc.stdout and "evil\\x1b[2J\\n.sql" in proc.stdout


def test_extension_subcommand_ignores_unknown_arguments(tmp_path: Path) -> None:
    proc = _run("extension", "--socket", str(tmp_path / "none.em"), "--timeout", "1", "--future-flag", "x")
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("did not answer within 1s")


def test_tables_summary_shows_the_first_rows_and_all_shows_every_row(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(8):
        (root / f"dump{i}.sql").write_text("-- MySQL dump 10.13\n")
    config = tmp_path / "c.yml"
    config.write_text(f"dump_roots: [{root}]\n")
    short = _run("tables", "dump_like_files", "--config", str(config))
    assert short.returncode == 0, short.stderr
    assert "dump_like_files: 8 rows" in short.stdout
    assert short.stdout.count("-[ dump_like_files ") == 5
    assert "... 3 more rows (--all shows every row)" in short.stdout
    whole = _run("tables", "dump_like_files", "--all", "--config", str(config))
    assert whole.stdout.count("-[ dump_like_files ") == 8 and "more row" not in whole.stdout
