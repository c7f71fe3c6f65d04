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
from correlate_scenarios.helpers import HERE as OWN, correlate

from osq_dbwatch.config import load_config

BENCH = os.path.join(REPO, "bench")
sys.path.insert(0, BENCH)


def _missing() -> str | None:
    try:
        import pyspark  # noqa: F401
        import pyarrow  # noqa: F401
        import pandas  # noqa: F401
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

from osq_dbwatch.spark import job, sink  # noqa: E402

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
    """Findings compared as sets of (chain id, severity, stages)."""
    return {(r["finding_info"]["uid"], r["severity_id"], tuple(r["unmapped"]["stages"])) for r in records}


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


@pytest.mark.parametrize(("directory", "name"), _scenarios(), ids=lambda v: v if not v.startswith("/") else "")
def test_scenario_same_findings(spark, directory: str, name: str, tmp_path) -> None:
    with open(os.path.join(directory, name + ".json")) as handle:
        spec = json.load(handle)
    config = os.path.join(directory, spec["config"])
    log = os.path.join(directory, spec["log"])
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(log, inputs / os.path.basename(log))
    expected = single(config, [log], str(tmp_path))
    got = stream(spark, config, str(inputs), str(tmp_path))
    assert keys(got) == keys(expected)
    assert len(got) == len(expected)
