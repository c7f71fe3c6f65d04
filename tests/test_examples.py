"""examples/: the logs and config a first trial uses give the findings their
NAME.expected.json promise."""

from __future__ import annotations

import filecmp
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED
from correlate_scenarios.helpers import correlate, correlate_proc, judge

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")
NAMES = sorted(os.path.basename(p)[: -len(".expected.json")] for p in glob.glob(os.path.join(EXAMPLES, "*.expected.json")))


def spec_of(name: str) -> dict:
    with open(os.path.join(EXAMPLES, name + ".expected.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_examples_are_there() -> None:
    assert len(NAMES) >= 6
    for name in NAMES:
        assert os.path.isfile(os.path.join(EXAMPLES, spec_of(name)["log"]))
        assert spec_of(name)["config"] == "config.yml"


@pytest.mark.parametrize("name", NAMES)
def test_example_gives_its_expected_findings(name: str, tmp_path: Path) -> None:
    spec = spec_of(name)
    log = os.path.join(EXAMPLES, spec["log"])
    with open(log, "rb") as handle:
        assert sum(1 for _ in handle) == spec["lines"]
    findings = correlate(["--config", os.path.join(EXAMPLES, spec["config"]), log],
                         str(tmp_path / "state.sqlite"), str(tmp_path / "out.jsonl"))
    assert judge(spec, findings) == []


def test_the_five_minute_trial(tmp_path: Path) -> None:
    """What the README's trial does: every example log in one run, as a program, in ECS too, and the report."""
    logs = [os.path.join(EXAMPLES, spec_of(name)["log"]) for name in NAMES]
    proc = correlate_proc(["--config", os.path.join(EXAMPLES, "config.yml"), "--state", "none", *logs])
    assert proc.returncode == 0, proc.stderr
    findings = [json.loads(line) for line in proc.stdout.splitlines()]
    chains = {(f["device"]["hostname"], f["actor"]["user"]["name"]) for f in findings}
    assert chains == {(e["host"], e["user"]) for name in NAMES for e in spec_of(name)["expect"]}
    ecs = correlate_proc(["--config", os.path.join(EXAMPLES, "config.yml"), "--state", "none",
                          "--format", "ecs", os.path.join(EXAMPLES, "insider-csv-curl.log")])
    assert ecs.returncode == 0 and json.loads(ecs.stdout.splitlines()[-1])["event"]["kind"] == "alert"
    saved = tmp_path / "findings.json"
    saved.write_bytes(proc.stdout)
    report = subprocess.run([sys.executable, "-m", "osq_dbwatch", "report", "--text", str(saved)],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith(f"{len(chains)} chains")


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "scenarios")), reason="no ../shared beside this clone")
def test_examples_are_the_projects_shared_scenarios() -> None:
    shared = os.path.join(SHARED, "scenarios")
    for name in NAMES:
        assert filecmp.cmp(os.path.join(EXAMPLES, name + ".log"), os.path.join(shared, name + ".log"), shallow=False)
        with open(os.path.join(shared, name + ".json"), encoding="utf-8") as handle:
            assert json.load(handle) == spec_of(name)
    assert filecmp.cmp(os.path.join(EXAMPLES, "config.yml"), os.path.join(shared, "config.yml"), shallow=False)
