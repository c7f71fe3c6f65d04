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
import sys
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

import spark_restart  # bench/spark_restart.py: the kill-and-restart driver, shared with the bench

from osq_dbwatch.spark import job, sink

# One small machine: 2 state partitions, no UI, a short-lived driver JVM, pre-imported Python workers.
SPARK_CONF = spark_restart.LOCAL_CONF


@pytest.fixture(scope="session")
def spark():
    session = job.session("local[2]", "osq-dbwatch-tests", SPARK_CONF)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


keys = spark_restart.keys  # (chain id, severity, stages), stages as a set


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


# The bench log for CI: bench/gen_log.py's generator, smaller than the full log bench/spark_restart.py
# kills and restarts (docs/spark.md), in BENCH_BATCHES files of equal line counts, one a micro-batch.
BENCH_SPEC = {"lines": 20_000, "hosts": 50, "seed": 16, "insider": 8, "webshell": 2, "access_only": 4}
BENCH_BATCHES = 4


@pytest.fixture(scope="session")
def bench_log(tmp_path_factory) -> tuple[str, str, int]:
    """The log, a directory holding it in BENCH_BATCHES files (older mtimes first: the file source's order),
    and the lines per file."""
    import gen_log

    base = tmp_path_factory.mktemp("bench")
    log = str(base / "fleet.log")
    gen_log.generate(gen_log.Spec(**BENCH_SPEC), log)
    _, per_batch = spark_restart.split(log, str(base / "parts"), BENCH_BATCHES)
    return log, str(base / "parts"), per_batch


@pytest.fixture(scope="session")
def bench_single(bench_log, tmp_path_factory) -> list[dict[str, Any]]:
    """`osq-dbwatch correlate` on the whole log, flushing findings at the stream's micro-batch boundaries."""
    log, _, per_batch = bench_log
    return spark_restart.single(log, str(tmp_path_factory.mktemp("single")), per_batch)


def test_bench_log_same_findings(spark, bench_log, bench_single, tmp_path) -> None:
    """One uninterrupted stream, a file a micro-batch: exactly the single process's records when both flush
    at the same lines (and each chain's newest record agrees whatever the batching)."""
    _, parts, _ = bench_log
    got = stream(spark, os.path.join(BENCH, "config.yml"), parts, str(tmp_path), max_files=1)
    expected = bench_single
    assert len(finals(expected)) >= 8
    assert spark_restart.differences(got, expected) == []
    assert finals(got) == finals(expected)
    assert len({r["metadata"]["uid"] for r in got}) == len(got)


def test_sigkill_restart_exact(bench_log, bench_single, tmp_path) -> None:
    """SIGKILL the driver (its Python process and JVM) twice mid-stream, at points read from the checkpoint,
    restart from the checkpoint each time: the sink holds exactly the single process's records (the same
    record keys, none missing, none doubled)."""
    log, parts, _ = bench_log
    work = str(tmp_path / "killed")
    result = spark_restart.kill_restart(parts, work, BENCH_BATCHES, kills=2, timeout=600)
    where = [(k.batch, k.point, k.committed) for k in result.kills]
    assert len(result.kills) == 2 and result.starts == 3
    # Each kill fell in the middle of the stream: batches were left to run after it.
    assert all(k.committed < BENCH_BATCHES - 1 for k in result.kills), where
    assert spark_restart.progress(work).commits == set(range(BENCH_BATCHES))
    got = result.records
    assert spark_restart.differences(got, bench_single) == [], where
    assert len({r["metadata"]["uid"] for r in got}) == len(got)
    assert finals(got) == finals(single(os.path.join(BENCH, "config.yml"), [log], str(tmp_path)))
