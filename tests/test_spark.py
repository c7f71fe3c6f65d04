"""`osq-dbwatch spark` (issue 16): the same findings as `osq-dbwatch correlate`, and restart-exact.

Runs Spark at local[2] with one SparkSession for the whole test run. Skipped
(with the reason) when pyspark or Java is missing, except under CI=true, where
that is a failure: CI installs both (tests/install-deps.sh, the `spark` extra).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import REPO, SHARED
from correlate_scenarios.helpers import HERE as OWN
from correlate_scenarios.helpers import correlate

from osq_dbwatch.config import load_config

BENCH = os.path.join(REPO, "bench")
sys.path.insert(0, BENCH)


def _missing() -> str | None:
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        return f"pyspark extra not installed ({exc.name}): pip install -e '.[spark]'"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java: apt-get install openjdk-17-jre-headless (tests/install-deps.sh)"
    return None


_WHY = _missing()
if _WHY is not None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the Spark tests: {_WHY}", pytrace=False)
    pytest.skip(_WHY, allow_module_level=True)

from osq_dbwatch.spark import job, sink

SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "1g",
    "spark.sql.streaming.noDataMicroBatches.enabled": "false",
}


@pytest.fixture(scope="session")
def spark():
    session = job.session("local[2]", "osq-dbwatch-tests", SPARK_CONF)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def keys(records: list[dict[str, Any]]) -> set[tuple[str, int, tuple[str, ...]]]:
    """Findings compared as sets of (chain id, severity, stages); a chain's stages are listed in the order
    their evidence arrived, so they are compared as a set."""
    return {(r["finding_info"]["uid"], r["severity_id"], tuple(sorted(r["unmapped"]["stages"]))) for r in records}


def finals(records: list[dict[str, Any]]) -> set[tuple[str, int, tuple[str, ...]]]:
    """Each chain's newest revision (what a store keyed by chain id holds)."""
    best: dict[str, dict[str, Any]] = {}
    for r in records:
        uid = r["finding_info"]["uid"]
        if uid not in best or r["metadata"]["sequence"] > best[uid]["metadata"]["sequence"]:
            best[uid] = r
    return keys(list(best.values()))


def stream(spark, config_path: str | None, inputs: str, work: str, max_files: int | None = None) -> list[dict[str, Any]]:
    options = job.JobOptions(input=inputs, checkpoint=os.path.join(work, "ck"), output=os.path.join(work, "out"),
                             once=True, max_files_per_trigger=max_files)
    query = job.start(spark, load_config(config_path), options)
    query.awaitTermination()
    return [json.loads(line) for line in sink.read_findings(options.output)]


def single(config_path: str | None, logs: list[str], work: str) -> list[dict[str, Any]]:
    args = (["--config", config_path] if config_path else []) + logs
    return correlate(args, os.path.join(work, "state.sqlite"), os.path.join(work, "single.jsonl"))


def _scenarios() -> list[tuple[str, str]]:
    found = []
    for directory in (os.path.join(SHARED, "scenarios"), OWN):
        for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
            found.append((directory, os.path.basename(path)[:-5]))
    return found


def _spec(directory: str, name: str) -> dict[str, Any]:
    with open(os.path.join(directory, name + ".json")) as handle:
        spec: dict[str, Any] = json.load(handle)
    spec["config"] = os.path.join(directory, spec["config"])
    spec["log"] = os.path.join(directory, spec["log"])
    return spec


def _hosts(log: str) -> set[str]:
    from osq_dbwatch.spark.operator import key_line

    with open(log, encoding="utf-8", errors="replace") as handle:
        return {k.host for k in map(key_line, handle) if k is not None}


@pytest.mark.parametrize("name", sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(SHARED, "scenarios", "*.json"))))
def test_shared_scenario_same_findings(spark, name: str, tmp_path) -> None:
    """One stream per shared scenario (their host names repeat across scenarios)."""
    spec = _spec(os.path.join(SHARED, "scenarios"), name)
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(spec["log"], inputs / "scenario.log")
    expected = single(spec["config"], [spec["log"]], str(tmp_path))
    got = stream(spark, spec["config"], str(inputs), str(tmp_path))
    assert keys(got) == keys(expected)
    assert len(got) == len(expected)


def test_own_scenarios_same_findings(spark, tmp_path) -> None:
    """tests/correlate_scenarios in one stream (one config, no host in two scenarios), each against its own single run."""
    specs = [_spec(OWN, os.path.basename(p)[:-5]) for p in sorted(glob.glob(os.path.join(OWN, "*.json")))]
    assert len({s["config"] for s in specs}) == 1
    inputs = tmp_path / "in"
    inputs.mkdir()
    seen: set[str] = set()
    expected: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        hosts = _hosts(spec["log"])
        assert hosts and not hosts & seen, spec["log"]
        seen |= hosts
        shutil.copy(spec["log"], inputs / os.path.basename(spec["log"]))
        work = tmp_path / f"single-{index}"
        work.mkdir()
        expected += single(spec["config"], [spec["log"]], str(work))
    got = stream(spark, specs[0]["config"], str(inputs), str(tmp_path))
    assert len(expected) >= len(specs)
    assert keys(got) == keys(expected)
    assert len(got) == len(expected)


# The bench log for CI: bench/gen_log.py's generator, smaller than bench_spark.py's (CI time).
BENCH_SPEC = {"lines": 20_000, "hosts": 50, "seed": 16, "insider": 8, "webshell": 2, "access_only": 4}
BENCH_PARTS = 5


@pytest.fixture(scope="session")
def bench_log(tmp_path_factory) -> tuple[str, str]:
    """The log and a directory holding it in BENCH_PARTS files (older mtimes first: the file source's order)."""
    import gen_log

    base = tmp_path_factory.mktemp("bench")
    log = str(base / "fleet.log")
    gen_log.generate(gen_log.Spec(**BENCH_SPEC), log)
    parts = base / "parts"
    parts.mkdir()
    with open(log, "rb") as handle:
        lines = handle.readlines()
    size = -(-len(lines) // BENCH_PARTS)
    for index in range(BENCH_PARTS):
        part = parts / f"part-{index:03d}.log"
        part.write_bytes(b"".join(lines[index * size:(index + 1) * size]))
        os.utime(part, (1_700_000_000 + index, 1_700_000_000 + index))
    return log, str(parts)


@pytest.fixture(scope="session")
def bench_stream(spark, bench_log, tmp_path_factory) -> list[dict[str, Any]]:
    """One uninterrupted stream of the bench log, a file a micro-batch."""
    return stream(spark, os.path.join(BENCH, "config.yml"), bench_log[1], str(tmp_path_factory.mktemp("ref")), max_files=1)


def test_bench_log_same_findings(bench_stream, bench_log, tmp_path) -> None:
    log, _ = bench_log
    config = os.path.join(BENCH, "config.yml")
    expected = single(config, [log], str(tmp_path))
    got = bench_stream
    assert len(finals(expected)) >= 8
    # Several micro-batches: a chain raised inside one may be emitted once where the single
    # process (one batch here) emits it once too, or at each step; each chain's newest record agrees.
    assert finals(got) == finals(expected)
    assert len({r["metadata"]["uid"] for r in got}) == len(got)


def _spark_cli(parts: str, work: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "osq_dbwatch", "spark", "--input", parts, "--checkpoint", os.path.join(work, "ck"),
            "--output", os.path.join(work, "out"), "--config", os.path.join(BENCH, "config.yml"), "--once",
            "--max-files-per-trigger", "1", "--master", "local[2]", "--partitions", "2",
            "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.memory=1g"]
    # Its own session: the kill reaches the driver's JVM too, and nothing else.
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _commits(work: str) -> int:
    directory = os.path.join(work, "ck", "commits")
    return len([n for n in os.listdir(directory) if n.isdigit()]) if os.path.isdir(directory) else 0


def test_sigkill_restart_exact(bench_stream, bench_log, tmp_path) -> None:
    """SIGKILL the driver twice mid-stream, restart from the checkpoint: the sink holds exactly one
    uninterrupted run's records, none missing, none doubled."""
    log, parts = bench_log
    reference = bench_stream
    work = str(tmp_path / "killed")
    kills = 0
    for after in (1, 2):
        proc = _spark_cli(parts, work)
        deadline = time.monotonic() + 240
        while _commits(work) < after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        assert _commits(work) < BENCH_PARTS
    proc = _spark_cli(parts, work)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert kills == 2 and _commits(work) >= BENCH_PARTS
    got = [json.loads(line) for line in sink.read_findings(os.path.join(work, "out"))]
    assert sorted(r["metadata"]["uid"] for r in got) == sorted(r["metadata"]["uid"] for r in reference)
    assert len({r["metadata"]["uid"] for r in got}) == len(got)
    assert keys(got) == keys(reference)
    assert finals(got) == finals(single(os.path.join(BENCH, "config.yml"), [log], str(tmp_path)))
