"""Issue 14 item 1: a correlator that explains itself. The one-line summary of every run, the
message when the input was read before, --state none, --reset and --min-severity."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from correlate_scenarios.helpers import correlate_proc
from test_correlate_cli import CONFIG, INSIDER, _accesses

PREFIX = "osq-dbwatch correlate: "


def _summary(stderr: bytes) -> str:
    lines = [line for line in stderr.decode().splitlines() if " lines read" in line]
    assert len(lines) == 1, stderr
    return lines[0]


def test_every_run_ends_with_a_one_line_summary(tmp_path) -> None:
    state = str(tmp_path / "s.sqlite")
    proc = correlate_proc(["--config", CONFIG, "--state", state, INSIDER])
    assert proc.returncode == 0
    assert proc.stderr.decode().splitlines()[-1] == (
        f"{PREFIX}5 lines read (rows: db_cli_exec 1, transfer_exec 1, dump_file_events 1, db_egress 1, admin_accounts 3), "
        f"0 skipped, 1 finding emitted, 0 emitted earlier, state {state}")


def test_rows_are_counted_alike_on_the_fast_and_the_full_path(tmp_path) -> None:
    """A batch-format line (full path) and event lines (fast path) of one query; a bad line; a foreign query."""
    with open(INSIDER) as handle:
        lines = handle.read().splitlines()
    exec_line = json.loads(lines[1])
    batch = {k: v for k, v in exec_line.items() if k not in ("columns", "action")}
    batch["diffResults"] = {"added": [exec_line["columns"], dict(exec_line["columns"], pid="77")], "removed": []}
    foreign = dict(exec_line, name="pack_other_processes")
    log = tmp_path / "mixed.log"
    log.write_text("\n".join([*lines, json.dumps(batch), "{not json", json.dumps(foreign)]) + "\n")
    proc = correlate_proc(["--config", CONFIG, "--state", "none", str(log)])
    assert "8 lines read (rows: db_cli_exec 3, transfer_exec 1, dump_file_events 1, db_egress 1, admin_accounts 3; " \
           "1 lines of other queries), 1 skipped" in _summary(proc.stderr)


def test_a_repeat_run_says_the_input_was_read_and_how_to_read_it_again(tmp_path) -> None:
    state = str(tmp_path / "s.sqlite")
    assert correlate_proc(["--config", CONFIG, "--state", state, INSIDER]).stdout.count(b"\n") == 1
    again = correlate_proc(["--config", CONFIG, "--state", state, INSIDER])
    assert again.returncode == 0 and again.stdout == b""
    err = again.stderr.decode()
    assert "0 findings emitted, 1 emitted earlier" in _summary(again.stderr)
    assert f"{INSIDER}: already read up to its end with state {state}" in err
    assert "--state none" in err and "--reset" in err
    with open(INSIDER, "rb") as handle:  # the same lines on stdin: no offsets, the events are old to the state
        piped = correlate_proc(["--config", CONFIG, "--state", state, "--format", "ecs"], stdin=handle.read())
    assert piped.stdout == b"" and "probably read before" in piped.stderr.decode() and "--reset" in piped.stderr.decode()


def test_a_log_of_other_query_names_says_so(tmp_path) -> None:
    with open(INSIDER, "rb") as handle:
        data = handle.read().replace(b"pack_dbwatch_", b"pack_mine_")
    data = data.replace(b"_db_cli_exec", b"_dbcli").replace(b"_transfer_exec", b"_xfer").replace(b"_db_egress", b"_net")
    data = data.replace(b"_dump_file_events", b"_dumps").replace(b"_admin_accounts", b"_admins")
    proc = correlate_proc(["--config", CONFIG, "--state", "none"], stdin=data)
    assert proc.returncode == 0 and proc.stdout == b""
    assert "none of the pack's queries; 5 lines of other queries" in _summary(proc.stderr)
    assert "none of the 5 lines is a result of the pack's queries" in proc.stderr.decode()


def test_state_none_keeps_nothing(tmp_path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    work = tmp_path / "cwd"
    work.mkdir()
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "osq_dbwatch", "correlate", "--config", CONFIG, "--state", "none",
                               INSIDER], capture_output=True, env=env, cwd=work, timeout=60)
        assert proc.returncode == 0 and proc.stdout.count(b"\n") == 1
        assert _summary(proc.stderr).endswith("state: none (--state none)")
    assert not os.path.exists(tmp_path / "xdg") and os.listdir(work) == []


def test_reset_forgets_the_state_and_reads_again(tmp_path) -> None:
    state = str(tmp_path / "s.sqlite")
    first = correlate_proc(["--config", CONFIG, "--state", state, INSIDER])
    again = correlate_proc(["--config", CONFIG, "--state", state, "--reset", INSIDER])
    assert again.returncode == 0 and again.stdout == first.stdout != b""
    assert "1 finding emitted, 0 emitted earlier" in _summary(again.stderr)


def test_min_severity_writes_only_findings_at_or_above_it(tmp_path) -> None:
    log = tmp_path / "a.log"
    log.write_text("\n".join(_accesses(2)) + "\n")  # access-only findings: Low
    low = correlate_proc(["--config", CONFIG, "--state", "none", str(log)])
    assert [json.loads(x)["severity"] for x in low.stdout.splitlines()] == ["Low", "Low"]
    for level in ("medium", "HIGH", "3"):
        proc = correlate_proc(["--config", CONFIG, "--state", "none", "--min-severity", level, str(log)])
        assert proc.returncode == 0 and proc.stdout == b""
        assert "0 findings emitted (2 below --min-severity not written)" in _summary(proc.stderr)
    high = correlate_proc(["--config", CONFIG, "--state", "none", "--min-severity", "high", INSIDER])
    assert [json.loads(x)["severity"] for x in high.stdout.splitlines()] == ["High"]
    bad = correlate_proc(["--config", CONFIG, "--state", "none", "--min-severity", "loud", INSIDER])
    assert bad.returncode == 2 and "'loud' is not a severity" in bad.stderr.decode()
