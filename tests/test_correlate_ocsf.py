"""Findings checked against the OCSF schema, offline.

ocsf-lib (installed) only fetches schemas from the OCSF server and validates
schema repositories, not events, so it cannot check a finding without the
network. py-ocsf-models (Prowler's maintained pydantic models of OCSF 1.5,
in the test extra) validates Detection Finding events offline: required
fields, types, enums (class, category, type_uid, severity, activity).
Fields it does not model yet (evidences' process/file/dst_endpoint, device,
actor) are checked here against the OCSF 1.5 attribute names.
"""

from __future__ import annotations

import glob
import json
import os

import pytest
from conftest import SHARED
from correlate_scenarios.helpers import HERE as OWN, correlate
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
