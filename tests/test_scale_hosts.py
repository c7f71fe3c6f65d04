"""Issue 12: more hosts than the resident budget (correlator.memory_mb) -- the same findings, memory held to the
budget, SIGKILL and restart exact, and one clear error when the hosts with pending chains do not fit."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from correlate_scenarios.helpers import correlate_proc
from correlate_scenarios.make_scenarios import MON, D, H, Log

from osq_dbwatch.config import ConfigError, load_config
from osq_dbwatch.correlate import cli as correlate_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
import gen_log  # noqa: E402

CONFIG = os.path.join(REPO, "bench", "config.yml")
BUDGET = 300  # resident host states in these tests (OSQ_DBWATCH_RESIDENT_HOSTS)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> str:
    """A bench log over 3,000 hosts: ten times the test budget, a few hundred with pending chains at a time."""
    directory = tmp_path_factory.mktemp("fleet")
    return fleet_with_odd_accesses(str(directory), lines=30_000, hosts=3_000, seed=7, odd=100, every=300)


def fleet_with_odd_accesses(directory: str, lines: int, hosts: int, seed: int, odd: int, every: int) -> str:
    """A bench log with an unusual access on `odd` hosts of their own, one every `every` lines: findings all
    the way through the log."""
    base = os.path.join(directory, "base.log")
    gen_log.generate(gen_log.Spec(lines=lines, hosts=hosts, seed=seed), base)
    log = Log()
    for i in range(odd):
        log.db_exec(f"odd-{i}", MON + D + 10 * H + i, f"user{i}", 2000 + i, "psql -d x", "/usr/bin/psql", 100 + i,
                    "/usr/bin/bash", "-bash")
    with open(base) as handle:
        text = handle.readlines()
    for i, line in enumerate(log.lines):
        text.insert(every * i + i, line + "\n")
    path = os.path.join(directory, "fleet.log")
    with open(path, "w") as handle:
        handle.writelines(text)
    return path


def _run(log: str, tmp_path, name: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return correlate_proc(["--config", CONFIG, "--state", str(tmp_path / f"{name}.sqlite"), "--output",
                           str(tmp_path / f"{name}.jsonl"), log], env=env)


def test_more_hosts_than_the_budget_give_the_findings_of_an_unbounded_run(fleet: str, tmp_path) -> None:
    whole = _run(fleet, tmp_path, "whole", {})
    assert whole.returncode == 0, whole.stderr
    small = _run(fleet, tmp_path, "small", {"OSQ_DBWATCH_RESIDENT_HOSTS": str(BUDGET)})
    assert small.returncode == 0, small.stderr
    expected = (tmp_path / "whole.jsonl").read_bytes()
    assert expected.count(b"\n") >= 100
    assert (tmp_path / "small.jsonl").read_bytes() == expected
    db = sqlite3.connect(tmp_path / "small.sqlite")
    assert db.execute("SELECT count(*) FROM hosts").fetchone()[0] == 3_100


def test_resident_hosts_stay_within_the_budget(fleet: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OSQ_DBWATCH_RESIDENT_HOSTS", str(BUDGET))
    most = 0
    batch = correlate_cli.Runner.batch

    def watched(self: correlate_cli.Runner, b) -> None:  # type: ignore[no-untyped-def]
        nonlocal most
        batch(self, b)
        most = max(most, self.hosts.most_live)

    monkeypatch.setattr(correlate_cli.Runner, "batch", watched)
    from osq_dbwatch import cli

    code = cli.main(["correlate", "--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), "--output",
                     str(tmp_path / "o.jsonl"), fleet])
    assert code == 0
    # Live states give way to packed ones (a quarter of the live maximum stays live at least).
    assert BUDGET // 4 <= most <= BUDGET


def test_memory_mb_sizes_the_budget_and_is_validated(tmp_path) -> None:
    assert load_config(None).correlator.memory_mb == 256
    cfg = tmp_path / "c.yml"
    cfg.write_text("correlator:\n  memory_mb: 512\n")
    assert load_config(str(cfg)).correlator.memory_mb == 512
    assert correlate_cli.resident_budget(512) > correlate_cli.resident_budget(256) >= 40_000
    for bad in ("16", "lots", "-1"):
        cfg.write_text(f"correlator:\n  memory_mb: {bad}\n")
        with pytest.raises(ConfigError, match="memory_mb"):
            load_config(str(cfg))


def test_pending_chains_beyond_the_budget_are_one_clear_error_and_the_state_carries_on(tmp_path) -> None:
    log = Log()
    for i in range(40):  # an unusual access on each host: 40 pending chains
        log.db_exec(f"p-{i}", MON + D + 10 * H + i, f"user{i}", 2000 + i, "psql -d x", "/usr/bin/psql", 100 + i,
                    "/usr/bin/bash", "-bash")
    path = tmp_path / "p.log"
    path.write_text("\n".join(log.lines) + "\n")
    args = ["--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), "--output", str(tmp_path / "o.jsonl"), str(path)]
    whole = correlate_proc(["--config", CONFIG, "--state", "none", str(path)])
    assert whole.returncode == 0 and whole.stdout.count(b"\n") == 40
    failed = correlate_proc(args, env={"OSQ_DBWATCH_RESIDENT_HOSTS": "20", "OSQ_DBWATCH_BATCH_LINES": "15"})
    lines = failed.stderr.decode().strip().splitlines()
    assert failed.returncode != 0 and len(lines) == 1 and "Traceback" not in lines[0], lines
    assert "pending chains" in lines[0] and "raise correlator.memory_mb to at least" in lines[0]
    done = correlate_proc(args)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o.jsonl").read_bytes() == whole.stdout


def test_sigkill_with_more_hosts_than_the_budget_then_restart_equals_one_run(fleet: str, tmp_path) -> None:
    env = {"OSQ_DBWATCH_RESIDENT_HOSTS": str(BUDGET), "OSQ_DBWATCH_BATCH_LINES": "700"}
    whole = _run(fleet, tmp_path, "whole", env)
    assert whole.returncode == 0, whole.stderr
    expected = (tmp_path / "whole.jsonl").read_bytes()
    state, out = tmp_path / "killed.sqlite", tmp_path / "killed.jsonl"
    args = [sys.executable, "-m", "osq_dbwatch", "correlate", "--config", CONFIG, "--state", str(state), "--output",
            str(out), fleet]
    offsets, final = sigkill_runs(args, env, str(state), kills=6, seed=12, wait=60, poll=0.01, later=(0, 0.1))
    assert final.returncode == 0, final.stderr
    assert len(set(offsets)) == len(offsets), f"kills did not land at different points: {offsets}"
    assert out.read_bytes() == expected


def sigkill_runs(args: list[str], env: dict[str, str], state: str, kills: int, seed: int, wait: float, poll: float,
                 later: tuple[float, float]) -> tuple[list[int], subprocess.CompletedProcess[bytes]]:
    """Start the correlator `kills` times and SIGKILL each run once it has committed something of its own (its
    state's read offset moved), a random moment `later`; then one run to the end. (offsets at the kills, final)."""
    rng = random.Random(seed)
    offsets: list[int] = []
    for _ in range(kills):
        before = _offset(state)
        child = subprocess.Popen(args, env={**os.environ, **env}, stderr=subprocess.DEVNULL)
        deadline = time.time() + wait
        while child.poll() is None and time.time() < deadline and _offset(state) <= before:
            time.sleep(poll)
        time.sleep(rng.uniform(*later))
        assert child.poll() is None, "the run finished before it could be killed: make the log longer"
        child.send_signal(signal.SIGKILL)
        child.wait()
        offsets.append(_offset(state))
    final = subprocess.run(args, env={**os.environ, **env}, capture_output=True, timeout=600, check=False)
    return offsets, final


def _offset(state) -> int:
    if not os.path.exists(state):
        return -1
    try:
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT max(offset) FROM positions").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return -1
    return -1 if row is None or row[0] is None else int(row[0])
