"""Every scenario in ../shared/scenarios and tests/correlate_scenarios passes.

A scenario is NAME.log + NAME.json (+ the config it names); see
tests/correlate_scenarios/make_scenarios.py for the expectation keys.
"""

from __future__ import annotations

import glob
import json
import os

import pytest
from conftest import SHARED
from correlate_scenarios.helpers import HERE as OWN, correlate, judge

from osq_dbwatch.correlate import reasons as R

SHARED_DIR = os.path.join(SHARED, "scenarios")


def _specs() -> list[tuple[str, str]]:
    found = []
    for directory in (SHARED_DIR, OWN):
        for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
            found.append((directory, os.path.basename(path)[:-5]))
    return found


def test_shared_scenarios_are_present() -> None:
    assert len(glob.glob(os.path.join(SHARED_DIR, "*.json"))) >= 6, f"shared scenarios missing under {SHARED_DIR}"


@pytest.mark.parametrize(("directory", "name"), _specs(), ids=lambda v: v if not v.startswith("/") else "")
def test_scenario(directory: str, name: str, tmp_path) -> None:
    with open(os.path.join(directory, name + ".json")) as handle:
        spec = json.load(handle)
    log = os.path.join(directory, spec["log"])
    with open(log, "rb") as handle:
        assert sum(1 for _ in handle) == spec["lines"]
    findings = correlate(["--config", os.path.join(directory, spec["config"]), log],
                         str(tmp_path / "state.sqlite"), str(tmp_path / "out.jsonl"))
    assert judge(spec, findings) == []
    text = json.dumps(findings)
    for secret in spec.get("secrets", []):
        assert secret not in text


def test_own_scenarios_cover_every_reason_code() -> None:
    named: set[str] = set()
    for path in glob.glob(os.path.join(OWN, "*.json")):
        with open(path) as handle:
            spec = json.load(handle)
        for entry in spec.get("expect", []) + spec.get("chains", []):
            named.update(entry.get("reasons", []))
    assert set(R.REASONS) - named == set()


def test_own_scenario_files_match_their_generator(tmp_path) -> None:
    """The committed logs are what make_scenarios.py writes (no hand edits drift)."""
    import importlib.util
    import shutil

    copy = tmp_path / "gen"
    copy.mkdir()
    shutil.copy(os.path.join(OWN, "make_scenarios.py"), copy / "make_scenarios.py")
    spec = importlib.util.spec_from_file_location("make_scenarios_copy", copy / "make_scenarios.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    for name in dir(module):
        fn = getattr(module, name)
        if callable(fn) and getattr(fn, "__module__", "") == module.__name__ and name[0] != "_" and name not in ("Log",):
            if fn.__code__.co_argcount == 0:
                fn()
    for path in glob.glob(str(copy / "*.log")) + glob.glob(str(copy / "*.json")):
        with open(path) as a, open(os.path.join(OWN, os.path.basename(path))) as b:
            assert a.read() == b.read(), os.path.basename(path)
