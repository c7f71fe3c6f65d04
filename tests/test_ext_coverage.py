"""dbwatch_coverage against a core that answers and one that refuses, and a bad config."""

from __future__ import annotations

import sys
from pathlib import Path

from core_standin import CoreStandin

from osq_dbwatch.tables import TABLES
from osq_dbwatch.tables.dbwatch_coverage import kernel_audit_status
from osq_dbwatch.tables.env import ConfigHolder, TableEnv

GOOD_FLAGS = {
    "disable_audit": "false", "audit_allow_config": "true", "audit_persist": "true",
    "audit_allow_sockets": "true", "enable_file_events": "true", "disable_events": "false",
}
GOOD_EVENTS = [
    {"name": "process_events", "publisher": "auditeventpublisher", "active": 1, "events": 120},
    {"name": "socket_events", "publisher": "auditeventpublisher", "active": 1, "events": 30},
    {"name": "file_events", "publisher": "inotify", "subscriptions": 2, "active": 1, "events": 4},
]
CHECKS = ["audit_process_events", "audit_socket_events", "file_events_dump_roots", "competing_auditd",
          "db_clients_without_telemetry", "config_readable"]


def _coverage(core: CoreStandin) -> dict[str, dict[str, str]]:
    rows = core.generate("dbwatch_coverage")
    assert [r["check_name"] for r in rows] == CHECKS
    assert all(r["status"] in ("ok", "degraded", "blind") and r["detail"] for r in rows)
    return {r["check_name"]: r for r in rows}


def _env(tmp_path: Path, config: str | None = None) -> dict[str, str]:
    env = {"OSQ_DBWATCH_PYTHON": sys.executable}
    path = tmp_path / "config.yml"
    path.write_text(config if config is not None else f"dump_roots: [{tmp_path}]\n")
    env["OSQ_DBWATCH_CONFIG"] = str(path)
    return env


def test_core_allows_the_query_and_telemetry_is_on(tmp_path: Path) -> None:
    with CoreStandin(env=_env(tmp_path), flags=GOOD_FLAGS, events=GOOD_EVENTS) as core:
        rows = _coverage(core)
        assert any("osquery_flags" in q for q in core.queries)
        assert any("osquery_events" in q for q in core.queries)
    for check in ("audit_process_events", "audit_socket_events", "file_events_dump_roots"):
        assert rows[check]["source"] == "core"
    assert rows["audit_process_events"]["status"] == "ok"
    assert rows["audit_socket_events"]["status"] == "ok"
    assert rows["file_events_dump_roots"]["status"] == "ok"
    assert rows["config_readable"]["status"] == "ok"
    assert rows["db_clients_without_telemetry"]["status"] == "ok"  # process telemetry covers them


def test_core_answers_but_audit_is_off(tmp_path: Path) -> None:
    flags = {"disable_audit": "true", "audit_allow_config": "false", "enable_file_events": "false"}
    with CoreStandin(env=_env(tmp_path), flags=flags, events=[]) as core:
        rows = _coverage(core)
    assert rows["audit_process_events"]["status"] == "blind"
    assert "--disable_audit=false" in rows["audit_process_events"]["detail"]
    assert rows["audit_socket_events"]["status"] == "blind"
    assert rows["file_events_dump_roots"]["status"] == "blind"
    # psql, mysql, ... are installed on this machine (and in CI)
    assert rows["db_clients_without_telemetry"]["status"] == "blind"
    assert "psql" in rows["db_clients_without_telemetry"]["detail"]


def test_bpf_only_is_degraded(tmp_path: Path) -> None:
    flags = {"disable_audit": "true", "enable_bpf_events": "true"}
    events = [{"name": "bpf_process_events", "active": 1}, {"name": "bpf_socket_events", "active": 1}]
    with CoreStandin(env=_env(tmp_path), flags=flags, events=events) as core:
        rows = _coverage(core)
    assert rows["audit_process_events"]["status"] == "degraded"
    assert rows["audit_socket_events"]["status"] == "degraded"


def test_core_refuses_the_query_and_the_host_view_is_used(tmp_path: Path) -> None:
    with CoreStandin(env=_env(tmp_path), flags=GOOD_FLAGS, events=GOOD_EVENTS, refuse_queries=True) as core:
        rows = _coverage(core)
        assert core.queries, "the extension asked core"
    for check in ("audit_process_events", "audit_socket_events", "file_events_dump_roots"):
        assert rows[check]["source"] == "host"
        assert "refused" in rows[check]["detail"]
        assert rows[check]["status"] in ("degraded", "blind")
    expected = "degraded" if kernel_audit_status() is not None else "blind"
    assert rows["audit_process_events"]["status"] == expected


def test_bad_config_keeps_the_extension_serving_and_is_reported(tmp_path: Path) -> None:
    env = _env(tmp_path, "admins:\n  users: [alice]\nno_such_key: 1\n")
    with CoreStandin(env=env) as core:
        rows = _coverage(core)
        assert core.generate("db_cli_sessions") is not None
        stderr = [line for line in core.stderr_text().splitlines() if line.strip()]
    config = rows["config_readable"]
    assert config["status"] == "blind"
    assert "no_such_key" in config["detail"] and "line 3" in config["detail"]
    assert len(stderr) == 1 and "no_such_key" in stderr[0]


def test_missing_config_file_is_degraded(tmp_path: Path) -> None:
    env = {"OSQ_DBWATCH_PYTHON": sys.executable, "OSQ_DBWATCH_CONFIG": str(tmp_path / "absent.yml")}
    with CoreStandin(env=env) as core:
        rows = _coverage(core)
    assert rows["config_readable"]["status"] == "blind"
    assert "absent.yml" in rows["config_readable"]["detail"]


def test_config_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("bad: [\n")
    holder = ConfigHolder(str(path), log=lambda line: None)
    table = TABLES["dbwatch_coverage"](TableEnv(holder))
    assert {r["check_name"]: r for r in table.rows()}["config_readable"]["status"] == "blind"
    path.write_text("admins:\n  users: [alice]\n")
    assert {r["check_name"]: r for r in table.rows()}["config_readable"]["status"] == "ok"
    assert holder.get().config.admin_users == ("alice",)


def test_without_osquery_the_rows_say_so(tmp_path: Path) -> None:
    table = TABLES["dbwatch_coverage"](TableEnv(ConfigHolder(None)))
    rows = {r["check_name"]: r for r in table.rows()}
    assert "not running under osquery" in rows["audit_process_events"]["detail"]
