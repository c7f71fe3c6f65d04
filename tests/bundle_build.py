"""Session fixture `bundle`: the one-file extension built once per test run by
deploy/build-bundle.sh (PyInstaller, ~1 minute), shared by test_bundle.py and
test_deb.py. OSQ_DBWATCH_BUNDLE=PATH uses an already built one instead (CI's
`make bundle` output, say)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, "deploy", "build-bundle.sh")


@pytest.fixture(scope="session")
def bundle(tmp_path_factory) -> str:
    given = os.environ.get("OSQ_DBWATCH_BUNDLE")
    if given:
        assert os.path.isfile(given) and os.access(given, os.X_OK), f"OSQ_DBWATCH_BUNDLE={given} is no executable"
        return given
    out = tmp_path_factory.mktemp("bundle")
    env = dict(os.environ, PYTHON=sys.executable, DIST=str(out / "dist"), WORK=str(out / "work"))
    result = subprocess.run(["sh", BUILD], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"build-bundle.sh failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    path = str(out / "dist" / "osq_dbwatch.ext")
    assert os.path.isfile(path)
    return path
