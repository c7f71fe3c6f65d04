"""Shared pytest set-up. Fixture modules live beside the tests and are loaded here."""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("OSQ_DBWATCH_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# Fixture modules are added here as they land (each owned by one area).
pytest_plugins: list[str] = [
    name
    for name in ("core_standin", "dbservers", "bundle_build")
    if os.path.exists(os.path.join(HERE, name + ".py"))
]


def _compiled_modules() -> list[str]:
    """setup.py's COMPILED_MODULES (paths under src/), read without running setup.py."""
    import ast

    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["COMPILED_MODULES"]:
            return list(ast.literal_eval(node.value))
    raise RuntimeError("setup.py has no COMPILED_MODULES list")


COMPILED_MODULES = _compiled_modules()


def stale_extensions() -> list[str]:
    """Problems with the mypyc extensions beside the sources: an extension shadows its
    .py, so one built before the .py last changed would test old code."""
    import glob
    from importlib.machinery import EXTENSION_SUFFIXES

    src = os.path.join(REPO, "src")
    listed = {os.path.join(src, path) for path in COMPILED_MODULES}
    problems = []
    for suffix in EXTENSION_SUFFIXES:
        for ext in sorted(glob.glob(os.path.join(src, "osq_dbwatch", "**", "*" + suffix), recursive=True)):
            source = ext[: -len(suffix)] + ".py"
            shown = os.path.relpath(ext, REPO)
            if source not in listed:
                if os.path.exists(source):
                    problems.append(f"{shown} is left from a build, {os.path.relpath(source, REPO)} is no longer compiled")
            elif os.path.getmtime(ext) < os.path.getmtime(source):
                problems.append(f"{shown} is older than {os.path.relpath(source, REPO)}")
    return problems


def pytest_configure(config) -> None:
    stale = stale_extensions()
    if stale:
        more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise pytest.UsageError(f"{stale[0]}{more}: the tests would run old compiled code; run `make setup` "
                                "(or `OSQ_DBWATCH_COMPILE=0 .venv/bin/pip install -e .` for pure Python)")
