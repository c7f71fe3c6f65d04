"""Findings checked against the OCSF schema, offline.

Two checks, because neither alone is enough:

- The OCSF 1.5.0 schema itself: ocsf-json-schema (test extra) ships the OCSF
  server's own export of every released schema (`/export/schema`, 1.5.0
  included) and turns a class into a JSON Schema (draft 2020-12) with
  `additionalProperties: false` on every object, types and enums; jsonschema
  validates each finding against the Detection Finding class with the `host`
  profile we declare. This catches the field paths py-ocsf-models ignores
  (device, actor, the evidences' process/file/dst_endpoint).
- py-ocsf-models (Prowler's pydantic models of OCSF 1.5), for the class
  invariants a JSON Schema cannot state (type_uid = class_uid*100 + activity).

ocsf-lib (installed) only fetches schemas from the OCSF server, so it cannot
check a finding without the network.
"""

from __future__ import annotations

import glob
import json
import os

import pytest
from conftest import SHARED
from correlate_scenarios.helpers import HERE as OWN, correlate
from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema
from py_ocsf_models import OCSF_VERSION
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from pydantic import ValidationError

from osq_dbwatch.correlate import findings as F


def _all_findings(tmp_path) -> list[dict]:
    out: list[dict] = []
    for directory in (os.path.join(SHARED, "scenarios"), OWN):
        for spec_path in sorted(glob.glob(os.path.join(directory, "*.json"))):
            with open(spec_path) as handle:
                spec = json.load(handle)
            name = spec["name"]
            out.extend(correlate(["--config", os.path.join(directory, spec["config"]), os.path.join(directory, spec["log"])],
                                 str(tmp_path / f"{name}.sqlite"), str(tmp_path / f"{name}.jsonl")))
    return out


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> list[dict]:
    found = _all_findings(tmp_path_factory.mktemp("ocsf"))
    assert len(found) > 15
    return found


def test_we_claim_the_schema_version_the_models_implement() -> None:
    assert F.OCSF_VERSION == OCSF_VERSION


@pytest.fixture(scope="module")
def schema() -> Draft202012Validator:
    """The Detection Finding class of the OCSF schema our findings claim, with their profiles."""
    ocsf = get_ocsf_schema(version=F.OCSF_VERSION)
    assert ocsf["version"] == F.OCSF_VERSION
    generator = OcsfJsonSchemaEmbedded(ocsf)
    name = generator.lookup_class_name_from_uid(class_uid=2004)
    assert name == "detection_finding"
    json_schema = generator.get_class_schema(class_name=name, profiles=["host"])
    Draft202012Validator.check_schema(json_schema)
    return Draft202012Validator(json_schema)


def _errors(validator: Draft202012Validator, finding: dict) -> list[str]:
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
                  for e in validator.iter_errors(finding))


def test_every_finding_validates_against_the_ocsf_schema_itself(findings: list[dict],
                                                                  schema: Draft202012Validator) -> None:
    for finding in findings:
        assert finding["metadata"]["profiles"] == ["host"]
        assert _errors(schema, finding) == [], finding["finding_info"]["uid"]


def _with(finding: dict, path: str, value: object) -> dict:
    """A deep copy of `finding` with `value` set at a dotted path (list indexes as numbers)."""
    out = json.loads(json.dumps(finding))
    node = out
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return out


def test_the_schema_check_sees_what_the_models_ignore(findings: list[dict], schema: Draft202012Validator) -> None:
    """Each of these passes py-ocsf-models and must fail the schema check."""
    full = next(f for f in findings if {"access", "dump", "egress"} <= set(f["unmapped"]["stages"]))
    process_at = next(i for i, e in enumerate(full["evidences"]) if "process" in e)
    file_at = next(i for i, e in enumerate(full["evidences"]) if "file" in e)
    dst_at = next(i for i, e in enumerate(full["evidences"]) if "dst_endpoint" in e)
    broken = [
        _with(full, "device.host_name", "typo"),
        _with(full, "actor.user.login", "not an OCSF attribute"),
        _with(full, f"evidences.{process_at}.process.pid", "123"),
        _with(full, f"evidences.{process_at}.process.cmdline", "osquery's name, not OCSF's"),
        _with(full, f"evidences.{file_at}.file.type_id", "1"),
        _with(full, f"evidences.{file_at}.file.sha256", "ab"),
        _with(full, f"evidences.{dst_at}.dst_endpoint.address", "1.2.3.4"),
        _with(full, "finding_info.version", 2),
    ]
    for finding in broken:
        DetectionFinding.model_validate(finding)  # the models let it through ...
        assert _errors(schema, finding), finding  # ... the schema does not


def test_every_finding_validates_as_an_ocsf_detection_finding(findings: list[dict]) -> None:
    for finding in findings:
        model = DetectionFinding.model_validate(finding)
        assert model.class_uid == 2004 and model.category_uid == 2
        assert int(model.type_uid) in (200401, 200402)
        assert model.type_uid == 200400 + int(model.activity_id)
        assert model.finding_info.analytic is not None and model.finding_info.analytic.uid == "AN0676"
        assert model.metadata.product.vendor_name == "osq-dbwatch"


def test_the_validator_rejects_what_is_wrong(findings: list[dict]) -> None:
    """The check above can fail: broken findings are refused."""
    good = findings[0]
    for broken in (
        {k: v for k, v in good.items() if k != "finding_info"},
        {**good, "severity_id": 9},
        {**good, "time": "yesterday"},
        {**good, "type_uid": 200499 + 7},
        {**good, "finding_info": {**good["finding_info"], "uid": None}},
        {**good, "metadata": {"version": "1.5.0"}},
    ):
        with pytest.raises(ValidationError):
            DetectionFinding.model_validate(broken)


def test_contract_fields(findings: list[dict]) -> None:
    for f in findings:
        info = f["finding_info"]
        assert 1 <= f["severity_id"] <= 5 and f["severity"] == F.SEVERITY_NAMES[f["severity_id"]]
        assert info["first_seen_time"] <= info["last_seen_time"] == f["time"]
        assert info["title"] and f["message"].endswith(".") and f["message"].count(". ") == 0
        assert info["attacks"] and all(a["technique"]["uid"] in F.TECHNIQUES for a in info["attacks"])
        assert f["device"]["hostname"] and f["actor"]["user"]["name"]
        assert f["unmapped"]["stages"][0] == "access" and set(f["unmapped"]["stages"]) <= {"access", "dump", "egress"}
        assert f["unmapped"]["reasons"] and all(":" in r for r in f["unmapped"]["reasons"])
        assert f["metadata"]["version"] == F.OCSF_VERSION and f["metadata"]["product"]["name"] == "osq-dbwatch"
        assert len(f["evidences"]) >= len(f["unmapped"]["stages"])


# OCSF 1.5 attribute names of the objects py-ocsf-models does not model yet.
PROCESS = {"pid", "cmd_line", "file", "parent_process", "user", "created_time", "working_directory"}
FILE = {"path", "name", "type_id", "type", "size", "owner", "hashes"}
ENDPOINT = {"ip", "port", "hostname"}
EVIDENCE = {"process", "file", "dst_endpoint", "data", "actor"}


def test_evidence_objects_use_ocsf_attribute_names(findings: list[dict]) -> None:
    kinds = set()
    for f in findings:
        for e in f["evidences"]:
            assert set(e) <= EVIDENCE and set(e) & {"process", "file", "dst_endpoint", "actor"}
            if "process" in e:
                kinds.add("process")
                assert set(e["process"]) <= PROCESS and isinstance(e["process"]["pid"], int)
                if "file" in e["process"]:
                    assert set(e["process"]["file"]) <= FILE
                if "parent_process" in e["process"]:
                    assert set(e["process"]["parent_process"]) <= PROCESS
            if "file" in e:
                kinds.add("file")
                assert set(e["file"]) <= FILE and e["file"]["type_id"] == 1 and e["file"]["path"].startswith("/")
            if "dst_endpoint" in e:
                kinds.add("dst_endpoint")
                assert set(e["dst_endpoint"]) <= ENDPOINT
    assert kinds == {"process", "file", "dst_endpoint"}
