"""The shipped artifact: deploy/build-bundle.sh builds dist/osq_dbwatch.ext with
PyInstaller (once per test session, ~20-60 s: the `bundle` fixture of
bundle_build.py), and the one-file executable is
launched the way osqueryd launches extensions, against the core stand-in, to
prove all four tables register and generate. Slow but not skipped: CI runs it
(PyInstaller comes from the `bundle` extra)."""

from __future__ import annotations

import os
import subprocess

from core_standin import CoreStandin
from osq_dbwatch.tables import TABLES


def test_bundle_is_a_self_contained_executable(bundle):
    with open(bundle, "rb") as handle:
        assert handle.read(4) == b"\x7fELF"  # not a script needing an interpreter
    assert os.stat(bundle).st_mode & 0o777 == 0o755
    # Runs with an environment that has no Python and no PYTHONPATH at all.
    env = {"PATH": "/nonexistent", "HOME": "/nonexistent", "TMPDIR": os.environ.get("TMPDIR", "/tmp")}
    version = subprocess.run([bundle, "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("osq-dbwatch ")
    # The pack sources travel inside the bundle too.
    pack = subprocess.run([bundle, "pack", "render", "--defaults", "--file", "dbwatch.conf"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert pack.returncode == 0 and '"db_cli_exec"' in pack.stdout


def test_bundle_registers_and_serves_all_tables(bundle, tmp_path):
    with CoreStandin(ext_argv=[bundle], timeout=10, env={"TMPDIR": str(tmp_path)}) as core:
        registry = core.wait_registered(timeout=60)
        assert set(registry["table"]) == set(TABLES)
        for name, cls in TABLES.items():
            assert [c for c, _ in core.columns(name)] == [c for c, _ in cls.columns()]
            rows = core.generate(name)
            assert isinstance(rows, list), name
            known = {c for c, _ in cls.columns()}
            for row in rows:
                assert set(row) <= known, (name, set(row) - known)
        coverage = core.generate("dbwatch_coverage")
        assert coverage and all(r["status"] in ("ok", "degraded", "blind") for r in coverage)


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (a /proc scan: /proc/PID/task/PID/children needs CONFIG_PROC_CHILDREN)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killing_the_launched_process_leaves_no_orphan(bundle, tmp_path):
    """osqueryd kills the pid it launched (the one-file bootloader); the Python
    child doing the work must go with it."""
    import signal
    import time

    # A killed bootloader cannot remove its unpack directory (a known limit,
    # see README): keep it in pytest's temp dir, not the machine's /tmp.
    with CoreStandin(ext_argv=[bundle], timeout=10, env={"TMPDIR": str(tmp_path)}) as core:
        core.wait_registered(timeout=60)
        launched = core.proc.pid
        children = _children(launched)
        assert children, "the one-file bootloader runs the extension in a child process"
        os.kill(launched, signal.SIGKILL)
        core.proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(c) for c in children)
