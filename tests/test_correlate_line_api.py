"""The engine's one line API (FastPath.apply_line), the fast path's typed text columns, and the run summary's
counts taken where lines are read (issues 10 and 16)."""

from __future__ import annotations

import json
import os

import pytest
from correlate_scenarios.helpers import correlate_proc
from test_correlate_cli import CONFIG, INSIDER

from osq_dbwatch.config import parse_config
from osq_dbwatch.correlate import fastpath
from osq_dbwatch.correlate.engine import Engine, HostState
from osq_dbwatch.correlate.fastpath import FastPath
from osq_dbwatch.correlate.findings import to_ocsf
from osq_dbwatch.correlate.rows import QUERIES, BadLine

T0 = 1793577600


def _access(**columns: object) -> dict[str, object]:
    base: dict[str, object] = {
        "auid": "1003", "cmdline": "psql -c \\copy users to /tmp/u.csv csv", "cwd": "/", "login_user": "mallory",
        "parent_cmdline": "-bash", "parent_path": "/usr/bin/bash", "path": "/usr/bin/psql", "pid": "77",
        "time": str(T0), "uid": "1003", "username": "mallory"}
    base.update(columns)
    return {"name": "pack_dbwatch_db_cli_exec", "hostIdentifier": "db-2", "unixTime": T0, "action": "added",
            "columns": base}


def _reader() -> tuple[Engine, FastPath, dict[str, HostState]]:
    with open(CONFIG) as handle:
        engine = Engine(parse_config(handle.read()))
    path = FastPath(engine)
    states: dict[str, HostState] = path.dirty  # the default open_host enters new states there
    return engine, path, states


def _findings(engine: Engine, states: dict[str, HostState]) -> list[dict[str, object]]:
    return [to_ocsf(f) for state in states.values() for f in engine.flush(state)]


def test_apply_line_takes_fast_general_and_bad_lines() -> None:
    engine, path, states = _reader()
    assert path.apply_line(json.dumps(_access()).encode()) is None  # the fast path took it
    assert len(_findings(engine, states)) == 1
    batch = _access(pid="78")
    batch["diffResults"] = {"added": [batch.pop("columns")], "removed": []}
    del batch["action"]
    parsed = path.apply_line(json.dumps(batch).encode())  # batch format: the general path
    assert parsed is not None and len(parsed.rows) == 1 and parsed.query == "db_cli_exec"
    with pytest.raises(BadLine):
        path.apply_line(b'{"name": "pack_dbwatch_db_cli_exec", "hostIdentifier": "db-9"}')
    assert "db-9" not in states
    assert path.counts[QUERIES.index("db_cli_exec")] == 2 and path.counts[fastpath.OTHER] == 0


def test_the_spark_operator_applies_lines_through_apply_line(monkeypatch) -> None:
    from osq_dbwatch.spark import operator

    calls: list[bytes] = []
    original = FastPath.apply_line

    def counting(self: FastPath, data: bytes) -> object:
        calls.append(data)
        return original(self, data)

    monkeypatch.setattr(FastPath, "apply_line", counting)
    with open(CONFIG) as handle:
        config = parse_config(handle.read())
    op = operator.HostOperator(config, operator.Settings())
    line = json.dumps(_access())
    result = op.step("db-2", None, [(T0, line), (T0 + 1, "{not json")], False, 0)
    assert result.lines == 2 and len(calls) == 2 and len(result.outputs) == 1


@pytest.mark.parametrize("column, value", [("cmdline", 1234), ("cwd", None), ("username", 1003)])
def test_exec_text_columns_that_are_not_text_go_the_general_path(column: str, value: object) -> None:
    """The fast path decodes the exec rows' text columns as str; anything else is the general path's to read."""
    _, path, states = _reader()
    data = json.dumps(_access(**{column: value})).encode()
    assert path.line(data) is False and not states
    parsed = path.apply_line(data)
    assert parsed is not None and len(parsed.rows) == 1


def test_the_summary_counts_the_name_the_line_has_not_a_name_inside_its_columns(tmp_path) -> None:
    """The summary counted rows by a byte search for the first "name" key, which may be a column's."""
    line = json.dumps(_access(name="pack_other_thing"), sort_keys=True)  # "columns" (with a "name") before "name"
    assert line.index('"name": "pack_other') < line.index('"name": "pack_dbwatch')
    log = tmp_path / "columns-first.log"
    log.write_text(line + "\n")
    proc = correlate_proc(["--config", CONFIG, "--state", "none", str(log)])
    assert proc.returncode == 0 and proc.stdout.count(b"\n") == 1
    assert "1 lines read (rows: db_cli_exec 1), 0 skipped, 1 finding emitted" in proc.stderr.decode()


def test_the_reader_keeps_no_tally_of_its_own() -> None:
    """Rows are counted where lines are read (the fast path's route, the general path's parse), not by a
    second pass over every line in the log reader."""
    from osq_dbwatch.correlate import logread

    assert not hasattr(logread, "Tally") and not hasattr(logread, "result_name")
    assert INSIDER  # the summary's figures themselves: test_harden_summary


@pytest.mark.parametrize("column, value", [("pid", [77]), ("uid", {"n": 1003}), ("auid", True), ("pid", False)])
def test_a_numeric_column_holding_a_list_object_or_boolean_is_a_bad_line(tmp_path, column: str, value: object) -> None:
    """Issue 11 (low): such values were read as 0 (or as no value); the line is skipped with file:line instead."""
    log = tmp_path / "odd.log"
    log.write_text(json.dumps(_access(**{column: value})) + "\n" + json.dumps(_access(pid="78")) + "\n")
    proc = correlate_proc(["--config", CONFIG, "--state", "none", str(log)])
    err = proc.stderr.decode()
    assert proc.returncode == 0
    assert f"{log}:1: skipped: value of type {type(value).__name__} where a number was expected" in err
    assert "2 lines read (rows: db_cli_exec 1), 1 skipped" in err


def test_a_file_row_with_an_object_for_its_size_is_a_bad_line() -> None:
    from osq_dbwatch.correlate.rows import parse_line

    line = {"name": "pack_dbwatch_dump_file_events", "hostIdentifier": "db-2", "unixTime": T0, "action": "added",
            "columns": {"target_path": "/tmp/x.sql", "action": "CREATED", "size": {"a": 1}, "time": str(T0)}}
    with pytest.raises(BadLine, match="value of type dict where a number was expected"):
        parse_line(json.dumps(line).encode())


EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "insider-csv-curl.log")
EXAMPLE_UUID = "BD81FF9C-AE51-41A8-8B2A-520B6D853687"


@pytest.mark.parametrize("fmt", ["ecs", "ocsf"])
def test_findings_carry_the_host_uuid_decoration(fmt: str) -> None:
    """Issue 14: host.id (ECS) and device.uid (OCSF) from the log's decorations.host_uuid."""
    proc = correlate_proc(["--config", CONFIG, "--state", "none", "--format", fmt, EXAMPLE])
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 1
    if fmt == "ecs":
        assert records[0]["host"]["id"] == EXAMPLE_UUID
    else:
        assert records[0]["device"]["uid"] == EXAMPLE_UUID


@pytest.mark.parametrize("fast", [True, False])
def test_both_paths_carry_host_uuid_into_the_state_and_its_json(fast: bool) -> None:
    engine, path, states = _reader()
    line = _access()
    line["decorations"] = {"host_uuid": "U-1", "hostname": "db-2"}
    data = json.dumps(line).encode()
    assert (path.line(data) if fast else path.general(data) is not None)
    state = states["db-2"]
    assert state.host_uuid == "U-1"
    assert HostState.from_json(json.loads(json.dumps(state.to_json()))).host_uuid == "U-1"
    assert [f.host_uuid for f in engine.flush(state)] == ["U-1"]
    old = state.to_json()
    del old["host_uuid"]  # a state written before the field
    assert HostState.from_json(old).host_uuid == ""


def test_a_line_without_decorations_gives_no_host_id() -> None:
    engine, path, states = _reader()
    assert path.line(json.dumps(_access()).encode())
    finding = engine.flush(states["db-2"])[0]
    assert finding.host_uuid == "" and "uid" not in to_ocsf(finding)["device"]
