"""Row parsing: every accepted line shape, query names, values, and bad lines."""

from __future__ import annotations

import json

import pytest

from osq_dbwatch.correlate.rows import (
    AdminRow,
    BadLine,
    EgressRow,
    ExecRow,
    FileRow,
    HistoryRow,
    decimal,
    int_or_zero,
    parse_line,
    recognise,
    text_to_int,
    time_or_zero,
    to_int,
    to_time,
)

EXEC = {"auid": "1004", "cmdline": "psql -d customers", "cwd": "/", "euid": "1004", "login_user": "mallory",
        "parent": "4090", "parent_cmdline": "-bash", "parent_path": "/usr/bin/bash", "path": "/usr/bin/psql",
        "pid": "4101", "time": "1793671805", "uid": "1004", "username": "mallory"}


def _line(**fields: object) -> bytes:
    base = {"name": "pack_dbwatch_db_cli_exec", "hostIdentifier": "pg-1", "calendarTime": "x", "unixTime": 1793671835,
            "epoch": 0, "counter": 1, "numerics": False, "decorations": {"host_uuid": "U", "hostname": "pg-1"}}
    base.update(fields)
    return json.dumps(base).encode()


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("pack_dbwatch_db_cli_exec", "db_cli_exec"),
        ("pack/Global/dbwatch_db_cli_exec", "db_cli_exec"),
        ("pack/team-12/dbwatch_transfer_exec", "transfer_exec"),
        ("pack/Team Payments/dbwatch_db_egress", "db_egress"),
        ("db_cli_exec", "db_cli_exec"),
        ("pack_dbwatch_dump_like_files", "dump_like_files"),
        ("pack_dbwatch_db_cli_sessions", "db_cli_sessions"),
        ("pack_other_processes", None),
        ("pack_dbwatch_db_cli_exec_extra", None),
        ("pack/Global/mydb_cli_exec", None),
        ("pack_dbwatch_db_cli_exec/other", None),
    ],
)
def test_query_recognised_by_last_segment(name: str, query: str | None) -> None:
    assert recognise(name) == query


def test_event_format() -> None:
    parsed = parse_line(_line(columns=EXEC, action="added"))
    (row,) = parsed.rows
    assert isinstance(row, ExecRow)
    assert (row.host, row.pid, row.user, row.time, row.parent_path) == ("pg-1", 4101, "mallory", 1793671805, "/usr/bin/bash")
    assert row.has_session


def test_removed_rows_are_not_activity() -> None:
    assert parse_line(_line(columns=EXEC, action="removed")).rows == []


def test_batch_format_skips_removed() -> None:
    other = dict(EXEC, pid="5000")
    parsed = parse_line(_line(diffResults={"removed": [other], "added": [EXEC, EXEC]}))
    assert [r.pid for r in parsed.rows] == [4101, 4101]


def test_snapshot_array_and_one_row_form() -> None:
    rows = [{"username": "alice", "groupname": "dba", "uid": "1001"}, {"username": "grace", "groupname": "dba", "uid": "1010"}]
    parsed = parse_line(_line(name="pack_dbwatch_admin_accounts", snapshot=rows, action="snapshot", counter=0))
    assert [(r.username, r.mode, r.snapshot_id) for r in parsed.rows] == [("alice", "snapshot", 1793671835), ("grace", "snapshot", 1793671835)]
    parsed = parse_line(_line(name="pack_dbwatch_admin_accounts", columns=rows[0], action="snapshot"))
    assert isinstance(parsed.rows[0], AdminRow) and parsed.rows[0].mode == "snapshot"


def test_numerics_on_and_off_agree() -> None:
    numeric = {k: (int(v) if v.isdigit() else v) for k, v in EXEC.items()}
    a = parse_line(_line(columns=EXEC, action="added", numerics=False)).rows[0]
    b = parse_line(_line(columns=numeric, action="added", numerics=True)).rows[0]
    assert a == b


def test_time_column_wins_over_unix_time_which_is_the_fallback() -> None:
    row = parse_line(_line(columns=EXEC, action="added")).rows[0]
    assert row.time == 1793671805
    no_time = dict(EXEC, time="")
    assert parse_line(_line(columns=no_time, action="added")).rows[0].time == 1793671835


@pytest.mark.parametrize("auid", ["4294967295", "-1", "", 4294967295, -1])
def test_no_login_session_uses_uid_user(auid: object) -> None:
    row = parse_line(_line(columns=dict(EXEC, auid=auid, login_user="", username="www-data"), action="added")).rows[0]
    assert not row.has_session and row.user == "www-data"


def test_sudo_keeps_the_login_user() -> None:
    row = parse_line(_line(columns=dict(EXEC, uid="115", username="postgres"), action="added")).rows[0]
    assert row.user == "mallory"


def test_host_from_decorations_when_host_identifier_missing() -> None:
    line = json.loads(_line(columns=EXEC, action="added"))
    del line["hostIdentifier"]
    line["decorations"]["hostname"] = "pg-9"
    assert parse_line(json.dumps(line).encode()).rows[0].host == "pg-9"


def test_other_queries_give_no_rows_and_no_error() -> None:
    assert parse_line(_line(name="pack_x_osquery_info", columns={"a": "1"}, action="added")).rows == []


def test_each_query_type() -> None:
    f = parse_line(_line(name="pack_dbwatch_dump_file_events", action="added", columns={
        "action": "CREATED", "inode": "7", "owner": "bob", "sha256": "", "size": "10", "target_path": "/tmp/a.sql",
        "time": "100", "uid": "1"})).rows[0]
    assert isinstance(f, FileRow) and (f.path, f.owner, f.size, f.time) == ("/tmp/a.sql", "bob", 10, 100)
    e = parse_line(_line(name="pack_dbwatch_db_egress", action="added", columns={
        "auid": "4294967295", "family": "2", "login_user": "", "path": "/usr/bin/curl", "pid": "9",
        "remote_address": "93.184.216.34", "remote_port": "443", "success": "1", "time": "101"})).rows[0]
    assert isinstance(e, EgressRow) and (e.address, e.port, e.has_session, e.success) == ("93.184.216.34", 443, False, True)
    h = parse_line(_line(name="pack_dbwatch_db_client_history", action="added", counter=0, columns={
        "uid": "1", "user": "ivan", "file": "/home/ivan/.psql_history", "file_mtime": "99", "command": "select 1"})).rows[0]
    assert isinstance(h, HistoryRow) and h.baseline and h.time == 99
    s = parse_line(_line(name="pack_dbwatch_db_cli_sessions", action="added", counter=0, columns={
        "pid": "5", "start_time": "90", "path": "/usr/bin/psql", "cmdline": "psql", "uid": "1", "username": "u",
        "auid": "1", "login_user": "u", "ancestry": "bash < sshd < systemd",
        "ancestry_paths": "/usr/bin/bash < /usr/sbin/sshd < /usr/lib/systemd/systemd", "tty": "pts/1",
        "interactive": "1", "systemd_unit": "session-3.scope"})).rows[0]
    assert isinstance(s, ExecRow) and s.parent_path == "/usr/bin/bash" and s.ancestors[0] == ("sshd", "/usr/sbin/sshd")
    assert s.interactive is True and s.time == 90 and s.baseline


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"name": "pack_dbwatch_db_cli_exec", "hostIdentifier": "a", "colu', "not valid JSON"),
        (b"\xff\xfe\x00binary\x80", "not valid JSON"),
        (b"[1, 2, 3]", "a JSON list"),
        (b'"text"', "a JSON str"),
        (b"{}", "missing or non-text 'name'"),
        (b'{"name": 5}', "missing or non-text 'name'"),
        (b'{"name": "pack_dbwatch_db_cli_exec", "columns": {}}', "missing 'hostIdentifier'"),
        (_line(columns=None, action="added"), "'columns' is not an object"),
        (_line(columns=[1], action="added"), "'columns' is not an object"),
        (_line(columns=EXEC), "event line without 'action'"),
        (_line(columns=EXEC, action="weird"), "unknown action"),
        (_line(diffResults="x"), "'diffResults' is not an object"),
        (_line(snapshot={"a": 1}), "'snapshot' rows are not a list"),
        (_line(), "no 'columns', 'diffResults' or 'snapshot'"),
        (_line(columns={"pid": "1"}, action="added"), "neither path nor cmdline"),
        (_line(columns=dict(EXEC, cmdline=["x"]), action="added"), "value of type list"),
        (_line(columns=dict(EXEC, path={"a": 1}), action="added"), "value of type dict"),
        (_line(name="pack_dbwatch_db_egress", columns={"pid": "1"}, action="added"), "without remote_address"),
        (_line(columns=dict(EXEC, time="", **{}), action="added", unixTime="soon"), "no time"),
        (b'{"name": "pack_dbwatch_db_cli_exec", "hostIdentifier": "a", "columns": ' + b"[" * 100000 + b"]" * 100000 + b"}",
         "JSON"),
    ],
)
def test_bad_lines_raise_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(BadLine, match=None) as info:
        parse_line(line)
    assert reason in str(info.value)


def test_bad_row_inside_a_batch_is_skipped_others_kept() -> None:
    parsed = parse_line(_line(diffResults={"removed": [], "added": [EXEC, 7, dict(EXEC, path=[1])]}))
    assert len(parsed.rows) == 1
    assert parsed.problems == ["row 2 is not an object", "row 3: value of type list where text was expected"]


def test_stdlib_json_fallback_gives_the_same_findings(tmp_path) -> None:
    """Without msgspec in the JSON layer, the stdlib json path reads and writes the same (the config,
    which needs msgspec since it became a core dependency, is imported before msgspec is hidden)."""
    import os
    import subprocess
    import sys

    from conftest import SHARED

    scen = os.path.join(SHARED, "scenarios")
    outputs = []
    for block in (False, True):
        code = ("import sys\n" + ("import osq_dbwatch.config\nsys.modules['msgspec'] = None\n" if block else "") +
                "from osq_dbwatch.cli import main\nsys.exit(main(sys.argv[1:]))")
        proc = subprocess.run([sys.executable, "-c", code, "correlate", "--config", os.path.join(scen, "config.yml"),
                               "--state", str(tmp_path / f"{block}.sqlite"), os.path.join(scen, "insider-csv-curl.log"),
                               os.path.join(scen, "webshell-mysqldump.log")], capture_output=True)
        assert proc.returncode == 0, proc.stderr
        outputs.append([json.loads(x) for x in proc.stdout.splitlines()])
    assert len(outputs[0]) == 2 and outputs[0] == outputs[1]


from hypothesis import given, settings, strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
_keys = st.sampled_from(["name", "hostIdentifier", "columns", "action", "diffResults", "snapshot", "unixTime", "counter",
                         "decorations", "pid", "path", "cmdline", "time", "auid", "target_path", "remote_address",
                         "added", "removed", "username", "user"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json | st.dictionaries(_keys, _json, max_size=6), max_size=8),
       st.sampled_from(["pack_dbwatch_db_cli_exec", "pack/Global/dbwatch_db_egress", "dump_file_events",
                        "pack_dbwatch_admin_accounts", "pack_dbwatch_db_client_history", "pack_dbwatch_db_cli_sessions"]))
def test_hostile_lines_either_parse_or_raise_badline(obj: dict, name: str) -> None:
    obj.setdefault("name", name)
    try:
        parse_line(json.dumps(obj).encode())
    except BadLine:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        parse_line(data)
    except BadLine:
        pass


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=24), st.text(alphabet="0123456789", max_size=24),
                 st.integers(min_value=0, max_value=10**20).map(str)))
def test_decimal_reads_exactly_ascii_digit_runs(text: str) -> None:
    ascii_digits = 0 < len(text) <= 18 and all("0" <= ch <= "9" for ch in text)
    assert decimal(text) == (int(text) if ascii_digits else -1)
    assert to_int(text) == text_to_int(text)  # the digits-only fast path changes nothing


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.text(max_size=24), st.integers(min_value=-(2**70), max_value=2**70),
                 st.integers(min_value=0, max_value=10**12).map(str), st.floats(allow_nan=True)))
def test_zero_forms_of_to_int_and_to_time(value: object) -> None:
    if type(value) is bool:  # a boolean where a number belongs makes the line bad, on every reader
        for read in (int_or_zero, to_int, time_or_zero, to_time):
            with pytest.raises(BadLine):
                read(value)
        return
    assert int_or_zero(value) == (to_int(value) or 0)
    assert time_or_zero(value) == (to_time(value) or 0)


@pytest.mark.parametrize(("value", "expected"), [
    ("42", 42), ("007", 7), (" 42 ", 42), ("-3", -3), ("+5", 5), ("4.9", 4), ("1e3", 1000), ("1_000", 1000),
    ("9223372036854775807", 2**63 - 1), ("9223372036854775808", None), ("-9223372036854775808", -(2**63)),
    ("", None), ("abc", None), ("nan", None), ("inf", None), ("١٢", 12),
    (42, 42), (2**63, None), (1.5, 1), (float("nan"), None), (None, None),
])
def test_to_int_reads_osquery_numbers_in_any_form(value: object, expected: int | None) -> None:
    assert to_int(value) == expected
    assert int_or_zero(value) == (expected or 0)


# ---------------------------------------------------------------------------
# The query contract (pack/contract.py) is what the readers and the decoder read.


class _Recording(dict):  # type: ignore[type-arg]
    """Columns that remember which names a reader asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: object = None) -> object:
        self.asked.add(key)
        return {"path": "/usr/bin/psql", "target_path": "/tmp/x.sql", "remote_address": "8.8.8.8",
                "username": "bob"}.get(key, default)


def _rows_as_source():  # type: ignore[no-untyped-def]
    """rows.py run as its source: compiled, `c.get` on a dict never reaches a subclass's get."""
    import importlib.util
    import os
    import sys

    import osq_dbwatch.correlate as package

    path = os.path.join(os.path.dirname(package.__file__), "rows.py")
    spec = importlib.util.spec_from_file_location("osq_dbwatch.correlate._rows_as_source", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_every_correlated_query_has_a_reader_that_reads_its_contract_columns() -> None:
    from osq_dbwatch.pack import contract

    rows = _rows_as_source()

    assert rows.QUERIES == contract.NAMES
    readers = {name for name in rows._BUILDERS} | {"admin_accounts"}  # admin rows are read in parse_obj
    assert readers == {q.name for q in contract.QUERIES if q.correlated}
    for name, build in rows._BUILDERS.items():
        columns = _Recording()
        build(name, "h", 1, columns, False)
        assert columns.asked == set(contract.BY_NAME[name].reads), name
        assert rows._TIME_COLUMN[name] == contract.BY_NAME[name].time_column


def test_the_fast_decoder_reads_the_contract_columns_of_the_event_queries() -> None:
    from osq_dbwatch.correlate import fastpath, jsonlib
    from osq_dbwatch.pack import contract

    event = [q for q in contract.QUERIES if q.kind == "event"]
    # db_connect (few rows: connects to database ports by programs that are not known clients) takes the
    # general path; the fast path routes the high-volume event queries.
    assert {q.name for q in event} - {"db_connect"} == set(fastpath._ROUTES) - {"admin_accounts"}
    wanted = {c for q in event for c in (*q.reads, q.time_column)}
    assert set(jsonlib.EVENT_FIELDS) == wanted and list(jsonlib.EVENT_FIELDS) == sorted(wanted)
    # Each position the fast path reads names its column.
    positions = [name for name in wanted if hasattr(fastpath, name.upper())]
    assert len(positions) >= 20
    for name in positions:
        assert jsonlib.EVENT_FIELDS[getattr(fastpath, name.upper())] == name
    assert jsonlib.ADMIN_FIELDS[fastpath.MEMBER_USERNAME] == "username"
