"""The benchmark's log generator: deterministic, and its lines are what the pack logs.

Fast (a few thousand lines); the benchmark itself is never part of the suite.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))

import gen_log  # noqa: E402

# Contract section 1: the pack's queries (native and extension-backed).
CONTRACT_QUERIES = (
    "db_cli_exec", "transfer_exec", "dump_file_events", "db_egress", "admin_accounts",
    "db_cli_sessions", "dump_like_files", "db_client_history", "dbwatch_coverage",
)
NATIVE_COLUMNS = {
    "db_cli_exec": {"time", "pid", "parent", "path", "cmdline", "cwd", "uid", "euid", "auid",
                    "username", "login_user", "parent_path", "parent_cmdline"},
    "dump_file_events": {"time", "target_path", "action", "inode", "uid", "size", "sha256", "owner"},
    "db_egress": {"time", "pid", "path", "auid", "family", "remote_address", "remote_port", "success", "login_user"},
}
NATIVE_COLUMNS["transfer_exec"] = NATIVE_COLUMNS["db_cli_exec"]
SPEC = gen_log.Spec(lines=4000, hosts=30, seed=11, insider=6, webshell=2, access_only=3)


def recognised(name: str) -> str | None:
    """Contract section 1: the last `/` segment of the name ends in a query name."""
    last = name.rsplit("/", 1)[-1]
    matches = [q for q in CONTRACT_QUERIES if last == q or last.endswith("_" + q)]
    return max(matches, key=len) if matches else None


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict]:
    path = str(tmp_path_factory.mktemp("gen") / "fleet.log")
    meta = gen_log.generate(SPEC, path)
    with open(path, "rb") as handle:
        return handle.read(), meta


def test_same_spec_same_bytes(generated: tuple[bytes, dict], tmp_path) -> None:
    data, meta = generated
    again = tmp_path / "again.log"
    meta2 = gen_log.generate(SPEC, str(again))
    assert again.read_bytes() == data
    assert meta2["injected"] == meta["injected"]
    other = tmp_path / "other.log"
    gen_log.generate(gen_log.Spec(lines=4000, hosts=30, seed=12, insider=6, webshell=2, access_only=3), str(other))
    assert other.read_bytes() != data


def test_lines_parse_and_are_pack_results(generated: tuple[bytes, dict]) -> None:
    data, meta = generated
    lines = data.split(b"\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    assert len(lines) == SPEC.lines == meta["lines"]
    seen_queries: set[str] = set()
    hosts: set[str] = set()
    last_unix = 0
    for line in lines:
        doc = json.loads(line)
        assert doc["name"].startswith("pack_dbwatch_")
        query = recognised(doc["name"])
        assert query is not None, doc["name"]
        seen_queries.add(query)
        hosts.add(doc["hostIdentifier"])
        assert doc["decorations"]["hostname"] == doc["hostIdentifier"]
        assert doc["unixTime"] >= last_unix  # one log, written in query-run order
        last_unix = doc["unixTime"]
        if query == "admin_accounts":
            assert doc["action"] == "snapshot" and doc["snapshot"]
            continue
        assert doc["action"] == "added"
        columns = doc["columns"]
        assert set(columns) == NATIVE_COLUMNS[query]
        assert int(columns["time"]) <= doc["unixTime"]
        if not doc["numerics"]:
            assert all(isinstance(v, str) for v in columns.values())
    assert seen_queries == {"db_cli_exec", "transfer_exec", "dump_file_events", "db_egress", "admin_accounts"}
    assert len(hosts) == SPEC.hosts


def test_injected_chains_are_complete_and_present(generated: tuple[bytes, dict]) -> None:
    data, meta = generated
    assert meta["incomplete"] == 0
    assert meta["injected"] == {"insider": 6, "webshell_egress": 1, "webshell": 1, "access_only": 3}
    rows = [json.loads(line) for line in data.splitlines()]
    for chain in meta["chains"]:
        if chain["kind"] != "insider":
            continue
        start = chain["time"]
        mine = [r for r in rows if r["hostIdentifier"] == chain["host"] and "columns" in r
                and chain["user"] in (r["columns"].get("login_user"), r["columns"].get("owner"))
                and start <= int(r["columns"]["time"]) <= start + 30 * 60]
        def first(query: str, after: int, extra=lambda c: True) -> int:
            times = [int(r["columns"]["time"]) for r in mine
                     if recognised(r["name"]) == query and int(r["columns"]["time"]) >= after and extra(r["columns"])]
            assert times, (chain, query)
            return min(times)

        # access, then a dump-like file, then a connect outside the internal networks, within 30 minutes
        access = first("db_cli_exec", start)
        assert access == start
        dump = first("dump_file_events", access, lambda c: c["target_path"].endswith((".csv", ".sql", ".sql.gz")))
        first("db_egress", dump, lambda c: not c["remote_address"].startswith(("10.", "192.168.", "127.", "::1")))
