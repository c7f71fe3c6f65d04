"""The Spark job's parts that need no Spark: the per-host operator, the line keyer and the sink (issue 16)."""

from __future__ import annotations

import glob
import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED
from correlate_scenarios.helpers import HERE as OWN

from osq_dbwatch import cli
from osq_dbwatch.config import load_config
from osq_dbwatch.spark import operator as op
from osq_dbwatch.spark import sink


def _events(log: str) -> list[tuple[int, str]]:
    out = []
    with open(log, encoding="utf-8") as handle:
        for line in handle:
            keyed = op.key_line(line.rstrip("\n"))
            if keyed is not None:
                out.append((keyed.time, line.rstrip("\n")))
    return out


def _logs() -> list[tuple[str, str]]:
    found = []
    for directory in (os.path.join(SHARED, "scenarios"), OWN):
        for spec_path in sorted(glob.glob(os.path.join(directory, "*.json"))):
            with open(spec_path) as handle:
                spec = json.load(handle)
            found.append((os.path.join(directory, spec["config"]), os.path.join(directory, spec["log"])))
    return found


def _run(config: str, events: list[tuple[int, str]]) -> tuple[list[str], dict[str, str | None]]:
    """Every host's events in one step each: the records and the saved states."""
    operator = op.HostOperator(load_config(config), op.Settings())
    by_host: dict[str, list[tuple[int, str]]] = {}
    for t, line in events:
        keyed = op.key_line(line)
        assert keyed is not None
        by_host.setdefault(keyed.host, []).append((t, line))
    records: list[str] = []
    states: dict[str, str | None] = {}
    for host, mine in sorted(by_host.items()):
        result = operator.step(host, None, mine, False, 0)
        records += [o.record for o in result.outputs]
        states[host] = result.state
    return sorted(records), states


def test_a_batch_is_applied_in_event_time_order_whatever_order_spark_gives() -> None:
    """Spark's shuffle delivers a host's lines in any order: the records and the state must not depend on it."""
    changed = 0
    for config, log in _logs():
        events = _events(log)
        forward = _run(config, events)
        for seed in range(3):
            shuffled = list(events)
            random.Random(seed).shuffle(shuffled)
            assert _run(config, shuffled) == forward, log
            changed += shuffled != events
    assert changed


def test_idle_host_times_out_at_the_correlators_host_expiry() -> None:
    config = load_config(None)
    settings = op.Settings(late_seconds=86400)
    operator = op.HostOperator(config, settings)
    _, log = _logs()[0]
    events = _events(log)
    host = op.key_line(events[0][1]).host
    result = operator.step(host, None, events, False, 0)
    watermark = op.load_state(host, result.state).watermark
    assert result.timeout_ms == (watermark + 5 * config.correlator.state_expiry_seconds - 86400) * 1000
    # Never at or before the stream's current watermark (Spark refuses it).
    late = operator.step(host, result.state, [], False, result.timeout_ms + 5000)
    assert late.timeout_ms == result.timeout_ms + 5001
    gone = operator.step(host, result.state, [], True, result.timeout_ms + 1)
    assert gone.state is None and gone.outputs == [] and gone.timeout_ms == 0


def test_state_is_the_engines_json_form_and_survives_a_reload() -> None:
    config, log = next((c, l) for c, l in _logs() if l.endswith("insider-csv-curl.log"))
    events = _events(log)
    host = op.key_line(events[0][1]).host
    operator = op.HostOperator(load_config(config), op.Settings())
    whole = operator.step(host, None, events, False, 0)
    first = operator.step(host, None, events[:3], False, 0)
    rest = operator.step(host, first.state, events[3:], False, 0)
    assert sorted(o.record_id for o in first.outputs + rest.outputs) or whole.outputs
    assert {o.chain_uid for o in first.outputs + rest.outputs} == {o.chain_uid for o in whole.outputs}
    assert max(o.revision for o in rest.outputs + first.outputs) == max(o.revision for o in whole.outputs)
    saved = json.loads(whole.state)
    assert saved["v"] == op.STATE_VERSION and saved["engine"]["host"] == host
    with pytest.raises(ValueError, match="unknown version"):
        op.load_state(host, json.dumps({"v": 99}))


def test_key_line_reads_host_and_earliest_row_time() -> None:
    line = json.dumps({"name": "pack_dbwatch_db_cli_exec", "hostIdentifier": "h1", "unixTime": 2000, "action": "added",
                       "columns": {"time": "1990", "pid": "1", "path": "/usr/bin/psql", "cmdline": "psql", "uid": "0"}})
    assert op.key_line(line) == op.Keyed("h1", 1990)
    assert op.key_line(json.dumps({"name": "pack_other_query", "hostIdentifier": "h1", "unixTime": 1})) is None
    assert op.key_line("not json") is None
    assert op.key_line(" " * (1 << 20) + line) is None  # the single process skips lines over 1 MiB too


def test_sink_writes_each_batch_whole_sorted_0600_and_rewrites_it_identically(tmp_path) -> None:
    out = sink.prepare(str(tmp_path / "out"))
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert sink.write_batch(out, 7, [("b:2", '{"b":2}'), ("a:1", '{"a":1}')]) == 2
    path = os.path.join(out, sink.batch_name(7))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = Path(path).read_bytes()
    assert first == b'{"a":1}\n{"b":2}\n'
    # A rerun of batch 7 after a crash: the same name, the same bytes, no second copy.
    sink.write_batch(out, 7, [("a:1", '{"a":1}'), ("b:2", '{"b":2}')])
    assert Path(path).read_bytes() == first
    assert sink.read_findings(out) == ['{"a":1}', '{"b":2}']
    assert sorted(os.listdir(out)) == [sink.batch_name(7)]
    assert sink.write_batch(out, 8, []) == 0 and not os.path.exists(os.path.join(out, sink.batch_name(8)))


def test_sink_refuses_a_symlinked_or_non_directory_output(tmp_path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(sink.SinkError, match="symlink"):
        sink.prepare(str(tmp_path / "link"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(sink.SinkError, match="not a directory"):
        sink.prepare(str(tmp_path / "file"))


def test_spark_subcommand_errors_are_one_line(capsys) -> None:
    assert cli.main(["spark", "--checkpoint", "/nonexistent/ck", "--output", "/nonexistent/out"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["osq-dbwatch spark: give exactly one of --input and --kafka-bootstrap-servers"]


def test_the_command_line_never_imports_pyspark_unless_the_job_runs() -> None:
    """pyspark is an optional extra: every sub-command's parser (spark's too) builds without it."""
    code = ("import sys; from osq_dbwatch import cli; cli.build_parser(None); cli.build_parser('spark'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'pandas', 'pyarrow', 'py4j')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_worker_daemon_preloads_only_while_single_threaded() -> None:
    """spark/daemon.py imports pandas, pyarrow and the correlator before Spark forks workers from it, and only
    while the process has one thread (a forked worker would inherit locks held by threads it does not have)."""
    pytest.importorskip("pyspark")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "JE_ARROW_MALLOC_CONF")}
    code = "import sys; from osq_dbwatch.spark import daemon; print(daemon.preload(), 'pandas' in sys.modules, daemon._threads())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["True", "True", "1"]
    busy = ("import sys, threading, time; threading.Thread(target=time.sleep, args=(30,), daemon=True).start(); "
            "from osq_dbwatch.spark import daemon; print(daemon.preload(), 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", busy], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["False", "False"]


def test_a_local_master_gets_one_state_partition_a_core_not_sparks_200() -> None:
    from osq_dbwatch.spark import job

    assert job.local_cores("local") == 1
    assert job.local_cores("local[2]") == 2
    assert job.local_cores("local[3,2]") == 3
    assert job.local_cores("local[*]") == (os.cpu_count() or 1)
    assert job.local_cores("yarn") is None and job.local_cores(None) is None and job.local_cores("local[x]") is None


def _restart_bench():  # bench/spark_restart.py: the kill-and-restart driver and its comparison
    from conftest import REPO

    sys.path.insert(0, os.path.join(REPO, "bench"))
    import spark_restart

    return spark_restart


def test_restart_comparison_catches_a_doubled_a_missing_and_a_changed_record() -> None:
    sr = _restart_bench()

    def rec(chain: str, rev: int, severity: int, stages: list[str]) -> dict[str, object]:
        return {"finding_info": {"uid": chain}, "metadata": {"uid": f"{chain}:{rev}", "sequence": rev},
                "severity_id": severity, "unmapped": {"stages": stages}}

    expected = [rec("a", 1, 3, ["access"]), rec("a", 2, 4, ["dump", "access"]), rec("b", 1, 3, ["access"])]
    assert sr.differences(list(reversed(expected)), expected) == []
    assert sr.differences([rec("a", 2, 4, ["access", "dump"])] + expected[::2], expected) == []  # stages as a set
    assert any("twice" in p for p in sr.differences(expected + expected[:1], expected))
    assert any("missing" in p for p in sr.differences(expected[1:], expected))
    assert sr.differences(expected[:2] + [rec("b", 1, 4, ["access"])], expected) == [
        "1 (chain, severity, stages) missing, 1 extra"]
    assert sr.kill_points(4, 2) == [1, 2] and sr.kill_points(8, 2) == [2, 4]
    with pytest.raises(ValueError):
        sr.kill_points(3, 2)
