"""Issue 11 item 8: a flood of distinct users on one host. Every per-host table is bounded, evictions are counted
in the run summary, every access still gives its finding once, and the time per line stays flat as the tables
fill (no scan of all pending chains, pids or keys per line)."""

from __future__ import annotations

import json
import os
import time

from correlate_scenarios.make_scenarios import MON, D, H, Log

from osq_dbwatch.config import load_config
from osq_dbwatch.correlate import baseline as B
from osq_dbwatch.correlate import engine as E
from osq_dbwatch.correlate.engine import Engine, HostState
from osq_dbwatch.correlate.rows import parse_line

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "bench", "config.yml")


def flood_lines(n: int, host: str = "flood", start: int = 0) -> list[str]:
    """n accesses on one host, each by a user of its own (an unusual access each: one chain, one finding each)."""
    log = Log()
    for i in range(start, start + n):
        log.db_exec(host, MON + D + 10 * H + i // 10, f"user{i}", 20000 + i, "psql -d x", "/usr/bin/psql", 100 + i,
                    "/usr/bin/bash", "-bash")
    return log.lines


def test_a_flood_of_distinct_users_is_bounded_flat_and_loses_no_finding() -> None:
    engine = Engine(load_config(CONFIG))
    early: list[str] = []
    engine.sink = lambda st, found: early.extend(f.uid for f in found)
    st = HostState("flood")
    rows = [parse_line(line.encode()).rows for line in flood_lines(14_000)]
    laps: list[float] = []
    peaks = {"chains": 0, "closing": 0}
    for part in range(7):
        started = time.perf_counter()
        for r in rows[part * 2000:(part + 1) * 2000]:
            engine.step(st, r)
            peaks["chains"] = max(peaks["chains"], len(st.chains))
            peaks["closing"] = max(peaks["closing"], len(st.closing))
        laps.append(time.perf_counter() - started)
    found = early + [f.uid for f in engine.flush(st)]
    assert len(found) == len(set(found)) == 14_000  # every access's chain: its finding once
    settings = engine.settings
    assert peaks["chains"] <= settings.max_pending_per_host
    assert peaks["closing"] <= E.MAX_CLOSING
    assert len(st.pids) <= E.MAX_PIDS
    assert len(st.emitted) <= E.MAX_EMITTED + len(st.chains)
    b = st.baseline
    assert max(len(b.users), len(b.tools), len(b.runs), len(b.parents)) <= B.MAX_KEYS
    assert engine.dropped.get("pids", 0) > 0 and engine.dropped.get("emitted", 0) > 0
    assert engine.dropped.get("baseline", 0) > 0
    assert st.evictions > 0
    # Flat: the last 2,000 lines (every table full) cost about what lines 2,000-4,000 cost (tables filling).
    # Before: each line scanned every pending chain (min() in _evict) and copied the full pid table.
    assert laps[-1] < 2.5 * laps[1], laps


def test_the_summary_counts_what_the_caps_dropped(tmp_path) -> None:
    from correlate_scenarios.helpers import correlate_proc

    path = tmp_path / "flood.log"
    path.write_text("\n".join(flood_lines(6_000)) + "\n")
    proc = correlate_proc(["--config", CONFIG, "--state", "none", str(path)])
    assert proc.returncode == 0, proc.stderr
    users = [json.loads(line)["actor"]["user"]["name"] for line in proc.stdout.splitlines()]
    assert len(users) == len(set(users)) == 6_000
    summary = proc.stderr.decode()
    assert "pending chains evicted" in summary
    assert "entries dropped at per-host caps (" in summary and "pids " in summary, summary


def test_the_eviction_heap_picks_what_min_picks() -> None:
    """The heap's victim is min() over (last activity, uid), also after chains moved on."""
    engine = Engine(load_config(CONFIG))
    st = HostState("h")
    for i in range(50):
        chain = E.Chain(uid=f"u{i:03d}", user=f"x{i}", start=1000 + i, last_access=1000 + (i * 37) % 50)
        engine._add_chain(st, chain)
    engine._evict(st)  # builds the heap
    for i in range(0, 50, 3):
        chain = st.chains.get(f"u{i:03d}")
        if chain is not None:
            chain.last_egress = 5000 + i  # moved on: its heap entry is stale
    while len(st.chains) > 1:
        want = min(st.chains.values(), key=lambda c: (max(c.last_access, c.last_dump, c.last_egress), c.uid))
        engine._evict(st)
        assert want.uid not in st.chains
        assert len(st.chains) == len(st.by_user or {})
