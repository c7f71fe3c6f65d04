"""The Fleet GitOps bundle (packs/fleet/): documented keys only, labels defined
before use, every query valid SQL over osquery's Linux schema."""

from __future__ import annotations

import os

import pytest
import yaml

from osq_dbwatch.config import Config
from osq_dbwatch.pack import render
from osq_dbwatch.tables import TABLES
from osquery_sqlite import OsqueryDB

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLEET_DIR = os.path.join(REPO, "packs", "fleet")

# Keys Fleet documents, written down here so a typo or an invented key fails.
# Reports (formerly queries): https://fleetdm.com/docs/configuration/yaml-files#reports
# and the "Create report" parameters of https://fleetdm.com/docs/rest-api/rest-api
# (name, description, query, interval, platform, min_osquery_version,
# automations_enabled, logging, discard_data, observer_can_run), plus the label
# scoping keys GitOps accepts on reports (labels_include_any, labels_include_all).
REPORT_KEYS = frozenset({
    "name", "description", "query", "interval", "platform", "min_osquery_version", "automations_enabled",
    "logging", "discard_data", "observer_can_run", "labels_include_any", "labels_include_all",
})
REPORT_LOGGING = frozenset({"snapshot", "differential", "differential_ignore_removals"})
# Policies: https://fleetdm.com/docs/configuration/yaml-files#policies (and "Add policy" API parameters).
POLICY_KEYS = frozenset({
    "name", "description", "resolution", "query", "platform", "critical", "calendar_events_enabled",
    "run_script", "install_software", "labels_include_any", "labels_exclude_any",
})
# Labels: https://fleetdm.com/docs/configuration/yaml-files#labels
LABEL_KEYS = frozenset({"name", "description", "query", "platform", "label_membership_type", "hosts", "criteria"})
# Agent options: https://fleetdm.com/docs/configuration/agent-configuration
AGENT_OPTION_KEYS = frozenset({"config", "overrides", "command_line_flags", "extensions", "update_channels", "script_execution_timeout"})
AGENT_CONFIG_KEYS = frozenset({"options", "decorators", "file_paths", "file_accesses", "exclude_paths", "yara", "packs", "schedule", "auto_table_construction", "views", "events"})
# Top-level keys of default.yml / fleets/<fleet>.yml that may hold `- path:` entries.
TOP_KEYS = frozenset({"labels", "reports", "policies", "agent_options", "controls", "software", "org_settings", "settings", "name"})
PLATFORMS = frozenset({"darwin", "windows", "linux", "chrome", ""})


def _load(relative: str):
    with open(os.path.join(FLEET_DIR, relative), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_bundle_files_exist_and_parse():
    for relative in render.render_fleet(Config()):
        assert _load(relative) is not None, relative


def test_reports_use_documented_keys_and_values():
    reports = _load("lib/dbwatch.reports.yml")
    names = [r["name"] for r in reports]
    assert len(names) == len(set(names))
    for report in reports:
        assert set(report) <= REPORT_KEYS, set(report) - REPORT_KEYS
        assert {"name", "query", "interval", "platform", "logging", "automations_enabled"} <= set(report)
        assert report["logging"] in REPORT_LOGGING
        assert report["platform"] == "linux"
        assert report["automations_enabled"] is True
        assert 1 <= report["interval"] <= 604800
        # Fleet logs pack/<team>/<name>; the correlator matches names ending in a query name.
        assert report["name"].startswith("dbwatch_")
        assert any(report["name"].endswith(q) for q in render.QUERY_NAMES)


def test_event_reports_ignore_removals_and_snapshots_are_snapshots():
    by_name = {r["name"]: r for r in _load("lib/dbwatch.reports.yml")}
    for name in ("db_cli_exec", "transfer_exec", "dump_file_events", "db_egress"):
        assert by_name[f"dbwatch_{name}"]["logging"] == "differential_ignore_removals"
    for name in ("db_cli_exec", "transfer_exec", "db_egress"):
        assert by_name[f"dbwatch_bpf_{name}"]["logging"] == "differential_ignore_removals"
    for name in ("admin_accounts", "dbwatch_coverage"):
        assert by_name[f"dbwatch_{name}"]["logging"] == "snapshot"
        assert by_name[f"dbwatch_{name}"]["interval"] == 3600
    assert {f"dbwatch_{q}" for q in render.QUERY_NAMES} <= set(by_name)


def test_labels_policies_and_agent_options_use_documented_keys():
    labels = _load("lib/dbwatch.labels.yml")
    for label in labels:
        assert set(label) <= LABEL_KEYS
        assert label["label_membership_type"] == "dynamic" and label["query"] and label["platform"] in PLATFORMS
    policies = _load("lib/dbwatch.policies.yml")
    for policy in policies:
        assert set(policy) <= POLICY_KEYS
        assert {"name", "query", "platform", "description", "resolution"} <= set(policy)
    options = _load("lib/dbwatch.agent-options.yml")
    assert set(options) <= AGENT_OPTION_KEYS
    assert set(options["config"]) <= AGENT_CONFIG_KEYS
    example = _load("default.example.yml")
    assert set(example) <= TOP_KEYS
    for key, entries in example.items():
        for entry in entries:
            assert os.path.exists(os.path.join(FLEET_DIR, entry["path"])), entry


def test_every_referenced_label_is_defined():
    defined = {label["name"] for label in _load("lib/dbwatch.labels.yml")}
    for item in _load("lib/dbwatch.reports.yml") + _load("lib/dbwatch.policies.yml"):
        for key in ("labels_include_any", "labels_include_all", "labels_exclude_any"):
            assert set(item.get(key, [])) <= defined, item["name"]


@pytest.fixture()
def db():
    database = OsqueryDB()
    yield database
    database.close()


def _label(name: str) -> str:
    return next(label["query"] for label in _load("lib/dbwatch.labels.yml") if label["name"] == name)


def _policy(prefix: str) -> str:
    return next(p["query"] for p in _load("lib/dbwatch.policies.yml") if p["name"].startswith(prefix))


def test_all_bundle_queries_run_over_the_schema(db):
    for relative in ("lib/dbwatch.reports.yml", "lib/dbwatch.labels.yml", "lib/dbwatch.policies.yml"):
        for item in _load(relative):
            db.query(item["query"])


def test_db_hosts_label(db):
    query = _label(render.LABEL_DB_HOSTS)
    assert db.query(query) == []
    db.insert("deb_packages", [{"name": "libpq5", "status": "install ok installed"},
                               {"name": "mariadb-common", "status": "install ok installed"}])
    assert db.query(query) == []
    db.insert("deb_packages", [{"name": "postgresql-client-15", "status": "deinstall ok config-files"}])
    assert db.query(query) == []
    db.insert("deb_packages", [{"name": "postgresql-client-15", "status": "install ok installed"}])
    assert len(db.query(query)) == 1
    db.conn.execute("DELETE FROM deb_packages")
    db.insert("processes", [{"pid": 42, "name": "clickhouse-serv"}, {"pid": 43, "name": "nginx"}])
    db.insert("listening_ports", [{"pid": 43, "port": 80}])
    assert db.query(query) == []
    db.insert("listening_ports", [{"pid": 42, "port": 9000}])
    assert len(db.query(query)) == 1
    audit, bpf = _label(render.LABEL_AUDIT), _label(render.LABEL_BPF)
    assert len(db.query(audit)) == 1 and db.query(bpf) == []
    db.insert("osquery_flags", [{"name": "enable_bpf_events", "value": "true"}])
    assert db.query(audit) == [] and len(db.query(bpf)) == 1


def test_coverage_policy_fails_on_a_blind_spot(db):
    query = _policy("dbwatch - no blind spot")
    db.insert("dbwatch_coverage", [{"check_name": "audit_process_events", "status": "ok"},
                                   {"check_name": "file_events_dump_roots", "status": "degraded"}])
    assert len(db.query(query)) == 1  # passes
    db.insert("dbwatch_coverage", [{"check_name": "audit_socket_events", "status": "blind"}])
    assert db.query(query) == []  # fails


def test_native_coverage_policies(db):
    events, files = _policy("dbwatch - process and socket"), _policy("dbwatch - file events")
    registered = _policy("dbwatch - extension registered")
    assert db.query(events) == [] and db.query(files) == [] and db.query(registered) == []
    db.insert("osquery_flags", [{"name": "disable_audit", "value": "false"}, {"name": "audit_allow_config", "value": "true"},
                                {"name": "audit_allow_sockets", "value": "true"}, {"name": "enable_file_events", "value": "true"}])
    db.insert("osquery_registry", [{"registry": "table", "name": n} for n in TABLES])
    assert db.query(events) and db.query(files) and db.query(registered)


# -- Fleet Free (packs/fleet-free/, `pack render --format fleet --tier free`) ----

FREE_DIR = os.path.join(REPO, "packs", "fleet-free")
PREMIUM_ONLY_KEYS = {"labels_include_any", "labels_include_all", "labels_exclude_any", "critical"}


def _free(relative: str):
    with open(os.path.join(FREE_DIR, relative), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_free_tier_uses_no_premium_feature():
    files = render.render_fleet(Config(), "free")
    assert "lib/dbwatch.labels.yml" not in files
    for relative in files:
        data = _free(relative)
        assert data is not None, relative
        for item in data if isinstance(data, list) else []:
            assert not set(item) & PREMIUM_ONLY_KEYS, (relative, item["name"])
    assert "labels" not in _free("default.example.yml")
    for relative in ("lib/dbwatch.reports.yml", "lib/dbwatch.extension.reports.yml"):
        for report in _free(relative):
            assert set(report) <= REPORT_KEYS
    for relative in ("lib/dbwatch.policies.yml", "lib/dbwatch.extension.policies.yml"):
        for policy in _free(relative):
            assert set(policy) <= POLICY_KEYS


def test_free_tier_has_every_report_and_policy_of_premium():
    premium = {r["name"] for r in _load("lib/dbwatch.reports.yml")}
    free = [r["name"] for r in _free("lib/dbwatch.reports.yml") + _free("lib/dbwatch.extension.reports.yml")]
    assert sorted(free) == sorted(premium)
    extension = {r["name"] for r in _free("lib/dbwatch.extension.reports.yml")}
    assert extension == {f"dbwatch_{t}" for t in TABLES}
    policies = [p["name"] for p in _free("lib/dbwatch.policies.yml") + _free("lib/dbwatch.extension.policies.yml")]
    assert sorted(policies) == sorted(p["name"] for p in _load("lib/dbwatch.policies.yml"))
    assert _free("lib/dbwatch.agent-options.yml") == _load("lib/dbwatch.agent-options.yml")


def _report(name: str) -> str:
    return next(r["query"] for r in _free("lib/dbwatch.reports.yml") if r["name"] == name)


def _exec_row(path: str, cmdline: str) -> dict:
    return {"time": 1793671835, "pid": 4242, "parent": 1, "path": path, "cmdline": cmdline, "cwd": "/", "uid": 1004,
            "euid": 1004, "auid": 1004}


def test_free_tier_reports_guard_themselves(db):
    """What the Premium labels decide, the free reports decide in SQL: nothing
    on a host that is no database host, only the audit or the BPF path."""
    for item in _free("lib/dbwatch.reports.yml") + _free("lib/dbwatch.policies.yml"):
        db.query(item["query"])  # valid over osquery's schema
    audit, bpf = _report("dbwatch_db_cli_exec"), _report("dbwatch_bpf_db_cli_exec")
    admins = _report("dbwatch_admin_accounts")
    db.insert("process_events", [_exec_row("/usr/bin/psql", "psql -d crm")])
    bpf_row = {k: v for k, v in _exec_row("/usr/bin/psql", "psql -d crm").items() if k not in ("auid", "euid")}
    db.insert("bpf_process_events", [bpf_row])
    assert db.query(audit) == [] and db.query(bpf) == []  # not a database host
    db.insert("deb_packages", [{"name": "postgresql-client-15", "status": "install ok installed"}])
    rows = db.query(audit)
    assert [r["cmdline"] for r in rows] == ["psql -d crm"] and db.query(bpf) == []
    premium = next(r["query"] for r in _load("lib/dbwatch.reports.yml") if r["name"] == "dbwatch_db_cli_exec")
    assert db.query(premium) == rows  # same columns, same rows
    db.insert("osquery_flags", [{"name": "enable_bpf_events", "value": "true"}])
    assert db.query(audit) == [] and len(db.query(bpf)) == 1
    db.insert("groups", [{"gid": 50, "groupname": "dba"}])
    assert db.query(admins) == []  # the default config names no admin group


def test_free_tier_policies_pass_off_database_hosts(db):
    by_name = {p["name"]: p["query"] for p in _free("lib/dbwatch.policies.yml")}
    for query in by_name.values():
        assert db.query(query), "passes on a host that is no database host"
    db.insert("deb_packages", [{"name": "mariadb-server", "status": "install ok installed"}])
    for query in by_name.values():
        assert db.query(query) == [], "fails on a database host without the telemetry"
    db.insert("osquery_flags", [{"name": "disable_audit", "value": "false"}, {"name": "audit_allow_config", "value": "true"},
                                {"name": "audit_allow_sockets", "value": "true"}, {"name": "enable_file_events", "value": "true"}])
    db.insert("osquery_registry", [{"registry": "table", "name": n} for n in TABLES])
    for query in by_name.values():
        assert db.query(query)
