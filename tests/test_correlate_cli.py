"""`osq-dbwatch correlate` and `osq-dbwatch baseline` as users run them: real
subprocesses, real files, rotation, SIGKILL and restart, bad input."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import SHARED
from correlate_scenarios.helpers import HERE as OWN, correlate, correlate_proc
from correlate_scenarios.make_scenarios import D, H, MON, Log

SCEN = os.path.join(SHARED, "scenarios")
CONFIG = os.path.join(SCEN, "config.yml")
INSIDER = os.path.join(SCEN, "insider-csv-curl.log")


def _accesses(n: int, start: int = 0, prefix: str = "h") -> list[str]:
    """n lines, each an unusual access on its own host: one finding per line."""
    log = Log()
    for i in range(start, start + n):
        log.db_exec(f"{prefix}-{i}", MON + D + 10 * H + i, f"user{i}", 2000 + i, "psql -d x", "/usr/bin/psql", 100 + i,
                    "/usr/bin/bash", "-bash")
    return log.lines


def _hosts(path: str) -> list[str]:
    with open(path) as handle:
        return [json.loads(line)["device"]["hostname"] for line in handle if line.strip()]


def test_stdin_none_and_dash_match_the_file(tmp_path) -> None:
    with open(INSIDER, "rb") as handle:
        data = handle.read()
    results = []
    for args in ([INSIDER], [], ["-"]):
        state = tmp_path / f"s{len(results)}.sqlite"
        proc = correlate_proc(["--config", CONFIG, "--state", str(state), *args], stdin=data)
        assert proc.returncode == 0, proc.stderr
        results.append(proc.stdout)
    assert results[0] == results[1] == results[2] and results[0].count(b"\n") == 1


def test_many_files_and_restart_reads_only_new_lines(tmp_path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("\n".join(_accesses(3)) + "\n")
    b.write_text("\n".join(_accesses(2, start=3)) + "\n")
    state, out = str(tmp_path / "s.sqlite"), str(tmp_path / "out.jsonl")
    assert len(correlate(["--config", CONFIG, str(a), str(b)], state, out)) == 5
    assert correlate(["--config", CONFIG, str(a), str(b)], state, out) == []
    with open(a, "a") as handle:
        handle.write(_accesses(1, start=10)[0] + "\n")
    assert [f["device"]["hostname"] for f in correlate(["--config", CONFIG, str(a), str(b)], state, out)] == ["h-10"]


def test_a_replaced_file_with_the_same_name_is_read_from_the_start(tmp_path) -> None:
    log = tmp_path / "r.log"
    log.write_text("\n".join(_accesses(3)) + "\n")
    state, out = str(tmp_path / "s.sqlite"), str(tmp_path / "out.jsonl")
    assert len(correlate(["--config", CONFIG, str(log)], state, out)) == 3
    log.write_text("\n".join(_accesses(2, start=20)) + "\n")
    assert [f["device"]["hostname"] for f in correlate(["--config", CONFIG, str(log)], state, out)] == ["h-20", "h-21"]


def test_default_state_file_is_under_xdg_state_home(tmp_path) -> None:
    proc = correlate_proc(["--config", CONFIG, INSIDER], env={"XDG_STATE_HOME": str(tmp_path / "xdg")})
    assert proc.returncode == 0 and proc.stdout.count(b"\n") == 1
    assert (tmp_path / "xdg" / "osq-dbwatch" / "state.sqlite").exists()
    again = correlate_proc(["--config", CONFIG, INSIDER], env={"XDG_STATE_HOME": str(tmp_path / "xdg")})
    assert again.returncode == 0 and again.stdout == b""


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["/nonexistent/osquery.log"], "/nonexistent/osquery.log: cannot read"),
        (["{tmp}"], "cannot read: Is a directory"),
        (["--config", "{tmp}/bad.yml", INSIDER], "unknown key 'admin'"),
        (["--config", "/nonexistent.yml", INSIDER], "cannot read config"),
        (["-", "-"], "standard input given more than once"),
    ],
)
def test_unreadable_input_or_invalid_config_exit_non_zero_with_one_line(tmp_path, args: list[str], expect: str) -> None:
    (tmp_path / "bad.yml").write_text("service_accounts: [a]\nadmin:\n  users: [x]\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = correlate_proc(["--state", str(tmp_path / "s.sqlite"), *args], stdin=b"")
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and expect in lines[0], lines
    assert proc.stdout == b""


def test_bad_lines_are_skipped_counted_and_reported_with_file_and_line(tmp_path) -> None:
    with open(INSIDER) as handle:
        good = handle.read().splitlines()
    exec_line = json.loads(good[1])
    wrong_types = dict(exec_line, columns=dict(exec_line["columns"], cmdline={"a": 1}))
    missing = {k: v for k, v in exec_line.items() if k != "hostIdentifier" and k != "decorations"}
    bad = [
        good[1][: len(good[1]) // 2],  # truncated JSON
        "\x00\x01\x02binary\x7f",
        json.dumps(wrong_types),
        json.dumps(missing),
        "x" * (1024 * 1024 + 10),  # over 1 MiB
        json.dumps([exec_line]),
        json.dumps(dict(exec_line, columns=None)),
    ]
    lines = [good[0], *bad[:4], good[1], *bad[4:], *good[2:]]
    log = tmp_path / "mixed.log"
    with open(log, "wb") as handle:
        for line in lines:
            handle.write(line.encode() if line != "\x00\x01\x02binary\x7f" else b"\xff\xfe\x00\x01binary\x80")
            handle.write(b"\n")
    proc = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), str(log)])
    assert proc.returncode == 0
    err = proc.stderr.decode().splitlines()
    numbers = [int(line.split(f"{log}:", 1)[1].split(":", 1)[0]) for line in err if f"{log}:" in line]
    assert numbers == [2, 3, 4, 5, 7, 8, 9]
    assert "7 skipped" in err[-1]
    findings = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [(f["actor"]["user"]["name"], f["severity_id"]) for f in findings] == [("mallory", 4)]


def test_ecs_format(tmp_path) -> None:
    proc = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), "--format", "ecs", INSIDER])
    (alert,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert alert["event"]["kind"] == "alert" and alert["event"]["severity"] == 73
    assert alert["rule"]["id"] == "AN0676" and alert["threat"]["framework"] == "MITRE ATT&CK"
    assert "T1213" in [t["id"] for t in alert["threat"]["technique"]]
    assert alert["host"]["hostname"] == "pg-prod-1" and alert["user"]["name"] == "mallory"
    assert alert["@timestamp"].endswith("Z") and alert["osq_dbwatch"]["stages"] == ["access", "dump", "egress"]


def test_ecs_severity_mapping(tmp_path) -> None:
    out = []
    for name in ("access-only", "insider-csv-curl"):
        proc = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / f"{name}.sqlite"), "--format", "ecs",
                               os.path.join(SCEN, name + ".log")])
        out.extend(json.loads(x)["event"]["severity"] for x in proc.stdout.splitlines())
    crit = os.path.join(OWN, "webshell-egress-critical.log")
    proc = correlate_proc(["--config", os.path.join(OWN, "config.yml"), "--state", str(tmp_path / "c.sqlite"), "--format",
                           "ecs", crit])
    out.extend(json.loads(x)["event"]["severity"] for x in proc.stdout.splitlines())
    assert out == [21, 73, 99]


def test_evictions_are_reported(tmp_path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("correlator:\n  max_pending_per_host: 2\n")
    log = Log()
    for i in range(5):
        log.db_exec("one-host", MON + i, f"u{i}", 3000 + i, "psql", "/usr/bin/psql", 50 + i, "/usr/bin/bash", "-bash")
    path = tmp_path / "e.log"
    path.write_text("\n".join(log.lines) + "\n")
    proc = correlate_proc(["--config", str(cfg), "--state", str(tmp_path / "s.sqlite"), str(path)])
    assert proc.returncode == 0 and "3 pending chains evicted" in proc.stderr.decode()


def test_baseline_command(tmp_path) -> None:
    state = str(tmp_path / "s.sqlite")
    correlate(["--config", os.path.join(OWN, "config.yml"), os.path.join(OWN, "baseline-habitual-novel.log")], state,
              str(tmp_path / "o.jsonl"))
    proc = subprocess.run([sys.executable, "-m", "osq_dbwatch", "baseline", "--state", state, "--json"], capture_output=True)
    assert proc.returncode == 0
    (host,) = [json.loads(x) for x in proc.stdout.splitlines()]
    # judy's last chain is still open when the log ends: it is learned when it closes (issue 13)
    assert host["host"] == "bi-1" and host["users"] == {"judy": 6, "mallet": 1}
    monday = [r for r in host["runs"] if r["user"] == "judy" and r["tool"] == "psql" and r["parent"] == "bash" and r["hour_of_week"] == 10]
    assert monday[0]["count"] == 4 and monday[0]["when"] == "mon 10:00 UTC"
    text = subprocess.run([sys.executable, "-m", "osq_dbwatch", "baseline", "--state", state], capture_output=True, text=True)
    assert "bi-1:" in text.stdout and "judy" in text.stdout and "x4" in text.stdout
    missing = subprocess.run([sys.executable, "-m", "osq_dbwatch", "baseline", "--state", str(tmp_path / "none.sqlite")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1


# ---------------------------------------------------------------------------
# Restart safety: SIGKILL at many points


def _kill_log(tmp_path) -> str:
    parts = []
    for directory in (SCEN, OWN):
        for name in sorted(os.listdir(directory)):
            if name.endswith(".log") and "baseline" not in name:
                with open(os.path.join(directory, name)) as handle:
                    parts.append(handle.read())
    text = "".join(parts)
    # Many copies on renamed hosts: distinct chains all the way through the log.
    copies = [text.replace('"hostIdentifier": "', f'"hostIdentifier": "c{k}-') for k in range(80)]
    path = tmp_path / "all.log"
    path.write_text("".join(copies) + "\n".join(_accesses(60)) + "\n")
    return str(path)


def test_sigkill_at_many_points_then_restart_equals_one_uninterrupted_run(tmp_path) -> None:
    log = _kill_log(tmp_path)
    config = os.path.join(OWN, "config.yml")
    env = {"OSQ_DBWATCH_BATCH_LINES": "1"}
    whole = tmp_path / "whole.jsonl"
    proc = correlate_proc(["--config", config, "--state", str(tmp_path / "whole.sqlite"), "--output", str(whole), log], env=env)
    assert proc.returncode == 0
    expected = whole.read_bytes()
    assert expected.count(b"\n") > 1000

    state, out = tmp_path / "killed.sqlite", tmp_path / "killed.jsonl"
    rng = random.Random(4)
    sizes: list[int] = []
    args = [sys.executable, "-m", "osq_dbwatch", "correlate", "--config", config, "--state", str(state), "--output", str(out), log]
    for _ in range(10):
        before = out.stat().st_size if out.exists() else 0
        child = subprocess.Popen(args, env={**os.environ, **env}, stderr=subprocess.DEVNULL)
        # Kill once this run has made progress of its own, a random moment later.
        deadline = time.time() + 30
        while child.poll() is None and time.time() < deadline and (out.stat().st_size if out.exists() else 0) <= before:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
        assert child.poll() is None, "the run finished before it could be killed: make the log longer"
        child.send_signal(signal.SIGKILL)
        child.wait()
        sizes.append(out.stat().st_size)
    final = subprocess.run(args, env={**os.environ, **env}, capture_output=True)
    assert final.returncode == 0, final.stderr
    assert len(set(sizes)) == len(sizes), f"kills did not land at different points: {sizes}"
    assert out.read_bytes() == expected


# ---------------------------------------------------------------------------
# --follow across rotation


def _wait_for(path: str, count: int, timeout: float = 20) -> list[str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            hosts = _hosts(path)
            if len(hosts) >= count:
                return hosts
        time.sleep(0.05)
    return _hosts(path) if os.path.exists(path) else []


def _follow(tmp_path, log: str) -> tuple[subprocess.Popen[bytes], str]:
    out = str(tmp_path / "follow.jsonl")
    child = subprocess.Popen([sys.executable, "-m", "osq_dbwatch", "correlate", "--follow", "--config", CONFIG, "--state",
                              str(tmp_path / "f.sqlite"), "--output", out, log], stderr=subprocess.PIPE)
    return child, out


def _append(path: str, lines: list[str]) -> None:
    with open(path, "a") as handle:
        handle.write("".join(line + "\n" for line in lines))


def _stop(child: subprocess.Popen[bytes]) -> None:
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=20) == 0, child.stderr.read() if child.stderr else ""


def test_follow_survives_rotation_by_rename(tmp_path) -> None:
    log = str(tmp_path / "osqueryd.results.log")
    _append(log, _accesses(5))
    child, out = _follow(tmp_path, log)
    try:
        assert len(_wait_for(out, 5)) == 5
        _append(log, _accesses(3, start=5))
        os.rename(log, log + ".1")  # logrotate's default
        _append(log + ".1", _accesses(2, start=8))  # the writer still had the old file open
        _append(log, _accesses(4, start=10))  # a new file appears at the path
        time.sleep(0.4)  # the correlator has seen the rename by now
        with open(log + ".1", "a") as handle:
            handle.write(_accesses(1, start=15)[0])  # the old writer's last line, cut short: no newline
        hosts = _wait_for(out, 15)
        _append(log, _accesses(1, start=14))
        hosts = _wait_for(out, 16)
        time.sleep(0.5)
        hosts = _hosts(out)
    finally:
        _stop(child)
    assert sorted(hosts) == sorted(f"h-{i}" for i in range(16))


def test_follow_survives_copytruncate(tmp_path) -> None:
    log = str(tmp_path / "osqueryd.results.log")
    _append(log, _accesses(5))
    child, out = _follow(tmp_path, log)
    try:
        assert len(_wait_for(out, 5)) == 5
        # Written and rotated before the correlator's next poll: only the copy holds these.
        _append(log, _accesses(3, start=5))
        shutil.copyfile(log, log + ".1")
        os.truncate(log, 0)
        _append(log, _accesses(4, start=8))
        hosts = _wait_for(out, 12)
        _append(log, _accesses(2, start=12))
        hosts = _wait_for(out, 14)
    finally:
        _stop(child)
    assert sorted(hosts) == sorted(f"h-{i}" for i in range(14))


def test_follow_resumes_after_restart_without_repeating(tmp_path) -> None:
    log = str(tmp_path / "osqueryd.results.log")
    _append(log, _accesses(3))
    child, out = _follow(tmp_path, log)
    try:
        assert len(_wait_for(out, 3)) == 3
    finally:
        _stop(child)
    _append(log, _accesses(2, start=3))
    child, out = _follow(tmp_path, log)
    try:
        hosts = _wait_for(out, 5)
        time.sleep(0.5)
        hosts = _hosts(out)
    finally:
        _stop(child)
    assert hosts == [f"h-{i}" for i in range(5)]


def test_a_flood_of_host_names_commits_early_and_loses_nothing(tmp_path, monkeypatch) -> None:
    log = tmp_path / "flood.log"
    log.write_text("\n".join(_accesses(40)) + "\n")
    whole = correlate(["--config", CONFIG, str(log)], str(tmp_path / "a.sqlite"), str(tmp_path / "a.jsonl"))
    # 40 pending chains fit half of a budget of 80 host states; a batch ends every few hosts.
    monkeypatch.setenv("OSQ_DBWATCH_RESIDENT_HOSTS", "80")
    monkeypatch.setenv("OSQ_DBWATCH_BATCH_LINES", "3")
    small = correlate(["--config", CONFIG, str(log)], str(tmp_path / "b.sqlite"), str(tmp_path / "b.jsonl"))
    assert small == whole and len(whole) == 40
    assert correlate(["--config", CONFIG, str(log)], str(tmp_path / "b.sqlite"), str(tmp_path / "b.jsonl")) == []


def test_long_silent_hosts_are_forgotten(tmp_path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("correlator:\n  state_expiry: 1d\n")
    state, out = str(tmp_path / "s.sqlite"), str(tmp_path / "o.jsonl")
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    old.write_text(_accesses(1, prefix="quiet")[0] + "\n")
    later = Log()
    later.db_exec("busy-1", MON + D + 10 * H + 40 * D, "u", 2000, "psql", "/usr/bin/psql", 7, "/usr/bin/bash", "-bash")
    new.write_text(later.lines[0] + "\n")
    correlate(["--config", str(cfg), str(old), str(new)], state, out)

    def hosts() -> list[str]:
        proc = subprocess.run([sys.executable, "-m", "osq_dbwatch", "baseline", "--state", state, "--json"], capture_output=True)
        return [json.loads(x)["host"] for x in proc.stdout.splitlines()]

    assert hosts() == ["busy-1", "quiet-0"]
    correlate(["--config", str(cfg), str(new)], state, out)  # the next start sweeps
    assert hosts() == ["busy-1"]


@pytest.mark.parametrize("die_at", [2, 5, 9])
def test_death_between_writing_findings_and_committing_them(tmp_path, monkeypatch, die_at: int) -> None:
    """The narrowest window of a kill: findings written and flushed, state not committed."""
    from osq_dbwatch import cli as top
    from osq_dbwatch.correlate import state as state_module

    log = tmp_path / "a.log"
    log.write_text("\n".join(_accesses(12)) + "\n")
    monkeypatch.setenv("OSQ_DBWATCH_BATCH_LINES", "1")
    expected = correlate(["--config", CONFIG, str(log)], str(tmp_path / "w.sqlite"), str(tmp_path / "w.jsonl"))
    commits = {"n": 0}
    real_commit = state_module.StateStore.commit

    class Died(BaseException):
        pass

    def dying_commit(self: state_module.StateStore) -> None:
        commits["n"] += 1
        if commits["n"] == die_at:
            raise Died()
        real_commit(self)

    monkeypatch.setattr(state_module.StateStore, "commit", dying_commit)
    out = tmp_path / "k.jsonl"
    with pytest.raises(Died):
        top.main(["correlate", "--config", CONFIG, "--state", str(tmp_path / "k.sqlite"), "--output", str(out), str(log)])
    monkeypatch.setattr(state_module.StateStore, "commit", real_commit)
    assert out.read_text().count("\n") == die_at - 1  # the finding of the batch that never committed is in the file
    assert top.main(["correlate", "--config", CONFIG, "--state", str(tmp_path / "k.sqlite"), "--output", str(out), str(log)]) == 0
    assert [json.loads(x) for x in out.read_text().splitlines()] == expected


def test_a_state_file_held_by_another_run_is_one_clear_error(tmp_path) -> None:
    import sqlite3

    state = tmp_path / "s.sqlite"
    assert correlate_proc(["--config", CONFIG, "--state", str(state), INSIDER]).returncode == 0
    holder = sqlite3.connect(state, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        log = tmp_path / "more.log"
        log.write_text("\n".join(_accesses(2)) + "\n")
        proc = correlate_proc(["--config", CONFIG, "--state", str(state), str(log)], timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "locked" in lines[0], lines


def test_only_a_program_run_freezes_the_collector(tmp_path, monkeypatch) -> None:
    import gc

    from osq_dbwatch import cli

    args = ["correlate", "--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), "--output", str(tmp_path / "f")]
    frozen = gc.get_freeze_count()
    assert cli.main([*args, INSIDER]) == 0  # in-process callers (tests, the bench) keep a working collector
    assert gc.get_freeze_count() == frozen
    calls: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    monkeypatch.setattr(sys, "argv", ["osq-dbwatch", *args, INSIDER])
    assert cli.main() == 0  # the console script: argv from the command line, the process ends next
    assert calls == [1]
