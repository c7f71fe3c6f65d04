"""One Finding record, rendered as an OCSF Detection Finding or an ECS alert.

Everything that reaches a renderer has already been redacted by the engine
(command lines through redact_cmdline, SQL/history and the message through
redact_text).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import __version__

OCSF_VERSION = "1.5.0"
ANALYTIC_UID = "AN0676"
ANALYTIC_NAME = "Unusual database CLI access, dump and egress"
SEVERITY_NAMES = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
ECS_SEVERITY = {1: 21, 2: 21, 3: 47, 4: 73, 5: 99}
# ECS rule.uuid names the rule, so it is one constant per analytic (never per chain).
RULE_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "osq-dbwatch:rule:" + ANALYTIC_UID))

# ATT&CK techniques the correlator reports: uid -> (name, tactic uid, tactic name)
TECHNIQUES: dict[str, tuple[str, str, str]] = {
    "T1213": ("Data from Information Repositories", "TA0009", "Collection"),
    "T1005": ("Data from Local System", "TA0009", "Collection"),
    "T1074": ("Data Staged", "TA0009", "Collection"),
    "T1560": ("Archive Collected Data", "TA0009", "Collection"),
    "T1048": ("Exfiltration Over Alternative Protocol", "TA0010", "Exfiltration"),
    "T1567": ("Exfiltration Over Web Service", "TA0010", "Exfiltration"),
    "T1505.003": ("Server Software Component: Web Shell", "TA0003", "Persistence"),
}


@dataclass
class Finding:
    uid: str
    host: str
    user: str
    severity_id: int
    score: int
    update: bool  # False: new (200401); True: raised severity (200402)
    time_ms: int
    first_seen_ms: int
    last_seen_ms: int
    title: str
    message: str
    stages: list[str]
    reasons: list[str]
    techniques: list[str]
    evidences: list[dict[str, Any]] = field(default_factory=list)
    host_uuid: str = ""  # osquery's host_uuid decoration, when the log carries it


def revision(f: Finding) -> int:
    """Which version of its chain a record is. The engine emits a chain again
    only when its severity rises, so the severity a record was emitted at
    orders a chain's records: a higher revision replaces a lower one."""
    return f.severity_id


def record_id(f: Finding) -> str:
    """Unique per emitted record (chain id and revision), for append-only stores."""
    return f"{f.uid}:{revision(f)}"


def _attack(uid: str) -> dict[str, Any]:
    name, tactic_uid, tactic_name = TECHNIQUES[uid]
    base = uid.split(".", 1)[0]
    attack: dict[str, Any] = {
        "technique": {"uid": base if "." in uid else uid, "name": name.split(":", 1)[0]},
        "tactic": {"uid": tactic_uid, "name": tactic_name},
        "version": "17",
    }
    if "." in uid:
        attack["sub_technique"] = {"uid": uid, "name": name.split(": ", 1)[-1]}
        attack["technique"] = {"uid": uid, "name": name}
    return attack


def to_ocsf(f: Finding) -> dict[str, Any]:
    activity_id = 2 if f.update else 1
    message = f.message
    return {
        "activity_id": activity_id,
        "activity_name": "Update" if f.update else "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200400 + activity_id,
        "type_name": "Detection Finding: " + ("Update" if f.update else "Create"),
        "severity_id": f.severity_id,
        "severity": SEVERITY_NAMES[f.severity_id],
        "status_id": 1,
        "status": "New",
        "time": f.time_ms,
        "message": message,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": record_id(f),
            "correlation_uid": f.uid,
            "sequence": revision(f),
            "product": {"name": "osq-dbwatch", "vendor_name": "osq-dbwatch", "version": __version__},
            "log_name": "osquery results",
            "profiles": ["host"],
        },
        "finding_info": {
            "uid": f.uid,
            "title": f.title,
            "desc": message,
            "analytic": {"uid": ANALYTIC_UID, "name": ANALYTIC_NAME, "type_id": 1, "type": "Rule"},
            "attacks": [_attack(t) for t in f.techniques],
            "first_seen_time": f.first_seen_ms,
            "last_seen_time": f.last_seen_ms,
            "modified_time": f.time_ms,
            "types": ["Data Exfiltration" if "egress" in f.stages else "Data Collection"],
        },
        "device": {"hostname": f.host, "name": f.host, "type_id": 0, "type": "Unknown",
                   **({"uid": f.host_uuid} if f.host_uuid else {})},
        "actor": {"user": {"name": f.user}},
        "evidences": f.evidences,
        "risk_score": f.score,
        "unmapped": {"reasons": f.reasons, "stages": f.stages, "score": f.score},
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _first(f: Finding, key: str, stage: str | None = None) -> dict[str, Any] | None:
    """The first evidence object under `key` (in event order), optionally of one stage."""
    for e in f.evidences:
        if key in e and (stage is None or e.get("data", {}).get("stage") == stage):
            obj: dict[str, Any] = e[key]
            return obj
    return None


def _ecs_process(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.get("pid") is not None:
        out["pid"] = p["pid"]
    if p.get("cmd_line"):
        out["command_line"] = p["cmd_line"]
    exe = p.get("file", {})
    if exe.get("path"):
        out["executable"] = exe["path"]
        out["name"] = exe.get("name") or exe["path"].rsplit("/", 1)[-1]
    if p.get("working_directory"):
        out["working_directory"] = p["working_directory"]
    if p.get("created_time"):
        out["start"] = _iso(p["created_time"])
    user = p.get("user", {})
    if user.get("name") or user.get("uid"):
        out["user"] = {**({"name": user["name"]} if user.get("name") else {}),
                       **({"id": user["uid"]} if user.get("uid") else {})}
    parent = p.get("parent_process")
    if parent:
        out["parent"] = _ecs_process(parent)
    return out


def _ecs_file(fo: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"path": fo["path"], "name": fo.get("name") or fo["path"].rsplit("/", 1)[-1]}
    if fo.get("size") is not None:
        out["size"] = fo["size"]
    if fo.get("owner", {}).get("name"):
        out["owner"] = fo["owner"]["name"]
    for h in fo.get("hashes", []):
        if h.get("algorithm_id") == 3 and h.get("value"):
            out["hash"] = {"sha256": h["value"]}
    return out


def _ecs_destination(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if d.get("ip"):
        out["ip"] = d["ip"]
        out["address"] = d["ip"]
    elif d.get("hostname"):
        out["domain"] = d["hostname"]
        out["address"] = d["hostname"]
    if d.get("port") is not None:
        out["port"] = d["port"]
    return out


def ecs_evidence_fields(f: Finding) -> dict[str, Any]:
    """The chain's primary evidence as top-level ECS fields, so exceptions can be
    written against them: the access's process (else the egress tool's), the
    first dump-like file, the first destination."""
    out: dict[str, Any] = {}
    process = _first(f, "process", "access") or _first(f, "process")
    if process:
        out["process"] = _ecs_process(process)
    dump = _first(f, "file")
    if dump and dump.get("path"):
        out["file"] = _ecs_file(dump)
    # An address socket_events saw beats a host name read from a command line.
    dests = [e["dst_endpoint"] for e in f.evidences if "dst_endpoint" in e]
    dest = next((d for d in dests if d.get("ip")), dests[0] if dests else None)
    if dest:
        destination = _ecs_destination(dest)
        if destination:
            out["destination"] = destination
    return out


def to_ecs(f: Finding) -> dict[str, Any]:
    ips: list[str] = []
    for e in f.evidences:
        ip = e.get("dst_endpoint", {}).get("ip")
        if ip and ip not in ips:
            ips.append(ip)
    techniques = []
    tactics: dict[str, str] = {}
    for t in f.techniques:
        name, tactic_uid, tactic_name = TECHNIQUES[t]
        techniques.append({"id": t, "name": name, "reference": f"https://attack.mitre.org/techniques/{t.replace('.', '/')}/"})
        tactics[tactic_uid] = tactic_name
    host: dict[str, Any] = {"hostname": f.host, "name": f.host}
    if f.host_uuid:
        host["id"] = f.host_uuid
    return {
        "@timestamp": _iso(f.time_ms),
        "message": f.message,
        "event": {
            "kind": "alert",
            # ECS allows only allowed/denied/info as types of intrusion_detection.
            "category": ["intrusion_detection"],
            "type": ["info"],
            "action": "update" if f.update else "new",
            # One id per chain: used as the document _id, each escalation
            # replaces the chain's document (docs/siem-output.md).
            "id": f.uid,
            "severity": ECS_SEVERITY[f.severity_id],
            "risk_score": float(f.score),
            "start": _iso(f.first_seen_ms),
            "end": _iso(f.last_seen_ms),
            "dataset": "osq_dbwatch.findings",
            "module": "osq_dbwatch",
            "provider": "osq-dbwatch",
        },
        "rule": {
            "id": ANALYTIC_UID,
            "uuid": RULE_UUID,
            "name": ANALYTIC_NAME,
            "description": ANALYTIC_NAME,
            "ruleset": "osq-dbwatch",
            "version": __version__,
        },
        "threat": {
            "framework": "MITRE ATT&CK",
            "technique": techniques,
            "tactic": {"id": sorted(tactics), "name": [tactics[k] for k in sorted(tactics)]},
        },
        "host": host,
        "user": {"name": f.user},
        **ecs_evidence_fields(f),
        "related": {"user": [f.user], "hosts": [f.host], **({"ip": ips} if ips else {})},
        "tags": ["osq-dbwatch", *f.stages],
        "osq_dbwatch": {"chain_id": f.uid, "revision": revision(f), "record_id": record_id(f), "title": f.title,
                        "reasons": f.reasons, "stages": f.stages, "score": f.score, "evidences": f.evidences,
                        "severity_id": f.severity_id},
    }
