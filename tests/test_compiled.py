"""The correlator modules setup.py compiles with mypyc (its COMPILED_MODULES).

CI sets OSQ_DBWATCH_REQUIRE_COMPILED=1 (.ci/run): there every listed module
must load from its extension, and the compiled correlator must write the same
findings, byte for byte, as the same source run as plain Python. A local
install without a C compiler (or with OSQ_DBWATCH_COMPILE=0) runs pure Python,
and these tests say so in their skip reason. tests/conftest.py refuses to run
the suite when an extension is older than its source.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader

import pytest
from conftest import COMPILED_MODULES, REPO, SHARED, stale_extensions

MODULES = [path[:-3].replace("/", ".") for path in COMPILED_MODULES]
REQUIRED = os.environ.get("OSQ_DBWATCH_REQUIRE_COMPILED", "").strip().lower() in ("1", "true", "yes", "on")
SCENARIO_DIRS = [os.path.join(SHARED, "scenarios"), os.path.join(REPO, "tests", "correlate_scenarios")]


def _compiled(name: str) -> bool:
    return isinstance(importlib.import_module(name).__loader__, ExtensionFileLoader)


COMPILED = [name for name in MODULES if _compiled(name)]
needs_compiled = pytest.mark.skipif(
    not COMPILED and not REQUIRED,
    reason="the correlator runs as pure Python here (OSQ_DBWATCH_COMPILE=0, no C compiler, or mypyc rejected the "
           "code: `make setup` says which); CI sets OSQ_DBWATCH_REQUIRE_COMPILED=1 and runs these",
)


def test_the_list_names_correlator_sources() -> None:
    assert COMPILED_MODULES, "setup.py compiles nothing"
    for path in COMPILED_MODULES:
        assert path.startswith("osq_dbwatch/") and path.endswith(".py"), path
        assert os.path.isfile(os.path.join(REPO, "src", path)), f"setup.py lists {path}, which is not in src/"
    assert stale_extensions() == []


@needs_compiled
def test_every_listed_module_loads_from_its_extension() -> None:
    pure = [name for name in MODULES if name not in COMPILED]
    assert pure == [], f"loaded as pure Python: {pure} (compiled: {COMPILED})"
    for name in MODULES:
        path = importlib.import_module(name).__file__ or ""
        assert path.endswith(tuple(EXTENSION_SUFFIXES)) and os.path.getsize(path) > 0, path


def _cases(tmp_path) -> list[tuple[str, str, str]]:
    """(name, config, log): every scenario log, and a generated 20,000-line fleet log."""
    cases = []
    for directory in SCENARIO_DIRS:
        for spec_path in sorted(glob.glob(os.path.join(directory, "*.json"))):
            with open(spec_path) as handle:
                spec = json.load(handle)
            cases.append((os.path.basename(spec_path)[:-5], os.path.join(directory, spec["config"]),
                          os.path.join(directory, spec["log"])))
    assert len(cases) >= 6, f"scenarios missing under {SCENARIO_DIRS}"
    fleet = str(tmp_path / "fleet.log")
    gen = subprocess.run([sys.executable, os.path.join(REPO, "bench", "gen_log.py"), "--lines", "20000", "--hosts",
                          "20", "--insider", "4", "--webshell", "2", "--access-only", "3", "--out", fleet],
                         capture_output=True, text=True, timeout=120)
    assert gen.returncode == 0, gen.stderr
    cases.append(("fleet-20k", os.path.join(REPO, "bench", "config.yml"), fleet))
    return cases


def _run_all(cases: list[tuple[str, str, str]], out_dir, env: dict[str, str]) -> dict[str, bytes]:
    """`python -m osq_dbwatch correlate` over each case (own state, own output); name -> findings bytes."""
    out_dir.mkdir()

    def run(case: tuple[str, str, str]) -> tuple[str, bytes]:
        name, config, log = case
        output = out_dir / f"{name}.jsonl"
        proc = subprocess.run([sys.executable, "-m", "osq_dbwatch", "correlate", "--config", config,
                               "--state", str(out_dir / f"{name}.sqlite"), "--output", str(output), log],
                              capture_output=True, text=True, env=env, cwd=str(out_dir), timeout=300)
        assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"
        return name, output.read_bytes() if output.exists() else b""

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(pool.map(run, cases))


def _loaded_from(env: dict[str, str], cwd: str) -> list[str]:
    code = "import importlib, sys; print('\\n'.join(importlib.import_module(m).__file__ for m in sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, *MODULES], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@needs_compiled
def test_compiled_and_pure_correlators_write_the_same_findings(tmp_path) -> None:
    cases = _cases(tmp_path)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The installed tree (extensions in src/), then a copy of src/ with no extension at all.
    compiled_env = dict(base)
    assert all(p.endswith(tuple(EXTENSION_SUFFIXES)) for p in _loaded_from(compiled_env, str(tmp_path)))
    pure_src = tmp_path / "pure-src"
    shutil.copytree(os.path.join(REPO, "src", "osq_dbwatch"), pure_src / "osq_dbwatch",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    pure_env = dict(base, PYTHONPATH=str(pure_src))
    loaded = _loaded_from(pure_env, str(tmp_path))
    assert all(p.startswith(str(pure_src)) and p.endswith(".py") for p in loaded), loaded

    compiled = _run_all(cases, tmp_path / "compiled", compiled_env)
    pure = _run_all(cases, tmp_path / "pure", pure_env)
    assert sum(1 for findings in pure.values() if findings) >= len(cases) // 2, "too few cases produce findings"
    with open(cases[-1][2] + ".meta.json") as handle:
        injected = len(json.load(handle)["chains"])
    chains = {json.loads(line)["finding_info"]["uid"] for line in pure["fleet-20k"].splitlines()}
    assert len(chains) >= injected > 0, (len(chains), injected)
    differ = [name for name in pure if compiled[name] != pure[name]]
    assert differ == [], f"compiled and pure findings differ for {differ}"
