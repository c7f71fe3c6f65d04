"""Issue 12: the compact state (binary host rows, packed idle hosts, commits by time and bytes) and issue 12 item 4,
states written by earlier releases load and carry on: tests/data/state-0 (schema 2, JSON rows, made by main at
bb9776e) and tests/data/state-3 (schema 3, MessagePack maps, made by main at 40b6303)."""

from __future__ import annotations

import gc
import gzip
import json
import os
import shutil
import sqlite3
import sys

import pytest
from correlate_scenarios.helpers import correlate_proc

from osq_dbwatch.cli import DbwatchError
from osq_dbwatch.correlate import cli as correlate_cli
from osq_dbwatch.correlate.empty import EMPTY, EMPTY_LIST
from osq_dbwatch.correlate.engine import HostState
from osq_dbwatch.correlate.hoststate import encode_host
from osq_dbwatch.correlate.state import SCHEMA_VERSION, StateStore, decode_host

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tests", "data", "state-0")
# (directory, SQL dump, schema, how its host rows start): the states of earlier releases after part A.
OLD_STATES = {
    "schema-2": (DATA, "state-0.sql.gz", "2", b"{"),
    "schema-3": (os.path.join(REPO, "tests", "data", "state-3"), "state-3.sql.gz", "3", b"\x8f"),
}
CONFIG = os.path.join(REPO, "bench", "config.yml")
sys.path.insert(0, os.path.join(REPO, "bench"))
import gen_log

BATCH = {"OSQ_DBWATCH_BATCH_LINES": "250"}  # what tests/data/state-0/make.py used


def _unzip(name: str, to: str) -> str:
    with gzip.open(os.path.join(DATA, name), "rb") as handle:
        data = handle.read()
    with open(to, "wb") as out:
        out.write(data)
    return to


def _lines(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def _without_device_uid(line: bytes) -> object:
    finding = json.loads(line)
    finding["device"].pop("uid", None)
    return finding


def _old_state(path: str, which: str = "schema-2") -> None:
    directory, dump, _, _ = OLD_STATES[which]
    with gzip.open(os.path.join(directory, dump), "rt") as handle:
        script = handle.read()
    db = sqlite3.connect(path)
    db.executescript(script)
    db.close()
    os.chmod(path, 0o600)


@pytest.mark.parametrize("which", sorted(OLD_STATES))
def test_a_state_of_an_earlier_release_loads_and_carries_on_exactly(tmp_path, which: str) -> None:
    directory, _, schema, start = OLD_STATES[which]
    findings_a = os.path.join(directory, "findings-a.jsonl")
    a = _unzip("part-a.log.gz", str(tmp_path / "a.log"))
    b = _unzip("part-b.log.gz", str(tmp_path / "b.log"))
    # One uninterrupted run over both parts with today's code.
    whole = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "whole.sqlite"), "--output",
                            str(tmp_path / "whole.jsonl"), a, b], env=BATCH)
    assert whole.returncode == 0, whole.stderr
    # The old state (part A read by that release, whose findings are findings-a.jsonl), then part B.
    state = str(tmp_path / "old.sqlite")
    _old_state(state, which)
    db = sqlite3.connect(state)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == schema
    rows = db.execute("SELECT state FROM hosts").fetchall()
    assert rows and all(bytes(r[0]).startswith(start) for r in rows)  # rows as that release wrote them
    db.close()
    peek = str(tmp_path / "peek.sqlite")
    _old_state(peek, which)
    store = StateStore(peek)
    try:
        pending = sum(1 for st in store.hosts() if st.chains)
    finally:
        store.close()
    assert pending >= 3  # chains open across the restart: the carry-on is what is tested
    out = tmp_path / "carried.jsonl"
    shutil.copy(findings_a, out)
    os.chmod(out, 0o600)
    carried = correlate_proc(["--config", CONFIG, "--state", state, "--output", str(out), b], env=BATCH)
    assert carried.returncode == 0, carried.stderr
    assert b"emitted earlier" in carried.stderr
    expected = (tmp_path / "whole.jsonl").read_bytes()
    assert expected.count(b"\n") > 10
    # Part A's findings were written by that release, before findings carried the host's uuid (device.uid,
    # issue 14): they match today's without it. Part B's, written on the carried state, match byte for byte.
    carried_lines, expected_lines = out.read_bytes().splitlines(), expected.splitlines()
    written_before = len(carried_lines) - (len(expected_lines) - _lines(findings_a))
    assert written_before == _lines(findings_a)
    assert carried_lines[written_before:] == expected_lines[written_before:]
    if which == "schema-3":  # written with device.uid already: byte for byte
        assert carried_lines[:written_before] == expected_lines[:written_before]
    assert [_without_device_uid(x) for x in expected_lines[:written_before]] == \
        [_without_device_uid(x) for x in carried_lines[:written_before]]
    assert all(b'"device":{' in x and b'"uid":"' in x.split(b'"device":{', 1)[1][:200] for x in expected_lines)
    db = sqlite3.connect(state)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == SCHEMA_VERSION
    forms = {bytes(r[0])[:1] for r in db.execute("SELECT state FROM hosts")}
    assert b"\xdc" in forms  # hosts part B changed are written back as lists (MessagePack array16, schema 4)
    db.close()


def test_the_binary_form_round_trips_a_real_state_and_is_smaller(tmp_path) -> None:
    state = str(tmp_path / "old.sqlite")
    _old_state(state)
    store = StateStore(state)  # migrates schema 2: the pending column, from the JSON rows
    try:
        old = list(store.hosts())
        pending = store.db.execute("SELECT count(*) FROM hosts WHERE pending > 0").fetchone()[0]
    finally:
        store.close()
    assert len(old) == 12
    assert pending == sum(1 for st in old if st.chains) >= 3
    json_bytes = binary_bytes = 0
    db = sqlite3.connect(state)
    for st in old:
        blob = encode_host(st)
        assert not blob.startswith(b"{")
        again = decode_host(blob)
        assert again.to_json() == st.to_json()
        binary_bytes += len(blob)
        json_bytes += len(bytes(db.execute("SELECT state FROM hosts WHERE host = ?", (st.host,)).fetchone()[0]))
    db.close()
    assert binary_bytes < 0.85 * json_bytes, (binary_bytes, json_bytes)


def test_a_damaged_binary_row_is_one_clear_line(tmp_path) -> None:
    path = str(tmp_path / "s.sqlite")
    store = StateStore(path)
    store.put_host(HostState("h1"))
    store.commit()
    store.db.execute("UPDATE hosts SET state = X'DE00FF01' WHERE host = 'h1'")
    store.close()
    store = StateStore(path)
    try:
        with pytest.raises(DbwatchError, match="damaged state.*h1"):
            store.load_host("h1")
    finally:
        store.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("fleet") / "fleet.log")
    gen_log.generate(gen_log.Spec(lines=12_000, hosts=2_000, seed=5), path)
    return path


@pytest.fixture
def runners(monkeypatch: pytest.MonkeyPatch) -> list[correlate_cli.Runner]:
    """Every correlate Runner the test's runs make, kept for a look at its host states afterwards."""
    made: list[correlate_cli.Runner] = []
    init = correlate_cli.Runner.__init__

    def kept(self: correlate_cli.Runner, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(correlate_cli.Runner, "__init__", kept)
    return made


def test_idle_hosts_are_packed_and_spilled_and_the_findings_stay_the_same(fleet: str, tmp_path, monkeypatch,
                                                                            runners: list[correlate_cli.Runner]) -> None:
    """More hosts than both the live and the packed budget: packed hosts are written to the open transaction and
    read back, and the findings equal an unbounded run's; only changed hosts are written at a commit."""
    from osq_dbwatch import cli

    whole = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "w.sqlite"), "--output",
                            str(tmp_path / "w.jsonl"), fleet])
    assert whole.returncode == 0, whole.stderr
    monkeypatch.setenv("OSQ_DBWATCH_RESIDENT_HOSTS", "100")  # 300 KiB for live and packed hosts
    monkeypatch.setenv("OSQ_DBWATCH_BATCH_LINES", "3000")
    assert cli.main(["correlate", "--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), "--output",
                     str(tmp_path / "s.jsonl"), fleet]) == 0
    runner = runners[0]
    assert runner.hosts.spilled > 100
    hosts = runner.hosts
    assert len(hosts.cache) * correlate_cli.HOST_BYTES + hosts.packed_bytes <= hosts.budget_bytes
    assert 25 <= len(hosts.cache) <= 100
    assert (tmp_path / "s.jsonl").read_bytes() == (tmp_path / "w.jsonl").read_bytes()
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("SELECT count(*) FROM hosts").fetchone()[0] == 2_000
    assert db.execute("SELECT count(*) FROM hosts WHERE watermark = 0").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM hosts WHERE typeof(state) != 'blob'").fetchone()[0] == 0
    db.close()
    store = StateStore(str(tmp_path / "s.sqlite"))
    try:
        states = list(store.hosts())  # every row decodes (hosts() leaves out the ones that do not)
    finally:
        store.close()
    assert len(states) == 2_000
    assert sum(1 for st in states if st.chains) == sqlite3.connect(tmp_path / "s.sqlite").execute(
        "SELECT count(*) FROM hosts WHERE pending > 0").fetchone()[0]


def test_a_commit_writes_only_the_hosts_changed_since_the_last(tmp_path, monkeypatch) -> None:
    from correlate_scenarios.make_scenarios import MON, D, H, Log

    log = Log()
    for i in range(50):
        log.db_exec(f"c-{i}", MON + D + 10 * H + i, "nagios", 997, "psql -c 'select 1'", "/usr/bin/psql", 100 + i,
                    "/usr/sbin/nrpe", "/usr/sbin/nrpe -d")
    path = tmp_path / "a.log"
    path.write_text("\n".join(log.lines) + "\n")
    written: list[str] = []
    put, put_many = StateStore.put_packed, StateStore.put_many

    def counted(self: StateStore, host: str, *args) -> None:  # type: ignore[no-untyped-def]
        written.append(host)
        put(self, host, *args)

    def counted_many(self: StateStore, rows) -> None:  # type: ignore[no-untyped-def]
        rows = list(rows)
        written.extend(row[0] for row in rows)
        put_many(self, iter(rows))

    monkeypatch.setattr(StateStore, "put_packed", counted)
    monkeypatch.setattr(StateStore, "put_many", counted_many)
    from osq_dbwatch import cli

    args = ["correlate", "--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), "--output", str(tmp_path / "o"), str(path)]
    assert cli.main(args) == 0
    assert sorted(written) == sorted(f"c-{i}" for i in range(50))
    written.clear()
    log.lines.clear()
    log.db_exec("c-7", MON + D + 11 * H, "nagios", 997, "psql -c 'select 1'", "/usr/bin/psql", 900, "/usr/sbin/nrpe",
                "/usr/sbin/nrpe -d")
    with open(path, "a") as handle:
        handle.write(log.lines[0] + "\n")
    assert cli.main(args) == 0
    assert written == ["c-7"]


def test_the_commit_cadence_is_time_and_bytes_not_batches(tmp_path, monkeypatch) -> None:
    """Many small batches within COMMIT_SECONDS give one commit at the end (and the findings of every batch)."""
    from test_correlate_cli import _accesses

    from osq_dbwatch import cli

    path = tmp_path / "a.log"
    path.write_text("\n".join(_accesses(400)) + "\n")
    commits = 0
    commit = StateStore.commit

    def counted(self: StateStore) -> None:
        nonlocal commits
        if self._in_tx:
            commits += 1
        commit(self)

    monkeypatch.setattr(StateStore, "commit", counted)
    monkeypatch.setenv("OSQ_DBWATCH_BATCH_LINES", "10")
    monkeypatch.setenv("OSQ_DBWATCH_COMMIT_SECONDS", "600")
    assert cli.main(["correlate", "--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), "--output",
                     str(tmp_path / "o"), str(path)]) == 0
    assert (tmp_path / "o").read_text().count("\n") == 400
    assert commits <= 2  # the output's first size at open, and the end of the input
    monkeypatch.setenv("OSQ_DBWATCH_COMMIT_SECONDS", "0")
    commits = 0
    assert cli.main(["correlate", "--config", CONFIG, "--state", str(tmp_path / "t.sqlite"), "--output",
                     str(tmp_path / "p"), str(path)]) == 0
    assert commits >= 40


def test_sigkill_at_100000_hosts_with_commits_by_time_then_restart_equals_one_run(tmp_path) -> None:
    """Issue 12's "done when": 100,000 hosts, more than the live and the packed budget (hosts are packed, spilled
    and read back), commits by time so that kills land between batches that were written but not committed;
    every restart cuts the output back and the end result equals one uninterrupted run."""
    from test_scale_hosts import fleet_with_odd_accesses, sigkill_runs

    log = fleet_with_odd_accesses(str(tmp_path), lines=200_000, hosts=100_000, seed=3, odd=200, every=1000)
    env = {"OSQ_DBWATCH_RESIDENT_HOSTS": "20000", "OSQ_DBWATCH_BATCH_LINES": "10000",
           "OSQ_DBWATCH_COMMIT_SECONDS": "0.5"}
    whole = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "w.sqlite"), "--output",
                            str(tmp_path / "w.jsonl"), log], env=env, timeout=600)
    assert whole.returncode == 0, whole.stderr
    state, out = tmp_path / "k.sqlite", tmp_path / "k.jsonl"
    args = [sys.executable, "-m", "osq_dbwatch", "correlate", "--config", CONFIG, "--state", str(state), "--output",
            str(out), log]
    offsets, final = sigkill_runs(args, env, str(state), kills=3, seed=5, wait=300, poll=0.05, later=(0.2, 1.5))
    assert final.returncode == 0, final.stderr
    assert len(set(offsets)) == len(offsets), offsets
    expected = (tmp_path / "w.jsonl").read_bytes()
    assert expected.count(b"\n") >= 200
    assert out.read_bytes() == expected
    db = sqlite3.connect(state)
    assert db.execute("SELECT count(*) FROM hosts").fetchone()[0] == 100_200
    db.close()


def _deep_bytes(roots: list[object], shared: set[int]) -> int:
    """sys.getsizeof over everything reachable from `roots`, each object once, leaving out `shared` ones."""
    seen = set(shared)
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, type):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if not isinstance(obj, (str, bytes, int, float, bool)):
            stack.extend(gc.get_referents(obj))
    return total


def test_idle_hosts_share_their_empty_tables_and_admin_groups(fleet: str, tmp_path, runners: list[correlate_cli.Runner]) -> None:
    """Issue 12: a host with nothing pending costs little more than what it remembers. Empty tables are the one
    shared empty.EMPTY (or EMPTY_LIST), hosts with the same admins share one read-only copy of their groups, and
    the shared tables are still empty after the run (every write went to a table of the host's own)."""
    from osq_dbwatch import cli

    assert cli.main(["correlate", "--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), "--output",
                     str(tmp_path / "s.jsonl"), fleet]) == 0
    states = [st for st in runners[0].hosts.cache.values() if not st.chains]
    assert len(states) > 1_500
    assert not EMPTY and not EMPTY_LIST
    assert sum(1 for st in states if st.history is EMPTY and st.emitted is EMPTY and st.closing is EMPTY) == len(states)
    assert sum(1 for st in states if st.baseline.pending is EMPTY) == len(states)
    groups = {id(st.admin_groups) for st in states if st.admin_groups}
    assert 0 < len(groups) <= 8  # a few distinct admin sets in the generated fleet, one copy each
    per_host = _deep_bytes(states, {id(EMPTY), id(EMPTY_LIST)} | groups) / len(states)
    assert per_host < 2_300, per_host  # 1,890 here; main at 40b6303: 3,000 (12 dicts and 2 lists of its own per host)
    with pytest.raises(TypeError, match="shared read-only"):
        states[0].history["x"] = 1
    store = StateStore(str(tmp_path / "s.sqlite"))
    try:
        loaded = store.load_host(states[0].host)
    finally:
        store.close()
    assert loaded is not None and loaded.history is EMPTY and loaded.to_json() == states[0].to_json()
